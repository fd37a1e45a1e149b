// ops/dropout.hpp — inverted dropout: zero each element with probability p and
// scale the kept ones by 1 / (1 − p), so the expected value is unchanged and
// evaluation needs no rescaling.
//
// forward:  x (any shape) → y, y_i = keep_i ? x_i / (1 − p) : 0
//   keep_i = uniform01(seed, start + i) ≥ p, i the row-major element index
// backward: dx_i = keep_i ? dy_i / (1 − p) : 0
// The mask is never stored: element i's draw is a pure function of
// (seed, start + i) (core/random.hpp), so backward recomputes it. That costs a
// hash per element instead of an (N) mask in memory, gives the same mask for
// 1 or 16 threads, and makes a run reproducible from the generator's seed.
#pragma once
#include "../core/random.hpp"
#include "dense.hpp"

namespace galvani {

// y = x ⊙ mask / (1 − p) over n elements, the mask drawn from (seed, start + i).
template <class T>
void dropout_kernel(const T* x, T* y, int64_t n, double p, uint64_t seed, uint64_t start) {
  const T scale = T(1.0 / (1.0 - p));
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) y[i] = Generator::uniform01(seed, start + uint64_t(i)) >= p ? x[i] * scale : T(0);
}

// Identity when !training or p == 0; otherwise draws x.numel() counters from `gen`.
inline Tensor dropout(const Tensor& x, double p, bool training, Generator& gen) {
  detail::check_float("dropout", "input", x);
  GALVANI_CHECK(p >= 0.0 && p <= 1.0, "dropout: probability p = ", p, " is not in [0, 1] (input ",
                detail::describe(x), ")");
  if (!training || p == 0.0) return x;
  if (p == 1.0) {  // everything dropped (1 / (1 − p) would be inf; torch returns zeros)
    Tensor y = Tensor::zeros(x.shape(), x.dtype());
    return record("dropout", y, {x}, [](const Tensor& g, const Needs&) -> Grads {
      return {Tensor::zeros(g.shape(), g.dtype())};
    });
  }
  const int64_t n = x.numel();
  const uint64_t seed = gen.seed(), start = gen.advance(uint64_t(n));
  Tensor xc = detail::dense(x);
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  visit_float(x.dtype(), "dropout", [&]<class T>() { dropout_kernel<T>(xc.data<T>(), y.data<T>(), n, p, seed, start); });
  return record("dropout", y, {x}, [n, p, seed, start](const Tensor& g, const Needs&) -> Grads {
    Tensor gc = detail::dense(g);
    Tensor dx = Tensor::empty(gc.shape(), gc.dtype());
    visit_float(gc.dtype(), "dropout backward",
                [&]<class T>() { dropout_kernel<T>(gc.data<T>(), dx.data<T>(), n, p, seed, start); });
    return {dx};
  });
}

}  // namespace galvani
