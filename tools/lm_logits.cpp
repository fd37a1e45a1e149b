// lm_logits — galvani's logits for a model directory, as JSON, for checking
// against another runtime (tools/check_logits.py compares them with transformers).
//
//   build/lm_logits --model weights/smollm2-135m-instruct --prompt "The capital of France is" > out.json
//   build/lm_logits --model BASE --load-in-4bit --adapter runs/qlora/final --prompt "…"   # base + peft adapter
// Output: {"model": DIR, "prompts": [{"text", "ids", "logits": [last position's V floats],
//          "argmax": [per position]}]}
#include <CLI/CLI.hpp>

#include <iostream>
#include <galvani/galvani.hpp>
#include <galvani/models/auto.hpp>
#include <galvani/models/peft.hpp>
#include <galvani/tokenizer/tokenizer.hpp>

#include "../examples/cli.hpp"

using namespace galvani;

int main(int argc, char** argv) {
  CLI::App app{"Print a model's logits for prompts as JSON (last position in full, argmax at every position)"};
  std::string model_dir, tok_path;
  std::vector<std::string> prompts;
  std::string adapter, dtype = "float32";
  bool special = true, load_in_4bit = false;
  app.add_option("--model", model_dir, "a Hugging Face model directory (config.json + safetensors)")->required();
  app.add_option("--tokenizer", tok_path, "tokenizer.json (default: the model directory's)");
  app.add_option("--prompt", prompts, "prompt text (repeatable)")->required();
  app.add_option("--adapter", adapter, "a peft adapter directory applied over --model (PeftModel.from_pretrained)");
  app.add_flag("--load-in-4bit", load_in_4bit, "quantize --model to NF4 as it loads (BitsAndBytesConfig: nf4, double quant)");
  cli::add_dtype_option(app, dtype);
  app.add_option("--add-special-tokens", special, "let the tokenizer add BOS etc. (true/false)")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    cli::check_dtype_with_4bit(dtype, load_in_4bit);
    cli::check_model_dir(model_dir);  // a typo in --model names the folder, not tokenizer.json
    tok_path = cli::model_tokenizer(tok_path, model_dir).string();
    Tokenizer tok = Tokenizer::from_file(tok_path);
    LoadCausalLMOptions lo;
    lo.dtype = cli::parse_dtype(dtype);
    if (load_in_4bit) lo.quantization_config = BitsAndBytesConfig::qlora();
    auto model = load_causal_lm(model_dir, lo);
    if (!adapter.empty()) load_adapter(*model, adapter);
    cli::check_vocab_fits(tok, tok_path, model->vocab_size(), model_dir);
    model->eval();
    NoGradGuard no_grad;
    nlohmann::json out = {{"model", model_dir}, {"prompts", nlohmann::json::array()}};
    if (!adapter.empty()) out["adapter"] = adapter;
    if (lo.dtype != DType::f32) out["dtype"] = dtype_name(lo.dtype);
    for (const std::string& p : prompts) {
      std::vector<int32_t> ids32 = tok.encode(p, special).ids;
      GALVANI_CHECK(!ids32.empty(), "lm_logits: the prompt \"", p, "\" has no tokens");
      std::vector<int64_t> ids(ids32.begin(), ids32.end());
      Tensor logits = model->forward(Tensor::from_vector(ids, {1, int64_t(ids.size())}));  // (1, T, V)
      const int64_t T = logits.size(1), V = logits.size(2);
      std::vector<float> all = logits.to_vector<float>();
      std::vector<int64_t> argmax;
      for (int64_t t = 0; t < T; ++t)
        argmax.push_back(int64_t(std::max_element(all.begin() + t * V, all.begin() + (t + 1) * V) - (all.begin() + t * V)));
      out["prompts"].push_back({{"text", p}, {"ids", ids},
                                {"logits", std::vector<float>(all.end() - V, all.end())}, {"argmax", argmax}});
    }
    std::cout << out.dump() << "\n";
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
