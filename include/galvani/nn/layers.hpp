// nn/layers.hpp — the small layers transformers are built from.
//
// Each is a struct with its parameters as members (named as in Hugging Face),
// a constructor that initialises them as transformers does, and forward().
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

// nn.Linear: y = x·Wᵀ + b, weight (out, in). Initialised N(0, std) as HF's
// _init_weights does for transformer models (not torch's Kaiming default).
struct Linear : Module {
  Tensor weight;  // (out, in)
  Tensor bias;    // (out) or undefined
  Linear(int64_t in, int64_t out, bool has_bias, Generator& gen, double std = 0.02) {
    weight = rand_normal({out, in}, 0, std, gen).requires_grad_();
    param("weight", weight);
    if (has_bias) {
      bias = Tensor::zeros({out}).requires_grad_();
      param("bias", bias);
    }
  }
  Tensor forward(const Tensor& x) const { return linear(x, weight, bias); }
};

// Hugging Face GPT-2's Conv1D: y = x·W + b with weight (in, out) — a Linear whose
// weight is stored transposed (a legacy of OpenAI's TensorFlow code).
struct Conv1D : Module {
  Tensor weight;  // (in, out)
  Tensor bias;    // (out)
  Conv1D(int64_t in, int64_t out, Generator& gen, double std = 0.02) {
    weight = rand_normal({in, out}, 0, std, gen).requires_grad_();
    bias = Tensor::zeros({out}).requires_grad_();
    param("weight", weight);
    param("bias", bias);
  }
  Tensor forward(const Tensor& x) const { return conv1d_linear(x, weight, bias); }
};

struct Embedding : Module {
  Tensor weight;  // (num_embeddings, dim)
  Embedding(int64_t num, int64_t dim, Generator& gen, double std = 0.02) {
    weight = rand_normal({num, dim}, 0, std, gen).requires_grad_();
    param("weight", weight);
  }
  Tensor forward(const Tensor& ids) const { return embedding(weight, ids); }
};

struct LayerNorm : Module {
  Tensor weight, bias;  // (C)
  double eps;
  LayerNorm(int64_t dim, double eps_) : eps(eps_) {
    weight = Tensor::ones({dim}).requires_grad_();
    bias = Tensor::zeros({dim}).requires_grad_();
    param("weight", weight);
    param("bias", bias);
  }
  Tensor forward(const Tensor& x) const { return layer_norm(x, weight, bias, eps); }
};

struct RMSNorm : Module {
  Tensor weight;  // (C)
  double eps;
  RMSNorm(int64_t dim, double eps_) : eps(eps_) {
    weight = Tensor::ones({dim}).requires_grad_();
    param("weight", weight);
  }
  Tensor forward(const Tensor& x) const { return rms_norm(x, weight, eps); }
};

// Dropout draws its masks from a Generator the model owns, so a training run is
// reproducible from its seed.
struct Dropout : Module {
  double p;
  Generator* gen;
  Dropout(double p_, Generator& g) : p(p_), gen(&g) {}
  Tensor forward(const Tensor& x) const { return dropout(x, p, is_training(), *gen); }
};

}  // namespace galvani
