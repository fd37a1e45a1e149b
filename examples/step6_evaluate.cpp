// Course step 6 — base vs finetuned: perplexity on the test split, and text.
//
// The notebook did, before and after training:
//   generate_text("I'm afraid I've created a ")    # model.generate(max_new_tokens=100)
//   calc_perplexity(model, test)                     # mean over rows of exp(loss of the row)
//
//   build-native/step6_evaluate --base tiny --finetuned runs/step5/final --out runs/step6
// A LoRA/QLoRA run's adapter is evaluated over its base, as peft does it: one model with the
// adapter loaded, evaluated with the adapter switched off (base) and on (finetuned):
//   build-native/step6_evaluate --base weights/smollm2-135m-instruct --load-in-4bit --adapter runs/qlora/final
// Writes report.md (both models side by side) and metrics.json. Generation takes each
// model's generation_config.json (eos ids, sampling settings); the flags override it.
#include <cstdio>
#include <CLI/CLI.hpp>

#include "course.hpp"

using namespace course;

int main(int argc, char** argv) {
  CLI::App app{"Course step 6: perplexity and generated text, base vs finetuned"};
  std::string base_name = "tiny", tuned_dir = "runs/step5/final", out = "runs/step6", csv = kChunksCsv, tok_path;
  std::string dtype = "float32";
  std::string prompt = kPrompt;
  cli::GenerationFlags gen_flags;
  uint64_t seed = 42;
  bool half = false, load_in_4bit = false;
  std::string adapter;
  app.add_option("--base", base_name, "the model before finetuning: tiny (random, --seed), distilgpt2 or a directory")
      ->capture_default_str();
  app.add_option("--finetuned", tuned_dir, "the finetuned model directory (step5's <out>/final)")->capture_default_str();
  app.add_option("--adapter", adapter, "a peft adapter directory (step5 --method lora/qlora's <out>/final): the "
                                       "finetuned model is --base with it, instead of --finetuned");
  app.add_flag("--load-in-4bit", load_in_4bit, "quantize --base to NF4 as it loads (the base of a --method qlora run)");
  app.add_option("--out", out, "folder for report.md and metrics.json")->capture_default_str();
  app.add_option("--csv", csv, "frankenstein_chunks.csv")->capture_default_str();
  app.add_option("--tokenizer", tok_path, "tokenizer.json (default: the finetuned model's own, else the shared GPT-2 one)");
  app.add_option("--prompt", prompt, "generation prompt")->capture_default_str();
  gen_flags.add_to(app, 100);  // the course's generate_text: max_new_tokens=100
  app.add_option("--seed", seed, "seed of the split (must match step 5) and of tiny's initialisation")
      ->capture_default_str();
  app.add_flag("--half", half, "use the first half of the rows (must match step 5)");
  cli::add_dtype_option(app, dtype)->description(
      "dtype of the loaded weights (base and finetuned; not with --load-in-4bit): float32, or bfloat16 (bf16) to "
      "store them in 2 bytes (computation stays in float32)");
  CLI11_PARSE(app, argc, argv);
  const DType weights_dtype = cli::parse_dtype(dtype);  // checked against --load-in-4bit below
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // lines reach a pipe or a log file in order with stderr's

  try {
    cli::check_dtype_with_4bit(dtype, load_in_4bit);
    // Inputs first, so a wrong path fails before minutes of work.
    check_model_name(base_name, "--base");
    if (!adapter.empty()) {
      read_adapter_config(adapter);  // a clear error now if it is not an adapter directory
    } else {
      if (!fs::exists(tuned_dir))
        throw Error(tuned_dir + " does not exist: run step 5 first (build/step5_finetune writes <out>/final), "
                    "or pass the finetuned model directory with --finetuned (an adapter with --adapter)");
      GALVANI_CHECK(!fs::exists(fs::path(tuned_dir) / kAdapterConfigFile), "--finetuned ", tuned_dir,
                    " is a peft adapter, not a model: pass it as --adapter ", tuned_dir, " with its base as --base");
      cli::check_model_dir(tuned_dir, "--finetuned");
    }
    ensure_chunks_csv(csv);
    const fs::path tok_file = find_tokenizer(tok_path, adapter.empty() ? tuned_dir : base_name);
    Tokenizer tok = Tokenizer::from_file(tok_file.string());
    Dataset data = load_dataset(csv, tok, seed, 0.2, half);
    Evaluation b, t;
    std::unique_ptr<CausalLM> tuned;
    if (!adapter.empty()) {
      tuned = load_in_4bit ? load_model(base_name, seed, true) : load_model(base_name, seed, weights_dtype);
      cli::check_vocab_fits(tok, tok_file, tuned->vocab_size(), "--base " + base_name);
      load_adapter(*tuned, adapter);
      std::printf("adapter %s over %s%s\n", adapter.c_str(), base_name.c_str(), load_in_4bit ? " (NF4)" : "");
      const GenerationOptions gen = generation_for(base_name, *tuned, gen_flags);
      {
        DisabledAdapters off(*tuned);  // peft's disable_adapter(): the base model
        b = evaluate(*tuned, tok, data.test, gen, prompt);
      }
      t = evaluate(*tuned, tok, data.test, gen, prompt);
    } else {
      std::unique_ptr<CausalLM> base =
          load_in_4bit ? load_model(base_name, seed, true) : load_model(base_name, seed, weights_dtype);
      tuned = load_causal_lm(tuned_dir, weights_dtype);
      cli::check_vocab_fits(tok, tok_file, base->vocab_size(), "--base " + base_name);
      cli::check_vocab_fits(tok, tok_file, tuned->vocab_size(), tuned_dir);
      b = evaluate(*base, tok, data.test, generation_for(base_name, *base, gen_flags), prompt);
      t = evaluate(*tuned, tok, data.test, cli::resolve(gen_flags, tuned_dir), prompt);
    }
    const double unigram = unigram_perplexity(data.train.rows, data.test.rows, tuned->vocab_size());

    std::printf("test perplexity (row mean, the course's)   base %10.2f   finetuned %10.2f\n", b.ppl.row_mean_ppl,
                t.ppl.row_mean_ppl);
    std::printf("test perplexity (corpus)                    base %10.2f   finetuned %10.2f   unigram %.2f\n",
                b.ppl.corpus_ppl, t.ppl.corpus_ppl, unigram);
    std::printf("\nbase:      %s%s\n\nfinetuned: %s%s\n\nfinetuned, sampled: %s%s\n", prompt.c_str(), b.text.c_str(),
                prompt.c_str(), t.text.c_str(), prompt.c_str(), t.sampled.c_str());
    write_text(fs::path(out) / "report.md", "# Base vs finetuned\n\n" + comparison_report(b, t, unigram, prompt));
    nlohmann::json m = {{"perplexity", {{"base", ppl_json(b.ppl)}, {"finetuned", ppl_json(t.ppl)}, {"unigram", unigram}}},
                        {"generation", {{"prompt", prompt}, {"base", b.text}, {"finetuned", t.text}, {"base_sampled", b.sampled},
                                        {"finetuned_sampled", t.sampled}}}};
    write_text(fs::path(out) / "metrics.json", m.dump(2) + "\n");
    std::printf("\nreport: %s/report.md\n", out.c_str());
    if (b.ppl.corpus_ppl == t.ppl.corpus_ppl)
      std::printf("warning: base and finetuned perplexity are identical — were the finetuned weights applied?\n");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
