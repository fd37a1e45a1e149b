// models/gpt2.hpp — GPT-2 with GPT2LMHeadModel semantics (DistilGPT-2 is a GPT-2
// config with 6 layers). Member names are the checkpoint's: transformer.wte,
// transformer.h.{i}.attn.c_attn, … so a Hugging Face state dict maps by name.
//
//   x = wte[ids] + wpe[pos]                      (B, T, C), then dropout
//   for each block:  x += attn(ln_1(x));  x += mlp(ln_2(x))
//   logits = ln_f(x) · wteᵀ                      (B, T, V) — lm_head is tied to wte
#pragma once
#include <cmath>
#include <memory>

#include "../io/config.hpp"
#include "../nn/layers.hpp"
#include "../ops/attention.hpp"
#include "causal_lm.hpp"

namespace galvani {

using io::GPT2Config;  // parsed from config.json by io/config.hpp

struct GPT2Attention : Module {
  Conv1D c_attn;  // (C, 3C): q, k, v side by side
  Conv1D c_proj;  // (C, C)
  Dropout resid_dropout;
  int64_t n_head;
  double attn_pdrop;  // dropout on the attention probabilities, train mode only (HF's attn_dropout)
  Generator* gen;     // the model's generator: draws that dropout's masks

  GPT2Attention(const GPT2Config& cfg, Generator& g)
      : c_attn(cfg.n_embd, 3 * cfg.n_embd, g, cfg.initializer_range),
        // GPT-2's scaled init: residual projections get std / sqrt(2 · n_layer).
        c_proj(cfg.n_embd, cfg.n_embd, g, cfg.initializer_range / std::sqrt(2.0 * double(cfg.n_layer))),
        resid_dropout(cfg.resid_pdrop, g), n_head(cfg.n_head), attn_pdrop(cfg.attn_pdrop), gen(&g) {
    child("c_attn", c_attn);
    child("c_proj", c_proj);
    child("resid_dropout", resid_dropout);  // no parameters; registered so eval() reaches it
  }

  // x (B, T, C) → (B, T, C). With a cache, keys/values of earlier positions come from it.
  Tensor forward(const Tensor& x, const Tensor& key_mask, KVCache* cache, int64_t layer) const {
    const int64_t B = x.size(0), T = x.size(1), C = x.size(2), D = C / n_head;
    Tensor qkv = c_attn.forward(x).view({B, T, 3, n_head, D}).permute({2, 0, 3, 1, 4});  // (3, B, H, T, D)
    Tensor q = qkv.select(0, 0), k = qkv.select(0, 1), v = qkv.select(0, 2);
    AttentionOptions opt;
    opt.causal = true;
    opt.key_padding_mask = key_mask;
    opt.dropout_p = is_training() ? attn_pdrop : 0.0;
    opt.gen = gen;
    if (cache) std::tie(k, v) = cache->append(layer, k, v);
    Tensor y = scaled_dot_product_attention(q, k, v, opt);  // (B, H, T, D)
    y = y.transpose(1, 2).reshape({B, T, C});
    return resid_dropout.forward(c_proj.forward(y));
  }
};

struct GPT2MLP : Module {
  Conv1D c_fc;    // (C, 4C)
  Conv1D c_proj;  // (4C, C)
  Dropout dropout;
  GPT2MLP(const GPT2Config& cfg, Generator& g)
      : c_fc(cfg.n_embd, cfg.inner_dim(), g, cfg.initializer_range),
        c_proj(cfg.inner_dim(), cfg.n_embd, g, cfg.initializer_range / std::sqrt(2.0 * double(cfg.n_layer))),
        dropout(cfg.resid_pdrop, g) {
    child("c_fc", c_fc);
    child("c_proj", c_proj);
    child("dropout", dropout);
  }
  Tensor forward(const Tensor& x) const { return dropout.forward(c_proj.forward(gelu_tanh(c_fc.forward(x)))); }
};

struct GPT2Block : Module {
  LayerNorm ln_1;
  GPT2Attention attn;
  LayerNorm ln_2;
  GPT2MLP mlp;
  GPT2Block(const GPT2Config& cfg, Generator& g)
      : ln_1(cfg.n_embd, cfg.layer_norm_epsilon), attn(cfg, g), ln_2(cfg.n_embd, cfg.layer_norm_epsilon), mlp(cfg, g) {
    child("ln_1", ln_1);
    child("attn", attn);
    child("ln_2", ln_2);
    child("mlp", mlp);
  }
  Tensor forward(const Tensor& x, const Tensor& key_mask, KVCache* cache, int64_t layer) const {
    Tensor h = x + attn.forward(ln_1.forward(x), key_mask, cache, layer);
    return h + mlp.forward(ln_2.forward(h));
  }
};

class GPT2LMHeadModel : public CausalLM {
 public:
  GPT2Config config;

 private:
  Generator gen_;  // initialisation, then dropout masks

 public:
  struct Transformer : Module {
    Embedding wte;  // (V, C), also the lm_head
    Embedding wpe;  // (n_positions, C)
    Dropout drop;
    std::vector<std::unique_ptr<GPT2Block>> h;
    LayerNorm ln_f;
    Transformer(const GPT2Config& cfg, Generator& g)
        : wte(cfg.vocab_size, cfg.n_embd, g, cfg.initializer_range),
          wpe(cfg.n_positions, cfg.n_embd, g, cfg.initializer_range),
          drop(cfg.embd_pdrop, g),
          ln_f(cfg.n_embd, cfg.layer_norm_epsilon) {
      child("wte", wte);
      child("wpe", wpe);
      child("drop", drop);
      for (int64_t i = 0; i < cfg.n_layer; ++i) {
        h.push_back(std::make_unique<GPT2Block>(cfg, g));
        child("h." + std::to_string(i), *h.back());
      }
      child("ln_f", ln_f);
    }
  } transformer;

  // A randomly initialised model (HF's _init_weights); load weights over it.
  explicit GPT2LMHeadModel(const GPT2Config& cfg, uint64_t seed = 0)
      : config((cfg.validate(), cfg)), gen_(seed), transformer(config, gen_) {
    GALVANI_CHECK(config.activation_function == "gelu_new" || config.activation_function == "gelu_pytorch_tanh",
                  "GPT2: activation_function \"", config.activation_function, "\" is not supported (gelu_new is)");
    GALVANI_CHECK(config.tie_word_embeddings, "GPT2: untied lm_head is not supported (tie_word_embeddings=false)");
    child("transformer", transformer);
  }

  // Reseed the dropout masks (the Trainer does this from its seed).
  void set_seed(uint64_t seed) override { gen_ = Generator(seed); }

  Tensor forward(const Tensor& input_ids, const Tensor& attention_mask = Tensor(), KVCache* cache = nullptr) override {
    GALVANI_CHECK(input_ids.dim() == 2, "GPT2: input_ids must be (B, T), got ", shape_str(input_ids.shape()));
    const int64_t B = input_ids.size(0), T = input_ids.size(1);
    const int64_t past = cache ? cache->length : 0;
    GALVANI_CHECK(past + T <= config.n_positions, "GPT2: ", past + T, " positions exceed the context length ",
                  config.n_positions, " (truncate the input)");
    GALVANI_CHECK(!attention_mask.defined() || attention_mask.shape() == (Shape{B, past + T}),
                  "GPT2: attention_mask must be (B, past + T) = ", shape_str(Shape{B, past + T}), ", got ",
                  shape_str(attention_mask.shape()));
    // Positions count from the first cached token, as GPT2Model does with cache_position.
    Tensor pos = Tensor::arange(T, DType::i64);
    if (past) pos = add_scalar_ids(pos, past);
    Tensor x = transformer.drop.forward(transformer.wte.forward(input_ids) + transformer.wpe.forward(pos));
    for (size_t i = 0; i < transformer.h.size(); ++i) x = transformer.h[i]->forward(x, attention_mask, cache, int64_t(i));
    if (cache) cache->length += T;
    x = transformer.ln_f.forward(x);
    return linear(x, transformer.wte.weight);  // tied lm_head: logits = x · wteᵀ
  }

  KVCache new_cache(int64_t batch, int64_t max_len) const override {
    return KVCache(config.n_layer, batch, config.n_head, std::min(max_len, config.n_positions), config.head_dim(),
                   transformer.wte.weight.dtype());
  }
  int64_t vocab_size() const override { return config.vocab_size; }
  int64_t context_length() const override { return config.n_positions; }
  std::vector<int64_t> eos_token_ids() const override { return config.eos_token_id; }
  nlohmann::json config_json() const override { return config.to_json(); }

 private:
  static Tensor add_scalar_ids(const Tensor& ids, int64_t v) {
    Tensor out = ids.clone();
    int64_t* p = out.data<int64_t>();
    for (int64_t i = 0; i < out.numel(); ++i) p[i] += v;
    return out;
  }
};

}  // namespace galvani
