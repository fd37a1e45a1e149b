// ops/layer_norm.hpp — LayerNorm over the last dim (GPT-2's ln_1, ln_2, ln_f).
//
// forward:  x (N, C), w (C), b (C) or none → y (N, C), and mean (N), rstd (N) kept for backward
//   mean = Σ x / C,  var = Σ (x − mean)² / C  (biased, as torch),  rstd = 1 / √(var + eps)
//   y    = (x − mean) · rstd · w + b
// backward (llm.c's layernorm_backward, with n = (x − mean)·rstd the normalized input):
//   dn = dy ⊙ w
//   dx = rstd · (dn − mean(dn) − n ⊙ mean(dn ⊙ n))
//   dw = Σ_rows dy ⊙ n,   db = Σ_rows dy
// Any leading shape is flattened to N rows. Statistics are accumulated in double.
#pragma once
#include <cmath>
#include <vector>

#include "../autograd/node.hpp"
#include "../core/dispatch.hpp"
#include "../core/tensor.hpp"  // the complete Tensor: views, to(), backward()
#include "op_args.hpp"

namespace galvani {

// x, y: (N, C); w: (C); b: (C) or nullptr; mean, rstd: (N) outputs.
template <class T>
void layer_norm_forward(const T* x, const T* w, const T* b, T* y, T* mean, T* rstd, int64_t N, int64_t C,
                        double eps) {
#pragma omp parallel for schedule(static) if (N * C > 16384)
  for (int64_t i = 0; i < N; ++i) {
    const T* xr = x + i * C;
    T* yr = y + i * C;
    double s = 0;
    for (int64_t c = 0; c < C; ++c) s += double(xr[c]);
    const double m = s / double(C);
    double v = 0;  // two passes: the one-pass Σx² − mean² loses digits when |mean| ≫ std
    for (int64_t c = 0; c < C; ++c) v += (double(xr[c]) - m) * (double(xr[c]) - m);
    const T rs = T(1.0 / std::sqrt(v / double(C) + eps)), mt = T(m);
    for (int64_t c = 0; c < C; ++c) yr[c] = (xr[c] - mt) * rs * w[c] + (b ? b[c] : T(0));
    mean[i] = mt;
    rstd[i] = rs;
  }
}

// Rows are cut into fixed blocks of kRowsPerBlock; each block sums its share of dw/db
// and the blocks are added in order afterwards, so results do not depend on the
// thread count (and no two threads ever write the same element).
inline constexpr int64_t kNormRowsPerBlock = 64;

// dy, x, dx: (N, C); w: (C); mean, rstd: (N). dx may be nullptr (not needed);
// dw, db: (C) or nullptr.
template <class T>
void layer_norm_backward(const T* dy, const T* x, const T* w, const T* mean, const T* rstd, T* dx, T* dw, T* db,
                         int64_t N, int64_t C) {
  const int64_t blocks = (N + kNormRowsPerBlock - 1) / kNormRowsPerBlock;
  const bool params = dw || db;
  std::vector<double> part_w(params ? size_t(blocks * C) : 0), part_b(params ? size_t(blocks * C) : 0);
#pragma omp parallel for schedule(static) if (N * C > 16384)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    double* pw = params ? part_w.data() + blk * C : nullptr;
    double* pb = params ? part_b.data() + blk * C : nullptr;
    const int64_t end = std::min(N, (blk + 1) * kNormRowsPerBlock);
    for (int64_t i = blk * kNormRowsPerBlock; i < end; ++i) {
      const T *dyr = dy + i * C, *xr = x + i * C;
      const double m = double(mean[i]), rs = double(rstd[i]);
      double dn_mean = 0, dn_n_mean = 0;
      for (int64_t c = 0; c < C; ++c) {
        const double n = (double(xr[c]) - m) * rs, dn = double(dyr[c]) * double(w[c]);
        dn_mean += dn;
        dn_n_mean += dn * n;
        if (params) {
          pw[c] += double(dyr[c]) * n;
          pb[c] += double(dyr[c]);
        }
      }
      dn_mean /= double(C);
      dn_n_mean /= double(C);
      if (dx) {
        T* dxr = dx + i * C;
        for (int64_t c = 0; c < C; ++c) {
          const double n = (double(xr[c]) - m) * rs, dn = double(dyr[c]) * double(w[c]);
          dxr[c] = T(rs * (dn - dn_mean - n * dn_n_mean));
        }
      }
    }
  }
  if (!params) return;
#pragma omp parallel for schedule(static) if (blocks * C > 16384)
  for (int64_t c = 0; c < C; ++c) {
    double sw = 0, sb = 0;
    for (int64_t blk = 0; blk < blocks; ++blk) {
      sw += part_w[size_t(blk * C + c)];
      sb += part_b[size_t(blk * C + c)];
    }
    if (dw) dw[c] = T(sw);
    if (db) db[c] = T(sb);
  }
}

// y = LayerNorm(x) over the last dim: x (..., C), weight (C), bias (C) or Tensor(), in x's dtype — or,
// with an f32 x, bf16/f16 (a model stored in 2 bytes computing in f32): widened first, as .to(torch.float32).
inline Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps = 1e-5) {
  const auto low = [](const Tensor& t) { return t.defined() && (t.dtype() == DType::bf16 || t.dtype() == DType::f16); };
  if (x.defined() && x.dtype() == DType::f32 && (low(weight) || low(bias)))
    return layer_norm(x, low(weight) ? weight.to(DType::f32) : weight, low(bias) ? bias.to(DType::f32) : bias, eps);
  detail::check_float("layer_norm", "input", x);
  GALVANI_CHECK(x.dim() >= 1, "layer_norm: expected an input (..., C), got ", detail::describe(x));
  const int64_t C = x.shape().back(), N = x.numel() / std::max<int64_t>(C, 1);
  GALVANI_CHECK(weight.defined() && weight.shape() == Shape{C} && weight.dtype() == x.dtype(),
                "layer_norm: weight ", detail::describe(weight), " does not match input ", detail::describe(x),
                " (expected ", dtype_name(x.dtype()), " [", C, "])");
  GALVANI_CHECK(!bias.defined() || (bias.shape() == Shape{C} && bias.dtype() == x.dtype()), "layer_norm: bias ",
                detail::describe(bias), " does not match input ", detail::describe(x), " (expected ",
                dtype_name(x.dtype()), " [", C, "])");
  Tensor xc = detail::dense(x), wc = detail::dense(weight), bc = bias.defined() ? detail::dense(bias) : Tensor();
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  Tensor mean = Tensor::empty({N}, x.dtype(), x.device()), rstd = Tensor::empty({N}, x.dtype(), x.device());
  dispatch("layer_norm", {{"input", x}, {"weight", weight}, {"bias", bias}}, FloatTypes{x.dtype()}, [&]<class T>() {
    layer_norm_forward<T>(xc.data<T>(), wc.data<T>(), bc.defined() ? bc.data<T>() : nullptr, y.data<T>(),
                          mean.data<T>(), rstd.data<T>(), N, C, eps);
  });
  return record("layer_norm", y, {x, weight, bias},
                [xc = xc.detach(), wc = wc.detach(), mean, rstd, N, C](const Tensor& g, const Needs& need) -> Grads {
                  Tensor gc = detail::dense(g);
                  const Device dev = xc.device();
                  Tensor dx = need[0] ? Tensor::empty(xc.shape(), xc.dtype(), dev) : Tensor();
                  Tensor dw = need[1] ? Tensor::empty({C}, xc.dtype(), dev) : Tensor();
                  Tensor db = need[2] ? Tensor::empty({C}, xc.dtype(), dev) : Tensor();
                  dispatch("layer_norm backward", {{"grad", gc}, {"input", xc}, {"weight", wc}}, FloatTypes{xc.dtype()},
                           [&]<class T>() {
                    layer_norm_backward<T>(gc.data<T>(), xc.data<T>(), wc.data<T>(), mean.data<T>(), rstd.data<T>(),
                                           dx.defined() ? dx.data<T>() : nullptr,
                                           dw.defined() ? dw.data<T>() : nullptr,
                                           db.defined() ? db.data<T>() : nullptr, N, C);
                           });
                  return {dx, dw, db};
                });
}

}  // namespace galvani
