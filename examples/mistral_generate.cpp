// Text generation with a Mistral: the course prompt, Mistral's own tokenizer, the KV cache.
//
// Without --model this builds a tiny *random* Mistral — Mistral-7B-v0.1's config.json
// (vocabulary, RoPE theta, sliding window, bos/eos) with the sizes shrunk — so the whole
// path runs in a second on a CPU: tokenize, prefill, decode token by token with the KV
// cache, detokenize. Its text is gibberish; the ids and timings are the point. With
// --model DIR (a Hugging Face model directory, e.g. one save_pretrained wrote) the weights
// stream in one tensor at a time (MistralForCausalLM::from_pretrained), the tokenizer is the
// directory's own tokenizer.json, and generation follows its generation_config.json (eos ids,
// sampling settings) under the flags.
//
//   build/mistral_generate
//   build/mistral_generate --prompt "It was on a dreary night" --max-new-tokens 40 --sample --seed 3
//   build/mistral_generate --model weights/my-mistral
//   build/mistral_generate --model weights/smollm2-135m-instruct --dtype bfloat16   # 2-byte weights
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <iostream>

#include <galvani/core/paths.hpp>
#include <galvani/eval/generate.hpp>
#include <galvani/io/config.hpp>
#include <galvani/models/auto.hpp>
#include <galvani/models/peft.hpp>
#include <galvani/models/quantize.hpp>
#include <galvani/models/mistral.hpp>
#include <galvani/tokenizer/tokenizer.hpp>

#include "cli.hpp"

using namespace galvani;
using Clock = std::chrono::steady_clock;

static double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

static void print_ids(const char* label, const std::vector<int64_t>& ids) {
  std::printf("%s (%zu):", label, ids.size());
  for (int64_t id : ids) std::printf(" %lld", static_cast<long long>(id));
  std::printf("\n");
}

int main(int argc, char** argv) {
  CLI::App app{"Generate text with a Mistral (a tiny random one by default) and Mistral's tokenizer"};
  std::string prompt = "I'm afraid I've created a ", tokenizer_path, model_dir, adapter, dtype = "float32";
  bool load_in_4bit = false;
  int64_t layers = 2, hidden = 64, heads = 4, kv_heads = 2, intermediate = 128;
  uint64_t seed = 0;
  cli::GenerationFlags gen_flags;
  app.add_option("--prompt", prompt, "text to continue")->capture_default_str();
  app.add_option("--tokenizer", tokenizer_path,
                 "tokenizer.json (default: the --model directory's own; for the tiny model, "
                 "tokenizers/mistral/tokenizer.json in the shared data)");
  app.add_option("--model", model_dir, "a Mistral/Llama model directory (default: a tiny random Mistral)");
  app.add_option("--adapter", adapter, "a peft adapter directory applied over --model (PeftModel.from_pretrained)");
  app.add_flag("--load-in-4bit", load_in_4bit, "quantize --model to NF4 as it loads (BitsAndBytesConfig: nf4, double quant)");
  cli::add_dtype_option(app, dtype);
  app.add_option("--layers", layers, "tiny model: decoder layers")->capture_default_str();
  app.add_option("--hidden", hidden, "tiny model: hidden size")->capture_default_str();
  app.add_option("--heads", heads, "tiny model: query heads")->capture_default_str();
  app.add_option("--kv-heads", kv_heads, "tiny model: key/value heads (grouped-query attention)")->capture_default_str();
  app.add_option("--intermediate", intermediate, "tiny model: MLP width")->capture_default_str();
  app.add_option("--seed", seed, "tiny model's initialisation and the sampling seed")->capture_default_str();
  gen_flags.add_to(app, 20, /*seed_flag=*/nullptr);
  CLI11_PARSE(app, argc, argv);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // lines reach a pipe or a log file in order with stderr's
  gen_flags.seed = seed;

  try {
    cli::check_dtype_with_4bit(dtype, load_in_4bit);
    if (!model_dir.empty()) {
      cli::check_model_dir(model_dir);
      tokenizer_path = cli::model_tokenizer(tokenizer_path, model_dir).string();
    } else if (tokenizer_path.empty()) {
      auto found = find_data_file("tokenizers/mistral/tokenizer.json");
      if (!found) throw Error(data_file_missing("tokenizers/mistral/tokenizer.json"));
      tokenizer_path = found->string();
    }
    Tokenizer tok = Tokenizer::from_file(tokenizer_path);

    auto t0 = Clock::now();
    std::unique_ptr<MistralForCausalLM> model;
    if (!model_dir.empty()) {
      // load_causal_lm reads a 4-bit (bitsandbytes) directory too: its config.json's
      // quantization_config turns the linears into Linear4bit layers before the load.
      LoadCausalLMOptions lo;
      lo.dtype = cli::parse_dtype(dtype);
      if (load_in_4bit) lo.quantization_config = BitsAndBytesConfig::qlora();
      std::unique_ptr<CausalLM> loaded = load_causal_lm(model_dir, lo);
      GALVANI_CHECK(dynamic_cast<MistralForCausalLM*>(loaded.get()), model_dir, ": not a Mistral or Llama model");
      model.reset(static_cast<MistralForCausalLM*>(loaded.release()));
    } else {
      // Mistral-7B-v0.1's config.json when the shared data has it (else the class defaults,
      // which are the same numbers), shrunk to a toy.
      MistralConfig cfg = MistralConfig::defaults("mistral");
      if (auto cj = find_data_file("tokenizers/mistral/config.json"))
        cfg = std::get<MistralConfig>(io::load_model_config(*cj));
      cfg.num_hidden_layers = layers;
      cfg.hidden_size = hidden;
      cfg.num_attention_heads = heads;
      cfg.num_key_value_heads = kv_heads;
      cfg.intermediate_size = intermediate;
      cfg.head_dim_override.reset();
      cfg.validate("the tiny model's flags (--layers, --hidden, --heads, --kv-heads, --intermediate)");
      BuildOptions bo{seed};
      bo.dtype = cli::parse_dtype(dtype);
      model = std::make_unique<MistralForCausalLM>(cfg, bo);
      if (load_in_4bit) {
        quantize_model(*model, BitsAndBytesConfig::qlora());
        model->quantization_config = BitsAndBytesConfig::qlora();
      }
    }
    if (!adapter.empty()) {
      load_adapter(*model, adapter);
      std::printf("adapter: %s (%s)\n", adapter.c_str(), trainable_parameters_line(*model).c_str());
    }
    const MistralConfig& c = model->config;
    std::printf("model: %s%s, %lld layers, hidden %lld, %lld heads / %lld kv heads, vocab %lld, window %s, %.2f M params (%.2f s)\n",
                model_dir.empty() ? "tiny random " : "", c.is_llama() ? "Llama" : "Mistral",
                (long long)c.num_hidden_layers, (long long)c.hidden_size, (long long)c.num_attention_heads,
                (long long)c.num_key_value_heads, (long long)c.vocab_size,
                c.sliding_window ? std::to_string(*c.sliding_window).c_str() : "none",
                double(model->num_parameters()) / 1e6, seconds_since(t0));
    if (cli::parse_dtype(dtype) == DType::bf16)
      std::printf("weights: bfloat16, %.1f MB (computed in float32)\n", double(model->num_parameters()) * 2 / 1e6);
    cli::check_vocab_fits(tok, tokenizer_path, c.vocab_size, model_dir.empty() ? "the tiny model" : model_dir);
    const GenerationOptions gen = model_dir.empty() ? cli::resolve(gen_flags, *model) : cli::resolve(gen_flags, model_dir);

    // tokenizer(prompt): Mistral's post-processor puts <s> (bos, id 1) in front.
    std::vector<int32_t> ids32 = tok.encode(prompt, /*add_special_tokens=*/true).ids;
    std::vector<int64_t> ids(ids32.begin(), ids32.end());
    std::printf("prompt: \"%s\"\n", prompt.c_str());
    print_ids("prompt ids", ids);

    cli::warn_context_limit(*model, int64_t(ids.size()), gen);
    t0 = Clock::now();
    std::vector<int64_t> out = generate(*model, ids, gen);
    const double secs = seconds_since(t0);
    print_ids("generated ids", out);

    std::vector<int32_t> all(ids.begin(), ids.end());
    all.insert(all.end(), out.begin(), out.end());
    std::printf("text: \"%s\"\n", tok.decode(all, /*skip_special_tokens=*/true).c_str());
    std::printf("time: %.3f s for %zu tokens (prefill of %zu + decode), %.1f tokens/s\n", secs, out.size(), ids.size(),
                secs > 0 ? double(out.size()) / secs : 0.0);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mistral_generate: %s\n", e.what());
    return 1;
  }
  return 0;
}
