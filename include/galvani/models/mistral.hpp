// models/mistral.hpp — Mistral and Llama, with MistralForCausalLM / LlamaForCausalLM
// semantics (transformers 5). Member names are the checkpoint's: model.embed_tokens,
// model.layers.{i}.self_attn.q_proj, … so a Hugging Face state dict maps by name.
//
//   x = embed_tokens[ids]                                    (B, T, C)
//   for each layer:
//     x += o_proj(attn(rope(q_proj(n)), rope(k_proj(n)), v_proj(n)))   n = input_layernorm(x)
//     x += down_proj(silu(gate_proj(n)) ⊙ up_proj(n))                    n = post_attention_layernorm(x)
//   logits = lm_head(norm(x))                                (B, T, V)
//
// What differs from GPT-2: RMSNorm instead of LayerNorm, rotary position embeddings (HF's
// half-split layout, ops/rope.hpp) instead of learned positions, grouped-query attention
// (num_key_value_heads < num_attention_heads: each kv head serves H / Hkv query heads), a
// SwiGLU MLP, no biases (Llama may have them: attention_bias, mlp_bias), a sliding-window
// causal mask (Mistral), and an lm_head of its own unless tie_word_embeddings.
//
// Mistral-7B-v0.1: C = 4096, 32 layers, 32 query heads and 8 kv heads of D = 128, MLP width
// 14336, V = 32000, window 4096 — 7.24 B parameters, 291 tensors.
//
// Positions. HF's model forward numbers the new tokens past + 0 … past + T − 1 (its
// cache_position) whatever the attention mask says; so does forward() here. HF's generate()
// instead derives position ids from the mask (cumsum − 1) so that a left-padded row starts
// at position 0; forward_with_positions() takes such ids. For right padding (what the
// course's collator makes) the two agree.
//
// Sliding window. transformers' masking_utils lets query i see key j when
// i − sliding_window < j <= i (sliding_window_overlay and causal_mask_function), i.e.
// 0 <= i − j < sliding_window: the window counts the query's own position. That is exactly
// AttentionOptions::sliding_window's rule, so config.sliding_window is passed as it is. The
// fixture (tools/gen_mistral_fixtures.py, T = 24 > window 8) pins this: windows 7 and 9
// give different logits. HF's sliding-window KV cache keeps the last window − 1 keys; this
// one keeps every position and lets the mask skip the old ones (the kernel computes scores
// only for the visible keys), which gives the same numbers.
#pragma once
#include <memory>
#include <optional>

#include "../io/config.hpp"
#include "../nn/layers.hpp"
#include "../ops/attention.hpp"
#include "../ops/rope.hpp"
#include "causal_lm.hpp"
#include "load_streaming.hpp"

namespace galvani {

using io::MistralConfig;  // parsed from config.json by io/config.hpp (model_type mistral or llama)

namespace detail {

// nn.Embedding(padding_idx=pad): the lookup sends no gradient to row `pad`. x (B, T, C) is
// the looked-up embedding of ids (B, T); the gradient of the positions holding `pad` is
// dropped before it reaches the table. (With tied embeddings lm_head's gradient still
// reaches that row, as in torch.)
inline Tensor stop_padding_grad(const Tensor& x, const Tensor& ids, int64_t pad) {
  std::vector<int64_t> rows;  // flattened (b, t) positions that hold the pad token
  const std::vector<int64_t> v = ids.to_vector<int64_t>();
  for (size_t i = 0; i < v.size(); ++i)
    if (v[i] == pad) rows.push_back(int64_t(i));
  if (rows.empty()) return x;
  const int64_t C = x.size(-1);
  return record("embedding padding_idx", x.detach(), {x}, [rows, C](const Tensor& g, const Needs&) -> Grads {
    Tensor d = g.contiguous().clone();
    visit_float(d.dtype(), "embedding padding_idx backward", [&]<class T>() {
      T* p = d.data<T>();
      for (int64_t r : rows) std::fill_n(p + r * C, C, T(0));
    });
    return {d};
  });
}

inline Tensor offset_positions(int64_t T, int64_t past) {
  Tensor pos = Tensor::arange(T, DType::i64);
  int64_t* p = pos.data<int64_t>();
  for (int64_t i = 0; i < T; ++i) p[i] += past;
  return pos;
}

}  // namespace detail

struct MistralAttention : Module {
  Linear q_proj;  // (H·D, C)
  Linear k_proj;  // (Hkv·D, C)
  Linear v_proj;  // (Hkv·D, C)
  Linear o_proj;  // (C, H·D)
  int64_t n_head, n_kv_head, head_dim;
  double rope_theta;
  int64_t sliding_window;    // 0 = none (Llama)
  double attention_dropout;  // dropout on the attention probabilities, train mode only
  Generator* gen;            // the model's generator: draws that dropout's masks

  MistralAttention(const MistralConfig& cfg, Generator& g)
      : q_proj(cfg.hidden_size, cfg.num_attention_heads * cfg.head_dim(), cfg.attention_bias, g, cfg.initializer_range),
        k_proj(cfg.hidden_size, cfg.num_key_value_heads * cfg.head_dim(), cfg.attention_bias, g, cfg.initializer_range),
        v_proj(cfg.hidden_size, cfg.num_key_value_heads * cfg.head_dim(), cfg.attention_bias, g, cfg.initializer_range),
        o_proj(cfg.num_attention_heads * cfg.head_dim(), cfg.hidden_size, cfg.attention_bias, g, cfg.initializer_range),
        n_head(cfg.num_attention_heads), n_kv_head(cfg.num_key_value_heads), head_dim(cfg.head_dim()),
        rope_theta(cfg.rope_theta), sliding_window(cfg.is_llama() ? 0 : cfg.sliding_window.value_or(0)),
        attention_dropout(cfg.attention_dropout), gen(&g) {
    child("q_proj", q_proj);
    child("k_proj", k_proj);
    child("v_proj", v_proj);
    child("o_proj", o_proj);
  }

  // x (B, T, C), positions (T) or (B, T) → (B, T, C). With a cache, the keys and values of
  // earlier positions come from it and this step's are appended.
  Tensor forward(const Tensor& x, const Tensor& positions, const Tensor& key_mask, KVCache* cache,
                 int64_t layer) const {
    const int64_t B = x.size(0), T = x.size(1), H = n_head, Hkv = n_kv_head, D = head_dim;
    Tensor q = q_proj.forward(x).view({B, T, H, D}).transpose(1, 2);    // (B, H, T, D)
    Tensor k = k_proj.forward(x).view({B, T, Hkv, D}).transpose(1, 2);  // (B, Hkv, T, D)
    Tensor v = v_proj.forward(x).view({B, T, Hkv, D}).transpose(1, 2);  // (B, Hkv, T, D)
    q = rope(q, positions, rope_theta);  // keys are cached already rotated, as in HF
    k = rope(k, positions, rope_theta);
    if (cache) std::tie(k, v) = cache->append(layer, k, v);  // (B, Hkv, past + T, D)
    AttentionOptions opt;
    opt.causal = true;
    opt.sliding_window = sliding_window;  // HF's convention, see the header comment
    opt.key_padding_mask = key_mask;
    opt.dropout_p = is_training() ? attention_dropout : 0.0;  // HF: dropout=0.0 if not self.training
    opt.gen = gen;
    Tensor y = scaled_dot_product_attention(q, k, v, opt);  // (B, H, T, D); GQA inside, no repeat_kv copy
    return o_proj.forward(y.transpose(1, 2).reshape({B, T, H * D}));
  }
};

struct MistralMLP : Module {
  Linear gate_proj;  // (I, C)
  Linear up_proj;    // (I, C)
  Linear down_proj;  // (C, I)
  MistralMLP(const MistralConfig& cfg, Generator& g)
      : gate_proj(cfg.hidden_size, cfg.intermediate_size, cfg.mlp_bias, g, cfg.initializer_range),
        up_proj(cfg.hidden_size, cfg.intermediate_size, cfg.mlp_bias, g, cfg.initializer_range),
        down_proj(cfg.intermediate_size, cfg.hidden_size, cfg.mlp_bias, g, cfg.initializer_range) {
    child("gate_proj", gate_proj);
    child("up_proj", up_proj);
    child("down_proj", down_proj);
  }
  // x (B, T, C) → (B, T, C) through (B, T, I)
  Tensor forward(const Tensor& x) const {
    return down_proj.forward(silu_mul(gate_proj.forward(x), up_proj.forward(x)));
  }
};

// Members in HF's registration order, so named_parameters() lists tensors as torch does.
struct MistralDecoderLayer : Module {
  MistralAttention self_attn;
  MistralMLP mlp;
  RMSNorm input_layernorm;
  RMSNorm post_attention_layernorm;
  MistralDecoderLayer(const MistralConfig& cfg, Generator& g)
      : self_attn(cfg, g), mlp(cfg, g), input_layernorm(cfg.hidden_size, cfg.rms_norm_eps),
        post_attention_layernorm(cfg.hidden_size, cfg.rms_norm_eps) {
    child("self_attn", self_attn);
    child("mlp", mlp);
    child("input_layernorm", input_layernorm);
    child("post_attention_layernorm", post_attention_layernorm);
  }
  Tensor forward(const Tensor& x, const Tensor& positions, const Tensor& key_mask, KVCache* cache,
                 int64_t layer) const {
    Tensor h = x + self_attn.forward(input_layernorm.forward(x), positions, key_mask, cache, layer);
    return h + mlp.forward(post_attention_layernorm.forward(h));
  }
};

class MistralForCausalLM : public CausalLM {
 public:
  MistralConfig config;

 private:
  Generator gen_;  // initialisation, then attention-dropout masks

 public:
  struct Model : Module {
    Embedding embed_tokens;  // (V, C)
    std::vector<std::unique_ptr<MistralDecoderLayer>> layers;
    RMSNorm norm;
    Model(const MistralConfig& cfg, Generator& g)
        : embed_tokens(cfg.vocab_size, cfg.hidden_size, g, cfg.initializer_range),
          norm(cfg.hidden_size, cfg.rms_norm_eps) {
      child("embed_tokens", embed_tokens);
      for (int64_t i = 0; i < cfg.num_hidden_layers; ++i) {
        layers.push_back(std::make_unique<MistralDecoderLayer>(cfg, g));
        child("layers." + std::to_string(i), *layers.back());
      }
      child("norm", norm);
    }
  } model;
  std::unique_ptr<Linear> lm_head;  // (V, C); null when tie_word_embeddings (embed_tokens is the head)

  // A randomly initialised model (HF's _init_weights: N(0, initializer_range) for Linear and
  // Embedding, zero biases, ones for RMSNorm, a zero padding_idx row); load weights over it.
  explicit MistralForCausalLM(const MistralConfig& cfg, uint64_t seed = 0)
      : config((check_supported(cfg), cfg)), gen_(seed), model(config, gen_) {
    child("model", model);
    if (!config.tie_word_embeddings) {
      lm_head = std::make_unique<Linear>(config.hidden_size, config.vocab_size, false, gen_, config.initializer_range);
      child("lm_head", *lm_head);
    }
    if (auto pad = padding_idx()) {
      Tensor row = model.embed_tokens.weight.select(0, *pad);
      copy_into(row, Tensor::zeros(row.shape(), row.dtype()));
    }
  }

  // Build the model config.json in `dir` describes and stream its weights in, one tensor at
  // a time (models/load_streaming.hpp): peak memory is the model plus about one tensor.
  static std::unique_ptr<MistralForCausalLM> from_pretrained(const std::filesystem::path& dir) {
    io::ModelConfig mc = io::load_model_config(dir / "config.json");
    const auto* cfg = std::get_if<MistralConfig>(&mc);
    GALVANI_CHECK(cfg, (dir / "config.json").string(), ": model_type \"", io::model_type_of(mc),
                  "\" is not mistral or llama");
    auto m = std::make_unique<MistralForCausalLM>(*cfg);
    m->load_weights_streaming(dir);
    return m;
  }

  // Reseed the attention-dropout masks (as GPT2LMHeadModel::set_seed).
  void set_seed(uint64_t seed) override { gen_ = Generator(seed); }

  // Stream a checkpoint (file, index or directory) into this model's parameters.
  StreamLoadReport load_weights_streaming(const std::filesystem::path& path, bool strict = true) {
    return load_parameters_streaming(*this, path, config.model_type, strict);
  }

  // The output projection: lm_head.weight, or embed_tokens.weight when tied.
  const Tensor& lm_head_weight() const { return lm_head ? lm_head->weight : model.embed_tokens.weight; }

  // nn.Embedding's padding_idx: config.pad_token_id when it names a row of the table.
  std::optional<int64_t> padding_idx() const {
    if (config.pad_token_id && *config.pad_token_id >= 0 && *config.pad_token_id < config.vocab_size)
      return config.pad_token_id;
    return std::nullopt;
  }

  Tensor forward(const Tensor& input_ids, const Tensor& attention_mask = Tensor(), KVCache* cache = nullptr) override {
    return forward_with_positions(input_ids, attention_mask, cache, Tensor());
  }

  // forward() with explicit position ids (T) or (B, T), i64 — e.g. generate()'s
  // cumsum(mask) − 1 for left-padded rows. Undefined: past + arange(T).
  Tensor forward_with_positions(const Tensor& input_ids, const Tensor& attention_mask, KVCache* cache,
                                const Tensor& position_ids) {
    const char* who = config.is_llama() ? "Llama" : "Mistral";
    GALVANI_CHECK(input_ids.dim() == 2, who, ": input_ids must be (B, T), got ", shape_str(input_ids.shape()));
    const int64_t B = input_ids.size(0), T = input_ids.size(1);
    const int64_t past = cache ? cache->length : 0;
    GALVANI_CHECK(!attention_mask.defined() || attention_mask.shape() == (Shape{B, past + T}), who,
                  ": attention_mask must be (B, past + T) = ", shape_str(Shape{B, past + T}), ", got ",
                  shape_str(attention_mask.shape()));
    GALVANI_CHECK(!position_ids.defined() || position_ids.shape() == (Shape{T}) || position_ids.shape() == (Shape{B, T}),
                  who, ": position_ids must be (T) or (B, T) = ", shape_str(Shape{B, T}), ", got ",
                  shape_str(position_ids.shape()));
    const Tensor pos = position_ids.defined() ? position_ids : detail::offset_positions(T, past);

    Tensor x = model.embed_tokens.forward(input_ids);  // (B, T, C)
    if (auto pad = padding_idx(); pad && model.embed_tokens.weight.requires_grad())
      x = detail::stop_padding_grad(x, input_ids, *pad);
    for (size_t i = 0; i < model.layers.size(); ++i)
      x = model.layers[i]->forward(x, pos, attention_mask, cache, int64_t(i));
    if (cache) cache->length += T;
    x = model.norm.forward(x);
    return linear(x, lm_head_weight());  // (B, T, V)
  }

  KVCache new_cache(int64_t batch, int64_t max_len) const override {
    return KVCache(config.num_hidden_layers, batch, config.num_key_value_heads,
                   std::min(max_len, config.max_position_embeddings), config.head_dim(),
                   model.embed_tokens.weight.dtype());
  }
  int64_t vocab_size() const override { return config.vocab_size; }
  int64_t context_length() const override { return config.max_position_embeddings; }
  std::vector<int64_t> eos_token_ids() const override { return config.eos_token_id; }
  nlohmann::json config_json() const override { return config.to_json(); }

 private:
  static void check_supported(const MistralConfig& cfg) {
    cfg.validate();
    GALVANI_CHECK(cfg.hidden_act == "silu", "Mistral: hidden_act \"", cfg.hidden_act, "\" is not supported (silu is)");
    GALVANI_CHECK(cfg.rope_type == "default", "Mistral: rope_type \"", cfg.rope_type,
                  "\" is not supported (only the default RoPE; no scaling)");
  }
};

// Llama is the same network without the sliding window (config.model_type "llama").
using LlamaForCausalLM = MistralForCausalLM;

}  // namespace galvani
