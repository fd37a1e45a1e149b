// io/pretrained.hpp — model directories, as transformers' save_pretrained / from_pretrained use them.
//
//   my-model/
//     config.json                      model type and sizes (io/config.hpp)
//     generation_config.json           decoding defaults
//     model.safetensors                the weights, or model-0000i-of-0000n.safetensors
//     model.safetensors.index.json       + this index when sharded (io/sharded.hpp)
//     tokenizer.json, tokenizer_config.json, special_tokens_map.json, vocab.json, merges.txt, …
//
// Models do not load files themselves: from_pretrained() returns the typed config
// and a StateDict with canonical Hugging Face names, and a model's constructor
// picks its tensors by name. Canonical names are the ones GPT2LMHeadModel and
// MistralForCausalLM use:
//   gpt2:     transformer.wte.weight, transformer.h.{i}.attn.c_attn.weight, … (lm_head tied)
//   mistral:  model.embed_tokens.weight, model.layers.{i}.self_attn.q_proj.weight, lm_head.weight
// Checkpoints saved from the bare GPT2Model (DistilGPT-2 on the Hub is one) have no
// "transformer." prefix, and older ones carry the causal-mask buffers attn.bias and
// attn.masked_bias; canonical_key() adds the prefix and drops the buffers, as
// transformers does when it loads them.
#pragma once
#include "config.hpp"
#include "sharded.hpp"

namespace galvani::io {

// The canonical name for `name` in a `model_type` checkpoint, or nullopt for a
// buffer that is not a weight (skipped on load).
inline std::optional<std::string> canonical_key(const std::string& model_type, const std::string& name) {
  auto ends_with = [&](const std::string& suffix) {
    return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  auto starts_with = [&](const std::string& prefix) { return name.rfind(prefix, 0) == 0; };
  if (model_type == "gpt2") {
    // "h.0.attn.bias" is the causal mask; "h.0.attn.c_attn.bias" is a weight.
    if (name == "attn.bias" || name == "attn.masked_bias" || ends_with(".attn.bias") || ends_with(".attn.masked_bias"))
      return std::nullopt;
    if (starts_with("transformer.") || starts_with("lm_head.")) return name;
    return "transformer." + name;
  }
  if (model_type == "mistral" || model_type == "llama") {
    if (ends_with("rotary_emb.inv_freq")) return std::nullopt;  // a buffer in old Llama checkpoints
    if (starts_with("model.") || starts_with("lm_head.")) return name;
    return "model." + name;
  }
  return name;
}

// for_each_tensor() with canonical names; buffers are skipped.
inline void for_each_pretrained_tensor(const std::filesystem::path& path, const std::string& model_type,
                                       const TensorCallback& f,
                                       MappedFile::Mode mode = MappedFile::Mode::copy_on_write) {
  std::set<std::string> seen;
  for_each_tensor(path, [&](const std::string& name, const TensorView& v) {
    auto key = canonical_key(model_type, name);
    if (!key) return;
    GALVANI_CHECK(seen.insert(*key).second, v.file(), ": tensor '", name, "' and another tensor both mean '", *key,
                  "' (one with and one without the prefix)");
    f(*key, v);
  }, mode);
}

struct Pretrained {
  std::filesystem::path dir;
  ModelConfig config;
  GenerationConfig generation_config;  // from generation_config.json, else derived from config
  TokenizerConfig tokenizer_config;    // empty when the directory has no tokenizer files
  StateDict weights;                   // canonical names

  std::string model_type() const { return model_type_of(config); }
};

inline Pretrained from_pretrained(const std::filesystem::path& dir, const LoadOptions& opts = {}) {
  namespace fs = std::filesystem;
  GALVANI_CHECK(fs::is_directory(dir), dir.string(), ": not a directory (from_pretrained wants a model directory)");
  GALVANI_CHECK(fs::exists(dir / "config.json"), dir.string(), ": no config.json");
  Pretrained p{dir, load_model_config(dir / "config.json"), {}, {}, {}};
  if (fs::exists(dir / "generation_config.json")) p.generation_config = GenerationConfig::load(dir / "generation_config.json");
  else p.generation_config = GenerationConfig::from_model_config(p.config);
  p.tokenizer_config = TokenizerConfig::load(dir);
  for_each_pretrained_tensor(dir, p.model_type(), [&](const std::string& name, const TensorView& v) {
    SafetensorsFile::add_to(p.weights, v, opts, name);
  });
  return p;
}

// transformers' names for galvani dtypes, as written in config.json's torch_dtype.
inline const char* torch_dtype_name(DType d) {
  switch (d) {
    case DType::f32: return "float32";
    case DType::f64: return "float64";
    case DType::bf16: return "bfloat16";
    case DType::f16: return "float16";
    case DType::i32: return "int32";
    case DType::i64: return "int64";
    case DType::u8: return "uint8";
  }
  return "float32";
}

struct SavePretrainedOptions {
  uint64_t max_shard_size = 5'000'000'000;           // "5GB", transformers' default
  std::optional<GenerationConfig> generation_config; // default: derived from the model config
  std::filesystem::path tokenizer_dir;               // copy tokenizer files from here (empty: none)
  json quantization_config;                          // config.json's "quantization_config" (null: none)
};

// The tokenizer files save_pretrained copies when they exist in tokenizer_dir.
inline const std::vector<std::string>& tokenizer_file_names() {
  static const std::vector<std::string> names = {"tokenizer.json",   "tokenizer_config.json", "special_tokens_map.json",
                                                 "vocab.json",       "merges.txt",            "tokenizer.model",
                                                 "added_tokens.json"};
  return names;
}

// Writes a directory transformers' from_pretrained reads. For a tied GPT-2 the
// lm_head.weight entry is left out (it is transformer.wte.weight; safetensors
// refuses shared storage and transformers re-ties on load). Returns the files written.
inline std::vector<std::filesystem::path> save_pretrained(const std::filesystem::path& dir, const ModelConfig& config,
                                                          const StateDict& weights,
                                                          const SavePretrainedOptions& opts = {}) {
  namespace fs = std::filesystem;
  fs::create_directories(dir);
  const std::string mt = model_type_of(config);
  bool tied = std::visit([](const auto& c) { return c.tie_word_embeddings; }, config);

  StateDict out;
  for (const auto& e : weights) {
    auto key = canonical_key(mt, e.name);
    if (!key) continue;
    if (tied && *key == "lm_head.weight") continue;
    if (e.is_raw()) out.insert_raw(*key, e.raw_dtype, e.raw_shape, e.tensor);
    else out.insert(*key, e.tensor);
  }

  json cj = config_to_json(config);
  if (!opts.quantization_config.is_null()) cj["quantization_config"] = opts.quantization_config;
  if (!cj.contains("torch_dtype"))
    for (const auto& e : out)
      if (!e.is_raw() && is_floating(e.tensor.dtype())) {
        cj["torch_dtype"] = torch_dtype_name(e.tensor.dtype());
        break;
      }
  std::vector<fs::path> written;
  written.push_back(dir / "config.json");
  write_json_file(written.back(), cj);

  GenerationConfig g = opts.generation_config ? *opts.generation_config : GenerationConfig::from_model_config(config);
  written.push_back(dir / "generation_config.json");
  write_json_file(written.back(), g.to_json());

  ShardedSaveOptions so;
  so.max_shard_size = opts.max_shard_size;
  for (auto& f : save_checkpoint(dir, out, so)) written.push_back(f);

  if (!opts.tokenizer_dir.empty()) {
    GALVANI_CHECK(fs::is_directory(opts.tokenizer_dir), opts.tokenizer_dir.string(), ": tokenizer_dir is not a directory");
    for (const auto& n : tokenizer_file_names()) {
      fs::path src = opts.tokenizer_dir / n;
      if (!fs::exists(src)) continue;
      if (fs::exists(dir / n) && fs::equivalent(src, dir / n)) continue;
      fs::copy_file(src, dir / n, fs::copy_options::overwrite_existing);
      written.push_back(dir / n);
    }
  }
  return written;
}

}  // namespace galvani::io
