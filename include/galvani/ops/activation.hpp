// ops/activation.hpp — the MLP nonlinearities: GELU (tanh form, GPT-2), SiLU,
// and SiLU(gate) ⊙ up fused (Mistral's SwiGLU MLP).
//
//   gelu_tanh(x) = ½ x (1 + tanh(u)),  u = √(2/π) (x + 0.044715 x³)
//     — Hugging Face's "gelu_new" (NewGELUActivation), which GPT-2 was trained with.
//     d/dx = ½ (1 + t) + ½ x (1 − t²) · √(2/π) (1 + 3·0.044715 x²),  t = tanh(u)
//   silu(x) = x σ(x),  σ(x) = 1 / (1 + e^{−x});   d/dx = σ(x) (1 + x (1 − σ(x)))
//   silu_mul(gate, up) = silu(gate) ⊙ up
//     d/dgate = dy ⊙ up ⊙ silu'(gate),   d/dup = dy ⊙ silu(gate)
// Fusing silu_mul saves one (B, T, intermediate) tensor in the forward and one
// pass over memory in each direction — Mistral-7B's intermediate size is 14336.
// Kernels go through for_each_row, so any strides work and threads split rows.
//
// f32 gelu_tanh takes tanh(u) = ±(1 − z)/(1 + z), z = e^{−2|u|}, with e^x from ops/fast_exp.hpp's
// polynomial (≤ 1 ulp on [−87, 0]) instead of std::tanh: glibc's tanhf costs several times its
// expf, and the GELU of GPT-2's 3072-wide MLP is a few per cent of a step. The absolute error of
// t is ~1e-7, which is what ½x(1 + t) and 1 − t² see (tests/test_ops_nn.cpp checks f32 against
// f64 over ±90); bench_gemm's gelu_tanh row: 40–49 → 17 ms (docs/benchmarks.md). f64 (gradient
// checks) keeps std::tanh. silu's sigmoid uses the same polynomial. Contiguous f32 tensors run
// ops/vec_math.hpp's loops, eight or sixteen lanes at a time, in a copy per instruction set
// (docs/performance.md); other layouts run the scalar formulas below through for_each_row.
#pragma once
#include <cmath>
#include <type_traits>

#include "../autograd/node.hpp"
#include "../core/dispatch.hpp"
#include "../core/strided.hpp"
#include "../core/tensor.hpp"  // the complete Tensor: views, to(), backward()
#include "elementwise.hpp"
#include "fast_exp.hpp"
#include "op_args.hpp"
#include "vec_math.hpp"

namespace galvani {

namespace detail {
// f32: the polynomial e^x of ops/vec_math.hpp (the same formulas as its eight-lane loops, so a
// tensor's strided and contiguous paths agree); f64 (the gradient checks): the standard library.
template <class T> inline T sigmoid(T x) {
  if constexpr (std::is_same_v<T, float>) return sigmoid_poly(x);
  else return T(1) / (T(1) + std::exp(-x));
}
template <class T> inline T tanh_via_exp(T u) {
  if constexpr (std::is_same_v<T, float>) return tanh_poly(u);
  else return std::tanh(u);
}

// True when every tensor is f32, contiguous and of `shape`: the ops below then run the
// eight-lane loops of ops/vec_math.hpp over the flat buffers.
inline bool contiguous_f32(std::initializer_list<const Tensor*> ts, const Shape& shape) {
  for (const Tensor* t : ts)
    if (t->dtype() != DType::f32 || !t->is_contiguous() || t->shape() != shape) return false;
  return true;
}

// Runs f(begin, count) over [0, n) in chunks of 16,384 elements (a multiple of the lanes), over
// the threads, inside dispatch() (the device check, and the profiler's event named `op`). For
// the contiguous_f32 paths: f works on float pointers taken beforehand.
template <class F> void flat_f32_kernel(const char* op, std::initializer_list<OpInput> inputs, int64_t n, F f) {
  dispatch(op, inputs, FloatTypes{DType::f32}, [&]<class T>() {
    constexpr int64_t kChunk = 16384;
    const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (chunks > 1)
    for (int64_t c = 0; c < chunks; ++c) f(c * kChunk, std::min(kChunk, n - c * kChunk));
  });
}
}  // namespace detail

// The scalar maths, one function each, so forward and backward read side by side.
template <class T> inline T gelu_tanh_forward(T x) {
  const T k = T(0.7978845608028654);  // √(2/π)
  return T(0.5) * x * (T(1) + detail::tanh_via_exp(k * (x + T(0.044715) * x * x * x)));
}
template <class T> inline T gelu_tanh_backward(T x) {  // d gelu_tanh / dx
  const T k = T(0.7978845608028654);
  const T t = detail::tanh_via_exp(k * (x + T(0.044715) * x * x * x));
  return T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * k * (T(1) + T(3 * 0.044715) * x * x);
}
template <class T> inline T silu_forward(T x) { return x * detail::sigmoid(x); }
template <class T> inline T silu_backward(T x) {  // d silu / dx
  const T s = detail::sigmoid(x);
  return s * (T(1) + x * (T(1) - s));
}

inline Tensor gelu_tanh(const Tensor& x) {
  detail::check_float("gelu_tanh", "input", x);
  Tensor y;
  if (detail::contiguous_f32({&x}, x.shape())) {
    y = Tensor::empty(x.shape(), x.dtype(), x.device());
    const float* px = x.data<float>();
    float* py = y.data<float>();
    detail::flat_f32_kernel("gelu_tanh", {{"input", x}}, x.numel(),
                            [&](int64_t b, int64_t n) { detail::gelu_tanh_forward_isa(px + b, py + b, n); });
  } else {
    y = detail::unary_kernel("gelu_tanh", x, [](auto v) { return gelu_tanh_forward(v); });
  }
  return record("gelu_tanh", y, {x}, [x](const Tensor& g, const Needs&) -> Grads {
    if (detail::contiguous_f32({&g, &x}, x.shape())) {
      Tensor dx = Tensor::empty(x.shape(), x.dtype(), x.device());
      const float *pg = g.data<float>(), *px = x.data<float>();
      float* pd = dx.data<float>();
      detail::flat_f32_kernel("gelu_tanh backward", {{"grad", g}, {"input", x}}, x.numel(),
                              [&](int64_t b, int64_t n) { detail::gelu_tanh_backward_isa(pg + b, px + b, pd + b, n); });
      return {dx};
    }
    return {detail::binary_kernel("gelu_tanh backward", g, x, [](auto gv, auto xv) { return gv * gelu_tanh_backward(xv); })};
  });
}

inline Tensor silu(const Tensor& x) {
  detail::check_float("silu", "input", x);
  Tensor y = detail::unary_kernel("silu", x, [](auto v) { return silu_forward(v); });
  return record("silu", y, {x}, [x](const Tensor& g, const Needs&) -> Grads {
    return {detail::binary_kernel("silu backward", g, x, [](auto gv, auto xv) { return gv * silu_backward(xv); })};
  });
}

// silu(gate) ⊙ up; gate and up of one shape and dtype (no broadcasting).
inline Tensor silu_mul(const Tensor& gate, const Tensor& up) {
  detail::check_float("silu_mul", "gate", gate);
  detail::check_float("silu_mul", "up", up);
  GALVANI_CHECK(gate.shape() == up.shape() && gate.dtype() == up.dtype(), "silu_mul: gate ", detail::describe(gate),
                " and up ", detail::describe(up), " must have the same shape and dtype");
  Tensor y;
  if (detail::contiguous_f32({&gate, &up}, gate.shape())) {
    y = Tensor::empty(gate.shape(), gate.dtype(), gate.device());
    const float *pa = gate.data<float>(), *pu = up.data<float>();
    float* py = y.data<float>();
    detail::flat_f32_kernel("silu_mul", {{"gate", gate}, {"up", up}}, gate.numel(),
                            [&](int64_t b, int64_t n) { detail::silu_mul_forward_isa(pa + b, pu + b, py + b, n); });
  } else {
    y = detail::binary_kernel("silu_mul", gate, up, [](auto gv, auto uv) { return silu_forward(gv) * uv; });
  }
  return record("silu_mul", y, {gate, up}, [gate, up](const Tensor& g, const Needs& need) -> Grads {
    // One pass computes both gradients: (dgate, dup, dy, gate, up) walked together.
    Tensor dgate = Tensor::empty(gate.shape(), gate.dtype(), gate.device()),
           dup = Tensor::empty(up.shape(), up.dtype(), up.device());
    if (detail::contiguous_f32({&g, &gate, &up}, gate.shape())) {
      const float *pg = g.data<float>(), *pa = gate.data<float>(), *pu = up.data<float>();
      float *pdg = dgate.data<float>(), *pdu = dup.data<float>();
      detail::flat_f32_kernel("silu_mul backward", {{"grad", g}, {"gate", gate}, {"up", up}}, gate.numel(),
                              [&](int64_t b, int64_t n) {
                                detail::silu_mul_backward_isa(pg + b, pa + b, pu + b, pdg + b, pdu + b, n);
                              });
      return {need[0] ? dgate : Tensor(), need[1] ? dup : Tensor()};
    }
    dispatch("silu_mul backward", {{"grad", g}, {"gate", gate}, {"up", up}}, FloatTypes{gate.dtype()}, [&]<class T>() {
      T *pdg = dgate.data<T>(), *pdu = dup.data<T>();
      const T* pg = static_cast<const T*>(g.storage()->data());
      const T* pa = static_cast<const T*>(gate.storage()->data());
      const T* pu = static_cast<const T*>(up.storage()->data());
      for_each_row<5>(gate.shape(), {dgate.strides(), dup.strides(), g.strides(), gate.strides(), up.strides()},
                      {0, 0, g.offset(), gate.offset(), up.offset()}, [&](auto off, int64_t n, auto st) {
                        for (int64_t j = 0; j < n; ++j) {
                          const T dy = pg[off[2] + j * st[2]], a = pa[off[3] + j * st[3]], u = pu[off[4] + j * st[4]];
                          const T s = detail::sigmoid(a);
                          pdg[off[0] + j * st[0]] = dy * u * s * (T(1) + a * (T(1) - s));
                          pdu[off[1] + j * st[1]] = dy * a * s;
                        }
                      });
    });
    return {need[0] ? dgate : Tensor(), need[1] ? dup : Tensor()};
  });
}

}  // namespace galvani
