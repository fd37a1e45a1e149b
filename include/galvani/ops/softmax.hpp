// ops/softmax.hpp — softmax and log_softmax over any dim, numerically stable.
//
//   softmax(x)_i     = exp(x_i - m) / Σ_j exp(x_j - m),   m = max_j x_j
//   log_softmax(x)_i = x_i - m - log Σ_j exp(x_j - m)
// Subtracting the row max changes nothing mathematically but keeps exp() from
// overflowing (a logit of 100 in f32 would otherwise be inf).
//
// Layout: the input is read as (outer, n, inner) with the softmax over n. For the
// usual last-dim case inner = 1 and each row is contiguous; for another dim a
// "row" is n elements `inner` apart. Rows are independent, so threads split rows.
//
// backward (y is the saved output, g the output gradient, sums over the row):
//   softmax:      dx = y ⊙ (g − Σ g⊙y)
//   log_softmax:  dx = g − exp(y) ⊙ Σ g
#pragma once
#include <algorithm>
#include <cmath>
#include <limits>

#include "../autograd/node.hpp"
#include "../core/dispatch.hpp"
#include "../core/tensor.hpp"  // the complete Tensor: views, to(), backward()
#include "op_args.hpp"

namespace galvani {

// x, y: (outer, n, inner) contiguous; softmax (or log_softmax) over n.
template <class T>
void softmax_forward(const T* x, T* y, int64_t outer, int64_t n, int64_t inner, bool log) {
  const int64_t rows = outer * inner;
#pragma omp parallel for schedule(static) if (rows * n > 16384)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t base = (r / inner) * n * inner + r % inner;
    const T* xr = x + base;
    T* yr = y + base;
    T m = -std::numeric_limits<T>::infinity();
    for (int64_t i = 0; i < n; ++i) m = std::max(m, xr[i * inner]);
    // A row of all -inf (fully masked) gives NaN, as in torch.
    double s = 0;
    for (int64_t i = 0; i < n; ++i) {
      T e = std::exp(xr[i * inner] - m);
      s += double(e);
      if (!log) yr[i * inner] = e;
    }
    if (log) {
      const T lse = m + T(std::log(s));
      for (int64_t i = 0; i < n; ++i) yr[i * inner] = xr[i * inner] - lse;
    } else {
      const T inv = T(1.0 / s);
      for (int64_t i = 0; i < n; ++i) yr[i * inner] *= inv;
    }
  }
}

// y: the forward output, g: its gradient, dx: the input gradient; all (outer, n, inner).
template <class T>
void softmax_backward(const T* y, const T* g, T* dx, int64_t outer, int64_t n, int64_t inner, bool log) {
  const int64_t rows = outer * inner;
#pragma omp parallel for schedule(static) if (rows * n > 16384)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t base = (r / inner) * n * inner + r % inner;
    const T *yr = y + base, *gr = g + base;
    T* dr = dx + base;
    double s = 0;
    if (log) {
      for (int64_t i = 0; i < n; ++i) s += double(gr[i * inner]);
      for (int64_t i = 0; i < n; ++i) dr[i * inner] = gr[i * inner] - std::exp(yr[i * inner]) * T(s);
    } else {
      for (int64_t i = 0; i < n; ++i) s += double(gr[i * inner]) * double(yr[i * inner]);
      for (int64_t i = 0; i < n; ++i) dr[i * inner] = yr[i * inner] * (gr[i * inner] - T(s));
    }
  }
}

namespace detail {

inline Tensor softmax_impl(const char* op, const Tensor& x, int64_t dim, bool log) {
  check_float(op, "input", x);
  GALVANI_CHECK(x.dim() >= 1, op, ": expected at least 1 dim, got ", describe(x));
  const int64_t d = x.wrap_dim(dim);
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < d; ++i) outer *= x.shape()[i];
  for (int64_t i = d + 1; i < x.dim(); ++i) inner *= x.shape()[i];
  const int64_t n = x.shape()[d];
  Tensor xc = dense(x);
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  dispatch(op, {{"input", x}}, FloatTypes{x.dtype()},
           [&]<class T>() { softmax_forward<T>(xc.data<T>(), y.data<T>(), outer, n, inner, log); });
  return record(op, y, {x}, [y_saved = y.detach(), outer, n, inner, log, op](const Tensor& g, const Needs&) -> Grads {
    Tensor gc = dense(g);
    Tensor dx = Tensor::empty(gc.shape(), gc.dtype(), gc.device());
    dispatch(op, {{"grad", gc}, {"output", y_saved}}, FloatTypes{gc.dtype()}, [&]<class T>() {
      softmax_backward<T>(y_saved.data<T>(), gc.data<T>(), dx.data<T>(), outer, n, inner, log);
    });
    return {dx};
  });
}

}  // namespace detail

// softmax over `dim` (default: the last). Any strides; the output is contiguous.
inline Tensor softmax(const Tensor& x, int64_t dim = -1) { return detail::softmax_impl("softmax", x, dim, false); }

// log(softmax(x)) computed directly (never log of a rounded-to-zero probability).
inline Tensor log_softmax(const Tensor& x, int64_t dim = -1) {
  return detail::softmax_impl("log_softmax", x, dim, true);
}

}  // namespace galvani
