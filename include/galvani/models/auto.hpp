// models/auto.hpp — AutoModelForCausalLM: a model directory in, the right model out.
//
// load_causal_lm() reads config.json, builds the architecture it names (gpt2, mistral,
// llama) with uninitialised weights, and loads the checkpoint into it through the one load
// path (models/load.hpp: by canonical name, one tensor at a time, each module reading its
// own tensors), so peak memory is the model plus about one tensor. save_causal_lm() writes
// a directory transformers' from_pretrained reads: config.json, model.safetensors (or
// shards), generation_config.json and, if given, the tokenizer files.
#pragma once
#include <memory>

#include "../io/pretrained.hpp"
#include "gpt2.hpp"
#include "load.hpp"
#include "mistral.hpp"

namespace galvani {

// Build a model from a config: randomly initialised by default (opts.init = empty leaves
// the weights to a load).
inline std::unique_ptr<CausalLM> make_causal_lm(const io::ModelConfig& config, const BuildOptions& opts) {
  if (auto* g = std::get_if<GPT2Config>(&config)) return std::make_unique<GPT2LMHeadModel>(*g, opts);
  if (auto* m = std::get_if<MistralConfig>(&config)) return std::make_unique<MistralForCausalLM>(*m, opts);
  throw Error("make_causal_lm: model_type \"" + io::model_type_of(config) + "\" is not built into this galvani");
}
inline std::unique_ptr<CausalLM> make_causal_lm(const io::ModelConfig& config, uint64_t seed = 0) {
  return make_causal_lm(config, BuildOptions{seed});
}

// A model directory (config.json + model.safetensors or shards with their index) → the model,
// built uninitialised in `dtype` and filled by load_checkpoint with canonical names
// (io::canonical_key: a bare GPT2Model's names gain "transformer.", the attn.bias mask
// buffers and rotary inv_freq are skipped). Every tensor the model expects must be in the
// checkpoint, with its shape; the errors name the tensor (and both shapes). Tensors the model
// has no place for are ignored. A tied lm_head loads from either name; when both are present
// the embedding's values win, as when transformers re-ties the head on load.
inline std::unique_ptr<CausalLM> load_causal_lm(const std::filesystem::path& dir, DType dtype = DType::f32) {
  namespace fs = std::filesystem;
  GALVANI_CHECK(fs::is_directory(dir), dir.string(), ": not a directory (load_causal_lm wants a model directory)");
  GALVANI_CHECK(fs::exists(dir / "config.json"), dir.string(), ": no config.json");
  const io::ModelConfig config = io::load_model_config(dir / "config.json");
  BuildOptions opts;
  opts.init = ModuleInit::Mode::empty;
  opts.dtype = dtype;
  auto model = make_causal_lm(config, opts);
  load_checkpoint(*model, dir, io::model_type_of(config));
  return model;
}

// model.state_dict() (tied weights under both names; save_pretrained keeps one) → a model
// directory. Views are made contiguous for the writer.
inline std::vector<std::filesystem::path> save_causal_lm(const CausalLM& model, const std::filesystem::path& dir,
                                                         const io::SavePretrainedOptions& opts = {}) {
  io::StateDict sd;
  for (const auto& e : model.state_dict()) {
    if (e.is_raw()) sd.insert_raw(e.name, e.raw_dtype, e.raw_shape, e.tensor);
    else sd.insert(e.name, e.tensor.is_contiguous() ? e.tensor : e.tensor.contiguous());
  }
  return io::save_pretrained(dir, io::parse_model_config(model.config_json()), sd, opts);
}

}  // namespace galvani
