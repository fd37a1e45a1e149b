// fuzz_model_configs — libFuzzer target for the Hugging Face JSON configs of a model folder:
// config.json (io::parse_model_config, GPT-2 and Mistral/Llama; its "quantization_config" through
// BitsAndBytesConfig::from_json and its llm_int8_skip_modules patterns through
// should_convert_module, as a 4-bit load applies them), generation_config.json
// (io::GenerationConfig::from_json) and tokenizer_config.json (io::TokenizerConfig::from_json),
// after the strict JSON reader (io::parse_json_strict: UTF-8, duplicate keys, depth).
//
// Each input is one JSON text, given to every reader; an accepted config is also written back
// (config_to_json, to_json) so the writer sees what the reader let through. A galvani::Error
// is the expected answer to a bad file; any other exception, crash or sanitizer report is a bug.
//
// Build and run: tools/fuzz/run_fuzz.sh [seconds]   (see tools/fuzz/CMakeLists.txt)
#include <galvani/io/config.hpp>
#include <galvani/models/quantize.hpp>
#include <galvani/quant/bnb_config.hpp>

#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace galvani;
  using namespace galvani::io;
  fuzz::expect_error_or_value([&] {
    const json j = parse_json_strict(fuzz::as_text(data, size), "fuzz-input");
    fuzz::expect_error_or_value([&] {
      const ModelConfig c = parse_model_config(j, "config.json");
      (void)config_to_json(c).dump();
      (void)GenerationConfig::from_model_config(c);
    });
    fuzz::expect_error_or_value([&] { (void)GenerationConfig::from_json(j).to_json().dump(); });
    fuzz::expect_error_or_value([&] { (void)TokenizerConfig::from_json(j); });
    fuzz::expect_error_or_value([&] {
      TokenizerConfig t;
      t.merge(j, "special_tokens_map.json", false);
    });
    fuzz::expect_error_or_value([&] {
      const json* q = j.is_object() && j.contains("quantization_config") ? &j.at("quantization_config") : &j;
      const BitsAndBytesConfig b = BitsAndBytesConfig::from_json(*q);
      if (b.llm_int8_skip_modules)
        for (const char* name : {"lm_head", "model.layers.1.mlp.down_proj", "transformer.h.11.attn.c_attn"})
          (void)should_convert_module(name, *b.llm_int8_skip_modules);
    });
  });
  return 0;
}
