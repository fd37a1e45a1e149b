// models/auto.hpp — AutoModelForCausalLM: a model directory in, the right model out.
//
// load_causal_lm() reads config.json, builds the architecture it names (gpt2, mistral,
// llama) with uninitialised weights, and loads the checkpoint into it through the one load
// path (models/load.hpp: by canonical name, one tensor at a time, each module reading its
// own tensors), so peak memory is the model plus about one tensor. save_causal_lm() writes
// a directory transformers' from_pretrained reads: config.json, model.safetensors (or
// shards), generation_config.json and, if given, the tokenizer files.
//
// load_causal_lm() also takes a llama-family GGUF file (or a directory holding exactly one
// .gguf and no config.json): the config comes from its metadata and each tensor is
// dequantized, renamed and un-permuted as it is loaded (io/gguf_convert.hpp), one at a time.
#pragma once
#include <memory>

#include "../io/gguf_convert.hpp"
#include "../io/pretrained.hpp"
#include "gpt2.hpp"
#include "load.hpp"
#include "mistral.hpp"
#include "quantize.hpp"

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

// How load_causal_lm builds the model.
struct LoadCausalLMOptions {
  DType dtype = DType::f32;  // the float parameters' dtype
  // Quantize a float checkpoint on load, as from_pretrained(quantization_config=...) does.
  // A checkpoint whose config.json has a "quantization_config" is 4-bit already and loads as
  // such without this (transformers, too, lets the checkpoint's own config win).
  std::optional<BitsAndBytesConfig> quantization_config;
};

namespace detail {
// The file of a model directory that holds tensor `name` (for errors).
inline std::filesystem::path file_of_tensor(const std::filesystem::path& dir, const std::string& name) {
  const auto index = dir / io::kSafetensorsIndex;
  if (std::filesystem::exists(index)) {
    const io::ShardIndex ix = io::read_shard_index(index);
    if (auto it = ix.weight_map.find(name); it != ix.weight_map.end()) return dir / it->second;
    return index;
  }
  return dir / io::kSafetensorsWeights;
}
}  // namespace detail

// A model directory (config.json + model.safetensors or shards with their index) → the model,
// built uninitialised in `dtype` and filled by load_checkpoint with canonical names
// (io::canonical_key: a bare GPT2Model's names gain "transformer.", the attn.bias mask
// buffers and rotary inv_freq are skipped). Every tensor the model expects must be in the
// checkpoint, with its shape; the errors name the tensor (and both shapes). Tensors the model
// has no place for are ignored. A tied lm_head loads from either name; when both are present
// the embedding's values win, as when transformers re-ties the head on load.
//
// 4-bit: when config.json has a bitsandbytes "quantization_config" (or opts asks for one),
// the linears are replaced by empty Linear4bit layers before the load
// (models/quantize.hpp): each reads bnb's packed keys, or quantizes its float weight as it
// arrives, so peak memory is the 4-bit model plus one float tensor. Every 4-bit layer is then
// validated (shapes of the packed weight, absmax, nested absmax); errors name the tensor and
// its file.
inline std::unique_ptr<CausalLM> load_causal_lm_gguf(const std::filesystem::path& file, const LoadCausalLMOptions& lo);

inline std::unique_ptr<CausalLM> load_causal_lm(const std::filesystem::path& dir, const LoadCausalLMOptions& lo) {
  namespace fs = std::filesystem;
  if (fs::is_regular_file(dir) && dir.extension() == ".gguf") return load_causal_lm_gguf(dir, lo);
  GALVANI_CHECK(fs::is_directory(dir), dir.string(),
                ": not a directory (load_causal_lm wants a model directory or a .gguf file)");
  if (!fs::exists(dir / "config.json")) {
    std::vector<fs::path> ggufs;
    for (const auto& e : fs::directory_iterator(dir))
      if (e.is_regular_file() && e.path().extension() == ".gguf") ggufs.push_back(e.path());
    if (ggufs.size() == 1) return load_causal_lm_gguf(ggufs[0], lo);
    GALVANI_CHECK(ggufs.empty(), dir.string(), ": no config.json and ", ggufs.size(),
                  " .gguf files (load_causal_lm takes one; pass its path)");
  }
  GALVANI_CHECK(fs::exists(dir / "config.json"), dir.string(), ": no config.json (and no .gguf file)");
  const io::json cj = io::read_json_file(dir / "config.json");
  const io::ModelConfig config = io::parse_model_config(cj, (dir / "config.json").string());
  std::optional<BitsAndBytesConfig> bnb = lo.quantization_config;
  const bool pre_quantized = cj.contains("quantization_config") && !cj["quantization_config"].is_null();
  if (pre_quantized)
    bnb = BitsAndBytesConfig::from_json(cj["quantization_config"], (dir / "config.json").string() + ": quantization_config");
  BuildOptions opts;
  opts.init = ModuleInit::Mode::empty;
  opts.dtype = lo.dtype;
  auto model = make_causal_lm(config, opts);
  if (bnb) replace_with_bnb_linear(*model, *bnb, pre_quantized, lo.dtype);
  load_checkpoint(*model, dir, io::model_type_of(config));
  if (bnb) {
    for (auto& [name, m] : model->named_modules())
      if (auto* q = dynamic_cast<Linear4bit*>(m)) {
        try {
          q->validate();
        } catch (const Error& e) {
          throw Error(detail::file_of_tensor(dir, name + ".weight").string() + ": " + e.what());
        }
      }
    model->quantization_config = bnb;
  }
  return model;
}
inline std::unique_ptr<CausalLM> load_causal_lm(const std::filesystem::path& dir, DType dtype = DType::f32) {
  LoadCausalLMOptions lo;
  lo.dtype = dtype;
  return load_causal_lm(dir, lo);
}

// A llama-family GGUF → the model, without writing a directory: config.json's contents from
// the metadata (io::gguf_llama_config), every tensor checked first (io::plan_gguf_llama_tensors),
// then each one dequantized to f32, un-permuted and fed to the module that owns it, one at a
// time, so peak memory is the model plus about two f32 tensors. The tokenizer is not loaded
// here: io::gguf_tokenizer_files(...).tokenizer is its tokenizer.json.
inline std::unique_ptr<CausalLM> load_causal_lm_gguf(const std::filesystem::path& file, const LoadCausalLMOptions& lo) {
  const io::GgufFile g = io::GgufFile::open(file, io::MappedFile::Mode::read_only);
  const io::json cj = io::gguf_llama_config(g, io::torch_dtype_name(lo.dtype));
  const std::vector<io::GgufTensorPlan> plan = io::plan_gguf_llama_tensors(g, cj);
  BuildOptions opts;
  opts.init = ModuleInit::Mode::empty;
  opts.dtype = lo.dtype;
  auto model = make_causal_lm(io::parse_model_config(cj, g.path()), opts);
  if (lo.quantization_config) replace_with_bnb_linear(*model, *lo.quantization_config, false, lo.dtype);
  StateLoader loader(*model, g.path());
  std::vector<float> scratch;
  for (const io::GgufTensorPlan& p : plan) {
    Tensor t = Tensor::empty(p.shape, DType::f32);
    io::read_gguf_hf_tensor(g, p, {t.data<float>(), size_t(p.info->numel)}, scratch);
    loader.feed(io::StateEntry{p.hf_name, t, {}, {}});
  }
  loader.finish(true);
  if (lo.quantization_config) model->quantization_config = lo.quantization_config;
  return model;
}

// model.state_dict() (tied weights under both names; save_pretrained keeps one) → a model
// directory. Views are made contiguous for the writer. A 4-bit model's layers write bnb's
// keys (Linear4bit::save_own_tensors) and config.json gets its "quantization_config".
inline std::vector<std::filesystem::path> save_causal_lm(const CausalLM& model, const std::filesystem::path& dir,
                                                         io::SavePretrainedOptions opts = {}) {
  io::StateDict sd;
  for (const auto& e : model.state_dict()) {
    if (e.is_raw()) sd.insert_raw(e.name, e.raw_dtype, e.raw_shape, e.tensor);
    else sd.insert(e.name, e.tensor.is_contiguous() ? e.tensor : e.tensor.contiguous());
  }
  if (model.quantization_config && opts.quantization_config.is_null())
    opts.quantization_config = model.quantization_config->to_json();
  return io::save_pretrained(dir, io::parse_model_config(model.config_json()), sd, opts);
}

}  // namespace galvani
