// models/gpt2.hpp — GPT-2 with GPT2LMHeadModel semantics (DistilGPT-2 is a GPT-2
// config with 6 layers). Member names are the checkpoint's: transformer.wte,
// transformer.h.{i}.attn.c_attn, … so a Hugging Face state dict maps by name.
//
//   x = wte[ids] + wpe[pos]                      (B, T, C), then dropout
//   for each block:  x += attn(ln_1(x));  x += mlp(ln_2(x))   (each block checkpointed
//                                                               when gradient checkpointing is on)
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
  ModuleRef<LinearLayer> c_attn;  // C → 3C: q, k, v side by side
  ModuleRef<LinearLayer> c_proj;  // C → C
  // Dropout on the attention probabilities (HF's attn_dropout, p = attn_pdrop). Train mode
  // only; applied inside the fused attention kernel, which takes its p from here.
  ModuleRef<Dropout> attn_dropout;
  ModuleRef<Dropout> resid_dropout;
  int64_t n_head;

  GPT2Attention(const GPT2Config& cfg, const ModuleInit& init, Generator& g)
      : c_attn(add_module<LinearLayer>("c_attn", std::make_unique<Conv1D>(cfg.n_embd, 3 * cfg.n_embd, init,
                                                                          cfg.initializer_range))),
        // GPT-2's scaled init: residual projections get std / sqrt(2 · n_layer).
        c_proj(add_module<LinearLayer>(
            "c_proj", std::make_unique<Conv1D>(cfg.n_embd, cfg.n_embd, init,
                                               cfg.initializer_range / std::sqrt(2.0 * double(cfg.n_layer))))),
        attn_dropout(add_module<Dropout>("attn_dropout", std::make_unique<Dropout>(cfg.attn_pdrop, g))),
        resid_dropout(add_module<Dropout>("resid_dropout", std::make_unique<Dropout>(cfg.resid_pdrop, g))),
        n_head(cfg.n_head) {}
  std::string type_name() const override { return "GPT2Attention"; }

  // x (B, T, C) → (B, T, C). With a cache, keys/values of earlier positions come from it.
  Tensor forward(const Tensor& x, const Tensor& key_mask, KVCache* cache, int64_t layer) const {
    const int64_t B = x.size(0), T = x.size(1), C = x.size(2), D = C / n_head;
    Tensor qkv = c_attn->forward(x).view({B, T, 3, n_head, D}).permute({2, 0, 3, 1, 4});  // (3, B, H, T, D)
    Tensor q = qkv.select(0, 0), k = qkv.select(0, 1), v = qkv.select(0, 2);
    AttentionOptions opt;
    opt.causal = true;
    opt.key_padding_mask = key_mask;
    opt.dropout_p = attn_dropout->is_training() ? attn_dropout->p : 0.0;
    opt.gen = attn_dropout->gen;
    if (cache) std::tie(k, v) = cache->append(layer, k, v);
    Tensor y = scaled_dot_product_attention(q, k, v, opt);  // (B, H, T, D)
    y = y.transpose(1, 2).reshape({B, T, C});
    return resid_dropout->forward(c_proj->forward(y));
  }
};

struct GPT2MLP : Module {
  ModuleRef<LinearLayer> c_fc;    // C → 4C
  ModuleRef<LinearLayer> c_proj;  // 4C → C
  ModuleRef<NewGELUActivation> act;
  ModuleRef<Dropout> dropout;
  GPT2MLP(const GPT2Config& cfg, const ModuleInit& init, Generator& g)
      : c_fc(add_module<LinearLayer>("c_fc", std::make_unique<Conv1D>(cfg.n_embd, cfg.inner_dim(), init,
                                                                      cfg.initializer_range))),
        c_proj(add_module<LinearLayer>(
            "c_proj", std::make_unique<Conv1D>(cfg.inner_dim(), cfg.n_embd, init,
                                               cfg.initializer_range / std::sqrt(2.0 * double(cfg.n_layer))))),
        act(add_module<NewGELUActivation>("act", std::make_unique<NewGELUActivation>())),
        dropout(add_module<Dropout>("dropout", std::make_unique<Dropout>(cfg.resid_pdrop, g))) {}
  std::string type_name() const override { return "GPT2MLP"; }
  Tensor forward(const Tensor& x) const { return dropout->forward(c_proj->forward(act->forward(c_fc->forward(x)))); }
};

// Members in HF's registration order, so named_modules() and named_parameters() list them as torch does.
struct GPT2Block : Module {
  ModuleRef<LayerNorm> ln_1;
  ModuleRef<GPT2Attention> attn;
  ModuleRef<LayerNorm> ln_2;
  ModuleRef<GPT2MLP> mlp;
  GPT2Block(const GPT2Config& cfg, const ModuleInit& init, Generator& g)
      : ln_1(add_module<LayerNorm>("ln_1", std::make_unique<LayerNorm>(cfg.n_embd, cfg.layer_norm_epsilon, init))),
        attn(add_module<GPT2Attention>("attn", std::make_unique<GPT2Attention>(cfg, init, g))),
        ln_2(add_module<LayerNorm>("ln_2", std::make_unique<LayerNorm>(cfg.n_embd, cfg.layer_norm_epsilon, init))),
        mlp(add_module<GPT2MLP>("mlp", std::make_unique<GPT2MLP>(cfg, init, g))) {}
  std::string type_name() const override { return "GPT2Block"; }
  Tensor forward(const Tensor& x, const Tensor& key_mask, KVCache* cache, int64_t layer) const {
    Tensor h = x + attn->forward(ln_1->forward(x), key_mask, cache, layer);
    return h + mlp->forward(ln_2->forward(h));
  }
};

// transformers' GPT2Model: what GPT2LMHeadModel holds as `transformer`.
struct GPT2Model : Module {
  ModuleRef<Embedding> wte;  // (V, C), also the lm_head's weight
  ModuleRef<Embedding> wpe;  // (n_positions, C)
  ModuleRef<Dropout> drop;
  ModuleRef<ModuleList<GPT2Block>> h;
  ModuleRef<LayerNorm> ln_f;
  GPT2Model(const GPT2Config& cfg, const ModuleInit& init, Generator& g)
      : wte(add_module<Embedding>("wte", std::make_unique<Embedding>(cfg.vocab_size, cfg.n_embd, init,
                                                                     cfg.initializer_range))),
        wpe(add_module<Embedding>("wpe", std::make_unique<Embedding>(cfg.n_positions, cfg.n_embd, init,
                                                                     cfg.initializer_range))),
        drop(add_module<Dropout>("drop", std::make_unique<Dropout>(cfg.embd_pdrop, g))),
        h(add_module<ModuleList<GPT2Block>>("h", std::make_unique<ModuleList<GPT2Block>>())),
        ln_f(add_module<LayerNorm>("ln_f", std::make_unique<LayerNorm>(cfg.n_embd, cfg.layer_norm_epsilon, init))) {
    // Blocks are built after ln_f is registered but listed before it, as in HF: ln_f
    // draws nothing, so the random init is the same as building them in place.
    for (int64_t i = 0; i < cfg.n_layer; ++i) h->append(std::make_unique<GPT2Block>(cfg, init, g));
  }
  std::string type_name() const override { return "GPT2Model"; }
};

class GPT2LMHeadModel : public CausalLM {
 public:
  GPT2Config config;

 private:
  Generator gen_;  // initialisation, then dropout masks

 public:
  ModuleRef<GPT2Model> transformer;
  ModuleRef<LinearLayer> lm_head;  // V ← C, its weight tied to transformer.wte.weight

  // A randomly initialised model (HF's _init_weights); load weights over it.
  explicit GPT2LMHeadModel(const GPT2Config& cfg, uint64_t seed = 0) : GPT2LMHeadModel(cfg, BuildOptions{seed}) {}
  // With opts.init = empty, nothing is drawn: the weights are to be loaded (models/load.hpp).
  GPT2LMHeadModel(const GPT2Config& cfg, const BuildOptions& opts)
      : config((cfg.validate(), cfg)), gen_(opts.seed) {
    GALVANI_CHECK(config.activation_function == "gelu_new" || config.activation_function == "gelu_pytorch_tanh",
                  "GPT2: activation_function \"", config.activation_function, "\" is not supported (gelu_new is)");
    GALVANI_CHECK(config.tie_word_embeddings, "GPT2: untied lm_head is not supported (tie_word_embeddings=false)");
    const ModuleInit init = opts.module_init(gen_);
    transformer = add_module<GPT2Model>("transformer", std::make_unique<GPT2Model>(config, init, gen_));
    lm_head = add_module<LinearLayer>("lm_head", std::make_unique<Linear>(transformer->wte->weight));
  }
  std::string type_name() const override { return "GPT2LMHeadModel"; }

  // Reseed the dropout masks (the Trainer does this from its seed).
  void set_seed(uint64_t seed) override { gen_ = Generator(seed); }
  Generator& generator() override { return gen_; }
  Embedding& get_input_embeddings() const override { return *transformer->wte; }

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
    Tensor pos = position_range(T, past);
    Tensor x = input_embeddings_hook(transformer->wte->forward(input_ids));
    x = transformer->drop->forward(x + transformer->wpe->forward(pos));
    for (size_t i = 0; i < transformer->h->size(); ++i) {
      const GPT2Block* block = &(*transformer->h)[i];
      if (!checkpointing(*block)) {
        x = block->forward(x, attention_mask, cache, int64_t(i));
        continue;
      }
      // Gradient checkpointing: the block keeps only x (and the mask) for backward.
      check_no_cache_while_checkpointing(cache, "GPT2");
      x = checkpointed(
          *block,
          [block, i](const std::vector<Tensor>& in) { return block->forward(in[0], in[1], nullptr, int64_t(i)); },
          {x, attention_mask});
    }
    if (cache) cache->length += T;
    x = transformer->ln_f->forward(x);
    return lm_head->forward(x);  // tied: logits = x · wteᵀ
  }

  KVCache new_cache(int64_t batch, int64_t max_len) const override {
    return KVCache(config.n_layer, batch, config.n_head, std::min(max_len, config.n_positions), config.head_dim(),
                   activation_dtype(transformer->wte->weight.dtype()));
  }
  int64_t vocab_size() const override { return config.vocab_size; }
  int64_t context_length() const override { return config.n_positions; }
  std::vector<int64_t> eos_token_ids() const override { return config.eos_token_id; }
  nlohmann::json config_json() const override { return config.to_json(); }
};

}  // namespace galvani
