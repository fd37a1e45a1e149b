// models/auto.hpp — AutoModelForCausalLM: a model directory in, the right model out.
//
// load_causal_lm() reads config.json, builds the architecture it names (gpt2;
// mistral and llama once models/mistral.hpp exists), and streams the weights in
// by canonical name, one tensor at a time (models/load_streaming.hpp), so peak
// memory is the model plus about one tensor, not the model plus the checkpoint.
// save_causal_lm() writes a directory transformers' from_pretrained reads:
// config.json, model.safetensors (or shards), generation_config.json and, if
// given, the tokenizer files.
#pragma once
#include <memory>

#include "../io/pretrained.hpp"
#include "gpt2.hpp"
#include "load_streaming.hpp"
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

// A model directory (config.json + model.safetensors or shards with their index) → the model,
// built by make_causal_lm and filled by load_parameters_streaming with canonical names
// (io::canonical_key: a bare GPT2Model's names gain "transformer.", the attn.bias mask
// buffers and rotary inv_freq are skipped). Every parameter must be in the checkpoint, with
// its shape; the errors name the tensor (and both shapes). Tensors the model has no
// parameter for are ignored, among them a tied model's lm_head.weight: the head *is* the
// embedding, and transformers re-ties it on load the same way, so the embedding's values win.
inline std::unique_ptr<CausalLM> load_causal_lm(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  GALVANI_CHECK(fs::is_directory(dir), dir.string(), ": not a directory (load_causal_lm wants a model directory)");
  GALVANI_CHECK(fs::exists(dir / "config.json"), dir.string(), ": no config.json");
  const io::ModelConfig config = io::load_model_config(dir / "config.json");
  auto model = make_causal_lm(config);
  load_parameters_streaming(*model, dir, io::model_type_of(config));
  return model;
}

inline std::vector<std::filesystem::path> save_causal_lm(const CausalLM& model, const std::filesystem::path& dir,
                                                         const io::SavePretrainedOptions& opts = {}) {
  io::StateDict sd;
  for (auto& [name, t] : model.named_parameters()) sd.insert(name, t.is_contiguous() ? t : t.contiguous());
  return io::save_pretrained(dir, io::parse_model_config(model.config_json()), sd, opts);
}

}  // namespace galvani
