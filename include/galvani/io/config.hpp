// io/config.hpp — Hugging Face config files as typed structs.
//
//   config.json            -> GPT2Config (model_type "gpt2")
//                             MistralConfig (model_type "mistral", or "llama": Mistral
//                             without a sliding window)
//   generation_config.json -> GenerationConfig
//   tokenizer_config.json  -> TokenizerConfig (+ special_tokens_map.json, which fills gaps)
//
// A key missing from the file takes the default transformers gives it (the
// keyword defaults of GPT2Config.__init__, MistralConfig.__init__, LlamaConfig.__init__,
// GenerationConfig.__init__), so a minimal hand-written config means the same thing in
// galvani as in Python. Each struct also keeps the file's whole JSON in `raw`, and
// to_json() writes the typed fields over it: keys galvani does not model
// (task_specific_params, id2label, …) survive a load/save round trip.
//
// transformers 5 renamed two keys; both spellings are read:
//   torch_dtype -> dtype,   rope_theta -> rope_parameters.rope_theta.
// to_json() writes the old spellings, which every transformers version reads.
#pragma once
#include <cmath>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "json.hpp"

namespace galvani::io {

namespace detail {

// Typed reads of one key; `null` counts as missing. Errors name the file and key.
inline const json* find_key(const json& j, const char* key) {
  auto it = j.find(key);
  return (it == j.end() || it->is_null()) ? nullptr : &*it;
}
inline int64_t as_int(const json& v, const std::string& where, const char* key) {
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float()) {  // 1e30 (model_max_length) and 2.0 are floats in JSON; accept integral values
    double d = v.get<double>();
    GALVANI_CHECK(std::floor(d) == d, where, ": \"", key, "\" must be an integer, got ", v.dump());
    return d >= 9.2e18 ? INT64_MAX : int64_t(d);
  }
  throw Error(galvani::detail::cat(where, ": \"", key, "\" must be an integer, got ", v.dump()));
}
inline void read(const json& j, const char* key, int64_t& out, const std::string& where) {
  if (const json* v = find_key(j, key)) out = as_int(*v, where, key);
}
inline void read(const json& j, const char* key, std::optional<int64_t>& out, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end()) return;
  out = it->is_null() ? std::nullopt : std::optional<int64_t>(as_int(*it, where, key));
}
inline void read(const json& j, const char* key, double& out, const std::string& where) {
  if (const json* v = find_key(j, key)) {
    GALVANI_CHECK(v->is_number(), where, ": \"", key, "\" must be a number, got ", v->dump());
    out = v->get<double>();
  }
}
inline void read(const json& j, const char* key, std::optional<double>& out, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end()) return;
  if (it->is_null()) { out.reset(); return; }
  GALVANI_CHECK(it->is_number(), where, ": \"", key, "\" must be a number, got ", it->dump());
  out = it->get<double>();
}
inline void read(const json& j, const char* key, bool& out, const std::string& where) {
  if (const json* v = find_key(j, key)) {
    GALVANI_CHECK(v->is_boolean(), where, ": \"", key, "\" must be true or false, got ", v->dump());
    out = v->get<bool>();
  }
}
inline void read(const json& j, const char* key, std::optional<bool>& out, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end()) return;
  if (it->is_null()) { out.reset(); return; }
  GALVANI_CHECK(it->is_boolean(), where, ": \"", key, "\" must be true or false, got ", it->dump());
  out = it->get<bool>();
}
inline void read(const json& j, const char* key, std::string& out, const std::string& where) {
  if (const json* v = find_key(j, key)) {
    GALVANI_CHECK(v->is_string(), where, ": \"", key, "\" must be a string, got ", v->dump());
    out = v->get<std::string>();
  }
}
// eos_token_id is an int or a list of ints.
inline void read_ids(const json& j, const char* key, std::vector<int64_t>& out, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end()) return;
  out.clear();
  if (it->is_null()) return;
  if (it->is_array())
    for (const auto& v : *it) out.push_back(as_int(v, where, key));
  else
    out.push_back(as_int(*it, where, key));
}
inline json ids_json(const std::vector<int64_t>& ids) {
  if (ids.empty()) return nullptr;
  if (ids.size() == 1) return ids[0];
  return ids;
}
template <class T>
json opt_json(const std::optional<T>& v) {
  return v ? json(*v) : json(nullptr);
}
// "torch_dtype" (transformers 4) or "dtype" (transformers 5).
inline std::string read_dtype(const json& j, const std::string& where) {
  std::string d;
  read(j, "torch_dtype", d, where);
  read(j, "dtype", d, where);
  return d;
}
inline void check_positive(int64_t v, const char* key, const std::string& where) {
  GALVANI_CHECK(v > 0, where, ": \"", key, "\" must be positive, got ", v);
}

}  // namespace detail

// ------------------------------------------------------------------ GPT-2 (and DistilGPT-2)

struct GPT2Config {
  int64_t vocab_size = 50257;
  int64_t n_positions = 1024;          // context length
  int64_t n_embd = 768;                // C
  int64_t n_layer = 12;
  int64_t n_head = 12;
  std::optional<int64_t> n_inner;      // MLP width; None means 4 * n_embd
  std::string activation_function = "gelu_new";
  double resid_pdrop = 0.1, embd_pdrop = 0.1, attn_pdrop = 0.1;
  double layer_norm_epsilon = 1e-5;
  double initializer_range = 0.02;
  bool scale_attn_weights = true;
  bool scale_attn_by_inverse_layer_idx = false;
  bool reorder_and_upcast_attn = false;
  bool use_cache = true;
  bool tie_word_embeddings = true;     // lm_head.weight is wte.weight
  std::optional<int64_t> bos_token_id = 50256;
  std::vector<int64_t> eos_token_id = {50256};
  std::optional<int64_t> pad_token_id;
  std::string torch_dtype;             // "float32", … or empty when the file has none
  json raw = json::object();

  int64_t inner_dim() const { return n_inner.value_or(4 * n_embd); }
  int64_t head_dim() const { return n_embd / n_head; }

  static GPT2Config from_json(const json& j, const std::string& where = "config.json") {
    using namespace detail;
    GALVANI_CHECK(j.is_object(), where, ": a config must be a JSON object");
    GPT2Config c;
    c.raw = j;
    read(j, "vocab_size", c.vocab_size, where);
    read(j, "n_positions", c.n_positions, where);
    read(j, "n_embd", c.n_embd, where);
    read(j, "n_layer", c.n_layer, where);
    read(j, "n_head", c.n_head, where);
    read(j, "n_inner", c.n_inner, where);
    read(j, "activation_function", c.activation_function, where);
    read(j, "resid_pdrop", c.resid_pdrop, where);
    read(j, "embd_pdrop", c.embd_pdrop, where);
    read(j, "attn_pdrop", c.attn_pdrop, where);
    read(j, "layer_norm_epsilon", c.layer_norm_epsilon, where);
    read(j, "initializer_range", c.initializer_range, where);
    read(j, "scale_attn_weights", c.scale_attn_weights, where);
    read(j, "scale_attn_by_inverse_layer_idx", c.scale_attn_by_inverse_layer_idx, where);
    read(j, "reorder_and_upcast_attn", c.reorder_and_upcast_attn, where);
    read(j, "use_cache", c.use_cache, where);
    read(j, "tie_word_embeddings", c.tie_word_embeddings, where);
    read(j, "bos_token_id", c.bos_token_id, where);
    read_ids(j, "eos_token_id", c.eos_token_id, where);
    read(j, "pad_token_id", c.pad_token_id, where);
    c.torch_dtype = read_dtype(j, where);
    c.validate(where);
    return c;
  }

  void validate(const std::string& where = "GPT2Config") const {
    detail::check_positive(vocab_size, "vocab_size", where);
    detail::check_positive(n_positions, "n_positions", where);
    detail::check_positive(n_embd, "n_embd", where);
    detail::check_positive(n_layer, "n_layer", where);
    detail::check_positive(n_head, "n_head", where);
    GALVANI_CHECK(n_embd % n_head == 0, where, ": n_embd ", n_embd, " is not divisible by n_head ", n_head);
    GALVANI_CHECK(inner_dim() > 0, where, ": n_inner must be positive");
  }

  json to_json() const {
    json j = raw.is_object() ? raw : json::object();
    j["model_type"] = "gpt2";
    if (!j.contains("architectures")) j["architectures"] = {"GPT2LMHeadModel"};
    j["vocab_size"] = vocab_size;
    j["n_positions"] = n_positions;
    j["n_embd"] = n_embd;
    j["n_layer"] = n_layer;
    j["n_head"] = n_head;
    j["n_inner"] = detail::opt_json(n_inner);
    j["activation_function"] = activation_function;
    j["resid_pdrop"] = resid_pdrop;
    j["embd_pdrop"] = embd_pdrop;
    j["attn_pdrop"] = attn_pdrop;
    j["layer_norm_epsilon"] = layer_norm_epsilon;
    j["initializer_range"] = initializer_range;
    j["scale_attn_weights"] = scale_attn_weights;
    j["scale_attn_by_inverse_layer_idx"] = scale_attn_by_inverse_layer_idx;
    j["reorder_and_upcast_attn"] = reorder_and_upcast_attn;
    j["use_cache"] = use_cache;
    j["tie_word_embeddings"] = tie_word_embeddings;
    j["bos_token_id"] = detail::opt_json(bos_token_id);
    j["eos_token_id"] = detail::ids_json(eos_token_id);
    j["pad_token_id"] = detail::opt_json(pad_token_id);
    j.erase("dtype");
    if (!torch_dtype.empty()) j["torch_dtype"] = torch_dtype;
    return j;
  }
};

// ------------------------------------------------------------------ Mistral / Llama

struct MistralConfig {
  std::string model_type = "mistral";        // or "llama"
  int64_t vocab_size = 32000;
  int64_t hidden_size = 4096;                // C
  int64_t intermediate_size = 14336;         // MLP width (llama default: 11008)
  int64_t num_hidden_layers = 32;
  int64_t num_attention_heads = 32;          // query heads
  int64_t num_key_value_heads = 8;           // GQA kv heads (llama default: = num_attention_heads)
  std::optional<int64_t> head_dim_override;  // "head_dim"; None means hidden_size / heads
  std::string hidden_act = "silu";
  int64_t max_position_embeddings = 4096 * 32;  // llama default: 2048
  double initializer_range = 0.02;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  std::string rope_type = "default";         // anything else (scaling) is for the model to refuse
  std::optional<int64_t> sliding_window = 4096;  // llama: none
  double attention_dropout = 0.0;
  bool attention_bias = false;               // llama only
  bool mlp_bias = false;                     // llama only
  bool use_cache = true;
  bool tie_word_embeddings = false;
  std::optional<int64_t> bos_token_id = 1;
  std::vector<int64_t> eos_token_id = {2};
  std::optional<int64_t> pad_token_id;
  std::string torch_dtype;
  json raw = json::object();

  int64_t head_dim() const { return head_dim_override.value_or(hidden_size / num_attention_heads); }
  bool is_llama() const { return model_type == "llama"; }

  static MistralConfig defaults(const std::string& model_type) {
    MistralConfig c;
    c.model_type = model_type;
    if (model_type == "llama") {
      c.intermediate_size = 11008;
      c.num_key_value_heads = c.num_attention_heads;
      c.max_position_embeddings = 2048;
      c.sliding_window.reset();
    }
    return c;
  }

  static MistralConfig from_json(const json& j, const std::string& where = "config.json") {
    using namespace detail;
    GALVANI_CHECK(j.is_object(), where, ": a config must be a JSON object");
    std::string mt = "mistral";
    read(j, "model_type", mt, where);
    GALVANI_CHECK(mt == "mistral" || mt == "llama", where, ": model_type \"", mt, "\" is not mistral or llama");
    MistralConfig c = defaults(mt);
    c.raw = j;
    read(j, "vocab_size", c.vocab_size, where);
    read(j, "hidden_size", c.hidden_size, where);
    read(j, "intermediate_size", c.intermediate_size, where);
    read(j, "num_hidden_layers", c.num_hidden_layers, where);
    read(j, "num_attention_heads", c.num_attention_heads, where);
    // Missing: the class default; null: one kv head per query head (both classes do this).
    if (mt == "llama") c.num_key_value_heads = c.num_attention_heads;
    if (auto it = j.find("num_key_value_heads"); it != j.end())
      c.num_key_value_heads = it->is_null() ? c.num_attention_heads : as_int(*it, where, "num_key_value_heads");
    read(j, "head_dim", c.head_dim_override, where);
    read(j, "hidden_act", c.hidden_act, where);
    read(j, "max_position_embeddings", c.max_position_embeddings, where);
    read(j, "initializer_range", c.initializer_range, where);
    read(j, "rms_norm_eps", c.rms_norm_eps, where);
    read(j, "rope_theta", c.rope_theta, where);
    if (const json* rp = find_key(j, "rope_parameters")) {  // transformers 5
      GALVANI_CHECK(rp->is_object(), where, ": \"rope_parameters\" must be an object");
      read(*rp, "rope_theta", c.rope_theta, where + ": rope_parameters");
      read(*rp, "rope_type", c.rope_type, where + ": rope_parameters");
    }
    if (const json* rs = find_key(j, "rope_scaling")) {  // transformers 4
      GALVANI_CHECK(rs->is_object(), where, ": \"rope_scaling\" must be an object");
      read(*rs, "type", c.rope_type, where + ": rope_scaling");
      read(*rs, "rope_type", c.rope_type, where + ": rope_scaling");
    }
    if (mt == "mistral") read(j, "sliding_window", c.sliding_window, where);
    read(j, "attention_dropout", c.attention_dropout, where);
    read(j, "attention_bias", c.attention_bias, where);
    read(j, "mlp_bias", c.mlp_bias, where);
    read(j, "use_cache", c.use_cache, where);
    read(j, "tie_word_embeddings", c.tie_word_embeddings, where);
    read(j, "bos_token_id", c.bos_token_id, where);
    read_ids(j, "eos_token_id", c.eos_token_id, where);
    read(j, "pad_token_id", c.pad_token_id, where);
    c.torch_dtype = read_dtype(j, where);
    c.validate(where);
    return c;
  }

  void validate(const std::string& where = "MistralConfig") const {
    detail::check_positive(vocab_size, "vocab_size", where);
    detail::check_positive(hidden_size, "hidden_size", where);
    detail::check_positive(intermediate_size, "intermediate_size", where);
    detail::check_positive(num_hidden_layers, "num_hidden_layers", where);
    detail::check_positive(num_attention_heads, "num_attention_heads", where);
    detail::check_positive(num_key_value_heads, "num_key_value_heads", where);
    GALVANI_CHECK(num_attention_heads % num_key_value_heads == 0, where, ": num_attention_heads ",
                  num_attention_heads, " is not a multiple of num_key_value_heads ", num_key_value_heads);
    GALVANI_CHECK(head_dim_override || hidden_size % num_attention_heads == 0, where, ": hidden_size ", hidden_size,
                  " is not divisible by num_attention_heads ", num_attention_heads);
    detail::check_positive(head_dim(), "head_dim", where);
    GALVANI_CHECK(!sliding_window || *sliding_window > 0, where, ": sliding_window must be positive or null");
  }

  json to_json() const {
    json j = raw.is_object() ? raw : json::object();
    j["model_type"] = model_type;
    if (!j.contains("architectures"))
      j["architectures"] = {is_llama() ? "LlamaForCausalLM" : "MistralForCausalLM"};
    j["vocab_size"] = vocab_size;
    j["hidden_size"] = hidden_size;
    j["intermediate_size"] = intermediate_size;
    j["num_hidden_layers"] = num_hidden_layers;
    j["num_attention_heads"] = num_attention_heads;
    j["num_key_value_heads"] = num_key_value_heads;
    j["head_dim"] = head_dim();
    j["hidden_act"] = hidden_act;
    j["max_position_embeddings"] = max_position_embeddings;
    j["initializer_range"] = initializer_range;
    j["rms_norm_eps"] = rms_norm_eps;
    j.erase("rope_parameters");  // written back in the transformers-4 spelling
    j["rope_theta"] = rope_theta;
    if (rope_type != "default" && !j.contains("rope_scaling")) j["rope_scaling"] = {{"rope_type", rope_type}};
    if (!is_llama()) j["sliding_window"] = detail::opt_json(sliding_window);
    j["attention_dropout"] = attention_dropout;
    if (is_llama()) {
      j["attention_bias"] = attention_bias;
      j["mlp_bias"] = mlp_bias;
    }
    j["use_cache"] = use_cache;
    j["tie_word_embeddings"] = tie_word_embeddings;
    j["bos_token_id"] = detail::opt_json(bos_token_id);
    j["eos_token_id"] = detail::ids_json(eos_token_id);
    j["pad_token_id"] = detail::opt_json(pad_token_id);
    j.erase("dtype");
    if (!torch_dtype.empty()) j["torch_dtype"] = torch_dtype;
    return j;
  }
};

// ------------------------------------------------------------------ config.json, any model

using ModelConfig = std::variant<GPT2Config, MistralConfig>;

inline std::string model_type_of(const ModelConfig& c) {
  return std::visit([](const auto& x) -> std::string {
    if constexpr (std::is_same_v<std::decay_t<decltype(x)>, GPT2Config>) return "gpt2";
    else return x.model_type;
  }, c);
}
inline json config_to_json(const ModelConfig& c) {
  return std::visit([](const auto& x) { return x.to_json(); }, c);
}

inline ModelConfig parse_model_config(const json& j, const std::string& where = "config.json") {
  GALVANI_CHECK(j.is_object(), where, ": a config must be a JSON object");
  const json* mt = detail::find_key(j, "model_type");
  GALVANI_CHECK(mt && mt->is_string(), where, ": no \"model_type\" string; galvani needs it to pick the model");
  std::string t = mt->get<std::string>();
  if (t == "gpt2") return GPT2Config::from_json(j, where);
  if (t == "mistral" || t == "llama") return MistralConfig::from_json(j, where);
  throw Error(galvani::detail::cat(where, ": model_type \"", t, "\" is not supported (galvani knows gpt2, mistral, llama)"));
}

inline ModelConfig load_model_config(const std::filesystem::path& path) {
  return parse_model_config(read_json_file(path), path.string());
}

// ------------------------------------------------------------------ generation_config.json

struct GenerationConfig {
  std::optional<int64_t> bos_token_id;
  std::vector<int64_t> eos_token_id;   // generation stops at any of them
  std::optional<int64_t> pad_token_id;
  int64_t max_length = 20;             // prompt + new tokens
  std::optional<int64_t> max_new_tokens;
  bool do_sample = false;
  double temperature = 1.0;
  int64_t top_k = 50;
  double top_p = 1.0;
  double repetition_penalty = 1.0;
  int64_t num_beams = 1;
  json raw = json::object();

  static GenerationConfig from_json(const json& j, const std::string& where = "generation_config.json") {
    using namespace detail;
    GALVANI_CHECK(j.is_object(), where, ": a generation config must be a JSON object");
    GenerationConfig g;
    g.raw = j;
    read(j, "bos_token_id", g.bos_token_id, where);
    read_ids(j, "eos_token_id", g.eos_token_id, where);
    read(j, "pad_token_id", g.pad_token_id, where);
    read(j, "max_length", g.max_length, where);
    read(j, "max_new_tokens", g.max_new_tokens, where);
    read(j, "do_sample", g.do_sample, where);
    read(j, "temperature", g.temperature, where);
    read(j, "top_k", g.top_k, where);
    read(j, "top_p", g.top_p, where);
    read(j, "repetition_penalty", g.repetition_penalty, where);
    read(j, "num_beams", g.num_beams, where);
    return g;
  }
  static GenerationConfig load(const std::filesystem::path& path) { return from_json(read_json_file(path), path.string()); }

  // What transformers derives when a model has no generation_config.json.
  static GenerationConfig from_model_config(const ModelConfig& mc) {
    GenerationConfig g;
    std::visit([&](const auto& c) {
      g.bos_token_id = c.bos_token_id;
      g.eos_token_id = c.eos_token_id;
      g.pad_token_id = c.pad_token_id;
    }, mc);
    g.raw = {{"_from_model_config", true}};
    return g;
  }

  // Only the keys that differ from the defaults, as GenerationConfig.to_json_string does.
  json to_json() const {
    json j = raw.is_object() ? raw : json::object();
    const GenerationConfig d;
    auto put = [&](const char* k, auto v, auto def) { if (v != def) j[k] = v; else j.erase(k); };
    if (bos_token_id) j["bos_token_id"] = *bos_token_id; else j.erase("bos_token_id");
    if (!eos_token_id.empty()) j["eos_token_id"] = detail::ids_json(eos_token_id); else j.erase("eos_token_id");
    if (pad_token_id) j["pad_token_id"] = *pad_token_id; else j.erase("pad_token_id");
    put("max_length", max_length, d.max_length);
    if (max_new_tokens) j["max_new_tokens"] = *max_new_tokens; else j.erase("max_new_tokens");
    put("do_sample", do_sample, d.do_sample);
    put("temperature", temperature, d.temperature);
    put("top_k", top_k, d.top_k);
    put("top_p", top_p, d.top_p);
    put("repetition_penalty", repetition_penalty, d.repetition_penalty);
    put("num_beams", num_beams, d.num_beams);
    return j;
  }
};

// ------------------------------------------------------------------ tokenizer_config.json

struct AddedTokenInfo {
  int64_t id = 0;
  std::string content;
  bool special = false;
};

struct TokenizerConfig {
  std::string tokenizer_class;                 // "GPT2Tokenizer", "LlamaTokenizer", … (may be empty)
  std::optional<std::string> bos_token, eos_token, unk_token, pad_token;
  std::vector<std::string> additional_special_tokens;
  std::optional<bool> add_bos_token, add_eos_token;
  std::optional<double> model_max_length;      // Mistral says 1e30: "no limit"
  std::optional<bool> clean_up_tokenization_spaces;
  std::optional<bool> legacy;
  std::vector<AddedTokenInfo> added_tokens;    // from added_tokens_decoder, by id
  json raw = json::object();

  // A special token is a string, or an AddedToken dict {"content": "<s>", …}.
  static std::optional<std::string> token_text(const json& v, const std::string& where, const char* key) {
    if (v.is_null()) return std::nullopt;
    if (v.is_string()) return v.get<std::string>();
    if (v.is_object()) {
      auto c = v.find("content");
      GALVANI_CHECK(c != v.end() && c->is_string(), where, ": \"", key, "\" has no \"content\" string");
      return c->get<std::string>();
    }
    throw Error(galvani::detail::cat(where, ": \"", key, "\" must be a string or a token object, got ", v.dump()));
  }

  // Reads the keys of `j` into this config; keys already set are overwritten only when `overwrite`.
  void merge(const json& j, const std::string& where, bool overwrite) {
    GALVANI_CHECK(j.is_object(), where, ": must be a JSON object");
    for (auto [key, slot] : {std::pair{"bos_token", &bos_token}, std::pair{"eos_token", &eos_token},
                             std::pair{"unk_token", &unk_token}, std::pair{"pad_token", &pad_token}}) {
      auto it = j.find(key);
      if (it != j.end() && (overwrite || !*slot)) *slot = token_text(*it, where, key);
    }
    if (auto it = j.find("additional_special_tokens"); it != j.end() && it->is_array() &&
                                                        (overwrite || additional_special_tokens.empty())) {
      additional_special_tokens.clear();
      for (const auto& t : *it)
        if (auto s = token_text(t, where, "additional_special_tokens")) additional_special_tokens.push_back(*s);
    }
  }

  static TokenizerConfig from_json(const json& j, const std::string& where = "tokenizer_config.json") {
    using namespace detail;
    TokenizerConfig t;
    t.merge(j, where, true);
    t.raw = j;
    read(j, "tokenizer_class", t.tokenizer_class, where);
    read(j, "add_bos_token", t.add_bos_token, where);
    read(j, "add_eos_token", t.add_eos_token, where);
    read(j, "model_max_length", t.model_max_length, where);
    read(j, "clean_up_tokenization_spaces", t.clean_up_tokenization_spaces, where);
    read(j, "legacy", t.legacy, where);
    if (const json* d = find_key(j, "added_tokens_decoder")) {
      GALVANI_CHECK(d->is_object(), where, ": \"added_tokens_decoder\" must be an object");
      for (auto it = d->begin(); it != d->end(); ++it) {
        AddedTokenInfo a;
        try {
          a.id = std::stoll(it.key());
        } catch (...) {
          throw Error(galvani::detail::cat(where, ": added_tokens_decoder key \"", it.key(), "\" is not a token id"));
        }
        a.content = token_text(*it, where, "added_tokens_decoder").value_or("");
        if (it->is_object()) read(*it, "special", a.special, where);
        t.added_tokens.push_back(a);
      }
      std::sort(t.added_tokens.begin(), t.added_tokens.end(),
                [](const AddedTokenInfo& a, const AddedTokenInfo& b) { return a.id < b.id; });
    }
    return t;
  }

  // tokenizer_config.json in `dir`, with special_tokens_map.json filling what it leaves out.
  // Either file may be missing (GPT-2's tokenizer_config.json is only {"model_max_length": 1024}).
  static TokenizerConfig load(const std::filesystem::path& dir) {
    TokenizerConfig t;
    auto cfg = dir / "tokenizer_config.json";
    if (std::filesystem::exists(cfg)) t = from_json(read_json_file(cfg), cfg.string());
    auto map = dir / "special_tokens_map.json";
    if (std::filesystem::exists(map)) t.merge(read_json_file(map), map.string(), false);
    return t;
  }
};

}  // namespace galvani::io
