// models/auto.hpp — AutoModelForCausalLM: a model directory in, the right model out.
//
// load_causal_lm() reads config.json, builds the architecture it names (gpt2;
// mistral and llama once models/mistral.hpp exists), and copies the weights in
// by name. save_causal_lm() writes a directory transformers' from_pretrained
// reads: config.json, model.safetensors (or shards), generation_config.json
// and, if given, the tokenizer files.
#pragma once
#include <memory>

#include "../io/pretrained.hpp"
#include "gpt2.hpp"
#if __has_include("mistral.hpp")
#include "mistral.hpp"
#define GALVANI_HAS_MISTRAL 1
#endif

namespace galvani {

// Build a randomly initialised model from a config (weights are loaded over it).
inline std::unique_ptr<CausalLM> make_causal_lm(const io::ModelConfig& config, uint64_t seed = 0) {
  if (auto* g = std::get_if<GPT2Config>(&config)) return std::make_unique<GPT2LMHeadModel>(*g, seed);
#ifdef GALVANI_HAS_MISTRAL
  if (auto* m = std::get_if<MistralConfig>(&config)) return std::make_unique<MistralForCausalLM>(*m, seed);
#endif
  throw Error("make_causal_lm: model_type \"" + io::model_type_of(config) + "\" is not built into this galvani");
}

// Copy `weights` (canonical Hugging Face names) into `model`. A tied GPT-2's
// lm_head.weight, if present, must equal wte (it is the same tensor).
inline void load_weights(CausalLM& model, const io::StateDict& weights, bool strict = true) {
  model.load_parameters([&](const std::string& name) -> const Tensor* {
    const io::StateEntry* e = weights.find(name);
    if (!e) return nullptr;
    GALVANI_CHECK(!e->is_raw(), "load: '", name, "' has dtype ", e->raw_dtype, ", which cannot be loaded as a weight");
    return &e->tensor;
  }, strict);
}

inline std::unique_ptr<CausalLM> load_causal_lm(const std::filesystem::path& dir) {
  io::Pretrained p = io::from_pretrained(dir);
  auto model = make_causal_lm(p.config);
  load_weights(*model, p.weights);
  return model;
}

inline std::vector<std::filesystem::path> save_causal_lm(const CausalLM& model, const std::filesystem::path& dir,
                                                         const io::SavePretrainedOptions& opts = {}) {
  io::StateDict sd;
  for (auto& [name, t] : model.named_parameters()) sd.insert(name, t.is_contiguous() ? t : t.contiguous());
  return io::save_pretrained(dir, io::parse_model_config(model.config_json()), sd, opts);
}

}  // namespace galvani
