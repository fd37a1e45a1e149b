// The whole course project in one run: EDA → dataset → finetune → evaluate.
//
//   build-native/frankenstein --out runs/frankenstein            # tiny GPT-2 from scratch, offline
//   build-native/frankenstein --model distilgpt2 --out runs/d2   # the course's real DistilGPT-2
//   build-native/frankenstein --model weights/smollm2-135m-instruct --method qlora --half --out runs/q
//                                                                # steps 3–4 too: NF4 base + LoRA
//
// Writes into --out: eda.md and char_lengths.svg (step 1), the trained model
// (final/: a Hugging Face directory, or the peft adapter for --method lora/qlora), log.jsonl
// and loss.svg (step 5),
// report.md with base vs finetuned perplexity and generations, and
// metrics.json with the same numbers for scripts (step 6).
#include <cstdio>
#include <CLI/CLI.hpp>

#include "course.hpp"

using namespace course;
using Clock = std::chrono::steady_clock;

static double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

int main(int argc, char** argv) {
  CLI::App app{"galvani: finetune a language model to write Frankenstein fan-fiction (the whole course, offline)"};
  app.footer("Data parallel over several processes (MPI): tools/launch.sh -n 2 build/frankenstein ... "
             "(each rank trains on its share of the rows; docs/distributed.md).");
  std::string model_name = "tiny", out = "runs/frankenstein", csv = kChunksCsv, tok_path;
  uint64_t seed = 42;
  bool half = false;
  TrainingFlags train_flags;
  MethodFlags method;
  std::string optim, resume;
  cli::GenerationFlags gen_flags;
  SampleSettings sample;
  app.add_option("--model", model_name, "tiny (trained from scratch), distilgpt2 (weights/distilgpt2), or a model directory")
      ->capture_default_str();
  app.add_option("--out", out, "run folder for every output")->capture_default_str();
  app.add_option("--csv", csv, "frankenstein_chunks.csv (the default one is made from the novel if missing)")->capture_default_str();
  app.add_option("--tokenizer", tok_path, "tokenizer.json (default: the model directory's own, else the shared GPT-2 one)");
  app.add_option("--seed", seed, "seed of the split, the shuffling and the initialisation")->capture_default_str();
  app.add_flag("--half", half, "use the first half of the rows, as the course's CPU run does");
  train_flags.add_to(app);
  method.add_to(app);
  app.add_option("--optim", optim, "the optimizer's Hugging Face name (default: adamw_torch for full, "
                                   "paged_adamw_8bit for lora/qlora)")
      ->check(CLI::IsMember({"adamw_torch", "adamw_hf", "adamw_8bit", "paged_adamw_8bit", "paged_adamw_32bit"}));
  app.add_option("--resume-from-checkpoint", resume, "continue an interrupted training: latest or a checkpoint folder");
  gen_flags.add_to(app, 100);  // the course's generate_text: max_new_tokens=100
  sample.add_to(app);
  CLI11_PARSE(app, argc, argv);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // lines reach a pipe or a log file in order with stderr's

  try {
    // Under `mpirun -np N` (tools/launch.sh) the ranks train data-parallel (docs/distributed.md):
    // rank 0 alone does the EDA, both evaluations and the writing; the others' stdout is muted.
    const distributed::ProcessGroup& group = distributed::init_process_group("mpi");
    const bool main_rank = group.is_main_process();
    if (!main_rank) std::freopen("/dev/null", "w", stdout);
    // Check the inputs before doing any work: a typo in --model fails here, not after the EDA.
    check_model_name(model_name);
    const fs::path tok_file = find_tokenizer(tok_path, model_name);
    GALVANI_CHECK(fs::exists(tok_file), "--tokenizer ", tok_file.string(), ": no such file");
    const fs::path dir = out;
    fs::create_directories(dir);
    nlohmann::json metrics = {{"model", model_name}, {"method", method.method}, {"seed", seed},
                              {"seconds", nlohmann::json::object()}};

    // Step 1 — EDA.
    auto t = Clock::now();
    if (main_rank) {
      ensure_chunks_csv(csv);
      Table raw = read_csv(csv);
      GALVANI_CHECK(raw.has_column("text"), csv, " has no column 'text'; the course's CSV is made by build/make_chunks");
      GALVANI_CHECK(raw.rows() > 0, csv, " has a header but no rows; remake it with build/make_chunks");
      write_text(dir / "eda.md", "# EDA of " + csv + "\n\n" + eda_report(raw, dir, seed));
      std::printf("step 1: %lld snippets; EDA in %s\n", (long long)raw.rows(), (dir / "eda.md").c_str());
    }
    group.barrier();  // the CSV exists for every rank
    metrics["seconds"]["eda"] = since(t);

    // Step 2 — split and tokenize.
    t = Clock::now();
    Tokenizer tok = Tokenizer::from_file(tok_file.string());
    Dataset data = load_dataset(csv, tok, seed, 0.2, half);
    std::printf("step 2: train %lld rows (%lld tokens), test %lld rows (%lld tokens)\n", (long long)data.train.size(),
                (long long)data.train.total_tokens(), (long long)data.test.size(), (long long)data.test.total_tokens());
    metrics["data"] = {{"train_rows", data.train.size()}, {"test_rows", data.test.size()},
                       {"train_tokens", data.train.total_tokens()}, {"test_tokens", data.test.total_tokens()},
                       {"dropped_rows", data.dropped.total()}};
    metrics["seconds"]["dataset"] = since(t);

    // Step 6 (before) — the base model (step 3 for qlora: in 4 bits, quantized as it loads).
    t = Clock::now();
    std::unique_ptr<CausalLM> model = load_model(model_name, seed, method.load_in_4bit());
    cli::check_vocab_fits(tok, tok_file, model->vocab_size(), model_name);
    Evaluation base;
    double unigram = 0;
    if (main_rank) {
      base = evaluate(*model, tok, data.test, generation_for(model_name, *model, gen_flags), kPrompt, sample);
      unigram = unigram_perplexity(data.train.rows, data.test.rows, model->vocab_size());
      std::printf("base model: test perplexity %.1f (row mean %.1f); unigram baseline %.1f\n", base.ppl.corpus_ppl,
                  base.ppl.row_mean_ppl, unigram);
    }
    metrics["seconds"]["evaluate_base"] = since(t);

    // Step 4 (lora, qlora) — adapters on the frozen base.
    LoraConfig lora;
    if (method.uses_adapter()) {
      std::printf("step 4: ");
      lora = add_adapters(*model, method, model_name);
      const ParameterCount pc = count_parameters(*model);
      metrics["lora"] = lora_config_to_json(lora, {});
      metrics["trainable_params"] = pc.trainable;
      metrics["all_params"] = pc.all;
    }

    // Step 5 — finetune.
    t = Clock::now();
    TrainingArguments args = training_defaults(model_name, method.method);
    args.output_dir = dir.string();
    args.seed = seed;
    if (!optim.empty()) args.optim = optim;
    args.resume_from_checkpoint = resume;
    train_flags.apply(args);
    // Checkpoints and the final model carry the tokenizer, so step6_evaluate reads
    // each with its own tokenizer.json.
    io::SavePretrainedOptions save_opt;
    save_opt.tokenizer_dir = tok_file.parent_path();
    // ... and the base model's generation defaults (an EOS list in its generation_config.json).
    if (model_name != "tiny") save_opt.generation_config = generation_config_of(model_dir(model_name));
    const Trainer::SaveFn save = run_saver(method, lora, save_opt);
    Trainer trainer(*model, args, data.train.rows, data.eos, data.test.rows, save);
    std::printf("step 5: %lld updates (%s), lr %.1e, warmup %lld, %s\n", (long long)trainer.total_steps(),
                schedule_phrase(trainer, args, group.distributed()).c_str(), args.learning_rate,
                (long long)args.warmup_steps, args.optim.c_str());
    TrainResult tr = trainer.train();
    if (!main_rank) return 0;
    save(*model, dir / "final");
    // batch_size is per rank: an update's global batch is batch_size × world_size (× accumulation).
    metrics["training"] = {{"learning_rate", args.learning_rate}, {"epochs", args.num_train_epochs},
                           {"max_steps", args.max_steps}, {"world_size", group.world_size()},
                           {"gradient_accumulation_steps", args.gradient_accumulation_steps},
                           {"batch_size", args.per_device_train_batch_size}, {"warmup_steps", args.warmup_steps},
                           {"half", half}, {"optim", args.optim},
                           {"steps", tr.global_step}, {"final_loss", tr.final_loss},
                           {"truncated_rows", trainer.truncated_rows()}, {"seconds", tr.seconds}};
    metrics["seconds"]["train"] = since(t);

    // Step 6 (after) — the finetuned model, reloaded from disk as a user would (an adapter
    // over a freshly loaded base, as PeftModel.from_pretrained does).
    t = Clock::now();
    model.reset();
    std::unique_ptr<CausalLM> tuned_model;
    if (method.uses_adapter()) {
      tuned_model = load_model(model_name, seed, method.load_in_4bit());
      load_adapter(*tuned_model, dir / "final");
    } else {
      tuned_model = load_causal_lm(dir / "final");
    }
    const fs::path gen_dir = method.uses_adapter() ? model_dir(model_name) : dir / "final";
    Evaluation tuned = evaluate(*tuned_model, tok, data.test,
                                method.uses_adapter() ? generation_for(model_name, *tuned_model, gen_flags)
                                                      : cli::resolve(gen_flags, gen_dir),
                                kPrompt, sample);
    metrics["seconds"]["evaluate_finetuned"] = since(t);

    metrics["perplexity"] = {{"base", ppl_json(base.ppl)}, {"finetuned", ppl_json(tuned.ppl)}, {"unigram", unigram}};
    metrics["generation"] = {{"prompt", kPrompt}, {"base", base.text}, {"finetuned", tuned.text},
                             {"base_sampled", base.sampled}, {"finetuned_sampled", tuned.sampled},
                             {"sampled_settings", sample.to_json()}};
    write_text(dir / "metrics.json", metrics.dump(2) + "\n");
    write_text(dir / "report.md", "# Frankenstein: base vs finetuned (" + model_name +
                                      (method.uses_adapter() ? ", " + method.method : std::string()) + ")\n\n" +
                                      comparison_report(base, tuned, unigram) +
                                      "\n![training loss](loss.svg)\n\nEDA: [eda.md](eda.md)\n");
    std::printf("\ntest perplexity: base %.1f → finetuned %.1f (row mean %.1f → %.1f); unigram %.1f\n",
                base.ppl.corpus_ppl, tuned.ppl.corpus_ppl, base.ppl.row_mean_ppl, tuned.ppl.row_mean_ppl, unigram);
    std::printf("base (greedy):         %s%s\nfinetuned (greedy):    %s%s\nfinetuned (sampled):   %s%s\n", kPrompt,
                base.text.c_str(), kPrompt, tuned.text.c_str(), kPrompt, tuned.sampled.c_str());
    std::printf("\nreport: %s\nmetrics: %s\n", (dir / "report.md").c_str(), (dir / "metrics.json").c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    distributed::abort_job(1);  // under mpirun: the other ranks stop now instead of at the timeout
    return 1;
  }
  return 0;
}
