// io/gguf_convert.hpp — a llama-family GGUF (llama.cpp's checkpoint) → a Hugging Face model
// directory that galvani and transformers load as LlamaForCausalLM.
//
//   convert_gguf_to_hf("SmolLM2-135M-Instruct.Q4_1.gguf", "weights/smollm2-135m-instruct");
//
//   out/
//     config.json              LlamaForCausalLM, from the llama.* metadata (gguf_llama_config)
//     model.safetensors        every tensor dequantized (io/gguf.hpp), renamed, Q/K un-permuted,
//                              in f32 (exact), bf16 or f16 — written one tensor at a time
//     generation_config.json   bos / eos / pad ids
//     tokenizer.json           rebuilt from tokenizer.ggml.* (gguf_tokenizer_files)
//     tokenizer_config.json    special tokens, add_bos_token, the chat template
//     special_tokens_map.json
//     CONVERSION.md            source file, its sha256, the tensor types found
//
// What llama.cpp's convert_hf_to_gguf.py did, and this undoes:
//   * names: model.layers.N.self_attn.q_proj.weight became blk.N.attn_q.weight, and so on
//     (kLlamaLayerNames); model.embed_tokens → token_embd, model.norm → output_norm,
//     lm_head → output. A model with tied embeddings has no output.weight.
//   * the query and key rows: ggml's RoPE rotates adjacent pairs (x0, x1), (x2, x3), …, while
//     Hugging Face's rotate_half rotates the two halves of each head (x_i, x_{i + hd/2}). So
//     the converter permuted the rows of q_proj and k_proj within each head,
//       w.reshape(n_head, 2, hd/2, in).swapaxes(1, 2)        (LlamaModel.permute),
//     and we apply the inverse, with the key-value head count for k_proj (unpermute_rope_rows).
//   * the config: GGUF keeps it as typed metadata under the architecture's prefix
//     (llama.block_count, llama.embedding_length, …).
//   * the tokenizer: GGUF keeps the vocabulary, merges, token types and special ids, and names
//     the pre-tokenizer ("smollm", "gpt-2", …); tokenizer.json is rebuilt from those.
//
// Checked before anything is written: the architecture ("llama" or "mistral"), every metadata
// key the config needs, no RoPE scaling and no experts (which this layout cannot express),
// every tensor's name (one the layout has no place for is an error), its layer index, its
// shape against the one the config implies, that its ggml type can be dequantized, that no
// tensor is missing, and the tokenizer type. Every error names the file and the key or tensor.
//
// Tokenizers: tokenizer.ggml.model "gpt2" (byte-level BPE with merges) with the pre-tokenizers
// "smollm" (single digits, then GPT-2's regex) and "gpt-2"/"default" (GPT-2's regex), and
// "llama" (a SentencePiece BPE vocabulary with scores and byte fallback: Llama 2, Mistral,
// TinyLlama, …), whose merges are recovered from the scores as transformers does.
#pragma once
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "gguf.hpp"
#include "json.hpp"
#include "pretrained.hpp"
#include "safetensors.hpp"
#include "sha256.hpp"
#include "../tokenizer/unicode.hpp"

namespace galvani::io {

// ------------------------------------------------------------------ names

// blk.N.<ggml name> → model.layers.N.<Hugging Face name>, for the llama layout.
inline constexpr std::pair<const char*, const char*> kLlamaLayerNames[] = {
    {"attn_norm", "input_layernorm"},
    {"attn_q", "self_attn.q_proj"},
    {"attn_k", "self_attn.k_proj"},
    {"attn_v", "self_attn.v_proj"},
    {"attn_output", "self_attn.o_proj"},
    {"ffn_norm", "post_attention_layernorm"},
    {"ffn_gate", "mlp.gate_proj"},
    {"ffn_up", "mlp.up_proj"},
    {"ffn_down", "mlp.down_proj"},
};

// The Hugging Face name of GGUF tensor `name` and its layer (-1 outside the layers), or
// nullopt when the llama layout has no place for it (a bias, a fused qkv, rope_freqs, …).
struct LlamaTensorName {
  std::string hf;
  int64_t layer = -1;
  std::string local;  // the ggml name inside its block ("attn_q"), or the whole name
};
inline std::optional<LlamaTensorName> gguf_llama_hf_name(const std::string& name) {
  if (name == "token_embd.weight") return LlamaTensorName{"model.embed_tokens.weight", -1, name};
  if (name == "output_norm.weight") return LlamaTensorName{"model.norm.weight", -1, name};
  if (name == "output.weight") return LlamaTensorName{"lm_head.weight", -1, name};
  // blk.<digits>.<local>.weight
  if (name.rfind("blk.", 0) != 0) return std::nullopt;
  size_t dot = name.find('.', 4);
  if (dot == std::string::npos || dot == 4 || dot - 4 > 9) return std::nullopt;
  for (size_t i = 4; i < dot; ++i)
    if (name[i] < '0' || name[i] > '9') return std::nullopt;
  const std::string suffix = ".weight";
  if (name.size() <= dot + 1 + suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
    return std::nullopt;
  const std::string local = name.substr(dot + 1, name.size() - suffix.size() - dot - 1);
  const int64_t layer = std::stoll(name.substr(4, dot - 4));
  for (const auto& [g, hf] : kLlamaLayerNames)
    if (local == g) return LlamaTensorName{"model.layers." + std::to_string(layer) + "." + hf + ".weight", layer, local};
  return std::nullopt;
}

// ------------------------------------------------------------------ Q/K rows

// The inverse of convert_hf_to_gguf.py's LlamaModel.permute for a (rows, cols) weight whose
// rows are n_head heads of hd = rows / n_head: within each head, row 2j + i of the GGUF
// (ggml's adjacent pairs) is row i·hd/2 + j of Hugging Face's (the two halves), i ∈ {0, 1}.
//   in, out: (rows, cols) row-major, distinct buffers
inline void unpermute_rope_rows(const float* in, float* out, int64_t rows, int64_t cols, int64_t n_head) {
  const int64_t hd = rows / n_head, half = hd / 2;
  for (int64_t h = 0; h < n_head; ++h)
    for (int64_t i = 0; i < 2; ++i)
      for (int64_t j = 0; j < half; ++j)
        std::memcpy(out + (h * hd + i * half + j) * cols, in + (h * hd + 2 * j + i) * cols, sizeof(float) * cols);
}

// ------------------------------------------------------------------ config

namespace detail::gguf_convert {

// A float32 stored in GGUF widened to double prints as 9.99999974738e-06; transformers'
// config (and tools/convert_smollm2.py) carry the value the model was trained with, 1e-05,
// which is the float32's shortest 6-significant-digit spelling.
inline double round_f32(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return std::strtod(buf, nullptr);
}

inline json optional_id(const GgufMetadata& md, const std::string& key) {
  return md.contains(key) ? json(md.get_int(key)) : json(nullptr);
}

}  // namespace detail::gguf_convert

// config.json for a llama-family GGUF (general.architecture "llama", or "mistral", which
// llama.cpp writes with the same keys): the keys transformers' LlamaConfig (MistralConfig)
// reads, from the metadata under the architecture's prefix. `torch_dtype` is what the weights
// will be written as. Validated by parsing it back (MistralConfig::from_json).
inline json gguf_llama_config(const GgufFile& g, const std::string& torch_dtype = "float32") {
  namespace dc = detail::gguf_convert;
  const GgufMetadata& md = g.metadata();
  const std::string& path = g.path();
  const std::string arch = md.get_string("general.architecture");
  GALVANI_CHECK(arch == "llama" || arch == "mistral", path, ": general.architecture is \"", arch,
                "\"; the GGUF converter handles the llama family (\"llama\", \"mistral\") only");
  const auto key = [&](const char* k) { return arch + "." + k; };
  if (md.contains(key("rope.scaling.type"))) {
    const std::string t = md.get_string(key("rope.scaling.type"));
    GALVANI_CHECK(t == "none", path, ": metadata '", key("rope.scaling.type"), "' is \"", t,
                  "\"; RoPE scaling is not converted (galvani's llama has plain RoPE)");
  }
  if (md.contains(key("expert_count")))
    GALVANI_CHECK(md.get_int(key("expert_count")) == 0, path, ": metadata '", key("expert_count"), "' = ",
                  md.get_int(key("expert_count")), ": mixture-of-experts models are not converted");

  const int64_t hidden = md.get_int(key("embedding_length"));
  const int64_t n_head = md.get_int(key("attention.head_count"));
  GALVANI_CHECK(n_head > 0 && hidden % n_head == 0, path, ": metadata '", key("attention.head_count"), "' = ", n_head,
                " does not divide '", key("embedding_length"), "' = ", hidden);
  const int64_t head_dim = md.contains(key("attention.key_length")) ? md.get_int(key("attention.key_length"))
                                                                      : hidden / n_head;
  if (md.contains(key("rope.dimension_count")))
    GALVANI_CHECK(md.get_int(key("rope.dimension_count")) == head_dim, path, ": metadata '",
                  key("rope.dimension_count"), "' = ", md.get_int(key("rope.dimension_count")),
                  " is not the head size ", head_dim, ": partial rotary embeddings are not converted");
  int64_t vocab = 0;
  if (md.contains(key("vocab_size"))) vocab = md.get_int(key("vocab_size"));
  else if (md.contains("tokenizer.ggml.tokens")) vocab = int64_t(md.get_string_array("tokenizer.ggml.tokens").size());
  else if (const GgufTensorInfo* t = g.find("token_embd.weight"); t && t->shape.size() == 2) vocab = t->shape[0];
  GALVANI_CHECK(vocab > 0, path, ": no vocabulary size (no '", key("vocab_size"),
                "', no tokenizer.ggml.tokens, no token_embd.weight)");
  const bool tied = !g.contains("output.weight");

  json c = json::object();
  c["architectures"] = json::array({arch == "llama" ? "LlamaForCausalLM" : "MistralForCausalLM"});
  c["model_type"] = arch;
  c["vocab_size"] = vocab;
  c["hidden_size"] = hidden;
  c["intermediate_size"] = md.get_int(key("feed_forward_length"));
  c["num_hidden_layers"] = md.get_int(key("block_count"));
  c["num_attention_heads"] = n_head;
  c["num_key_value_heads"] =
      md.contains(key("attention.head_count_kv")) ? md.get_int(key("attention.head_count_kv")) : n_head;
  c["head_dim"] = head_dim;
  c["hidden_act"] = "silu";
  c["max_position_embeddings"] = md.get_int(key("context_length"));
  c["initializer_range"] = 0.02;
  c["rms_norm_eps"] = dc::round_f32(md.get_float(key("attention.layer_norm_rms_epsilon")));
  c["rope_theta"] = md.contains(key("rope.freq_base")) ? md.get_float(key("rope.freq_base")) : 10000.0;
  c["attention_dropout"] = 0.0;
  c["use_cache"] = true;
  c["tie_word_embeddings"] = tied;
  c["bos_token_id"] = dc::optional_id(md, "tokenizer.ggml.bos_token_id");
  c["eos_token_id"] = dc::optional_id(md, "tokenizer.ggml.eos_token_id");
  c["pad_token_id"] = dc::optional_id(md, "tokenizer.ggml.padding_token_id");
  c["torch_dtype"] = torch_dtype;
  if (arch == "llama") {
    c["attention_bias"] = false;
    c["mlp_bias"] = false;
    c["pretraining_tp"] = 1;
    c["rope_scaling"] = nullptr;
  } else {
    c["sliding_window"] = md.contains(key("attention.sliding_window"))
                              ? json(md.get_int(key("attention.sliding_window"))) : json(nullptr);
  }
  (void)MistralConfig::from_json(c, path + " (config.json from its metadata)");
  return c;
}

// generation_config.json: the special ids, as tools/convert_smollm2.py writes them.
inline json gguf_generation_config(const json& config) {
  return json{{"bos_token_id", config["bos_token_id"]},
              {"eos_token_id", config["eos_token_id"]},
              {"pad_token_id", config["pad_token_id"]}};
}

// ------------------------------------------------------------------ tensors

// One tensor of the checkpoint: where it is in the GGUF, its Hugging Face name and shape, and
// the head count to un-permute its rows by (0: leave them).
struct GgufTensorPlan {
  const GgufTensorInfo* info = nullptr;
  std::string hf_name;
  Shape shape;                // PyTorch order; what the config implies, checked against the file
  int64_t unpermute_heads = 0;
};

// Every tensor of `g` mapped onto the llama layout that `config` (gguf_llama_config) implies,
// checked: names, layer indices, shapes, types that dequantize, none missing. File order.
inline std::vector<GgufTensorPlan> plan_gguf_llama_tensors(const GgufFile& g, const json& config) {
  const std::string& path = g.path();
  const MistralConfig c = MistralConfig::from_json(config, path);
  const int64_t C = c.hidden_size, hd = c.head_dim(), H = c.num_attention_heads, KV = c.num_key_value_heads;
  const int64_t I = c.intermediate_size, V = c.vocab_size, L = c.num_hidden_layers;
  const std::map<std::string, Shape> layer_shapes = {
      {"attn_norm", {C}},          {"attn_q", {H * hd, C}},  {"attn_k", {KV * hd, C}},
      {"attn_v", {KV * hd, C}},    {"attn_output", {C, H * hd}}, {"ffn_norm", {C}},
      {"ffn_gate", {I, C}},        {"ffn_up", {I, C}},       {"ffn_down", {C, I}},
  };
  std::vector<GgufTensorPlan> plan;
  std::map<std::string, bool> seen;
  for (const GgufTensorInfo& t : g.tensors()) {
    const auto n = gguf_llama_hf_name(t.name);
    GALVANI_CHECK(n, path, ": tensor '", t.name, "' (", t.type_name(), " ", shape_str(t.shape),
                  ") has no place in the llama layout (known: token_embd, output_norm, output, blk.N.{attn_norm, "
                  "attn_q, attn_k, attn_v, attn_output, ffn_norm, ffn_gate, ffn_up, ffn_down}.weight)");
    GALVANI_CHECK(n->layer < L, path, ": tensor '", t.name, "' is in layer ", n->layer, " but ",
                  config["model_type"].get<std::string>(), ".block_count is ", L);
    GgufTensorPlan p{&t, n->hf, {}, 0};
    if (n->layer < 0) p.shape = n->local == "output_norm.weight" ? Shape{C} : Shape{V, C};
    else p.shape = layer_shapes.at(n->local);
    if (n->local == "attn_q") p.unpermute_heads = H;
    if (n->local == "attn_k") p.unpermute_heads = KV;
    GALVANI_CHECK(t.shape == p.shape, path, ": tensor '", t.name, "' has shape ", shape_str(t.shape),
                  "; the config implies ", shape_str(p.shape), " for ", p.hf_name, " (hidden ", C, ", ", H, " heads, ",
                  KV, " key-value heads of ", hd, ", intermediate ", I, ", vocabulary ", V, ")");
    GALVANI_CHECK(ggml_can_dequantize(t.type), path, ": tensor '", t.name, "' has ggml type ", t.type_name(),
                  " (id ", uint32_t(t.type), "), which galvani cannot dequantize (it handles F32, F16, BF16, Q4_0, "
                  "Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K)");
    seen[t.name] = true;
    plan.push_back(std::move(p));
  }
  std::vector<std::string> want = {"token_embd.weight", "output_norm.weight"};
  if (!c.tie_word_embeddings) want.push_back("output.weight");
  for (int64_t l = 0; l < L; ++l)
    for (const auto& [local, hf] : kLlamaLayerNames) want.push_back("blk." + std::to_string(l) + "." + local + ".weight");
  for (const std::string& w : want)
    GALVANI_CHECK(seen.count(w), path, ": no tensor '", w, "' (", gguf_llama_hf_name(w)->hf, "), which ",
                  config["model_type"].get<std::string>(), ".block_count = ", L, " implies");
  return plan;
}

// Tensor `p` as Hugging Face holds it: dequantized to f32 and, for q_proj / k_proj,
// un-permuted. out: p.shape, row-major; scratch is reused between calls.
inline void read_gguf_hf_tensor(const GgufFile& g, const GgufTensorPlan& p, std::span<float> out,
                                std::vector<float>& scratch) {
  if (!p.unpermute_heads) return g.dequantize(*p.info, out);
  scratch.resize(out.size());
  g.dequantize(*p.info, scratch);
  unpermute_rope_rows(scratch.data(), out.data(), p.shape[0], p.shape[1], p.unpermute_heads);
}

// ------------------------------------------------------------------ tokenizer

struct GgufTokenizerFiles {
  json tokenizer;            // tokenizer.json
  json tokenizer_config;     // tokenizer_config.json
  json special_tokens_map;   // special_tokens_map.json
};

// The BPE merges a SentencePiece vocabulary implies, for a GGUF that stores pieces and scores
// but no merges (tokenizer.ggml.model "llama"). Exactly transformers' generate_merges(vocab,
// vocab_scores) (tokenization_utils_base.py, 5.x), which its GGUF loader and its
// SentencePiece → tokenizer.json converter both use:
//   for each piece, in vocabulary order: every split into two pieces that are both in the
//   vocabulary (split between code points), ordered by (id of left, id of right), with the
//   whole piece's score; then all of them stably sorted by (score, code-point length of left,
//   of right), highest first.
// With duplicate pieces, as with Python dicts: a piece's ids is its last id, its score the
// last one, and it is visited at its first position. Pieces must be valid UTF-8.
// Returns "left right" strings, the tokenizer.json (and tokenizer.ggml.merges) spelling.
inline std::vector<std::pair<std::string, std::string>> sentencepiece_merges(const std::vector<std::string>& pieces,
                                                                             const std::vector<double>& scores) {
  GALVANI_CHECK(pieces.size() == scores.size(), "sentencepiece_merges: ", pieces.size(), " pieces but ",
                scores.size(), " scores");
  std::unordered_map<std::string_view, size_t> id;     // last id (Python: {t: i for i, t in enumerate(tokens)})
  std::unordered_map<std::string_view, double> score;  // last score (dict(zip(tokens, scores)))
  id.reserve(pieces.size());
  score.reserve(pieces.size());
  for (size_t i = 0; i < pieces.size(); ++i) {
    id[pieces[i]] = i;
    score[pieces[i]] = scores[i];
  }
  struct Merge {
    std::string_view left, right;
    double score;
    size_t len_left, len_right;  // in code points
  };
  std::vector<Merge> merges;
  std::unordered_map<std::string_view, bool> visited;
  visited.reserve(pieces.size());
  std::vector<size_t> cuts;  // byte offsets of the code-point boundaries inside a piece
  for (const std::string& piece : pieces) {
    if (!visited.emplace(piece, true).second) continue;
    cuts.clear();
    for (size_t i = 0; i < piece.size();) {
      i += unicode::utf8_len(static_cast<unsigned char>(piece[i]));
      if (i < piece.size()) cuts.push_back(i);
    }
    const size_t n_cp = cuts.size() + 1;
    const size_t first = merges.size();
    for (size_t k = 0; k < cuts.size(); ++k) {
      const std::string_view whole(piece), l = whole.substr(0, cuts[k]), r = whole.substr(cuts[k]);
      if (id.count(l) && id.count(r)) merges.push_back({l, r, score.at(whole), k + 1, n_cp - k - 1});
    }
    std::stable_sort(merges.begin() + std::ptrdiff_t(first), merges.end(), [&](const Merge& a, const Merge& b) {
      return std::pair(id.at(a.left), id.at(a.right)) < std::pair(id.at(b.left), id.at(b.right));
    });
  }
  std::stable_sort(merges.begin(), merges.end(), [](const Merge& a, const Merge& b) {
    return std::tuple(a.score, a.len_left, a.len_right) > std::tuple(b.score, b.len_left, b.len_right);
  });
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(merges.size());
  for (const Merge& m : merges) out.emplace_back(std::string(m.left), std::string(m.right));
  return out;
}

namespace detail::gguf_convert {

inline json added_token(int64_t id, const std::string& content, bool normalized, bool special) {
  return {{"id", id},         {"content", content}, {"single_word", false}, {"lstrip", false},
          {"rstrip", false},  {"normalized", normalized}, {"special", special}};
}

// tokenizer.json's "model" for a byte-level BPE vocabulary with merges (tokenizer.ggml.model
// "gpt2"), and its pre-tokenizer from tokenizer.ggml.pre.
inline void gpt2_tokenizer(const GgufMetadata& md, const std::string& path, const std::vector<std::string>& tokens,
                           const std::vector<int64_t>& types, const json& unk, json& t) {
  const std::string pre = md.contains("tokenizer.ggml.pre") ? md.get_string("tokenizer.ggml.pre") : "default";
  const json bytelevel = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};
  json pre_tok;
  if (pre == "smollm")  // llama.cpp: "\p{N}" (each digit alone), then GPT-2's regex
    pre_tok = {{"type", "Sequence"},
               {"pretokenizers", json::array({json{{"type", "Digits"}, {"individual_digits", true}}, bytelevel})}};
  else if (pre == "gpt-2" || pre == "gpt2" || pre == "default")
    pre_tok = bytelevel;
  else
    throw Error(galvani::detail::cat(path, ": tokenizer.ggml.pre is \"", pre,
                                     "\"; the converter knows \"smollm\", \"gpt-2\" and \"default\""));

  const std::vector<std::string>& merges = md.get_string_array("tokenizer.ggml.merges");
  json vocab = json::object();
  for (size_t i = 0; i < tokens.size(); ++i) vocab[tokens[i]] = int64_t(i);
  json merge_pairs = json::array();
  for (size_t i = 0; i < merges.size(); ++i) {
    const size_t sp = merges[i].find(' ');
    GALVANI_CHECK(sp != std::string::npos, path, ": tokenizer.ggml.merges[", i, "] = \"", merges[i],
                  "\" is not two tokens separated by a space");
    merge_pairs.push_back(json::array({merges[i].substr(0, sp), merges[i].substr(sp + 1)}));
  }
  json added = json::array();
  for (size_t i = 0; i < tokens.size(); ++i)
    if (types[i] == 3 || types[i] == 4)  // CONTROL: special; USER_DEFINED: a plain added token
      added.push_back(added_token(int64_t(i), tokens[i], types[i] == 4, types[i] == 3));
  t["added_tokens"] = added;
  t["normalizer"] = nullptr;
  t["pre_tokenizer"] = pre_tok;
  t["post_processor"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", false}, {"use_regex", true}};
  t["decoder"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}};
  t["model"] = {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", unk}, {"continuing_subword_prefix", nullptr},
                {"end_of_word_suffix", nullptr}, {"fuse_unk", false}, {"byte_fallback", false}, {"ignore_merges", false},
                {"vocab", vocab}, {"merges", merge_pairs}};
}

// tokenizer.json for a SentencePiece BPE vocabulary (tokenizer.ggml.model "llama": pieces with
// "▁" for a space, scores, <0xNN> byte pieces, no merges), as transformers' GGUF loader builds
// it (LlamaTokenizer in integrations/gguf/gguf_tokenizer_mapping.py): merges recovered from the
// scores (sentencepiece_merges), byte fallback, Metaspace pre-tokenizer ("▁" prepended to the
// first word unless tokenizer.ggml.add_space_prefix is false), <s> (and </s>) added as
// add_bos_token / add_eos_token say, decoding "▁" → " " with the byte pieces fused back.
// One deliberate difference: transformers 5.24 ignores add_space_prefix = false (it still
// prepends "▁"); llama.cpp, which writes the key from SentencePiece's add_dummy_prefix, does
// not prepend, and neither do we.
inline void llama_tokenizer(const GgufMetadata& md, const std::string& path, const std::vector<std::string>& tokens,
                            const std::vector<int64_t>& types, const json& unk, bool add_bos, bool add_eos,
                            bool add_prefix, const json& bos, const json& eos, json& t) {
  GALVANI_CHECK(md.contains("tokenizer.ggml.scores"), path,
                ": tokenizer.ggml.model is \"llama\" but there is no tokenizer.ggml.scores; the merges of a "
                "SentencePiece vocabulary are recovered from its scores");
  const std::vector<double> scores = md.get_float_array("tokenizer.ggml.scores");
  GALVANI_CHECK(scores.size() == tokens.size(), path, ": tokenizer.ggml.scores has ", scores.size(),
                " entries, tokenizer.ggml.tokens ", tokens.size());
  json merge_pairs = json::array();
  if (md.contains("tokenizer.ggml.merges")) {  // newer files may carry them; take them as given
    for (const std::string& m : md.get_string_array("tokenizer.ggml.merges")) {
      const size_t sp = m.find(' ');
      GALVANI_CHECK(sp != std::string::npos, path, ": tokenizer.ggml.merges entry \"", m,
                    "\" is not two tokens separated by a space");
      merge_pairs.push_back(json::array({m.substr(0, sp), m.substr(sp + 1)}));
    }
  } else {
    for (auto& [l, r] : sentencepiece_merges(tokens, scores)) merge_pairs.push_back(json::array({l, r}));
  }
  json vocab = json::object();
  for (size_t i = 0; i < tokens.size(); ++i) vocab[tokens[i]] = int64_t(i);
  json added = json::array();
  for (size_t i = 0; i < tokens.size(); ++i)
    if (types[i] == 2 || types[i] == 3 || types[i] == 4)  // UNKNOWN, CONTROL: special; USER_DEFINED: plain
      added.push_back(added_token(int64_t(i), tokens[i], false, types[i] != 4));

  const std::string sp = "\xE2\x96\x81";  // "▁"
  json single = json::array(), pair = json::array(), specials = json::object();
  const auto special = [](const json& tok, int type_id) { return json{{"SpecialToken", {{"id", tok}, {"type_id", type_id}}}}; };
  const auto sequence = [](const char* id, int type_id) { return json{{"Sequence", {{"id", id}, {"type_id", type_id}}}}; };
  add_bos = add_bos && !bos.is_null();
  add_eos = add_eos && !eos.is_null();
  for (int part = 0; part < 2; ++part) {
    json& tmpl = part == 0 ? single : pair;
    for (int seq = 0; seq <= part; ++seq) {
      if (add_bos) tmpl.push_back(special(bos, seq));
      tmpl.push_back(sequence(seq == 0 ? "A" : "B", seq));
      if (add_eos) tmpl.push_back(special(eos, seq));
    }
  }
  for (const auto& [on, tok] : {std::pair{add_bos, bos}, std::pair{add_eos, eos}})
    if (on) specials[tok.get<std::string>()] = {{"id", tok}, {"ids", {vocab[tok.get<std::string>()]}}, {"tokens", {tok}}};
  json decoders = json::array({json{{"type", "Replace"}, {"pattern", {{"String", sp}}}, {"content", " "}},
                               json{{"type", "ByteFallback"}}, json{{"type", "Fuse"}}});
  if (add_prefix) decoders.push_back({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});

  t["added_tokens"] = added;
  t["normalizer"] = nullptr;
  t["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", sp},
                        {"prepend_scheme", add_prefix ? "first" : "never"}, {"split", false}};
  t["post_processor"] = {{"type", "TemplateProcessing"}, {"single", single}, {"pair", pair}, {"special_tokens", specials}};
  t["decoder"] = {{"type", "Sequence"}, {"decoders", decoders}};
  t["model"] = {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", unk}, {"continuing_subword_prefix", nullptr},
                {"end_of_word_suffix", nullptr}, {"fuse_unk", true}, {"byte_fallback", true}, {"ignore_merges", false},
                {"vocab", vocab}, {"merges", merge_pairs}};
}

}  // namespace detail::gguf_convert

// tokenizer.json (and its config files) rebuilt from tokenizer.ggml.*: the vocabulary in id
// order and
//   * "gpt2" (byte-level BPE): the file's merges, the pre-tokenizer llama.cpp names in
//     tokenizer.ggml.pre, ByteLevel post-processing and decoding (as tools/convert_smollm2.py
//     and transformers' GGUF loader rebuild it);
//   * "llama" (SentencePiece BPE): merges recovered from the scores, Metaspace, byte fallback,
//     <s> / </s> per add_bos_token / add_eos_token (llama_tokenizer above).
// Every CONTROL (3) token becomes an added special token and every USER_DEFINED (4) one an
// added plain token. Errors name the file and the key: an unknown tokenizer.ggml.model or
// .pre, arrays of different lengths, a special id outside the vocabulary, a token that is not
// valid UTF-8.
inline GgufTokenizerFiles gguf_tokenizer_files(const GgufMetadata& md, const std::string& path,
                                               const std::string& arch = "llama") {
  namespace dc = detail::gguf_convert;
  const std::string model = md.get_string("tokenizer.ggml.model");
  GALVANI_CHECK(model == "gpt2" || model == "llama", path, ": tokenizer.ggml.model is \"", model,
                "\"; tokenizer.json is rebuilt for \"gpt2\" (byte-level BPE with merges) and \"llama\" "
                "(SentencePiece BPE with scores and byte fallback) only");
  const bool spm = model == "llama";

  const std::vector<std::string>& tokens = md.get_string_array("tokenizer.ggml.tokens");
  for (size_t i = 0; i < tokens.size(); ++i)
    GALVANI_CHECK(unicode::is_valid_utf8(tokens[i]), path, ": tokenizer.ggml.tokens[", i,
                  "] is not valid UTF-8 (tokenizer.json holds text)");
  std::vector<int64_t> types = md.contains("tokenizer.ggml.token_type") ? md.get_int_array("tokenizer.ggml.token_type")
                                                                         : std::vector<int64_t>(tokens.size(), 1);
  GALVANI_CHECK(types.size() == tokens.size(), path, ": tokenizer.ggml.token_type has ", types.size(),
                " entries, tokenizer.ggml.tokens ", tokens.size());
  const auto token_of = [&](const char* which) -> json {
    const std::string k = std::string("tokenizer.ggml.") + which + "_token_id";
    if (!md.contains(k)) return nullptr;
    const int64_t id = md.get_int(k);
    GALVANI_CHECK(id >= 0 && size_t(id) < tokens.size(), path, ": metadata '", k, "' = ", id,
                  " is outside the vocabulary of ", tokens.size());
    return tokens[size_t(id)];
  };
  const auto flag = [&](const char* key, bool dflt) { return md.contains(key) ? md.get_bool(key) : dflt; };
  const json unk = token_of("unknown"), bos = token_of("bos"), eos = token_of("eos");
  // llama.cpp adds <s> to a SentencePiece vocabulary that does not say otherwise (so does
  // transformers' GGUF loader); a byte-level one adds nothing unless told.
  const bool add_bos = flag("tokenizer.ggml.add_bos_token", spm);
  const bool add_eos = flag("tokenizer.ggml.add_eos_token", false);
  const bool add_prefix = flag("tokenizer.ggml.add_space_prefix", true);

  GgufTokenizerFiles f;
  f.tokenizer = {{"version", "1.0"}, {"truncation", nullptr}, {"padding", nullptr}};
  if (spm)
    dc::llama_tokenizer(md, path, tokens, types, unk, add_bos, add_eos, add_prefix, bos, eos, f.tokenizer);
  else
    dc::gpt2_tokenizer(md, path, tokens, types, unk, f.tokenizer);

  std::vector<std::string> additional;  // every CONTROL token, as transformers' GGUF loader adds them
  for (size_t i = 0; i < tokens.size(); ++i)
    if (types[i] == 3) additional.push_back(tokens[i]);
  json specials = json::object();
  for (const auto& [name, which] : {std::pair{"bos_token", "bos"}, std::pair{"eos_token", "eos"},
                                    std::pair{"unk_token", "unknown"}, std::pair{"pad_token", "padding"}}) {
    json t = token_of(which);
    if (!t.is_null()) specials[name] = t;
  }
  const std::string ctx = arch + ".context_length";
  json tc = {
      {"tokenizer_class", spm ? "LlamaTokenizer" : "GPT2Tokenizer"},
      {"add_bos_token", add_bos},
      {"clean_up_tokenization_spaces", false},
      {"model_max_length", md.contains(ctx) ? md.get_int(ctx) : int64_t(2048)},
      {"additional_special_tokens", additional},
  };
  if (spm) {
    tc["add_eos_token"] = add_eos;
    tc["add_prefix_space"] = add_prefix;
    tc["legacy"] = false;
  } else {
    tc["add_prefix_space"] = false;
  }
  for (const auto& [k, v] : specials.items()) tc[k] = v;
  if (md.contains("tokenizer.chat_template")) tc["chat_template"] = md.get_string("tokenizer.chat_template");
  f.tokenizer_config = tc;
  f.special_tokens_map = specials;
  f.special_tokens_map["additional_special_tokens"] = additional;
  return f;
}

// ------------------------------------------------------------------ the whole directory

struct GgufConvertOptions {
  DType dtype = DType::f32;  // f32 (the dequantized values exactly), bf16 or f16
  // Called before each tensor is converted: (index from 0, count, GGUF name, HF name).
  std::function<void(size_t, size_t, const std::string&, const std::string&)> progress;
};

struct GgufConvertReport {
  std::string source;                      // the GGUF's path
  std::string sha256;                      // of the whole GGUF file
  std::map<std::string, int64_t> tensor_types;  // ggml type name → tensor count
  size_t n_tensors = 0;
  int64_t n_parameters = 0;
  uint64_t safetensors_bytes = 0;
  bool tied = false;
  json config;
};

namespace detail::gguf_convert {

inline void write_text(const std::filesystem::path& p, const std::string& text) {
  std::ofstream f(p, std::ios::binary);
  GALVANI_CHECK(f, p.string(), ": cannot open for writing");
  f << text;
  GALVANI_CHECK(f.good(), p.string(), ": write failed");
}

// model.safetensors written tensor by tensor: the header is known from the plan, so only one
// tensor's values are in memory at a time (peak: the mapped GGUF pages being read + ~2 tensors).
inline uint64_t write_safetensors_streaming(const GgufFile& g, std::vector<GgufTensorPlan> plan,
                                            const std::filesystem::path& path, DType dtype,
                                            const Metadata& metadata, const GgufConvertOptions& opts) {
  std::sort(plan.begin(), plan.end(), [](const auto& a, const auto& b) { return a.hf_name < b.hf_name; });
  const size_t es = itemsize(dtype);
  json header = json::object();
  json meta = json::object();
  for (const auto& [k, v] : metadata) meta[k] = v;
  header["__metadata__"] = meta;
  uint64_t offset = 0;
  for (const auto& p : plan) {
    int64_t n = 1;
    for (int64_t d : p.shape) n *= d;
    header[p.hf_name] = {{"dtype", st_dtype_name(to_st_dtype(dtype))},
                         {"shape", p.shape},
                         {"data_offsets", {offset, offset + uint64_t(n) * es}}};
    offset += uint64_t(n) * es;
  }
  // nlohmann orders keys; "__metadata__" sorts before every "lm_head"/"model." name.
  std::string h = header.dump(-1, ' ', false, json::error_handler_t::strict);
  h.append((8 - h.size() % 8) % 8, ' ');

  galvani::io::detail::write_file_atomically(path, [&](const auto& put) {
    uint8_t len[8];
    for (int i = 0; i < 8; ++i) len[i] = uint8_t(uint64_t(h.size()) >> (8 * i));
    put(len, 8);
    put(h.data(), h.size());
    std::vector<float> values, scratch;
    std::vector<uint16_t> half;
    for (size_t i = 0; i < plan.size(); ++i) {
      const GgufTensorPlan& p = plan[i];
      if (opts.progress) opts.progress(i, plan.size(), p.info->name, p.hf_name);
      values.resize(size_t(p.info->numel));
      read_gguf_hf_tensor(g, p, values, scratch);
      if (dtype == DType::f32) {
        put(values.data(), values.size() * 4);
        continue;
      }
      half.resize(values.size());
      for (size_t k = 0; k < values.size(); ++k)
        half[k] = dtype == DType::bf16 ? bf16::from_float(values[k]) : f16::from_float(values[k]);
      put(half.data(), half.size() * 2);
    }
  });
  return 8 + h.size() + offset;
}

}  // namespace detail::gguf_convert

// The whole conversion: `gguf_path` → `out_dir` (created; the files listed at the top are
// overwritten). Everything is validated before the first file is written.
inline GgufConvertReport convert_gguf_to_hf(const std::filesystem::path& gguf_path, const std::filesystem::path& out_dir,
                                            const GgufConvertOptions& opts = {}) {
  namespace dc = detail::gguf_convert;
  GALVANI_CHECK(opts.dtype == DType::f32 || opts.dtype == DType::bf16 || opts.dtype == DType::f16,
                "convert_gguf_to_hf: dtype ", dtype_name(opts.dtype), " (want f32, bf16 or f16)");
  const GgufFile g = GgufFile::open(gguf_path, MappedFile::Mode::read_only);
  GgufConvertReport r;
  r.source = g.path();
  r.config = gguf_llama_config(g, torch_dtype_name(opts.dtype));
  const std::string arch = r.config["model_type"].get<std::string>();
  const GgufTokenizerFiles tok = gguf_tokenizer_files(g.metadata(), g.path(), arch);
  const std::vector<GgufTensorPlan> plan = plan_gguf_llama_tensors(g, r.config);
  r.tied = r.config["tie_word_embeddings"].get<bool>();
  r.n_tensors = plan.size();
  for (const auto& p : plan) {
    r.tensor_types[p.info->type_name()]++;
    r.n_parameters += p.info->numel;
  }
  {
    const auto* data = reinterpret_cast<const uint8_t*>(g.mapped_file()->data());
    r.sha256 = sha256_hex({data, g.file_size()});
  }

  std::filesystem::create_directories(out_dir);
  const std::string base = std::filesystem::path(g.path()).filename().string();
  r.safetensors_bytes = dc::write_safetensors_streaming(
      g, plan, out_dir / "model.safetensors", opts.dtype,
      {{"format", "pt"}, {"source", base}, {"source_sha256", r.sha256}}, opts);
  write_json_file(out_dir / "config.json", r.config);
  write_json_file(out_dir / "generation_config.json", gguf_generation_config(r.config));
  write_json_file(out_dir / "tokenizer.json", tok.tokenizer, -1);
  write_json_file(out_dir / "tokenizer_config.json", tok.tokenizer_config);
  write_json_file(out_dir / "special_tokens_map.json", tok.special_tokens_map);

  const GgufMetadata& md = g.metadata();
  std::string types;
  for (const auto& [t, n] : r.tensor_types) types += (types.empty() ? "" : ", ") + t + " × " + std::to_string(n);
  std::string md_text = "# " + (md.contains("general.name") ? md.get_string("general.name") : std::string("model")) +
                        "\n\nConverted by galvani `convert_gguf` (include/galvani/io/gguf_convert.hpp) from `" + base +
                        "`.\n\n| | |\n| --- | --- |\n| source | `" + base + "` (" + std::to_string(g.file_size()) +
                        " bytes, GGUF v" + std::to_string(g.version()) + ") |\n| sha256 | `" + r.sha256 +
                        "` |\n| architecture | " + md.get_string("general.architecture") + " → " +
                        r.config["architectures"][0].get<std::string>() + " |\n| GGUF tensor types | " + types +
                        " |\n| written as | " + r.config["torch_dtype"].get<std::string>() + ", " +
                        std::to_string(r.n_tensors) + " tensors, " + std::to_string(r.n_parameters) +
                        " parameters (lm_head tied: " + (r.tied ? "yes" : "no") + ") |\n| tokenizer | " +
                        md.get_string("tokenizer.ggml.model") + ", pre-tokenizer " +
                        (md.contains("tokenizer.ggml.pre") ? md.get_string("tokenizer.ggml.pre") : std::string("default")) +
                        ", " + std::to_string(md.get_string_array("tokenizer.ggml.tokens").size()) + " tokens |\n";
  if (md.contains("general.license") && gguf_type_of(md.at("general.license")) == GgufType::STRING)
    md_text += "| licence | " + md.get_string("general.license") + " |\n";
  md_text += "\nThe weights are the GGUF's dequantized values (exact in float32); the query and key rows are\n"
             "un-permuted back to Hugging Face's rotate_half layout.\n";
  dc::write_text(out_dir / "CONVERSION.md", md_text);
  return r;
}

}  // namespace galvani::io
