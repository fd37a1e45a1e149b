// ops/cross_entropy.hpp — the language-model loss: log-softmax + negative log-likelihood, fused.
//
// forward:  logits (N, V), targets (N) i32/i64 → loss: a scalar (mean, sum) or (N) (none)
//   loss_i = logsumexp(logits_i) − logits_i[t_i]   for rows with t_i ≠ ignore_index, else 0
//   mean   = Σ loss_i / (number of rows not ignored)   (torch: NaN when every row is ignored)
// backward: dlogits_i = (softmax(logits_i) − onehot(t_i)) · s_i, with
//   s_i = g / count (mean), g (sum) or g_i (none), and 0 on ignored rows.
// Only logsumexp (N) is saved; the softmax is recomputed row by row in backward
// and written straight into dlogits. At GPT-2's vocabulary (V = 50257) dlogits is
// the largest tensor of a training step, so no other (N, V) buffer is ever made —
// not even a contiguous copy: logits are read through their strides.
//
// For the tiny GPT-2 this op was a third of a training step, so f32 logits whose
// rows are contiguous (the lm_head's output always is) take a vectorized path:
// a float exp written as a polynomial that the compiler vectorizes (libm's expf is
// a scalar call), one pass for the max and one for Σexp per row, and a backward
// that writes each row of dlogits in one pass, compiled for every instruction-set level
// (ops/cross_entropy_kernels.inl, core/isa.hpp). Other layouts and f64 take the plain
// strided loops, which are also the fast path's test oracle.
#pragma once
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include <vector>

#include "../autograd/node.hpp"
#include "../core/dispatch.hpp"
#include "../core/tensor.hpp"  // the complete Tensor: views, to(), backward()
#include "../core/isa.hpp"
#include "fast_exp.hpp"
#include "op_args.hpp"
#include "vec_math.hpp"

namespace galvani {

enum class Reduction { mean, sum, none };

namespace detail {
// The f32 row kernels, once per instruction-set level (core/isa.hpp): namespaces isa_avx512,
// isa_avx2, isa_base, each with
//   logsumexp_row(x, V)
//   cross_entropy_forward_rows<I>(logits, s0, targets, loss, lse, N, V, ignore_index)
//   cross_entropy_backward_rows<I>(logits, s0, targets, lse, scale, dlogits, N, V, ignore_index)
// for rows of logits contiguous (s1 == 1) with row stride s0.
#define GALVANI_ISA_KERNELS "../ops/cross_entropy_kernels.inl"
#include "../core/isa_foreach.inl"
}  // namespace detail

// The instruction-set level of the cross-entropy copy that runs now (as gemm_kernels_level()).
inline int cross_entropy_kernels_level() { GALVANI_ISA_CALL(detail, cross_entropy_kernels_level()); }

// The f32 fast path of cross_entropy_forward: logits (N, V), rows contiguous (s1 == 1), row
// stride s0; targets, loss, lse (N). Runs the copy for cpu_capability().
template <class I>
void cross_entropy_forward_rows(const float* logits, int64_t s0, const I* targets, float* loss, float* lse, int64_t N,
                                int64_t V, int64_t ignore_index) {
  GALVANI_ISA_CALL(detail, cross_entropy_forward_rows<I>(logits, s0, targets, loss, lse, N, V, ignore_index));
}

// The f32 fast path of cross_entropy_backward: dlogits_i = (e^(x_i − lse_i) − onehot(t_i))·s_i,
// one pass per row. logits (N, V) as above; targets, lse, scale (N); dlogits (N, V) contiguous.
template <class I>
void cross_entropy_backward_rows(const float* logits, int64_t s0, const I* targets, const float* lse,
                                 const float* scale, float* dlogits, int64_t N, int64_t V, int64_t ignore_index) {
  GALVANI_ISA_CALL(detail, cross_entropy_backward_rows<I>(logits, s0, targets, lse, scale, dlogits, N, V, ignore_index));
}

// logits (N, V) with strides (s0, s1); targets (N). Writes loss (N) (0 on ignored rows)
// and lse (N) (logsumexp per row). Targets must already be checked.
// `vectorized = false` forces the strided loop (tests compare the two paths).
template <class T, class I>
void cross_entropy_forward(const T* logits, int64_t s0, int64_t s1, const I* targets, T* loss, T* lse, int64_t N,
                           int64_t V, int64_t ignore_index, bool vectorized = true) {
  if constexpr (std::is_same_v<T, float>) {
    if (vectorized && s1 == 1) return cross_entropy_forward_rows<I>(logits, s0, targets, loss, lse, N, V, ignore_index);
  }
#pragma omp parallel for schedule(static) if (N * V > 16384)
  for (int64_t i = 0; i < N; ++i) {
    const T* x = logits + i * s0;
    T m = -std::numeric_limits<T>::infinity();
    for (int64_t j = 0; j < V; ++j) m = std::max(m, x[j * s1]);
    double s = 0;
    for (int64_t j = 0; j < V; ++j) s += double(std::exp(x[j * s1] - m));
    const T l = m + T(std::log(s));
    lse[i] = l;
    const int64_t t = int64_t(targets[i]);
    loss[i] = t == ignore_index ? T(0) : l - x[t * s1];
  }
}

// dlogits (N, V) contiguous; scale (N): the factor s_i per row (0 on ignored rows).
template <class T, class I>
void cross_entropy_backward(const T* logits, int64_t s0, int64_t s1, const I* targets, const T* lse, const T* scale,
                            T* dlogits, int64_t N, int64_t V, int64_t ignore_index, bool vectorized = true) {
  if constexpr (std::is_same_v<T, float>) {
    if (vectorized && s1 == 1)
      return cross_entropy_backward_rows<I>(logits, s0, targets, lse, scale, dlogits, N, V, ignore_index);
  }
#pragma omp parallel for schedule(static) if (N * V > 16384)
  for (int64_t i = 0; i < N; ++i) {
    const T* x = logits + i * s0;
    T* d = dlogits + i * V;
    const int64_t t = int64_t(targets[i]);
    if (t == ignore_index || scale[i] == T(0)) {
      std::fill_n(d, V, T(0));
      continue;
    }
    const T l = lse[i], s = scale[i];
    for (int64_t j = 0; j < V; ++j) d[j] = std::exp(x[j * s1] - l) * s;
    d[t] -= s;
  }
}

inline Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index = -100,
                            Reduction reduction = Reduction::mean) {
  detail::check_float("cross_entropy", "logits", logits);
  GALVANI_CHECK(targets.defined() && (targets.dtype() == DType::i32 || targets.dtype() == DType::i64),
                "cross_entropy: targets must be an i32 or i64 tensor, got ", detail::describe(targets), " (logits ",
                detail::describe(logits), ")");
  GALVANI_CHECK(logits.dim() == 2 && targets.dim() == 1 && targets.shape()[0] == logits.shape()[0],
                "cross_entropy: expected logits (N, V) and targets (N), got logits ", shape_str(logits.shape()),
                " and targets ", shape_str(targets.shape()));
  const int64_t N = logits.shape()[0], V = logits.shape()[1];
  const int64_t s0 = logits.strides()[0], s1 = logits.strides()[1];
  // Targets are checked (and the rows that count for the mean counted) on the host,
  // before any kernel runs: a target out of range would read outside its row.
  int64_t count = 0;  // rows not ignored
  {
    const std::vector<int64_t> t_values = host_values<int64_t>(targets, "cross_entropy (targets)");
    for (int64_t i = 0; i < N; ++i) {
      const int64_t t = t_values[size_t(i)];
      if (t == ignore_index) continue;
      GALVANI_CHECK(t >= 0 && t < V, "cross_entropy: target ", t, " at position ", i, " of targets ",
                    shape_str(targets.shape()), " is out of range for logits ", shape_str(logits.shape()),
                    " (V = ", V, "; ignore_index = ", ignore_index, ")");
      ++count;
    }
  }
  Tensor tc = detail::dense(targets);
  Tensor loss = Tensor::empty({N}, logits.dtype(), logits.device()), lse = Tensor::empty({N}, logits.dtype(), logits.device());
  dispatch("cross_entropy", {{"logits", logits}, {"targets", targets}}, FloatTypes{logits.dtype()}, [&]<class T>() {
    visit_index(targets.dtype(), "cross_entropy", [&]<class I>() {
      const T* px = static_cast<const T*>(logits.storage()->data()) + logits.offset();
      cross_entropy_forward<T, I>(px, s0, s1, tc.data<I>(), loss.data<T>(), lse.data<T>(), N, V, ignore_index);
    });
  });

  Tensor out;
  if (reduction == Reduction::none) {
    out = loss;
  } else {
    out = Tensor::empty({}, logits.dtype(), logits.device());
    dispatch("cross_entropy (reduce)", {{"loss", loss}}, FloatTypes{logits.dtype()}, [&]<class T>() {
      double s = 0;  // in row order: deterministic
      const T* pl = loss.data<T>();
      for (int64_t i = 0; i < N; ++i) s += double(pl[i]);
      // mean over zero rows is 0/0 = NaN, as torch gives.
      *out.data<T>() = T(reduction == Reduction::sum ? s : s / double(count));
    });
  }
  return record("cross_entropy", out, {logits, targets},
                [logits = logits.detach(), tc, lse, N, V, ignore_index, reduction, count](const Tensor& g,
                                                                                           const Needs&) -> Grads {
                  Tensor dlogits = Tensor::empty({N, V}, logits.dtype(), logits.device());
                  // The output gradient is 1 or N numbers: read on the host into per-row factors.
                  const std::vector<double> gv = host_values<double>(g, "cross_entropy backward (grad)");
                  dispatch("cross_entropy backward", {{"logits", logits}, {"targets", tc}}, FloatTypes{logits.dtype()},
                           [&]<class T>() {
                    visit_index(tc.dtype(), "cross_entropy backward", [&]<class I>() {
                      const I* pt = tc.data<I>();
                      // Per-row factor s_i; ignored rows get 0.
                      std::vector<T> scale(static_cast<size_t>(N));
                      for (int64_t i = 0; i < N; ++i) {
                        double s = reduction == Reduction::none ? gv[size_t(i)]
                                   : reduction == Reduction::sum ? gv[0]
                                                                 : gv[0] / double(count);
                        scale[size_t(i)] = int64_t(pt[i]) == ignore_index ? T(0) : T(s);
                      }
                      const T* px = static_cast<const T*>(logits.storage()->data()) + logits.offset();
                      cross_entropy_backward<T, I>(px, logits.strides()[0], logits.strides()[1], pt, lse.data<T>(),
                                                   scale.data(), dlogits.data<T>(), N, V, ignore_index);
                    });
                  });
                  return {dlogits, Tensor()};
                });
}

}  // namespace galvani
