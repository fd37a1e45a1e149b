// models/causal_lm.hpp — what every decoder-only language model offers the
// trainer, the evaluator and the generator: forward to logits, a KV cache,
// gradient checkpointing per decoder layer, and Hugging Face's causal-LM loss.
#pragma once
#include <nlohmann/json.hpp>

#include "../autograd/checkpoint.hpp"
#include "../nn/layers.hpp"
#include "../nn/module.hpp"
#include "../ops/cross_entropy.hpp"
#include "../quant/bnb_config.hpp"

namespace galvani {

// The dtype a model computes in, from its parameters' (the embedding table's): f32 for a model
// stored in bf16 or f16 — weight-only 16-bit, the ops widen each weight as they read it (ops/matmul.hpp's
// weight_only_16) — else the parameters' own (f32, or f64 in gradient checks). KV caches hold this.
inline DType activation_dtype(DType parameters) {
  return parameters == DType::bf16 || parameters == DType::f16 ? DType::f32 : parameters;
}

// Keys and values of past positions, per layer, so generating token t+1 costs
// one position's work instead of re-running the whole prefix.
struct KVCache {
  struct Layer {
    Tensor k, v;  // (B, Hkv, max_len, D), filled on [0, length)
  };
  std::vector<Layer> layers;
  int64_t length = 0;   // positions already cached
  int64_t max_len = 0;

  KVCache() = default;
  KVCache(int64_t n_layers, int64_t batch, int64_t kv_heads, int64_t max_len_, int64_t head_dim, DType dtype)
      : max_len(max_len_) {
    for (int64_t i = 0; i < n_layers; ++i)
      layers.push_back({Tensor::zeros({batch, kv_heads, max_len_, head_dim}, dtype),
                        Tensor::zeros({batch, kv_heads, max_len_, head_dim}, dtype)});
  }

  // Store this step's k, v (B, Hkv, T, D) for `layer` and return all cached
  // positions [0, length + T) as views. The caller advances `length` once all
  // layers have run.
  std::pair<Tensor, Tensor> append(int64_t layer, const Tensor& k, const Tensor& v) {
    const int64_t T = k.size(2);
    GALVANI_CHECK(length + T <= max_len, "KVCache: ", length, " cached + ", T, " new positions exceed its capacity ",
                  max_len);
    Layer& l = layers.at(size_t(layer));
    copy_into(l.k.narrow(2, length, T), k);
    copy_into(l.v.narrow(2, length, T), v);
    return {l.k.narrow(2, 0, length + T), l.v.narrow(2, 0, length + T)};
  }
};

// How a model is built: its seed (random initialisation, then dropout masks), whether its
// weights are drawn (random, HF's _init_weights) or left uninitialised to be loaded (empty),
// and the parameters' dtype. Loading (models/auto.hpp's load_causal_lm) builds with empty:
// each tensor is then allocated once, in its final dtype, and first written by the load.
struct BuildOptions {
  uint64_t seed = 0;
  ModuleInit::Mode init = ModuleInit::Mode::random;
  DType dtype = DType::f32;

  ModuleInit module_init(Generator& gen) const { return ModuleInit{init, &gen, dtype}; }
};

// Positions past, past + 1, …, past + T − 1 (i64, shape (T)): the new tokens' positions
// after `past` cached ones, as HF's cache_position.
inline Tensor position_range(int64_t T, int64_t past) {
  std::vector<int64_t> pos(static_cast<size_t>(T));
  for (int64_t i = 0; i < T; ++i) pos[size_t(i)] = past + i;
  return Tensor::from_vector(pos, {T});
}

class CausalLM : public Module {
 public:
  // input_ids (B, T) i64; attention_mask (B, S) with S = past + T, 1 = real token,
  // 0 = padding (undefined: all real). Returns logits (B, T, V).
  virtual Tensor forward(const Tensor& input_ids, const Tensor& attention_mask = Tensor(),
                         KVCache* cache = nullptr) = 0;
  virtual KVCache new_cache(int64_t batch, int64_t max_len) const = 0;
  virtual int64_t vocab_size() const = 0;
  virtual int64_t context_length() const = 0;
  virtual std::vector<int64_t> eos_token_ids() const = 0;
  virtual nlohmann::json config_json() const = 0;  // what save_pretrained writes as config.json
  // Reseed the dropout masks, so a training run is reproducible from its seed.
  virtual void set_seed(uint64_t seed) = 0;
  // The model's generator (initialisation, then dropout masks). Layers added later (a LoRA
  // adapter's dropout, nn/lora.hpp) draw from it too, so set_seed() reseeds them all.
  virtual Generator& generator() = 0;

  // The token-embedding table (transformers' get_input_embeddings()): GPT-2's transformer.wte,
  // Mistral's model.embed_tokens.
  virtual Embedding& get_input_embeddings() const = 0;

  // Set when the linears are 4-bit (models/quantize.hpp); save_causal_lm writes it into
  // config.json as "quantization_config", as transformers does.
  std::optional<BitsAndBytesConfig> quantization_config;

  // ------------------------------------------------------------ gradient checkpointing
  // transformers' switches. While enabled, every decoder layer (transformer.h.{i},
  // model.layers.{i}) runs through checkpoint() (autograd/checkpoint.hpp) whenever the layer
  // is training and grad mode is on — as transformers' GradientCheckpointingLayer: eval() or a
  // NoGradGuard run the layers plainly. A layer then keeps only its input for backward and is
  // recomputed there, with the model's generator replayed so that its dropout masks repeat.
  // A KV cache cannot be used while it is active (forward throws; transformers drops the cache
  // with a warning and returns none). Enabling also calls enable_input_require_grads(), as
  // transformers 5 does for a model fed input_ids; disabling leaves that on, as there.
  void gradient_checkpointing_enable() {
    gradient_checkpointing_ = true;
    enable_input_require_grads();
  }
  void gradient_checkpointing_disable() { gradient_checkpointing_ = false; }
  bool is_gradient_checkpointing() const { return gradient_checkpointing_; }

  // transformers' enable_input_require_grads(): the input embeddings' output requires grad
  // even when the table is frozen (there a forward hook calls output.requires_grad_(True)).
  // Under torch's reentrant checkpoint a layer whose input needs no gradient sends none to
  // the adapters inside it; galvani's checkpoint() also looks at the layer's parameters, so
  // this is kept for transformers' and peft's semantics rather than needed.
  void enable_input_require_grads() { input_require_grads_ = true; }
  void disable_input_require_grads() { input_require_grads_ = false; }
  bool input_require_grads() const { return input_require_grads_; }

 protected:
  // enable_input_require_grads()'s hook: the models pass the embeddings' output through it.
  Tensor input_embeddings_hook(Tensor x) const {
    if (input_require_grads_ && !x.requires_grad() && is_floating(x.dtype())) x.requires_grad_();
    return x;
  }
  // Whether `layer` runs through checkpoint() now.
  bool checkpointing(const Module& layer) const {
    return gradient_checkpointing_ && layer.is_training() && GradMode::is_enabled();
  }
  // Run `layer` as fn(inputs) through checkpoint(): the model's generator is replayed in the
  // recompute, and the layer's parameters decide (with the inputs) whether the output needs a
  // gradient. fn is called again during backward: it must capture by value, or capture what
  // outlives the step (the layer itself).
  Tensor checkpointed(const Module& layer, CheckpointFn fn, std::vector<Tensor> inputs) {
    CheckpointOptions opt;
    opt.preserve_rng = {&generator()};
    opt.params = layer.trainable_parameters();
    return checkpoint(std::move(fn), std::move(inputs), std::move(opt));
  }
  // The error forward() gives for a cache while checkpointing.
  static void check_no_cache_while_checkpointing(const KVCache* cache, const char* who) {
    GALVANI_CHECK(!cache, who,
                  ": a KV cache cannot be used while gradient checkpointing is active (the layers would be run "
                  "twice and append to it twice); generate in eval() mode or under a NoGradGuard, or call "
                  "gradient_checkpointing_disable() (transformers sets use_cache=False here)");
  }

 private:
  bool gradient_checkpointing_ = false;
  bool input_require_grads_ = false;
};

// Hugging Face's ForCausalLMLoss: position t predicts labels[t + 1]; labels of
// -100 (padding) are skipped. Instead of slicing the (B, T, V) logits (a copy
// of the biggest tensor in training), the labels are shifted left and the last
// position gets -100: the same loss, no copy.
inline Tensor shift_labels(const Tensor& labels) {
  GALVANI_CHECK(labels.dim() == 2, "causal_lm_loss: labels must be (B, T), got ", shape_str(labels.shape()));
  const int64_t B = labels.size(0), T = labels.size(1);
  std::vector<int64_t> src = host_values<int64_t>(labels, "causal_lm_loss (labels)"), out(size_t(B * T), -100);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t + 1 < T; ++t) out[size_t(b * T + t)] = src[size_t(b * T + t + 1)];
  return Tensor::from_vector(out, {B, T});
}

// logits (B, T, V), labels (B, T) → mean NLL over predicted tokens (or their sum).
inline Tensor causal_lm_loss(const Tensor& logits, const Tensor& labels, Reduction reduction = Reduction::mean) {
  GALVANI_CHECK(logits.dim() == 3 && labels.dim() == 2 && logits.size(0) == labels.size(0) &&
                    logits.size(1) == labels.size(1),
                "causal_lm_loss: logits ", shape_str(logits.shape()), " do not match labels ", shape_str(labels.shape()));
  const int64_t V = logits.size(2);
  return cross_entropy(logits.reshape({-1, V}), shift_labels(labels).view({-1}), -100, reduction);
}

}  // namespace galvani
