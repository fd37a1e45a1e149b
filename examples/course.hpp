// examples/course.hpp — the course's stages as functions, shared by the step
// programs (step1_eda … step6_evaluate) and by `frankenstein`, which runs them
// all into one folder. Each function is one thing the notebook did.
#pragma once
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include <CLI/CLI.hpp>

#include <galvani/galvani.hpp>
#include <galvani/data/chunking.hpp>
#include <galvani/data/csv.hpp>
#include <galvani/data/dataset.hpp>
#include <galvani/data/eda.hpp>
#include <galvani/data/split.hpp>
#include <galvani/data/svg_plot.hpp>
#include <galvani/models/auto.hpp>
#include <galvani/models/kbit.hpp>
#include <galvani/models/peft.hpp>
#include <galvani/models/quantize.hpp>
#include <galvani/tokenizer/tokenizer.hpp>

#include "cli.hpp"

namespace course {

using namespace galvani;
namespace fs = std::filesystem;

inline const char* kPrompt = "I'm afraid I've created a ";
inline const char* kChunksCsv = kDefaultChunksCsv;  // runs/frankenstein_chunks.csv

// ------------------------------------------------------------------ step 0: the CSV

// Writes frankenstein_chunks.csv at `csv` from the novel (what tools/make_chunks does).
inline fs::path make_chunks_csv(const fs::path& csv) {
  const std::string rel = "frankenstein/pg84.txt";
  auto novel = find_data_file(rel);
  GALVANI_CHECK(novel, data_file_missing(rel));
  std::vector<std::string> chunks = chunk_book(read_text_file(*novel));
  Table t = Table::from_column("text", {});
  for (auto& c : chunks) t.add_row({Cell(c)});
  if (csv.has_parent_path()) fs::create_directories(csv.parent_path());
  write_csv(csv, t);
  std::printf("wrote %s: %zu snippets of the novel (%s)\n", csv.string().c_str(), chunks.size(),
              novel->string().c_str());
  return csv;
}

// The --csv of a program: the default one (kChunksCsv) is made from the novel when it does not
// exist yet, so the pipeline runs from a fresh clone; a path the user named that does not exist
// is an error, not a fresh dataset — a typo must not train on something else.
inline fs::path ensure_chunks_csv(const fs::path& csv) {
  if (fs::exists(csv)) return csv;
  GALVANI_CHECK(csv.lexically_normal() == fs::path(kChunksCsv).lexically_normal(), "--csv ", csv.string(),
                ": no such file. Check the path, leave --csv out to use ", kChunksCsv,
                " (made from the novel when missing), or make one with build/make_chunks --output ", csv.string());
  return make_chunks_csv(csv);
}

// ------------------------------------------------------------------ step 1: EDA

// What df.info(), df.describe(), df.nunique(), df.sample(), df.isnull().sum()
// print, as Markdown, plus the length histogram written to `out_dir`.
// How long step 5 runs, for its opening line: "2 epochs of 92 batches of 2" or, when max_steps
// is set (which, as in the HF Trainer, decides the length and makes num_train_epochs moot),
// "--max-steps 10; an epoch is 92 batches of 2"; " per rank" under data parallelism.
inline std::string schedule_phrase(const Trainer& trainer, const TrainingArguments& args, bool distributed) {
  const std::string batches = galvani::detail::cat(trainer.batches_per_epoch(), " batches of ",
                                                   args.per_device_train_batch_size, distributed ? " per rank" : "");
  if (args.max_steps > 0) return galvani::detail::cat("--max-steps ", args.max_steps, "; an epoch is ", batches);
  return galvani::detail::cat(args.num_train_epochs, " epochs of ", batches);
}

inline std::string eda_report(const Table& df, const fs::path& out_dir, uint64_t seed = 42) {
  std::ostringstream md;
  const Column& text = df.column("text");
  md << "## df.info()\n\n```\n" << info(df) << "```\n\n";
  const auto lengths = char_lengths(text);
  md << "## df[\"text\"].str.len().describe()\n\n```\n" << format_describe(describe(lengths), "text") << "```\n\n";
  md << "## df.nunique()\n\n```\n" << format_counts(nunique(df)) << "```\n\n";
  md << "## df.isnull().sum()\n\n```\n" << format_counts(isnull_sum(df)) << "```\n\n";
  if (df.rows() > 0) {
    const int64_t row = sample_indices(df.rows(), 1, seed)[0];
    const Cell& c = text[size_t(row)];
    md << "## df.sample() (row " << row << ")\n\n> " << (c ? *c : std::string("NaN")) << "\n\n";
    HistogramChart chart{"Characters per snippet (" + std::to_string(lengths.size()) + " rows)", "characters",
                         "rows", make_histogram(lengths, 20)};
    save_svg(out_dir / "char_lengths.svg", to_svg(chart));
    md << "![characters per snippet](char_lengths.svg)\n";
  }
  return md.str();
}

// ------------------------------------------------------------------ step 2: dataset

struct Dataset {
  Table df;                       // the CSV's text column, blank rows dropped
  DropReport dropped;
  TableSplit split;               // seeded 80/20
  TokenizedDataset train, test;   // token ids per row, unpadded
  int64_t eos = 0;                // pad = eos, as the course sets it
};

// A --model value: tiny, distilgpt2 (weights/distilgpt2) or a model directory.
inline fs::path model_dir(const std::string& name) {
  return name == "distilgpt2" ? fs::path("weights/distilgpt2") : fs::path(name);
}

// Check a --model value before any work is done, with a message that says what to do.
inline void check_model_name(const std::string& name, const std::string& flag = "--model") {
  if (name == "tiny") return;
  if (name == "distilgpt2" && !fs::exists(model_dir(name) / "config.json"))
    throw Error("weights/distilgpt2 is missing: fetch the real weights with `tools/fetch_weights.sh distilgpt2` "
                "(needs the Hugging Face hub), or use " + flag + " tiny");
  cli::check_model_dir(model_dir(name), flag);
}

// The tokenizer that belongs to the model: --tokenizer if given, else the
// model directory's own tokenizer.json (weights/distilgpt2, a converted
// SmolLM2, a finetuned run's final/); the shared GPT-2 tokenizer only for tiny,
// which is GPT-2 with GPT-2's vocabulary.
inline fs::path find_tokenizer(const std::string& path, const std::string& model = "tiny") {
  if (!path.empty()) return path;
  if (model != "tiny") return cli::model_tokenizer(path, model_dir(model));
  const std::string rel = "tokenizers/gpt2/tokenizer.json";
  auto found = find_data_file(rel);
  GALVANI_CHECK(found, data_file_missing(rel), ", or pass --tokenizer");
  return *found;
}

inline Dataset load_dataset(const fs::path& csv, const Tokenizer& tok, uint64_t seed = 42, double test_size = 0.2,
                            bool half = false) {
  Dataset d;
  d.df = read_text_csv(csv, "text", &d.dropped);
  if (d.dropped.total() > 0)
    std::printf("warning: dropped %lld missing and %lld blank rows from %s\n", (long long)d.dropped.missing,
                (long long)d.dropped.blank, csv.string().c_str());
  if (half) d.df = d.df.head(d.df.rows() / 2);  // the course's CPU run: df[:len(df)//2]
  d.split = train_test_split(d.df, test_size, seed);
  GALVANI_CHECK(tok.eos_id(), "the tokenizer names no EOS token; the collator pads with EOS");
  d.eos = *tok.eos_id();
  Encoder encode = [&](std::string_view s) { return tok.encode(s, /*add_special_tokens=*/true).ids; };
  d.train = tokenize(d.split.train.column("text"), encode);
  d.test = tokenize(d.split.test.column("text"), encode);
  return d;
}

// ------------------------------------------------------------------ step 5: model and training

// "tiny": GPT-2's architecture at the size of shared/bench's `tiny` config —
// small enough to train from scratch on two cores in minutes.
inline GPT2Config tiny_config() {
  GPT2Config c;
  c.vocab_size = 50257;
  c.n_positions = 256;
  c.n_embd = 128;
  c.n_layer = 2;
  c.n_head = 4;
  return c;
}

// `name` is "tiny" (random init), "distilgpt2" (weights/distilgpt2) or a model directory.
// `dtype`: the weights' storage, f32 or bf16 (computed in f32 either way; --dtype bfloat16).
inline std::unique_ptr<CausalLM> load_model(const std::string& name, uint64_t seed = 0, DType dtype = DType::f32) {
  if (name == "tiny") {
    BuildOptions opts{seed};
    opts.dtype = dtype;
    return std::make_unique<GPT2LMHeadModel>(tiny_config(), opts);
  }
  check_model_name(name);
  return load_causal_lm(model_dir(name), dtype);
}

// The generation settings for a --model value: its generation_config.json (tiny: what
// its config implies), then the flags.
inline GenerationOptions generation_for(const std::string& name, const CausalLM& model, const cli::GenerationFlags& f) {
  return name == "tiny" ? cli::resolve(f, model) : cli::resolve(f, model_dir(name));
}

// ------------------------------------------------------------------ steps 3–4: 4 bits and LoRA

// --method: what trains.
//   full    every weight (the course's CPU run, DistilGPT-2)
//   lora    LoRA adapters over the float model; the base is frozen
//   qlora   step 3 + step 4, the course's GPU recipe: the base quantized to NF4 with double
//           quantization (BitsAndBytesConfig::qlora()), frozen, LoRA adapters over it
// and the course's LoraConfig(r=32, lora_alpha=64, lora_dropout=0.05, task_type="CAUSAL_LM"),
// target_modules peft's default for the model type (q_proj, v_proj; GPT-2: c_attn).
struct MethodFlags {
  std::string method = "full";
  int64_t r = 32;
  double alpha = 64, dropout = 0.05;
  std::vector<std::string> target_modules;  // empty: peft's default
  bool rslora = false;
  bool gradient_checkpointing = true;  // qlora: prepare_model_for_kbit_training's default

  void add_to(CLI::App& app) {
    app.add_option("--method", method, "full (every weight trains), lora (adapters over the float model) or qlora "
                                       "(adapters over an NF4 4-bit base: steps 3 and 4)")
        ->capture_default_str()
        ->check(CLI::IsMember({"full", "lora", "qlora"}));
    app.add_option("--lora-r", r, "LoRA rank r (course: 32)")->capture_default_str()->check(cli::kPositive);
    app.add_option("--lora-alpha", alpha, "lora_alpha; scaling = alpha / r (course: 64)")
        ->capture_default_str()
        ->check(cli::kPositive);
    app.add_option("--lora-dropout", dropout, "dropout on the LoRA input (course: 0.05)")
        ->capture_default_str()
        ->check(CLI::Range(0.0, 0.99));
    app.add_option("--target-modules", target_modules,
                   "module names to adapt (peft's target_modules: names like q_proj v_proj, or all-linear); "
                   "default: peft's for the model type");
    app.add_flag("--rslora", rslora, "rank-stabilised LoRA: scaling = alpha / sqrt(r)");
    app.add_flag("!--no-gradient-checkpointing", gradient_checkpointing,
                 "qlora: do not recompute each decoder layer in backward (faster, more memory; "
                 "prepare_model_for_kbit_training(use_gradient_checkpointing=False))");
  }
  bool uses_adapter() const { return method != "full"; }
  bool load_in_4bit() const { return method == "qlora"; }
  LoraConfig lora_config(const std::string& base) const {
    LoraConfig c;
    c.r = r;
    c.lora_alpha = alpha;
    c.lora_dropout = dropout;
    c.use_rslora = rslora;
    if (target_modules.size() == 1 && target_modules[0] == "all-linear") c.target_modules = TargetModules::all_linear();
    else if (!target_modules.empty()) c.target_modules = TargetModules::names(target_modules);
    if (base != "tiny") c.base_model_name_or_path = model_dir(base).string();
    return c;
  }
};

// The model --model names, 4-bit when `load_in_4bit`: a float checkpoint is quantized as it
// loads (from_pretrained(quantization_config=BitsAndBytesConfig(...)) — peak memory the 4-bit
// model plus one float tensor); tiny is built at random from `seed` and then quantized.
inline std::unique_ptr<CausalLM> load_model(const std::string& name, uint64_t seed, bool load_in_4bit) {
  if (!load_in_4bit) return load_model(name, seed);
  if (name == "tiny") {
    auto m = load_model(name, seed);
    quantize_model(*m, BitsAndBytesConfig::qlora());
    m->quantization_config = BitsAndBytesConfig::qlora();
    return m;
  }
  check_model_name(name);
  LoadCausalLMOptions lo;
  lo.quantization_config = BitsAndBytesConfig::qlora();
  return load_causal_lm(model_dir(name), lo);
}

// Step 4 on a loaded model: for a 4-bit one peft's prepare_model_for_kbit_training (frozen,
// float parameters f32, gradient checkpointing), then LoRA adapters where `f` says, every
// other weight frozen (get_peft_model), and peft's trainable-parameters line printed.
// Returns the config as applied.
inline LoraConfig add_adapters(CausalLM& model, const MethodFlags& f, const std::string& base) {
  if (is_loaded_in_kbit(model)) prepare_model_for_kbit_training(model, f.gradient_checkpointing);
  LoraConfig c = f.lora_config(base);
  const std::vector<std::string> wrapped = get_peft_model(model, c);
  std::printf("LoRA r=%lld alpha=%g dropout=%g on %zu modules (", (long long)c.r, c.lora_alpha, c.lora_dropout,
              wrapped.size());
  std::set<std::string> kinds;
  for (const std::string& w : wrapped) kinds.insert(w.substr(w.rfind('.') + 1));
  for (auto it = kinds.begin(); it != kinds.end(); ++it) std::printf("%s%s", it == kinds.begin() ? "" : ", ", it->c_str());
  std::printf(")\n");
  print_trainable_parameters(model);
  return c;
}

// What a run saves (checkpoints and final/): the whole model, or — for lora/qlora — the peft
// adapter, as the Trainer saves a PeftModel. `lora` and `so` are read when it is called.
inline Trainer::SaveFn run_saver(const MethodFlags& f, const LoraConfig& lora, const io::SavePretrainedOptions& so) {
  return [&f, &lora, &so](const CausalLM& m, const fs::path& d) {
    if (f.uses_adapter()) save_adapter(m, lora, d);
    else save_causal_lm(m, d, so);
  };
}

// The float model a LoRA run ends with, for anyone without peft: every adapter merged into
// its (dequantized) base weight, every other 4-bit layer dequantized, saved as a plain
// Hugging Face directory (peft's merge_and_unload + transformers' dequantize()).
inline void save_merged(CausalLM& model, const fs::path& dir, const io::SavePretrainedOptions& so) {
  merge_and_unload(model, dequantize_linear);
  dequantize_model(model);
  model.quantization_config.reset();
  save_causal_lm(model, dir, so);
}

// The course's TrainingArguments for DistilGPT-2 (full) and for its QLoRA run
// (optim="paged_adamw_8bit", warmup_steps=2), and settings that let the from-scratch
// tiny model learn in minutes (a random model needs a far larger learning rate than a
// pretrained one being nudged).
inline TrainingArguments training_defaults(const std::string& model, const std::string& method = "full") {
  TrainingArguments a;  // course: warmup 200, lr 2e-5, batch 2, 2 epochs, logging 1, save 200
  a.save_total_limit = 2;  // the programs keep two checkpoints (distilgpt2's with AdamW's state: ~1 GB each)
  if (method != "full") {
    a.optim = "paged_adamw_8bit";
    a.warmup_steps = 2;
  }
  if (model == "tiny") {
    a.learning_rate = 2e-3;
    a.warmup_steps = 30;
    a.per_device_train_batch_size = 8;
    a.num_train_epochs = 10;
    a.save_steps = 0;
  }
  return a;
}

// The training flags every program that trains shares. Unset flags keep
// training_defaults(model); set ones override it.
struct TrainingFlags {
  double epochs = 0, lr = 0;
  int64_t batch = 0, warmup = -1, max_steps = -1;
  std::string on_nonfinite;
  double ddp_bucket_cap_mb = 0;
  bool ddp_overlap = false;
  bool bf16 = false, fp16 = false;

  // A value that is given must make sense (--batch-size 0 or --lr nan is an error, not the default).
  void add_to(CLI::App& app) {
    app.add_option("--epochs,--num-train-epochs", epochs, "num_train_epochs (course: 2; tiny: 10)")->check(cli::kPositive);
    app.add_option("--lr,--learning-rate", lr, "learning_rate (course: 2e-5; tiny: 2e-3)")->check(cli::kPositive);
    app.add_option("--batch-size,--per-device-train-batch-size", batch, "per_device_train_batch_size (course: 2; tiny: 8)")->check(cli::kPositive);
    app.add_option("--warmup,--warmup-steps", warmup, "warmup_steps (course: 200; tiny: 30)")->check(cli::kNonNegative);
    app.add_option("--max-steps", max_steps, "stop after this many updates (overrides epochs)")->check(cli::kPositive);
    app.add_option("--on-nonfinite", on_nonfinite,
                   "a NaN/Inf loss or gradient: stop (default: an error naming the update and tensor) or skip the update")
        ->check(CLI::IsMember({"stop", "skip"}));
    app.add_option("--ddp-bucket-cap-mb", ddp_bucket_cap_mb,
                   "under mpirun: MB of f32 gradients per all-reduce (HF's ddp_bucket_cap_mb; default 25)")
        ->check(cli::kPositive);
    app.add_flag("--ddp-overlap", ddp_overlap,
                 "under mpirun: all-reduce gradient buckets while backward runs (torch DDP's overlap). Off by default: "
                 "all after backward was faster on cores with none spare (docs/distributed.md)");
    CLI::Option* b = app.add_flag("--bf16", bf16,
                                  "mixed precision (HF's bf16=True): linear, attention and 4-bit products in bf16 with f32 "
                                  "sums; weights, gradients and optimizer state f32 (docs/mixed-precision.md)");
    app.add_flag("--fp16", fp16,
                 "mixed precision (HF's fp16=True, the course's QLoRA setting): products in f16 with dynamic loss "
                 "scaling (torch's GradScaler); updates whose gradients overflow are skipped (docs/mixed-precision.md)")
        ->excludes(b);
  }
  void apply(TrainingArguments& a) const {
    if (epochs > 0) a.num_train_epochs = epochs;
    if (lr > 0) a.learning_rate = lr;
    if (batch > 0) a.per_device_train_batch_size = batch;
    if (warmup >= 0) a.warmup_steps = warmup;
    if (max_steps > 0) a.max_steps = max_steps;
    if (!on_nonfinite.empty()) a.on_nonfinite = on_nonfinite;
    if (ddp_bucket_cap_mb > 0) a.ddp_bucket_cap_mb = ddp_bucket_cap_mb;
    if (ddp_overlap) a.ddp_overlap = true;
    if (bf16) a.bf16 = true;
    if (fp16) a.fp16 = true;
  }
};

// ------------------------------------------------------------------ step 6: evaluation

// The sampling settings of the report's second generation: a seeded sample with a repetition
// penalty shows what the model has learnt without greedy decoding's loops. The defaults are
// the common "creative" settings for a small model; frankenstein sets them with --sample-*.
struct SampleSettings {
  double temperature = 0.8, top_p = 0.95, repetition_penalty = 1.3;
  int64_t top_k = 50;
  uint64_t seed = 42;

  void add_to(CLI::App& app) {
    const char* group = "report's sampled generation";
    app.add_option("--sample-temperature", temperature, "temperature of the report's sampled generation")
        ->capture_default_str()->check(cli::kPositive)->group(group);
    app.add_option("--sample-top-k", top_k, "top-k of the sampled generation, 0: all")
        ->capture_default_str()->check(cli::kNonNegative)->group(group);
    app.add_option("--sample-top-p", top_p, "top-p (nucleus mass) of the sampled generation, 1: off")
        ->capture_default_str()->check(cli::kPositive)->check(CLI::Range(0.0, 1.0))->group(group);
    app.add_option("--sample-repetition-penalty", repetition_penalty,
                   "Hugging Face repetition penalty of the sampled generation, 1: off")
        ->capture_default_str()->check(cli::kPositive)->group(group);
    app.add_option("--sample-seed", seed, "seed of the sampled generation (the same for base and finetuned)")
        ->capture_default_str()->group(group);
  }
  std::string describe() const {
    char buf[160];
    std::snprintf(buf, sizeof buf, "temperature %g, top-k %lld, top-p %g, repetition penalty %g, seed %llu", temperature,
                  (long long)top_k, top_p, repetition_penalty, (unsigned long long)seed);
    return buf;
  }
  nlohmann::json to_json() const {
    return {{"do_sample", true}, {"temperature", temperature}, {"top_k", top_k}, {"top_p", top_p},
            {"repetition_penalty", repetition_penalty}, {"seed", seed}};
  }
};

struct Evaluation {
  PerplexityResult ppl;
  std::vector<int64_t> generated;  // new token ids, greedy (the course's generate_text)
  std::string text;                // decoded, special tokens skipped
  std::string sampled;             // decoded, sampled with `sample`
  SampleSettings sample;
  double seconds = 0;
};

// The greedy generation's options (the model's, the flags over them) with `s` laid over them.
inline GenerationOptions sampled_options(const GenerationOptions& greedy, const SampleSettings& s = {}) {
  GenerationOptions o = greedy;
  o.do_sample = true;
  o.temperature = s.temperature;
  o.top_k = s.top_k;
  o.top_p = s.top_p;
  o.repetition_penalty = s.repetition_penalty;
  o.seed = s.seed;
  return o;
}

// `gen`: the model's generation defaults with the flags over them (generation_for).
inline Evaluation evaluate(CausalLM& model, const Tokenizer& tok, const TokenizedDataset& test,
                           const GenerationOptions& gen, const std::string& prompt = kPrompt,
                           const SampleSettings& sample = {}) {
  auto t0 = std::chrono::steady_clock::now();
  Evaluation e;
  e.sample = sample;
  e.ppl = perplexity(model, test.rows);
  std::vector<int32_t> ids = tok.encode(prompt, true).ids;
  cli::warn_context_limit(model, int64_t(ids.size()), gen);
  auto decode = [&](const std::vector<int64_t>& new_ids) {
    return tok.decode(std::vector<int32_t>(new_ids.begin(), new_ids.end()), /*skip_special_tokens=*/true);
  };
  e.generated = generate(model, ids, gen);
  e.text = decode(e.generated);
  e.sampled = decode(generate(model, ids, sampled_options(gen, sample)));
  e.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return e;
}

inline nlohmann::json ppl_json(const PerplexityResult& p) {
  return {{"row_mean", p.row_mean_ppl}, {"corpus", p.corpus_ppl}, {"rows", p.rows},
          {"predicted_tokens", p.predicted_tokens}, {"truncated_rows", p.truncated_rows},
          {"skipped_rows", p.skipped_rows}};
}

// Base vs finetuned, side by side, with the warning the course's students needed.
inline std::string comparison_report(const Evaluation& base, const Evaluation& tuned, double unigram,
                                     const std::string& prompt = kPrompt) {
  std::ostringstream md;
  char buf[512];
  md << "## Perplexity on the test split\n\n| model | row-mean (course) | corpus |\n|---|---:|---:|\n";
  std::snprintf(buf, sizeof buf, "| base | %.2f | %.2f |\n| finetuned | %.2f | %.2f |\n| unigram baseline | | %.2f |\n\n",
                base.ppl.row_mean_ppl, base.ppl.corpus_ppl, tuned.ppl.row_mean_ppl, tuned.ppl.corpus_ppl, unigram);
  md << buf;
  md << "Row-mean is the course's `calc_perplexity` (the mean of exp(mean NLL) over rows); corpus is "
        "exp(total NLL / predicted tokens). The unigram baseline predicts every test token from the train "
        "split's token frequencies (add-one smoothed).\n\n";
  if (tuned.ppl.truncated_rows)
    md << "Note: " << tuned.ppl.truncated_rows << " test rows were longer than the context and were truncated.\n\n";
  if (base.ppl.corpus_ppl == tuned.ppl.corpus_ppl && base.generated == tuned.generated)
    md << "**Warning: base and finetuned models give identical numbers and text.** The finetuned weights were "
          "probably not applied (a common mistake: evaluating the model object from before training, or loading "
          "the base checkpoint twice).\n\n";
  md << "## Generation (greedy, prompt \"" << prompt << "\")\n\n| base | finetuned |\n|---|---|\n";
  auto cell = [](std::string s) {
    std::string o;
    for (char c : s) o += c == '\n' ? std::string("<br>") : c == '|' ? std::string("\\|") : std::string(1, c);
    return o;
  };
  md << "| " << cell(prompt + base.text) << " | " << cell(prompt + tuned.text) << " |\n\n";
  md << "## Generation (sampled: " << tuned.sample.describe() << ")\n\n| base | finetuned |\n|---|---|\n";
  md << "| " << cell(prompt + base.sampled) << " | " << cell(prompt + tuned.sampled) << " |\n\n";
  md << "Greedy decoding is what the course used; a small model under greedy decoding tends to loop, and "
        "a model that has seen the novel's curly quotes may emit the first byte of one (shown as �, as "
        "Hugging Face decodes it). The sample shows the same model without those loops.\n";
  return md.str();
}

inline void write_text(const fs::path& path, const std::string& text) {
  if (path.has_parent_path()) fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  GALVANI_CHECK(out, "cannot write ", path.string());
  out << text;
}

}  // namespace course
