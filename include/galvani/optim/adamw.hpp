// optim/adamw.hpp — AdamW exactly as torch.optim.AdamW (single-tensor path).
//
// For each parameter θ with gradient g, at step t = 1, 2, …:
//   θ ← θ · (1 − lr·λ)                       decoupled weight decay, applied first
//   m ← β1·m + (1 − β1)·g                     first moment
//   v ← β2·v + (1 − β2)·g²                    second moment
//   θ ← θ − lr/(1 − β1ᵗ) · m / (√v / √(1 − β2ᵗ) + ε)
// ε is added after √v is bias-corrected, as torch does. That equals the textbook
// m̂/(√v̂ + ε); keeping torch's order of float operations keeps its rounding too (up to FMA
// contraction in the f32 kernel's vector copies: optim/adamw_kernels.inl).
//
// The course's Trainer used optim="adamw_hf", transformers' own legacy AdamW,
// which differs in two places: ε is added to √v *before* bias correction, and
// weight decay is applied *after* the Adam step. `legacy_hf = true` selects it.
//
// The f32 update is a kernel file (optim/adamw_kernels.inl) compiled per instruction-set level
// (core/isa.hpp) with a vector square root; f64 runs the plain loop below.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>
#if defined(__x86_64__) || defined(__SSE__)
#include <immintrin.h>
#endif

#include "../autograd/grad_mode.hpp"
#include "../core/isa.hpp"
#include "../core/tensor.hpp"

namespace galvani {

// One step's scalars, each rounded to T once, as step() computes them: decay = 1 − lr·λ,
// step_size = lr / (1 − β1ᵗ), bc2_sqrt = √(1 − β2ᵗ) (torch); hf_step = lr·√(1 − β2ᵗ) / (1 − β1ᵗ),
// hf_decay = lr·λ (transformers' legacy AdamW, legacy = true).
template <class T>
struct AdamWStepScalars {
  T decay, beta1, beta2, eps, step_size, bc2_sqrt, hf_step, hf_decay;
  bool legacy;
};
using AdamWScalars = AdamWStepScalars<float>;  // the f32 kernel's

namespace detail {
// The update of elements [i, n), one at a time, in torch's (or transformers') order of float
// operations: f64's whole path, and the tail of the f32 kernel (optim/adamw_kernels.inl).
template <class T>
inline void adamw_update_scalar(T* p, const T* g, T* m, T* v, int64_t i, int64_t n, const AdamWStepScalars<T>& s) {
  for (; i < n; ++i) {
    if (!s.legacy) {
      p[i] *= s.decay;
      m[i] += (g[i] - m[i]) * (T(1) - s.beta1);  // torch uses lerp: m + (g − m)·(1 − β1)
      v[i] = v[i] * s.beta2 + g[i] * g[i] * (T(1) - s.beta2);
      p[i] -= s.step_size * m[i] / (std::sqrt(v[i]) / s.bc2_sqrt + s.eps);
    } else {
      m[i] = m[i] * s.beta1 + g[i] * (T(1) - s.beta1);
      v[i] = v[i] * s.beta2 + g[i] * g[i] * (T(1) - s.beta2);
      p[i] -= s.hf_step * m[i] / (std::sqrt(v[i]) + s.eps);
      p[i] -= p[i] * s.hf_decay;
    }
  }
}
}  // namespace detail

namespace detail {
#define GALVANI_ISA_KERNELS "../optim/adamw_kernels.inl"
#include "../core/isa_foreach.inl"

// Elements [0, n) of one f32 parameter, with the copy of the kernel for the CPU in use.
inline void adamw_update_f32(float* p, const float* g, float* m, float* v, int64_t n, const AdamWScalars& s) {
  GALVANI_ISA_CALL(detail, adamw_update(p, g, m, v, n, s));
}
}  // namespace detail

// The instruction-set level of the AdamW kernel copy that runs now (tests check forcing reaches it).
inline int adamw_kernels_level() { GALVANI_ISA_CALL(detail, adamw_kernels_level()); }

struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9, beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-2;  // torch's default; the HF Trainer passes 0.0 unless told otherwise
  bool legacy_hf = false;      // transformers.AdamW ("adamw_hf") instead of torch.optim.AdamW
};

// A group of parameters sharing options (HF excludes biases and LayerNorm
// weights from weight decay by putting them in a group with weight_decay 0).
struct ParamGroup {
  std::vector<Tensor> params;
  double weight_decay = 0.0;
};

class AdamW {
 public:
  AdamW(std::vector<Tensor> params, AdamWOptions opt = {}) : opt_(opt) {
    add_group({std::move(params), opt.weight_decay});
  }
  AdamW(std::vector<ParamGroup> groups, AdamWOptions opt) : opt_(opt) {
    for (auto& g : groups) add_group(std::move(g));
  }

  double lr() const { return opt_.lr; }
  void set_lr(double lr) { opt_.lr = lr; }  // the LR scheduler calls this before each step
  int64_t step_count() const { return step_; }
  const AdamWOptions& options() const { return opt_; }

  // One update of every parameter that has a gradient. Parameters without a
  // gradient (unused this step) are skipped, as torch does.
  void step() {
    NoGradGuard no_grad;
    ++step_;
    const double bc1 = 1.0 - std::pow(opt_.beta1, double(step_));
    const double bc2_sqrt = std::sqrt(1.0 - std::pow(opt_.beta2, double(step_)));
    const double step_size = opt_.lr / bc1;
    for (State& s : states_) {
      if (!s.param.grad().defined()) continue;
      dispatch("AdamW", {{"param", s.param}, {"grad", s.param.grad()}, {"exp_avg", s.m}, {"exp_avg_sq", s.v}},
               FloatTypes{s.param.dtype()}, [&]<class T>() {
        GALVANI_CHECK(s.param.is_contiguous(), "AdamW: parameter '", s.param.name(), "' is not contiguous");
        T* p = s.param.data<T>();
        Tensor g_c = s.param.grad().contiguous();
        const T* g = g_c.data<T>();
        T* m = s.m.data<T>();
        T* v = s.v.data<T>();
        const int64_t n = s.param.numel();
        const T decay = T(1.0 - opt_.lr * s.weight_decay), b1 = T(opt_.beta1), b2 = T(opt_.beta2);
        const T eps = T(opt_.eps), ss = T(step_size), bc2 = T(bc2_sqrt);
        const T hf_step = T(opt_.lr * bc2_sqrt / bc1), hf_decay = T(opt_.lr * s.weight_decay);
        const AdamWStepScalars<T> sc{decay, b1, b2, eps, ss, bc2, hf_step, hf_decay, opt_.legacy_hf};
        constexpr int64_t kChunk = 16384;  // elements per work item, a multiple of every vector width
        const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (n > 32768)
        for (int64_t c = 0; c < chunks; ++c) {
          const int64_t i0 = c * kChunk, len = std::min(kChunk, n - i0);
          if constexpr (std::is_same_v<T, float>)
            detail::adamw_update_f32(p + i0, g + i0, m + i0, v + i0, len, sc);
          else
            detail::adamw_update_scalar(p + i0, g + i0, m + i0, v + i0, 0, len, sc);
        }
      });
    }
  }

  // set_to_none semantics (torch ≥ 2.0 default): gradients are dropped, not zeroed.
  void zero_grad() {
    for (State& s : states_) s.param.zero_grad();
  }

  // Optimizer state for checkpoints: exp_avg and exp_avg_sq per parameter.
  struct State {
    Tensor param, m, v;
    double weight_decay;
  };
  const std::vector<State>& states() const { return states_; }
  std::vector<State>& states() { return states_; }
  void set_step_count(int64_t s) { step_ = s; }

 private:
  void add_group(ParamGroup g) {
    for (Tensor& p : g.params)
      states_.push_back({p, Tensor::zeros(p.shape(), p.dtype()), Tensor::zeros(p.shape(), p.dtype()), g.weight_decay});
  }
  AdamWOptions opt_;
  std::vector<State> states_;
  int64_t step_ = 0;
};

}  // namespace galvani
