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
// One table per config. A struct declares its members (with their defaults), then lists
// its JSON keys once, in `fields()`: each row is a key, the member it fills, and whatever
// else applies (must be positive, a second spelling, written only for llama, …).
// from_json(), to_json() and validate() all walk that one table, so a key cannot be
// written but not read, or read under one name and written under another. The few keys
// a plain row cannot say (Mistral's rope settings, a null num_key_value_heads) still have
// their row, with a named function for the odd part.
//
// transformers 5 renamed two keys; both spellings are read:
//   torch_dtype -> dtype,   rope_theta -> rope_parameters.rope_theta.
// to_json() writes the old spellings, which every transformers version reads.
#pragma once
#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <tuple>
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

// One non-null JSON value `v` of `key` as a field's type.
inline void parse(const json& v, int64_t& out, const std::string& where, const char* key) {
  out = as_int(v, where, key);
}
inline void parse(const json& v, double& out, const std::string& where, const char* key) {
  GALVANI_CHECK(v.is_number(), where, ": \"", key, "\" must be a number, got ", v.dump());
  out = v.get<double>();
}
inline void parse(const json& v, bool& out, const std::string& where, const char* key) {
  GALVANI_CHECK(v.is_boolean(), where, ": \"", key, "\" must be true or false, got ", v.dump());
  out = v.get<bool>();
}
inline void parse(const json& v, std::string& out, const std::string& where, const char* key) {
  GALVANI_CHECK(v.is_string(), where, ": \"", key, "\" must be a string, got ", v.dump());
  out = v.get<std::string>();
}

// A plain field: missing or null keeps the default.
template <class T>
void read(const json& j, const char* key, T& out, const std::string& where) {
  if (const json* v = find_key(j, key)) parse(*v, out, where, key);
}
// An optional field: missing keeps the default, null clears it.
template <class T>
void read(const json& j, const char* key, std::optional<T>& out, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end()) return;
  if (it->is_null()) { out.reset(); return; }
  T v;
  parse(*it, v, where, key);
  out = v;
}
// Token ids (eos_token_id): an int or a list of ints; missing keeps the default, null clears it.
inline void read(const json& j, const char* key, std::vector<int64_t>& out, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end()) return;
  out.clear();
  if (it->is_null()) return;
  if (it->is_array())
    for (const auto& v : *it) out.push_back(as_int(v, where, key));
  else
    out.push_back(as_int(*it, where, key));
}

// A field's value as written: an unset optional is null; one token id is written bare,
// none is null, as transformers writes eos_token_id.
template <class T>
json to_json_value(const T& v) { return v; }
template <class T>
json to_json_value(const std::optional<T>& v) { return v ? json(*v) : json(nullptr); }
inline json to_json_value(const std::vector<int64_t>& ids) {
  if (ids.empty()) return nullptr;
  if (ids.size() == 1) return ids[0];
  return ids;
}
inline void check_positive(int64_t v, const char* key, const std::string& where) {
  GALVANI_CHECK(v > 0, where, ": \"", key, "\" must be positive, got ", v);
}

// Sizes no released model comes near (the largest have ~4e11 parameters and ~130 layers). A
// config past them is corrupt or has a typo, and building its model would exhaust memory, or
// spend hours creating layers, before a single weight is compared with the checkpoint; so
// validate() refuses it, naming the sizes. `parameters` is counted in double: it cannot overflow.
inline constexpr double kMaxParameters = 1099511627776.0;  // 2^40
inline constexpr int64_t kMaxLayers = 65536;
inline void check_model_size(double parameters, int64_t layers, const char* layers_key, const std::string& sizes,
                             const std::string& where) {
  GALVANI_CHECK(layers <= kMaxLayers, where, ": \"", layers_key, "\" ", layers, " is absurd (galvani allows up to ",
                kMaxLayers, "; released models have about 130 at most)");
  GALVANI_CHECK(parameters <= kMaxParameters, where, ": ", sizes, " describe a model of ", parameters,
                " parameters; galvani refuses more than 2^40 (about 1.1e12): is a size wrong?");
}

// One row of a config's field table: the JSON `key` and the `member` of C it fills,
// plus what else applies. A row is built with field() and the builders below, so it
// says only how it differs from a plain key: field("n_embd", &GPT2Config::n_embd).positive().
template <class C, class T>
struct Field {
  const char* key;
  T C::*member;
  bool must_be_positive = false;            // validate() checks value > 0 (int64 fields)
  const char* newer_key = nullptr;          // a second spelling, read after `key` (so it wins), never written
  bool only_when_set = false;               // to_json() leaves the file's own key alone when empty (== T{})
  bool (*applies)(const C&) = nullptr;      // read and written only for configs where this holds
  bool (*written_if)(const C&) = nullptr;   // always read, but written only where this holds
  void (*read_by)(const json& j, C& c, const std::string& where) = nullptr;  // instead of the typed read
  void (*write_by)(json& j, const C& c) = nullptr;                           // instead of j[key] = value

  constexpr Field positive() const { auto f = *this; f.must_be_positive = true; return f; }
  constexpr Field also_read(const char* newer) const { auto f = *this; f.newer_key = newer; return f; }
  constexpr Field written_only_when_set() const { auto f = *this; f.only_when_set = true; return f; }
  constexpr Field only_if(bool (*p)(const C&)) const { auto f = *this; f.applies = p; return f; }
  constexpr Field written_only_if(bool (*p)(const C&)) const { auto f = *this; f.written_if = p; return f; }
  constexpr Field read_with(void (*r)(const json&, C&, const std::string&)) const { auto f = *this; f.read_by = r; return f; }
  constexpr Field write_with(void (*w)(json&, const C&)) const { auto f = *this; f.write_by = w; return f; }
};
template <class C, class T>
constexpr Field<C, T> field(const char* key, T C::*member) { return {key, member}; }

// The three walks over a table (a std::tuple of Fields), one row at a time, in table order.
template <class C, class T>
void read_field(const json& j, C& c, const Field<C, T>& f, const std::string& where) {
  if (f.applies && !f.applies(c)) return;
  if (f.read_by) return f.read_by(j, c, where);
  read(j, f.key, c.*f.member, where);
  if (f.newer_key) read(j, f.newer_key, c.*f.member, where);
}
// With `defaults`, a value equal to its default is left out (and the file's key removed),
// as transformers writes generation_config.json.
template <class C, class T>
void write_field(json& j, const C& c, const Field<C, T>& f, const C* defaults) {
  if (f.applies && !f.applies(c)) return;
  if (f.written_if && !f.written_if(c)) return;
  if (f.newer_key) j.erase(f.newer_key);
  if (f.write_by) return f.write_by(j, c);
  const T& v = c.*f.member;
  if (defaults && v == defaults->*f.member) { j.erase(f.key); return; }
  if (f.only_when_set && v == T{}) return;
  j[f.key] = to_json_value(v);
}
template <class C, class T>
void check_field(const C& c, const Field<C, T>& f, const std::string& where) {
  if constexpr (std::is_same_v<T, int64_t>)
    if (f.must_be_positive) check_positive(c.*f.member, f.key, where);
}

template <class C, class Table>
void read_fields(const json& j, C& c, const Table& table, const std::string& where) {
  std::apply([&](const auto&... f) { (read_field(j, c, f, where), ...); }, table);
}
template <class C, class Table>
void write_fields(json& j, const C& c, const Table& table, const C* defaults = nullptr) {
  std::apply([&](const auto&... f) { (write_field(j, c, f, defaults), ...); }, table);
}
template <class C, class Table>
void check_fields(const C& c, const Table& table, const std::string& where) {
  std::apply([&](const auto&... f) { (check_field(c, f, where), ...); }, table);
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

  // The keys of config.json (besides model_type and architectures, which are fixed).
  static constexpr auto fields() {
    using C = GPT2Config;
    using detail::field;
    return std::tuple{
        field("vocab_size", &C::vocab_size).positive(),
        field("n_positions", &C::n_positions).positive(),
        field("n_embd", &C::n_embd).positive(),
        field("n_layer", &C::n_layer).positive(),
        field("n_head", &C::n_head).positive(),
        field("n_inner", &C::n_inner),
        field("activation_function", &C::activation_function),
        field("resid_pdrop", &C::resid_pdrop),
        field("embd_pdrop", &C::embd_pdrop),
        field("attn_pdrop", &C::attn_pdrop),
        field("layer_norm_epsilon", &C::layer_norm_epsilon),
        field("initializer_range", &C::initializer_range),
        field("scale_attn_weights", &C::scale_attn_weights),
        field("scale_attn_by_inverse_layer_idx", &C::scale_attn_by_inverse_layer_idx),
        field("reorder_and_upcast_attn", &C::reorder_and_upcast_attn),
        field("use_cache", &C::use_cache),
        field("tie_word_embeddings", &C::tie_word_embeddings),
        field("bos_token_id", &C::bos_token_id),
        field("eos_token_id", &C::eos_token_id),
        field("pad_token_id", &C::pad_token_id),
        field("torch_dtype", &C::torch_dtype).also_read("dtype").written_only_when_set(),
    };
  }

  int64_t inner_dim() const { return n_inner.value_or(4 * n_embd); }
  int64_t head_dim() const { return n_embd / n_head; }
  bool operator==(const GPT2Config&) const = default;

  static GPT2Config from_json(const json& j, const std::string& where = "config.json") {
    GALVANI_CHECK(j.is_object(), where, ": a config must be a JSON object");
    GPT2Config c;
    c.raw = j;
    detail::read_fields(j, c, fields(), where);
    c.validate(where);
    return c;
  }

  void validate(const std::string& where = "GPT2Config") const {
    detail::check_fields(*this, fields(), where);
    GALVANI_CHECK(n_embd % n_head == 0, where, ": n_embd ", n_embd, " is not divisible by n_head ", n_head);
    GALVANI_CHECK(inner_dim() > 0, where, ": n_inner must be positive");
    const double C = double(n_embd), I = double(inner_dim());  // embeddings, then per block: attention and MLP
    detail::check_model_size(double(vocab_size) * C + double(n_positions) * C + double(n_layer) * (4 * C * C + 2 * C * I),
                             n_layer, "n_layer",
                             galvani::detail::cat("vocab_size ", vocab_size, ", n_positions ", n_positions, ", n_embd ",
                                                  n_embd, ", n_layer ", n_layer, ", n_inner ", inner_dim()),
                             where);
  }

  json to_json() const {
    json j = raw.is_object() ? raw : json::object();
    j["model_type"] = "gpt2";
    if (!j.contains("architectures")) j["architectures"] = {"GPT2LMHeadModel"};
    detail::write_fields(j, *this, fields());
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

  // The keys of config.json (besides model_type, read first to pick the defaults, and
  // architectures). Rows with a named function are explained at that function.
  static constexpr auto fields() {
    using C = MistralConfig;
    using detail::field;
    return std::tuple{
        field("vocab_size", &C::vocab_size).positive(),
        field("hidden_size", &C::hidden_size).positive(),
        field("intermediate_size", &C::intermediate_size).positive(),
        field("num_hidden_layers", &C::num_hidden_layers).positive(),
        field("num_attention_heads", &C::num_attention_heads).positive(),
        field("num_key_value_heads", &C::num_key_value_heads).positive().read_with(read_kv_heads),
        field("head_dim", &C::head_dim_override).write_with(write_head_dim),
        field("hidden_act", &C::hidden_act),
        field("max_position_embeddings", &C::max_position_embeddings),
        field("initializer_range", &C::initializer_range),
        field("rms_norm_eps", &C::rms_norm_eps),
        field("rope_theta", &C::rope_theta).read_with(read_rope).write_with(write_rope),  // and rope_type
        field("sliding_window", &C::sliding_window).only_if([](const C& c) { return !c.is_llama(); }),
        field("attention_dropout", &C::attention_dropout),
        field("attention_bias", &C::attention_bias).written_only_if([](const C& c) { return c.is_llama(); }),
        field("mlp_bias", &C::mlp_bias).written_only_if([](const C& c) { return c.is_llama(); }),
        field("use_cache", &C::use_cache),
        field("tie_word_embeddings", &C::tie_word_embeddings),
        field("bos_token_id", &C::bos_token_id),
        field("eos_token_id", &C::eos_token_id),
        field("pad_token_id", &C::pad_token_id),
        field("torch_dtype", &C::torch_dtype).also_read("dtype").written_only_when_set(),
    };
  }

  // num_key_value_heads missing: the class default (Llama's is one kv head per query head);
  // null: one kv head per query head (both classes do this).
  static void read_kv_heads(const json& j, MistralConfig& c, const std::string& where) {
    if (c.is_llama()) c.num_key_value_heads = c.num_attention_heads;
    if (auto it = j.find("num_key_value_heads"); it != j.end())
      c.num_key_value_heads = it->is_null() ? c.num_attention_heads : detail::as_int(*it, where, "num_key_value_heads");
  }
  // head_dim is written resolved: hidden_size / heads when the file had none.
  static void write_head_dim(json& j, const MistralConfig& c) { j["head_dim"] = c.head_dim(); }
  // rope_theta and rope_type: top-level rope_theta, then transformers 5's rope_parameters
  // object, then transformers 4's rope_scaling object (its "type" or "rope_type").
  static void read_rope(const json& j, MistralConfig& c, const std::string& where) {
    detail::read(j, "rope_theta", c.rope_theta, where);
    if (const json* rp = detail::find_key(j, "rope_parameters")) {  // transformers 5
      GALVANI_CHECK(rp->is_object(), where, ": \"rope_parameters\" must be an object");
      detail::read(*rp, "rope_theta", c.rope_theta, where + ": rope_parameters");
      detail::read(*rp, "rope_type", c.rope_type, where + ": rope_parameters");
    }
    if (const json* rs = detail::find_key(j, "rope_scaling")) {  // transformers 4
      GALVANI_CHECK(rs->is_object(), where, ": \"rope_scaling\" must be an object");
      detail::read(*rs, "type", c.rope_type, where + ": rope_scaling");
      detail::read(*rs, "rope_type", c.rope_type, where + ": rope_scaling");
    }
  }
  // Written back in the transformers-4 spelling; a rope_scaling the file had is kept as it was.
  static void write_rope(json& j, const MistralConfig& c) {
    j.erase("rope_parameters");
    j["rope_theta"] = c.rope_theta;
    if (c.rope_type != "default" && !j.contains("rope_scaling")) j["rope_scaling"] = {{"rope_type", c.rope_type}};
  }

  int64_t head_dim() const { return head_dim_override.value_or(hidden_size / num_attention_heads); }
  bool is_llama() const { return model_type == "llama"; }
  bool operator==(const MistralConfig&) const = default;

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
    GALVANI_CHECK(j.is_object(), where, ": a config must be a JSON object");
    std::string mt = "mistral";
    detail::read(j, "model_type", mt, where);
    GALVANI_CHECK(mt == "mistral" || mt == "llama", where, ": model_type \"", mt, "\" is not mistral or llama");
    MistralConfig c = defaults(mt);
    c.raw = j;
    detail::read_fields(j, c, fields(), where);
    c.validate(where);
    return c;
  }

  void validate(const std::string& where = "MistralConfig") const {
    detail::check_fields(*this, fields(), where);
    GALVANI_CHECK(num_attention_heads % num_key_value_heads == 0, where, ": num_attention_heads ",
                  num_attention_heads, " is not a multiple of num_key_value_heads ", num_key_value_heads);
    GALVANI_CHECK(head_dim_override || hidden_size % num_attention_heads == 0, where, ": hidden_size ", hidden_size,
                  " is not divisible by num_attention_heads ", num_attention_heads);
    detail::check_positive(head_dim(), "head_dim", where);
    GALVANI_CHECK(!sliding_window || *sliding_window > 0, where, ": sliding_window must be positive or null");
    const double C = double(hidden_size), D = double(head_dim()), I = double(intermediate_size);
    const double layer = C * D * double(2 * num_attention_heads + 2 * num_key_value_heads) + 3 * C * I;  // q,o,k,v; mlp
    detail::check_model_size(double(vocab_size) * C * (tie_word_embeddings ? 1 : 2) + double(num_hidden_layers) * layer,
                             num_hidden_layers, "num_hidden_layers",
                             galvani::detail::cat("vocab_size ", vocab_size, ", hidden_size ", hidden_size,
                                                  ", intermediate_size ", intermediate_size, ", num_hidden_layers ",
                                                  num_hidden_layers, ", num_attention_heads ", num_attention_heads),
                             where);
  }

  json to_json() const {
    json j = raw.is_object() ? raw : json::object();
    j["model_type"] = model_type;
    if (!j.contains("architectures"))
      j["architectures"] = {is_llama() ? "LlamaForCausalLM" : "MistralForCausalLM"};
    detail::write_fields(j, *this, fields());
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

  // The keys of generation_config.json.
  static constexpr auto fields() {
    using C = GenerationConfig;
    using detail::field;
    return std::tuple{
        field("bos_token_id", &C::bos_token_id),
        field("eos_token_id", &C::eos_token_id),
        field("pad_token_id", &C::pad_token_id),
        field("max_length", &C::max_length),
        field("max_new_tokens", &C::max_new_tokens),
        field("do_sample", &C::do_sample),
        field("temperature", &C::temperature),
        field("top_k", &C::top_k),
        field("top_p", &C::top_p),
        field("repetition_penalty", &C::repetition_penalty),
        field("num_beams", &C::num_beams),
    };
  }
  bool operator==(const GenerationConfig&) const = default;

  static GenerationConfig from_json(const json& j, const std::string& where = "generation_config.json") {
    GALVANI_CHECK(j.is_object(), where, ": a generation config must be a JSON object");
    GenerationConfig g;
    g.raw = j;
    detail::read_fields(j, g, fields(), where);
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
    const GenerationConfig defaults;
    detail::write_fields(j, *this, fields(), &defaults);
    return j;
  }
};

// ------------------------------------------------------------------ tokenizer_config.json

struct AddedTokenInfo {
  int64_t id = 0;
  std::string content;
  bool special = false;
};

// Read only: save_pretrained copies the tokenizer files as they are.
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

  // The plain keys of tokenizer_config.json. The special tokens are read by merge(), which
  // special_tokens_map.json shares; added_tokens_decoder by from_json().
  static constexpr auto fields() {
    using C = TokenizerConfig;
    using detail::field;
    return std::tuple{
        field("tokenizer_class", &C::tokenizer_class),
        field("add_bos_token", &C::add_bos_token),
        field("add_eos_token", &C::add_eos_token),
        field("model_max_length", &C::model_max_length),
        field("clean_up_tokenization_spaces", &C::clean_up_tokenization_spaces),
        field("legacy", &C::legacy),
    };
  }

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
    TokenizerConfig t;
    t.merge(j, where, true);
    t.raw = j;
    detail::read_fields(j, t, fields(), where);
    if (const json* d = detail::find_key(j, "added_tokens_decoder")) {
      GALVANI_CHECK(d->is_object(), where, ": \"added_tokens_decoder\" must be an object");
      for (auto it = d->begin(); it != d->end(); ++it) {
        AddedTokenInfo a;
        try {
          a.id = std::stoll(it.key());
        } catch (...) {
          throw Error(galvani::detail::cat(where, ": added_tokens_decoder key \"", it.key(), "\" is not a token id"));
        }
        a.content = token_text(*it, where, "added_tokens_decoder").value_or("");
        if (it->is_object()) detail::read(*it, "special", a.special, where);
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
