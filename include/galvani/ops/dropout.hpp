// ops/dropout.hpp — inverted dropout: zero each element with probability p and
// scale the kept ones by 1 / (1 − p), so the expected value is unchanged and
// evaluation needs no rescaling.
//
// forward:  x (n) → y (n), y_i = keep_i ? x_i / (1 − p) : 0   (any shape, read as n elements)
//   keep_i = uniform01(seed, start + i) ≥ p, i the row-major element index
// backward: dy (n) → dx (n), dx_i = keep_i ? dy_i / (1 − p) : 0
// The mask is never stored: element i's draw is a pure function of
// (seed, start + i) (core/random.hpp), so backward recomputes it. That costs a
// hash per element instead of an (N) mask in memory, gives the same mask for
// 1 or 16 threads, and makes a run reproducible from the generator's seed.
#pragma once
#include <cstdint>

#include "../autograd/node.hpp"
#include "../core/dispatch.hpp"
#include "../core/random.hpp"
#include "../core/tensor.hpp"  // the complete Tensor: views, to(), backward()
#include "op_args.hpp"

namespace galvani {

// x, y: (n) contiguous. y = x ⊙ mask / (1 − p), the mask drawn from (seed, start + i).
template <class T>
void dropout_forward(const T* x, T* y, int64_t n, double p, uint64_t seed, uint64_t start) {
  const T scale = T(1.0 / (1.0 - p));
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) y[i] = Generator::uniform01(seed, start + uint64_t(i)) >= p ? x[i] * scale : T(0);
}

// dy, dx: (n) contiguous. dx = dy ⊙ mask / (1 − p) with the forward's mask, drawn again from
// the same (seed, start): the backward of a masked scaling is the same masked scaling.
template <class T>
void dropout_backward(const T* dy, T* dx, int64_t n, double p, uint64_t seed, uint64_t start) {
  dropout_forward<T>(dy, dx, n, p, seed, start);
}

// Inverted dropout of x (any shape, f32/f64) with probability p in [0, 1]. Identity when
// !training or p == 0; otherwise draws x.numel() counters from `gen`. Semantics of
// torch.nn.functional.dropout (p == 1 gives zeros). Throws galvani::Error for a p outside
// [0, 1] or a non-float input.
inline Tensor dropout(const Tensor& x, double p, bool training, Generator& gen) {
  detail::check_float("dropout", "input", x);
  GALVANI_CHECK(p >= 0.0 && p <= 1.0, "dropout: probability p = ", p, " is not in [0, 1] (input ",
                detail::describe(x), ")");
  if (!training || p == 0.0) return x;
  if (p == 1.0) {  // everything dropped (1 / (1 − p) would be inf; torch returns zeros)
    Tensor y = Tensor::zeros(x.shape(), x.dtype(), x.device());
    return record("dropout", y, {x}, [](const Tensor& g, const Needs&) -> Grads {
      return {Tensor::zeros(g.shape(), g.dtype(), g.device())};
    });
  }
  const int64_t n = x.numel();
  const uint64_t seed = gen.seed(), start = gen.advance(uint64_t(n));
  Tensor xc = detail::dense(x);
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  dispatch("dropout", {{"input", x}}, FloatTypes{x.dtype()},
           [&]<class T>() { dropout_forward<T>(xc.data<T>(), y.data<T>(), n, p, seed, start); });
  return record("dropout", y, {x}, [n, p, seed, start](const Tensor& g, const Needs&) -> Grads {
    Tensor gc = detail::dense(g);
    Tensor dx = Tensor::empty(gc.shape(), gc.dtype(), gc.device());
    dispatch("dropout backward", {{"grad", gc}}, FloatTypes{gc.dtype()},
             [&]<class T>() { dropout_backward<T>(gc.data<T>(), dx.data<T>(), n, p, seed, start); });
    return {dx};
  });
}

}  // namespace galvani
