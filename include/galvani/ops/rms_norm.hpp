// ops/rms_norm.hpp — RMSNorm, as in Llama/Mistral: y = x / √(mean(x²) + eps) ⊙ w
//
// forward:  x (N, C), w (C) → y (N, C), and rstd (N) kept for backward
//   rstd = 1 / √(Σ x² / C + eps),  y = (x · rstd) ⊙ w
// Hugging Face's MistralRMSNorm computes in f32 and multiplies by the weight last;
// here f32 inputs compute in f32 with a double accumulator, f64 inputs in f64.
// backward (n = x · rstd):
//   dn = dy ⊙ w,   dx = rstd · (dn − n ⊙ mean(dn ⊙ n)),   dw = Σ_rows dy ⊙ n
// Unlike LayerNorm there is no mean to subtract and no bias.
#pragma once
#include <cmath>
#include <vector>

#include "../autograd/node.hpp"
#include "../core/dispatch.hpp"
#include "../core/tensor.hpp"  // the complete Tensor: views, to(), backward()
#include "layer_norm.hpp"  // kNormRowsPerBlock
#include "op_args.hpp"

namespace galvani {

// x, y: (N, C); w: (C); rstd: (N) output.
template <class T>
void rms_norm_forward(const T* x, const T* w, T* y, T* rstd, int64_t N, int64_t C, double eps) {
#pragma omp parallel for schedule(static) if (N * C > 16384)
  for (int64_t i = 0; i < N; ++i) {
    const T* xr = x + i * C;
    T* yr = y + i * C;
    double ss = 0;
    for (int64_t c = 0; c < C; ++c) ss += double(xr[c]) * double(xr[c]);
    const T rs = T(1.0 / std::sqrt(ss / double(C) + eps));
    for (int64_t c = 0; c < C; ++c) yr[c] = w[c] * (xr[c] * rs);
    rstd[i] = rs;
  }
}

// dy, x, dx: (N, C); w: (C); rstd: (N). dx and dw may be nullptr (not needed).
template <class T>
void rms_norm_backward(const T* dy, const T* x, const T* w, const T* rstd, T* dx, T* dw, int64_t N, int64_t C) {
  const int64_t blocks = (N + kNormRowsPerBlock - 1) / kNormRowsPerBlock;
  std::vector<double> part_w(dw ? size_t(blocks * C) : 0);  // per-block partial dw, summed in order below
#pragma omp parallel for schedule(static) if (N * C > 16384)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    double* pw = dw ? part_w.data() + blk * C : nullptr;
    const int64_t end = std::min(N, (blk + 1) * kNormRowsPerBlock);
    for (int64_t i = blk * kNormRowsPerBlock; i < end; ++i) {
      const T *dyr = dy + i * C, *xr = x + i * C;
      const double rs = double(rstd[i]);
      double dn_n_mean = 0;
      for (int64_t c = 0; c < C; ++c) {
        const double n = double(xr[c]) * rs;
        dn_n_mean += double(dyr[c]) * double(w[c]) * n;
        if (pw) pw[c] += double(dyr[c]) * n;
      }
      dn_n_mean /= double(C);
      if (dx) {
        T* dxr = dx + i * C;
        for (int64_t c = 0; c < C; ++c)
          dxr[c] = T(rs * (double(dyr[c]) * double(w[c]) - double(xr[c]) * rs * dn_n_mean));
      }
    }
  }
  if (!dw) return;
#pragma omp parallel for schedule(static) if (blocks * C > 16384)
  for (int64_t c = 0; c < C; ++c) {
    double s = 0;
    for (int64_t blk = 0; blk < blocks; ++blk) s += part_w[size_t(blk * C + c)];
    dw[c] = T(s);
  }
}

// y = RMSNorm(x) over the last dim: x (..., C), weight (C) in x's dtype — or, with an f32 x, bf16/f16
// (a model stored in 2 bytes computing in f32): the weight is widened first, as w.to(torch.float32).
inline Tensor rms_norm(const Tensor& x, const Tensor& weight, double eps) {
  if (x.defined() && weight.defined() && x.dtype() == DType::f32 &&
      (weight.dtype() == DType::bf16 || weight.dtype() == DType::f16))
    return rms_norm(x, weight.to(DType::f32), eps);
  detail::check_float("rms_norm", "input", x);
  GALVANI_CHECK(x.dim() >= 1, "rms_norm: expected an input (..., C), got ", detail::describe(x));
  const int64_t C = x.shape().back(), N = x.numel() / std::max<int64_t>(C, 1);
  GALVANI_CHECK(weight.defined() && weight.shape() == Shape{C} && weight.dtype() == x.dtype(), "rms_norm: weight ",
                detail::describe(weight), " does not match input ", detail::describe(x), " (expected ",
                dtype_name(x.dtype()), " [", C, "])");
  Tensor xc = detail::dense(x), wc = detail::dense(weight);
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  Tensor rstd = Tensor::empty({N}, x.dtype(), x.device());
  dispatch("rms_norm", {{"input", x}, {"weight", weight}}, FloatTypes{x.dtype()}, [&]<class T>() {
    rms_norm_forward<T>(xc.data<T>(), wc.data<T>(), y.data<T>(), rstd.data<T>(), N, C, eps);
  });
  return record("rms_norm", y, {x, weight},
                [xc = xc.detach(), wc = wc.detach(), rstd, N, C](const Tensor& g, const Needs& need) -> Grads {
                  Tensor gc = detail::dense(g);
                  Tensor dx = need[0] ? Tensor::empty(xc.shape(), xc.dtype(), xc.device()) : Tensor();
                  Tensor dw = need[1] ? Tensor::empty({C}, xc.dtype(), xc.device()) : Tensor();
                  dispatch("rms_norm backward", {{"grad", gc}, {"input", xc}, {"weight", wc}}, FloatTypes{xc.dtype()},
                           [&]<class T>() {
                    rms_norm_backward<T>(gc.data<T>(), xc.data<T>(), wc.data<T>(), rstd.data<T>(),
                                         dx.defined() ? dx.data<T>() : nullptr, dw.defined() ? dw.data<T>() : nullptr,
                                         N, C);
                           });
                  return {dx, dw};
                });
}

}  // namespace galvani
