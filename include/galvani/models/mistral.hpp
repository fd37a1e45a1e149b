// models/mistral.hpp — Mistral and Llama, with MistralForCausalLM / LlamaForCausalLM
// semantics (transformers 5). Member names are the checkpoint's: model.embed_tokens,
// model.layers.{i}.self_attn.q_proj, … so a Hugging Face state dict maps by name.
//
//   x = embed_tokens[ids]                                    (B, T, C)
//   for each layer (checkpointed when gradient checkpointing is on):
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
#include "load.hpp"

namespace galvani {

using io::MistralConfig;  // parsed from config.json by io/config.hpp (model_type mistral or llama)

namespace detail {

// nn.Embedding(padding_idx=pad): the lookup sends no gradient to row `pad`. x (B, T, C) is
// the looked-up embedding of ids (B, T); the gradient of the positions holding `pad` is
// dropped before it reaches the table. (With tied embeddings lm_head's gradient still
// reaches that row, as in torch.)
inline Tensor stop_padding_grad(const Tensor& x, const Tensor& ids, int64_t pad) {
  std::vector<int64_t> rows;  // flattened (b, t) positions that hold the pad token
  const std::vector<int64_t> v = host_values<int64_t>(ids, "embedding padding_idx (ids)");
  for (size_t i = 0; i < v.size(); ++i)
    if (v[i] == pad) rows.push_back(int64_t(i));
  if (rows.empty()) return x;
  const int64_t C = x.size(-1);
  return record("embedding padding_idx", x.detach(), {x}, [rows, C](const Tensor& g, const Needs&) -> Grads {
    Tensor d = g.contiguous().clone();
    dispatch("embedding padding_idx backward", {{"grad", d}}, FloatTypes{d.dtype()}, [&]<class T>() {
      T* p = d.data<T>();
      for (int64_t r : rows) std::fill_n(p + r * C, C, T(0));
    });
    return {d};
  });
}

}  // namespace detail

// transformers' MistralRotaryEmbedding / LlamaRotaryEmbedding: the model's one rotary
// embedding, which every layer's attention calls (HF computes cos/sin there once per forward
// and hands them to the layers; ops/rope.hpp computes them inside the rotation).
struct RotaryEmbedding : Module {
  double theta;  // rope_theta
  std::string type;
  int64_t head_dim = 0;  // D; transformers keeps inv_freq (D/2) as buffers (get_memory_footprint counts them)
  RotaryEmbedding(double theta_, std::string type_, int64_t head_dim_ = 0)
      : theta(theta_), type(std::move(type_)), head_dim(head_dim_) {}
  std::string type_name() const override { return type; }
  // x (B, H, T, D), positions (T) or (B, T) → x rotated by pos · theta^(−2i/D) (ops/rope.hpp).
  Tensor forward(const Tensor& x, const Tensor& positions) const { return rope(x, positions, theta); }
};

struct MistralAttention : Module {
  ModuleRef<LinearLayer> q_proj;  // C → H·D
  ModuleRef<LinearLayer> k_proj;  // C → Hkv·D
  ModuleRef<LinearLayer> v_proj;  // C → Hkv·D
  ModuleRef<LinearLayer> o_proj;  // H·D → C
  int64_t n_head, n_kv_head, head_dim;
  int64_t sliding_window;    // 0 = none (Llama)
  double attention_dropout;  // dropout on the attention probabilities, train mode only
  Generator* gen;            // the model's generator: draws that dropout's masks
  ModuleRef<RotaryEmbedding> rotary_emb;  // the model's slot (model.rotary_emb), not a child of this layer
  std::string type;

  MistralAttention(const MistralConfig& cfg, const ModuleInit& init, Generator& g, ModuleRef<RotaryEmbedding> rotary)
      : q_proj(add_module<LinearLayer>("q_proj", make_linear(cfg.hidden_size, cfg.num_attention_heads * cfg.head_dim(),
                                                             cfg.attention_bias, init, cfg))),
        k_proj(add_module<LinearLayer>("k_proj", make_linear(cfg.hidden_size, cfg.num_key_value_heads * cfg.head_dim(),
                                                             cfg.attention_bias, init, cfg))),
        v_proj(add_module<LinearLayer>("v_proj", make_linear(cfg.hidden_size, cfg.num_key_value_heads * cfg.head_dim(),
                                                             cfg.attention_bias, init, cfg))),
        o_proj(add_module<LinearLayer>("o_proj", make_linear(cfg.num_attention_heads * cfg.head_dim(), cfg.hidden_size,
                                                             cfg.attention_bias, init, cfg))),
        n_head(cfg.num_attention_heads), n_kv_head(cfg.num_key_value_heads), head_dim(cfg.head_dim()),
        sliding_window(cfg.is_llama() ? 0 : cfg.sliding_window.value_or(0)),
        attention_dropout(cfg.attention_dropout), gen(&g), rotary_emb(rotary),
        type(cfg.is_llama() ? "LlamaAttention" : "MistralAttention") {}
  std::string type_name() const override { return type; }

  static std::unique_ptr<Linear> make_linear(int64_t in, int64_t out, bool bias, const ModuleInit& init,
                                             const MistralConfig& cfg) {
    return std::make_unique<Linear>(in, out, bias, init, cfg.initializer_range);
  }

  // x (B, T, C), positions (T) or (B, T) → (B, T, C). With a cache, the keys and values of
  // earlier positions come from it and this step's are appended.
  Tensor forward(const Tensor& x, const Tensor& positions, const Tensor& key_mask, KVCache* cache,
                 int64_t layer) const {
    const int64_t B = x.size(0), T = x.size(1), H = n_head, Hkv = n_kv_head, D = head_dim;
    Tensor q = q_proj->forward(x).view({B, T, H, D}).transpose(1, 2);    // (B, H, T, D)
    Tensor k = k_proj->forward(x).view({B, T, Hkv, D}).transpose(1, 2);  // (B, Hkv, T, D)
    Tensor v = v_proj->forward(x).view({B, T, Hkv, D}).transpose(1, 2);  // (B, Hkv, T, D)
    q = rotary_emb->forward(q, positions);  // keys are cached already rotated, as in HF
    k = rotary_emb->forward(k, positions);
    if (cache) std::tie(k, v) = cache->append(layer, k, v);  // (B, Hkv, past + T, D)
    AttentionOptions opt;
    opt.causal = true;
    opt.sliding_window = sliding_window;  // HF's convention, see the header comment
    opt.key_padding_mask = key_mask;
    opt.dropout_p = is_training() ? attention_dropout : 0.0;  // HF: dropout=0.0 if not self.training
    opt.gen = gen;
    Tensor y = scaled_dot_product_attention(q, k, v, opt);  // (B, H, T, D); GQA inside, no repeat_kv copy
    return o_proj->forward(y.transpose(1, 2).reshape({B, T, H * D}));
  }
};

struct MistralMLP : Module {
  ModuleRef<LinearLayer> gate_proj;  // C → I
  ModuleRef<LinearLayer> up_proj;    // C → I
  ModuleRef<LinearLayer> down_proj;  // I → C
  ModuleRef<SiLUActivation> act_fn;
  std::string type;
  MistralMLP(const MistralConfig& cfg, const ModuleInit& init)
      : gate_proj(add_module<LinearLayer>("gate_proj", std::make_unique<Linear>(cfg.hidden_size, cfg.intermediate_size,
                                                                                cfg.mlp_bias, init, cfg.initializer_range))),
        up_proj(add_module<LinearLayer>("up_proj", std::make_unique<Linear>(cfg.hidden_size, cfg.intermediate_size,
                                                                            cfg.mlp_bias, init, cfg.initializer_range))),
        down_proj(add_module<LinearLayer>("down_proj", std::make_unique<Linear>(cfg.intermediate_size, cfg.hidden_size,
                                                                                cfg.mlp_bias, init, cfg.initializer_range))),
        act_fn(add_module<SiLUActivation>("act_fn", std::make_unique<SiLUActivation>())),
        type(cfg.is_llama() ? "LlamaMLP" : "MistralMLP") {}
  std::string type_name() const override { return type; }
  // x (B, T, C) → (B, T, C) through (B, T, I)
  Tensor forward(const Tensor& x) const {
    return down_proj->forward(act_fn->gated(gate_proj->forward(x), up_proj->forward(x)));
  }
};

// Members in HF's registration order, so named_parameters() lists tensors as torch does.
struct MistralDecoderLayer : Module {
  ModuleRef<MistralAttention> self_attn;
  ModuleRef<MistralMLP> mlp;
  ModuleRef<RMSNorm> input_layernorm;
  ModuleRef<RMSNorm> post_attention_layernorm;
  std::string type;
  MistralDecoderLayer(const MistralConfig& cfg, const ModuleInit& init, Generator& g, ModuleRef<RotaryEmbedding> rotary)
      : self_attn(add_module<MistralAttention>("self_attn", std::make_unique<MistralAttention>(cfg, init, g, rotary))),
        mlp(add_module<MistralMLP>("mlp", std::make_unique<MistralMLP>(cfg, init))),
        input_layernorm(add_module<RMSNorm>("input_layernorm", make_norm(cfg, init))),
        post_attention_layernorm(add_module<RMSNorm>("post_attention_layernorm", make_norm(cfg, init))),
        type(cfg.is_llama() ? "LlamaDecoderLayer" : "MistralDecoderLayer") {}
  std::string type_name() const override { return type; }
  static std::unique_ptr<RMSNorm> make_norm(const MistralConfig& cfg, const ModuleInit& init) {
    return std::make_unique<RMSNorm>(cfg.hidden_size, cfg.rms_norm_eps, init,
                                     cfg.is_llama() ? "LlamaRMSNorm" : "MistralRMSNorm");
  }
  Tensor forward(const Tensor& x, const Tensor& positions, const Tensor& key_mask, KVCache* cache,
                 int64_t layer) const {
    Tensor h = x + self_attn->forward(input_layernorm->forward(x), positions, key_mask, cache, layer);
    return h + mlp->forward(post_attention_layernorm->forward(h));
  }
};

// transformers' MistralModel / LlamaModel: what the causal LM holds as `model`.
struct MistralModel : Module {
  ModuleRef<Embedding> embed_tokens;  // (V, C)
  ModuleRef<ModuleList<MistralDecoderLayer>> layers;
  ModuleRef<RMSNorm> norm;
  ModuleRef<RotaryEmbedding> rotary_emb;
  std::string type;
  MistralModel(const MistralConfig& cfg, const ModuleInit& init, Generator& g)
      : embed_tokens(add_module<Embedding>("embed_tokens", std::make_unique<Embedding>(cfg.vocab_size, cfg.hidden_size,
                                                                                      init, cfg.initializer_range))),
        layers(add_module<ModuleList<MistralDecoderLayer>>("layers",
                                                           std::make_unique<ModuleList<MistralDecoderLayer>>())),
        norm(add_module<RMSNorm>("norm", MistralDecoderLayer::make_norm(cfg, init))),
        rotary_emb(add_module<RotaryEmbedding>(
            "rotary_emb", std::make_unique<RotaryEmbedding>(cfg.rope_theta, cfg.is_llama() ? "LlamaRotaryEmbedding"
                                                                                          : "MistralRotaryEmbedding",
                                                             cfg.head_dim()))),
        type(cfg.is_llama() ? "LlamaModel" : "MistralModel") {
    // Layers are listed before norm and rotary_emb, as in HF; those draw nothing at
    // initialisation, so building the layers last gives the same random weights.
    for (int64_t i = 0; i < cfg.num_hidden_layers; ++i)
      layers->append(std::make_unique<MistralDecoderLayer>(cfg, init, g, rotary_emb));
  }
  std::string type_name() const override { return type; }
};

class MistralForCausalLM : public CausalLM {
 public:
  MistralConfig config;

 private:
  Generator gen_;  // initialisation, then attention-dropout masks

 public:
  ModuleRef<MistralModel> model;
  ModuleRef<LinearLayer> lm_head;  // C → V; with tie_word_embeddings its weight is embed_tokens.weight

  // A randomly initialised model (HF's _init_weights: N(0, initializer_range) for Linear and
  // Embedding, zero biases, ones for RMSNorm, a zero padding_idx row); load weights over it.
  explicit MistralForCausalLM(const MistralConfig& cfg, uint64_t seed = 0)
      : MistralForCausalLM(cfg, BuildOptions{seed}) {}
  // With opts.init = empty, nothing is drawn or written: the weights are to be loaded.
  MistralForCausalLM(const MistralConfig& cfg, const BuildOptions& opts)
      : config((check_supported(cfg), cfg)), gen_(opts.seed) {
    const ModuleInit init = opts.module_init(gen_);
    model = add_module<MistralModel>("model", std::make_unique<MistralModel>(config, init, gen_));
    if (config.tie_word_embeddings)
      lm_head = add_module<LinearLayer>("lm_head", std::make_unique<Linear>(model->embed_tokens->weight));
    else
      lm_head = add_module<LinearLayer>("lm_head", std::make_unique<Linear>(config.hidden_size, config.vocab_size,
                                                                            false, init, config.initializer_range));
    if (auto pad = padding_idx(); pad && init.random()) {
      Tensor row = model->embed_tokens->weight.select(0, *pad);
      copy_into(row, Tensor::zeros(row.shape(), row.dtype()));
    }
  }
  std::string type_name() const override { return config.is_llama() ? "LlamaForCausalLM" : "MistralForCausalLM"; }

  // Build the model config.json in `dir` describes and stream its weights in, one tensor at
  // a time (models/load.hpp): the parameters are allocated once, uninitialised, and filled
  // by the load; peak memory is the model plus about one tensor.
  static std::unique_ptr<MistralForCausalLM> from_pretrained(const std::filesystem::path& dir) {
    io::ModelConfig mc = io::load_model_config(dir / "config.json");
    const auto* cfg = std::get_if<MistralConfig>(&mc);
    GALVANI_CHECK(cfg, (dir / "config.json").string(), ": model_type \"", io::model_type_of(mc),
                  "\" is not mistral or llama");
    BuildOptions opts;
    opts.init = ModuleInit::Mode::empty;
    auto m = std::make_unique<MistralForCausalLM>(*cfg, opts);
    m->load_weights_streaming(dir);
    return m;
  }

  // Reseed the attention-dropout masks (as GPT2LMHeadModel::set_seed).
  void set_seed(uint64_t seed) override { gen_ = Generator(seed); }
  Generator& generator() override { return gen_; }
  Embedding& get_input_embeddings() const override { return *model->embed_tokens; }

  // Stream a checkpoint (file, index or directory) into this model's parameters.
  LoadReport load_weights_streaming(const std::filesystem::path& path, bool strict = true) {
    return load_checkpoint(*this, path, config.model_type, strict);
  }

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
    const Tensor pos = position_ids.defined() ? position_ids : position_range(T, past);

    Tensor x = model->embed_tokens->forward(input_ids);  // (B, T, C)
    if (auto pad = padding_idx(); pad && model->embed_tokens->weight.requires_grad())
      x = detail::stop_padding_grad(x, input_ids, *pad);
    x = input_embeddings_hook(x);
    for (size_t i = 0; i < model->layers->size(); ++i) {
      const MistralDecoderLayer* layer = &(*model->layers)[i];
      if (!checkpointing(*layer)) {
        x = layer->forward(x, pos, attention_mask, cache, int64_t(i));
        continue;
      }
      // Gradient checkpointing: the layer keeps only x (and positions, mask) for backward.
      check_no_cache_while_checkpointing(cache, who);
      x = checkpointed(
          *layer,
          [layer, i](const std::vector<Tensor>& in) { return layer->forward(in[0], in[1], in[2], nullptr, int64_t(i)); },
          {x, pos, attention_mask});
    }
    if (cache) cache->length += T;
    x = model->norm->forward(x);
    return lm_head->forward(x);  // (B, T, V)
  }

  KVCache new_cache(int64_t batch, int64_t max_len) const override {
    return KVCache(config.num_hidden_layers, batch, config.num_key_value_heads,
                   std::min(max_len, config.max_position_embeddings), config.head_dim(),
                   activation_dtype(model->embed_tokens->weight.dtype()));
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
