// optim/clip_grad.hpp — clip gradients by their global L2 norm (torch's clip_grad_norm_).
//
// total = ‖(g₁, g₂, …)‖₂ over all parameters together; if total > max_norm every
// gradient is scaled by max_norm / (total + 1e-6). Returns total (before clipping),
// which the Trainer logs as grad_norm.
#pragma once
#include <cmath>
#include <vector>

#include "../autograd/grad_mode.hpp"
#include "../core/tensor.hpp"

namespace galvani {

inline double clip_grad_norm(const std::vector<Tensor>& params, double max_norm) {
  NoGradGuard no_grad;
  double sq = 0;
  for (const Tensor& p : params) {
    if (!p.grad().defined()) continue;
    Tensor g = p.grad().contiguous();
    dispatch("clip_grad_norm", {{"grad", g}}, FloatTypes{g.dtype()}, [&]<class T>() {
      const T* d = g.data<T>();
      double s = 0;
      const int64_t n = g.numel();
#pragma omp parallel for reduction(+ : s) schedule(static) if (n > 65536)
      for (int64_t i = 0; i < n; ++i) s += double(d[i]) * double(d[i]);
      sq += s;
    });
  }
  const double total = std::sqrt(sq);
  const double coef = max_norm / (total + 1e-6);
  if (coef < 1.0) {
    for (const Tensor& p : params) {
      if (!p.grad().defined()) continue;
      if (!p.grad().is_contiguous()) p.set_grad(p.grad().contiguous());
      Tensor g = p.grad();
      dispatch("clip_grad_norm", {{"grad", g}}, FloatTypes{g.dtype()}, [&]<class T>() {
        T* d = g.data<T>();
        const int64_t n = g.numel();
        for (int64_t i = 0; i < n; ++i) d[i] = T(double(d[i]) * coef);
      });
    }
  }
  return total;
}

}  // namespace galvani
