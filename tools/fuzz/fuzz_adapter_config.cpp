// fuzz_adapter_config — libFuzzer target for peft's adapter_config.json
// (lora_config_from_json, models/peft.hpp) and the target_modules it holds
// (TargetModules: a list of names, "all-linear", or a regex that must match whole names).
//
// Each input is one JSON text. An accepted config's target_modules is matched against the
// module names of GPT-2 and Mistral, as get_peft_model would match them, and the config is
// written back (lora_config_to_json). A galvani::Error is the expected answer to a bad file;
// any other exception (nlohmann's, RE2's), crash, hang or sanitizer report is a bug.
//
// Build and run: tools/fuzz/run_fuzz.sh [seconds]   (see tools/fuzz/CMakeLists.txt)
#include <galvani/models/peft.hpp>

#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace galvani;
  static const char* const kNames[] = {"transformer.h.0.attn.c_attn", "transformer.h.11.mlp.c_proj",
                                       "model.layers.0.self_attn.q_proj", "model.layers.31.mlp.down_proj",
                                       "lm_head"};
  fuzz::expect_error_or_value([&] {
    const io::json j = io::parse_json_strict(fuzz::as_text(data, size), "fuzz-input");
    const LoraConfig c = lora_config_from_json(j, "adapter_config.json");
    if (c.target_modules && c.target_modules->kind() != TargetModules::Kind::all_linear)
      for (const char* name : kNames) (void)c.target_modules->matches(name);
    (void)lora_config_to_json(c, {}).dump();
  });
  return 0;
}
