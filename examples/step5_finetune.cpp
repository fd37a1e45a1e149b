// Course step 5 — finetune a GPT-2-family model on the training split.
//
// The notebook did (CPU run, DistilGPT-2):
//   args = TrainingArguments(output_dir, warmup_steps=200, logging_steps=1, save_steps=200,
//                            per_device_train_batch_size=2, num_train_epochs=2,
//                            learning_rate=2e-5, optim="adamw_hf")
//   Trainer(model, args, train_dataset=ds["train"], data_collator=collator).train()
//
//   build-native/step5_finetune --model distilgpt2 --out runs/step5   # real weights (tools/fetch_weights.sh)
//   build-native/step5_finetune --model tiny --out runs/step5         # from scratch, offline
//
// The GPU run's QLoRA (steps 3–5) is --method qlora: the model quantized to NF4 on load,
// LoRA r=32 on peft's default modules, optim="paged_adamw_8bit", warmup_steps=2:
//   build-native/step5_finetune --model weights/smollm2-135m-instruct --method qlora --out runs/qlora
// Writes checkpoints (checkpoint-N/), log.jsonl, loss.svg and final/: the model (full), or
// the peft adapter (lora, qlora) — with --merge also merged/, the adapter folded into a plain
// float model. --resume-from-checkpoint latest continues an interrupted run.
#include <cstdio>
#include <CLI/CLI.hpp>

#include "course.hpp"

using namespace course;

int main(int argc, char** argv) {
  CLI::App app{"Course step 5: finetune with Hugging Face Trainer semantics (AdamW, linear warmup, clipping)"};
  app.footer("Data parallel over several processes (MPI): tools/launch.sh -n 2 build/step5_finetune ... "
             "(each rank trains on its share of the rows; docs/distributed.md).");
  std::string model_name = "tiny", out = "runs/step5", csv = kChunksCsv, tok_path;
  TrainingFlags train_flags;
  MethodFlags method;
  int64_t save_steps = -1, save_total_limit = -1, accum = 1;
  std::string optim, resume;
  bool merge = false;
  uint64_t seed = 42;
  bool half = false;
  app.add_option("--model", model_name, "tiny, distilgpt2 (weights/distilgpt2) or a model directory")->capture_default_str();
  app.add_option("--out", out, "output_dir: checkpoints, logs, loss curve, final model")->capture_default_str();
  app.add_option("--csv", csv, "frankenstein_chunks.csv (the default one is made from the novel if missing)")->capture_default_str();
  app.add_option("--tokenizer", tok_path, "tokenizer.json (default: the model directory's own, else the shared GPT-2 one)");
  train_flags.add_to(app);
  method.add_to(app);
  app.add_option("--grad-accum", accum, "gradient_accumulation_steps")->capture_default_str()->check(cli::kPositive);
  app.add_option("--save-steps", save_steps, "checkpoint every N updates (course: 200; 0: never)")
      ->check(cli::kNonNegative);
  app.add_option("--save-total-limit", save_total_limit,
                 "keep the newest N checkpoints, deleting older ones (default 2; 0 keeps all, as HF's None)")
      ->check(cli::kNonNegative);
  app.add_option("--optim", optim, "adamw_torch (full's default), adamw_hf (the course's CPU run), adamw_8bit, "
                                   "paged_adamw_8bit (lora/qlora default), paged_adamw_32bit")
      ->check(CLI::IsMember({"adamw_torch", "adamw_hf", "adamw_8bit", "paged_adamw_8bit", "paged_adamw_32bit"}));
  app.add_option("--resume-from-checkpoint", resume, "continue a run: latest (the newest <out>/checkpoint-N) or a "
                                                     "checkpoint folder; the other flags must be the run's");
  app.add_flag("--merge", merge, "lora/qlora: also write <out>/merged, the adapter merged into a float model");
  app.add_option("--seed", seed, "seed of the split, shuffling, initialisation and dropout")->capture_default_str();
  app.add_flag("--half", half, "use the first half of the rows, as the course's CPU run does");
  CLI11_PARSE(app, argc, argv);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // lines reach a pipe or a log file in order with stderr's

  try {
    // Under `mpirun -np N` (tools/launch.sh) the ranks train data-parallel: rank 0 makes the CSV,
    // prints and saves (docs/distributed.md); run alone, this is the single process.
    const distributed::ProcessGroup& group = distributed::init_process_group("mpi");
    const bool main_rank = group.is_main_process();
    check_model_name(model_name);
    if (main_rank) ensure_chunks_csv(csv);
    group.barrier();
    const fs::path tok_file = find_tokenizer(tok_path, model_name);
    Tokenizer tok = Tokenizer::from_file(tok_file.string());
    Dataset data = load_dataset(csv, tok, seed, 0.2, half);
    std::unique_ptr<CausalLM> model = load_model(model_name, seed, method.load_in_4bit());
    cli::check_vocab_fits(tok, tok_file, model->vocab_size(), model_name);
    if (main_rank)
      std::printf("model %s%s: %.2fM parameters; train %lld rows, test %lld rows%s\n", model_name.c_str(),
                  method.load_in_4bit() ? " (NF4)" : "", double(model->num_parameters()) / 1e6,
                  (long long)data.train.size(), (long long)data.test.size(),
                  group.distributed() ? galvani::detail::cat("; ", group.world_size(), " ranks (data parallel)").c_str() : "");
    LoraConfig lora;
    if (method.uses_adapter()) lora = add_adapters(*model, method, model_name);

    TrainingArguments args = training_defaults(model_name, method.method);
    args.output_dir = out;
    args.seed = seed;
    if (!optim.empty()) args.optim = optim;
    args.resume_from_checkpoint = resume;
    args.gradient_accumulation_steps = accum;
    train_flags.apply(args);
    if (save_steps >= 0) args.save_steps = save_steps;
    if (save_total_limit >= 0) args.save_total_limit = save_total_limit;

    io::SavePretrainedOptions save_opt;
    save_opt.tokenizer_dir = tok_file.parent_path();
    // ... and the base model's generation defaults (an EOS list in its generation_config.json).
    if (model_name != "tiny") save_opt.generation_config = generation_config_of(model_dir(model_name));
    // Checkpoints hold what the run trains: the model, or the adapter (as the Trainer saves a PeftModel).
    const Trainer::SaveFn save = run_saver(method, lora, save_opt);
    Trainer trainer(*model, args, data.train.rows, data.eos, data.test.rows, save);
    if (main_rank)
      std::printf("%lld updates (%s, x%lld accumulation), lr %.1e, warmup %lld, %s\n", (long long)trainer.total_steps(),
                  schedule_phrase(trainer, args, group.distributed()).c_str(), (long long)accum, args.learning_rate,
                  (long long)args.warmup_steps, args.optim.c_str());
    TrainResult r = trainer.train();
    if (!main_rank) return 0;
    save(*model, fs::path(out) / "final");
    if (method.uses_adapter() && merge) save_merged(*model, fs::path(out) / "merged", save_opt);
    std::printf("done: %lld updates in %s, final loss %.4f", (long long)r.global_step,
                format_duration(r.seconds).c_str(), r.final_loss);
    if (!r.eval_loss.empty()) std::printf(", test loss %.4f", r.eval_loss.back().second);
    std::printf("\n%s: %s/final   log: %s/log.jsonl   loss curve: %s/loss.svg\n",
                method.uses_adapter() ? "adapter" : "model", out.c_str(), out.c_str(), out.c_str());
    if (method.uses_adapter())
      std::printf("evaluate: step6_evaluate --base %s%s --adapter %s/final\n", model_name.c_str(),
                  method.load_in_4bit() ? " --load-in-4bit" : "", out.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    distributed::abort_job(1);  // under mpirun: the other ranks stop now instead of at the timeout
    return 1;
  }
  return 0;
}
