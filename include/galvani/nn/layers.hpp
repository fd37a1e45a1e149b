// nn/layers.hpp — the small layers transformers are built from.
//
// Each is a struct with its parameters as members (named as in Hugging Face), a constructor
// that initialises them as transformers does (or leaves them uninitialised, to be loaded), and
// forward(). type_name() is the class name transformers prints, so a galvani tree lists the
// same (name, class) pairs as torch's named_modules().
#pragma once
#include <cmath>

#include "../core/random.hpp"
#include "../ops/activation.hpp"
#include "../ops/dropout.hpp"
#include "../ops/embedding.hpp"
#include "../ops/layer_norm.hpp"
#include "../ops/matmul.hpp"
#include "../ops/rms_norm.hpp"
#include "module.hpp"

namespace galvani {

// How a new layer's tensors start.
//   random: as HF's _init_weights (normal draws from *gen, zeros, ones) — training from
//           scratch, and the default, bit-identical whatever else changes;
//   empty:  uninitialised memory of `dtype` (torch.empty / accelerate's init_empty_weights):
//           a checkpoint is about to overwrite every tensor, so nothing is drawn or written
//           and the pages are first touched by the load itself — a 7B model's weights are
//           allocated once, in their final dtype.
struct ModuleInit {
  enum class Mode { random, empty };
  Mode mode = Mode::random;
  Generator* gen = nullptr;  // random mode: the generator the draws come from
  DType dtype = DType::f32;  // the parameters' dtype

  bool random() const { return mode == Mode::random; }

  // N(0, std) of `shape`: drawn in f32 from *gen (then cast) in random mode; empty otherwise.
  Tensor normal(const Shape& shape, double std) const {
    if (!random()) return Tensor::empty(shape, dtype);
    GALVANI_CHECK(gen, "ModuleInit: random initialisation needs a generator");
    Tensor t = rand_normal(shape, 0, std, *gen);
    return dtype == DType::f32 ? t : t.to(dtype);
  }
  // A constant (0 for biases, 1 for norm weights) in random mode; empty otherwise.
  Tensor constant(const Shape& shape, double value) const {
    return random() ? Tensor::full(shape, value, dtype) : Tensor::empty(shape, dtype);
  }
};

// Anything that maps x (..., in_features) to y (..., out_features) like a linear layer:
// Linear, GPT-2's Conv1D, and whatever replaces them by name (a LoRA wrapper, a 4-bit
// linear). Models hold their projections as ModuleRef<LinearLayer>, so any of these fits.
struct LinearLayer : Module {
  static constexpr const char* kKind = "LinearLayer";
  virtual Tensor forward(const Tensor& x) const = 0;
  virtual int64_t in_features() const = 0;
  virtual int64_t out_features() const = 0;
  // peft's fan_in_fan_out: true when the weight is stored (in, out), as GPT-2's Conv1D.
  virtual bool fan_in_fan_out() const { return false; }
};

// nn.Linear: y = x·Wᵀ + b, weight (out, in). Initialised N(0, std) as HF's _init_weights
// does for transformer models (not torch's Kaiming default).
struct Linear : LinearLayer {
  Tensor weight;  // (out, in)
  Tensor bias;    // (out) or undefined
  Linear(int64_t in, int64_t out, bool has_bias, const ModuleInit& init, double std = 0.02) {
    weight = init.normal({out, in}, std).requires_grad_();
    register_parameter("weight", weight);
    if (has_bias) {
      bias = init.constant({out}, 0.0).requires_grad_();
      register_parameter("bias", bias);
    }
  }
  // A Linear over an existing weight (out, in) — a tied lm_head shares the embedding's.
  explicit Linear(const Tensor& shared_weight) : weight(shared_weight) { register_parameter("weight", weight); }

  std::string type_name() const override { return "Linear"; }
  Tensor forward(const Tensor& x) const override { return linear(x, weight, bias); }
  int64_t in_features() const override { return weight.size(1); }
  int64_t out_features() const override { return weight.size(0); }
};

// Hugging Face GPT-2's Conv1D: y = x·W + b with weight (in, out) — a Linear whose weight is
// stored transposed (a legacy of OpenAI's TensorFlow code).
struct Conv1D : LinearLayer {
  Tensor weight;  // (in, out)
  Tensor bias;    // (out)
  Conv1D(int64_t in, int64_t out, const ModuleInit& init, double std = 0.02) {
    weight = init.normal({in, out}, std).requires_grad_();
    bias = init.constant({out}, 0.0).requires_grad_();
    register_parameter("weight", weight);
    register_parameter("bias", bias);
  }
  std::string type_name() const override { return "Conv1D"; }
  Tensor forward(const Tensor& x) const override { return conv1d_linear(x, weight, bias); }
  int64_t in_features() const override { return weight.size(0); }
  int64_t out_features() const override { return weight.size(1); }
  bool fan_in_fan_out() const override { return true; }
};

struct Embedding : Module {
  Tensor weight;  // (num_embeddings, dim)
  Embedding(int64_t num, int64_t dim, const ModuleInit& init, double std = 0.02) {
    weight = init.normal({num, dim}, std).requires_grad_();
    register_parameter("weight", weight);
  }
  std::string type_name() const override { return "Embedding"; }
  Tensor forward(const Tensor& ids) const { return embedding(weight, ids); }
};

struct LayerNorm : Module {
  Tensor weight, bias;  // (C)
  double eps;
  LayerNorm(int64_t dim, double eps_, const ModuleInit& init) : eps(eps_) {
    weight = init.constant({dim}, 1.0).requires_grad_();
    bias = init.constant({dim}, 0.0).requires_grad_();
    register_parameter("weight", weight);
    register_parameter("bias", bias);
  }
  std::string type_name() const override { return "LayerNorm"; }
  Tensor forward(const Tensor& x) const { return layer_norm(x, weight, bias, eps); }
};

// `type` is the class transformers names it after its model (MistralRMSNorm, LlamaRMSNorm).
struct RMSNorm : Module {
  Tensor weight;  // (C)
  double eps;
  std::string type;
  RMSNorm(int64_t dim, double eps_, const ModuleInit& init, std::string type_ = "RMSNorm")
      : eps(eps_), type(std::move(type_)) {
    weight = init.constant({dim}, 1.0).requires_grad_();
    register_parameter("weight", weight);
  }
  std::string type_name() const override { return type; }
  Tensor forward(const Tensor& x) const { return rms_norm(x, weight, eps); }
};

// Dropout draws its masks from a Generator the model owns, so a training run is
// reproducible from its seed. `p` may also parametrise a fused kernel (GPT-2's attention
// dropout is applied inside scaled_dot_product_attention with attn_dropout's p).
struct Dropout : Module {
  double p;
  Generator* gen;
  Dropout(double p_, Generator& g) : p(p_), gen(&g) {}
  std::string type_name() const override { return "Dropout"; }
  Tensor forward(const Tensor& x) const { return dropout(x, p, is_training(), *gen); }
};

// GPT-2's activation, transformers' NewGELUActivation: the tanh approximation of GELU.
struct NewGELUActivation : Module {
  std::string type_name() const override { return "NewGELUActivation"; }
  Tensor forward(const Tensor& x) const { return gelu_tanh(x); }
};

// Mistral/Llama's act_fn (transformers' SiLUActivation). The MLP multiplies it with up_proj
// at once: gated(gate, up) = silu(gate) ⊙ up in one pass (ops/activation.hpp's silu_mul).
struct SiLUActivation : Module {
  std::string type_name() const override { return "SiLUActivation"; }
  Tensor forward(const Tensor& x) const { return silu(x); }
  Tensor gated(const Tensor& gate, const Tensor& up) const { return silu_mul(gate, up); }
};

}  // namespace galvani
