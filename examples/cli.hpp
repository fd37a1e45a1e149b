// examples/cli.hpp — what every program's command line shares: the generation flags
// (over the model's generation_config.json), the tokenizer that belongs to a model, and
// checks that reject a bad value instead of quietly replacing it (the flag validators are
// in cli_checks.hpp, which the programs without a model include alone).
#pragma once
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>

#include <CLI/CLI.hpp>

#include <galvani/core/paths.hpp>
#include <galvani/eval/generate.hpp>
#include <galvani/tokenizer/tokenizer.hpp>

#include "cli_checks.hpp"

namespace cli {

namespace fs = std::filesystem;

// The generation flags. A flag that is not given leaves the model's own default
// (generation_config.json, else config.json: eos ids, do_sample, temperature, …) alone;
// `call_max_new_tokens` is what the program passes to generate() when no flag says
// otherwise, as the course notebook passes max_new_tokens=100.
struct GenerationFlags {
  int64_t max_new_tokens = 0, max_length = 0, top_k = 0;
  bool sample = false, greedy = false;
  double temperature = 1, top_p = 1, repetition_penalty = 1;
  uint64_t seed = 0;
  std::vector<int64_t> eos;
  CLI::Option *o_max_new = nullptr, *o_max_len = nullptr, *o_top_k = nullptr, *o_temp = nullptr, *o_top_p = nullptr,
              *o_rep = nullptr, *o_seed = nullptr, *o_eos = nullptr;

  void add_to(CLI::App& app, int64_t call_max_new_tokens, const char* seed_flag = "--gen-seed") {
    max_new_tokens = call_max_new_tokens;
    o_max_new = app.add_option("--max-new-tokens", max_new_tokens, "tokens to generate after the prompt")
                    ->capture_default_str()
                    ->check(kNonNegative);
    o_max_len = app.add_option("--max-length", max_length, "prompt + new tokens (used when --max-new-tokens is not given)")
                    ->check(kPositive);
    auto* s = app.add_flag("--sample", sample, "sample instead of greedy decoding (default: generation_config.json's do_sample)");
    app.add_flag("--greedy", greedy, "greedy decoding even if generation_config.json says do_sample")->excludes(s);
    o_temp = app.add_option("--temperature", temperature, "sampling temperature (default: the model's)")->check(kPositive);
    o_top_k = app.add_option("--top-k", top_k, "keep the k most likely tokens, 0: all (default: the model's)")
                  ->check(kNonNegative);
    o_top_p = app.add_option("--top-p", top_p, "nucleus sampling mass, 1: off (default: the model's)")->check(kPositive);
    o_rep = app.add_option("--repetition-penalty", repetition_penalty, "HF repetition penalty, 1: off (default: the model's)")
                ->check(kPositive);
    o_eos = app.add_option("--eos", eos, "token ids that end generation (default: generation_config.json's eos_token_id)");
    if (seed_flag) o_seed = app.add_option(seed_flag, seed, "seed of the sampler")->capture_default_str();
  }

  // The explicit values, to lay over the model's generation defaults. max_new_tokens counts
  // as explicit unless --max-length was given instead.
  galvani::GenerationOverrides overrides() const {
    galvani::GenerationOverrides o;
    if (o_max_len->count() && !o_max_new->count()) o.max_length = max_length;
    else o.max_new_tokens = max_new_tokens;
    if (sample) o.do_sample = true;
    if (greedy) o.do_sample = false;
    if (o_temp->count()) o.temperature = temperature;
    if (o_top_k->count()) o.top_k = top_k;
    if (o_top_p->count()) o.top_p = top_p;
    if (o_rep->count()) o.repetition_penalty = repetition_penalty;
    if (o_eos->count()) o.eos_token_id = eos;
    o.seed = seed;
    return o;
  }
};

// The options a program generates with: the model directory's generation_config.json (or,
// for a model built in memory, what its config implies), then the flags.
inline galvani::GenerationOptions resolve(const GenerationFlags& f, const fs::path& model_dir) {
  return galvani::generation_options(model_dir, f.overrides());
}
inline galvani::GenerationOptions resolve(const GenerationFlags& f, const galvani::CausalLM& model) {
  return galvani::generation_options(galvani::generation_config_of(model), f.overrides());
}

// Say so when the model's context will end generation before the budget does.
inline void warn_context_limit(const galvani::CausalLM& model, int64_t prompt_len, const galvani::GenerationOptions& opt) {
  const std::string note = galvani::context_limit_note(model, prompt_len, opt);
  if (!note.empty()) std::fprintf(stderr, "note: %s\n", note.c_str());
}

// --dtype: the dtype a loaded model's weights are stored in, by torch's names (torch_dtype in
// config.json) or galvani's short ones. float32 is the default; bfloat16 halves the memory and the
// bytes a decoding step reads, and the model still computes in float32 (weight-only: the result is
// the float32 model's over the bf16-rounded weights, ops/matmul.hpp). Training needs float32
// weights (--bf16 trains with float32 weights under bf16 autocast).
inline CLI::Option* add_dtype_option(CLI::App& app, std::string& dtype) {
  return app
      .add_option("--dtype", dtype,
                  "dtype of the loaded weights: float32, or bfloat16 (bf16) to store them in 2 bytes and read half the "
                  "bytes per generated token (computation stays in float32)")
      ->check(CLI::IsMember({"float32", "f32", "bfloat16", "bf16"}))
      ->capture_default_str();
}
inline galvani::DType parse_dtype(const std::string& dtype) {
  return dtype == "bfloat16" || dtype == "bf16" ? galvani::DType::bf16 : galvani::DType::f32;
}
// --dtype bfloat16 with --load-in-4bit: the 4-bit model keeps its other weights (embeddings, norms,
// biases) in float32, as the course's QLoRA base does; a bf16 bias would not fit the 4-bit layers'
// f32 computation. An error that says to pass one of the two.
inline void check_dtype_with_4bit(const std::string& dtype, bool load_in_4bit) {
  GALVANI_CHECK(!load_in_4bit || parse_dtype(dtype) == galvani::DType::f32, "--dtype ", dtype,
                " with --load-in-4bit: the 4-bit model keeps its other weights in float32; pass one of the two");
}

// A model directory given by the user: it must exist and hold config.json. The message
// says what to do, so a typo fails before any work is done.
inline void check_model_dir(const fs::path& dir, const std::string& flag = "--model") {
  GALVANI_CHECK(fs::is_directory(dir), flag, " ", dir.string(), ": no such folder; pass a Hugging Face model directory ",
                "(config.json + model.safetensors)");
  GALVANI_CHECK(fs::exists(dir / "config.json"), flag, " ", dir.string(),
                ": this folder has no config.json, so it is not a model directory");
}

// The tokenizer that belongs to a model directory: --tokenizer if given, else the folder's
// own tokenizer.json. Never a tokenizer of another model by default.
inline fs::path model_tokenizer(const std::string& tok_flag, const fs::path& model_dir) {
  if (!tok_flag.empty()) return tok_flag;
  GALVANI_CHECK(fs::exists(model_dir / "tokenizer.json"), model_dir.string(),
                " has no tokenizer.json; pass the model's tokenizer with --tokenizer");
  return model_dir / "tokenizer.json";
}

// A tokenizer with more ids than the model has embedding rows would index past the
// embedding: an error naming both sizes. (Fewer is fine: real models pad their embedding.)
inline void check_vocab_fits(const galvani::Tokenizer& tok, const fs::path& tok_path, int64_t model_rows,
                             const std::string& model_name) {
  GALVANI_CHECK(tok.vocab_size() <= model_rows, tok_path.string(), " has ", tok.vocab_size(), " tokens, but ",
                model_name, " has ", model_rows, " embedding rows: this tokenizer does not belong to this model; ",
                "pass the model's own with --tokenizer");
}

}  // namespace cli
