// ops/elementwise.hpp — add, sub, mul, div (with broadcasting), neg, exp, log,
// pow, sqrt, and the scalar forms, each with its backward.
//
// Broadcasting follows numpy/torch (core/broadcast.hpp): shapes are right-aligned and
// a dim of size 1 (or a missing leading dim) stretches to match. The kernel reads the
// stretched input through stride 0, so nothing is copied; the backward sums
// the gradient back over the stretched dims (sum_to).
//
// binary_kernel / unary_kernel are the two loops every elementwise op (and the
// activations) runs; each is one dispatch, so the device check and the CPU/CUDA choice
// happen there, once per op.
#pragma once
#include <cmath>

#include "../autograd/node.hpp"
#include "../core/broadcast.hpp"
#include "../core/dispatch.hpp"
#include "../core/reduce.hpp"
#include "../core/strided.hpp"
#include "../core/tensor.hpp"  // the complete Tensor: views, to(), backward()

namespace galvani {

namespace detail {

// out = f(a, b) elementwise over the broadcast shape.
template <class F>
Tensor binary_kernel(const char* op, const Tensor& a, const Tensor& b, F f) {
  GALVANI_CHECK(a.dtype() == b.dtype(), op, ": dtypes differ: ", dtype_name(a.dtype()), " ",
                shape_str(a.shape()), " vs ", dtype_name(b.dtype()), " ", shape_str(b.shape()));
  Shape shape = broadcast_shapes(a.shape(), b.shape(), op);
  Tensor out = Tensor::empty(shape, a.dtype(), a.device());
  dispatch(op, {{"a", a}, {"b", b}}, FloatTypes{a.dtype()}, [&]<class T>() {
    T* o = out.data<T>();
    const T* pa = static_cast<const T*>(a.storage()->data());
    const T* pb = static_cast<const T*>(b.storage()->data());
    for_each_row<3>(shape, {out.strides(), broadcast_strides(a, shape), broadcast_strides(b, shape)},
                    {0, a.offset(), b.offset()}, [&](auto off, int64_t n, auto st) {
                      T* po = o + off[0];
                      const T* xa = pa + off[1];
                      const T* xb = pb + off[2];
                      if (st[1] == 1 && st[2] == 1) {  // the common, vectorizable case
                        for (int64_t j = 0; j < n; ++j) po[j] = f(xa[j], xb[j]);
                      } else {
                        for (int64_t j = 0; j < n; ++j) po[j * st[0]] = f(xa[j * st[1]], xb[j * st[2]]);
                      }
                    });
  });
  return out;
}

// out = f(x) elementwise.
template <class F>
Tensor unary_kernel(const char* op, const Tensor& x, F f) {
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  dispatch(op, {{"input", x}}, FloatTypes{x.dtype()}, [&]<class T>() {
    T* o = out.data<T>();
    const T* px = static_cast<const T*>(x.storage()->data());
    for_each_row<2>(x.shape(), {out.strides(), x.strides()}, {0, x.offset()}, [&](auto off, int64_t n, auto st) {
      T* po = o + off[0];
      const T* xs = px + off[1];
      if (st[1] == 1) {
        for (int64_t j = 0; j < n; ++j) po[j] = f(xs[j]);
      } else {
        for (int64_t j = 0; j < n; ++j) po[j * st[0]] = f(xs[j * st[1]]);
      }
    });
  });
  return out;
}

}  // namespace detail

Tensor neg(const Tensor& x);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& x, double s);

inline Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = detail::binary_kernel("add", a, b, [](auto x, auto y) { return x + y; });
  return record("add", out, {a, b}, [sa = a.shape(), sb = b.shape()](const Tensor& g, const Needs& need) -> Grads {
    return {need[0] ? sum_to(g, sa) : Tensor(), need[1] ? sum_to(g, sb) : Tensor()};
  });
}

inline Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = detail::binary_kernel("sub", a, b, [](auto x, auto y) { return x - y; });
  return record("sub", out, {a, b}, [sa = a.shape(), sb = b.shape()](const Tensor& g, const Needs& need) -> Grads {
    return {need[0] ? sum_to(g, sa) : Tensor(), need[1] ? sum_to(neg(g), sb) : Tensor()};
  });
}

inline Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = detail::binary_kernel("mul", a, b, [](auto x, auto y) { return x * y; });
  return record("mul", out, {a, b}, [a, b](const Tensor& g, const Needs& need) -> Grads {
    return {need[0] ? sum_to(mul(g, b), a.shape()) : Tensor(), need[1] ? sum_to(mul(g, a), b.shape()) : Tensor()};
  });
}

inline Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out = detail::binary_kernel("div", a, b, [](auto x, auto y) { return x / y; });
  return record("div", out, {a, b}, [a, b, out = out.detach()](const Tensor& g, const Needs& need) -> Grads {
    // d(a/b)/db = -a/b² = -out/b
    return {need[0] ? sum_to(div(g, b), a.shape()) : Tensor(),
            need[1] ? sum_to(neg(div(mul(g, out), b)), b.shape()) : Tensor()};
  });
}

inline Tensor neg(const Tensor& x) {
  Tensor out = detail::unary_kernel("neg", x, [](auto v) { return -v; });
  return record("neg", out, {x}, [](const Tensor& g, const Needs&) -> Grads { return {neg(g)}; });
}

inline Tensor add(const Tensor& x, double s) {
  Tensor out = detail::unary_kernel("add", x, [s](auto v) { return v + decltype(v)(s); });
  return record("add_scalar", out, {x}, [](const Tensor& g, const Needs&) -> Grads { return {g}; });
}

inline Tensor mul(const Tensor& x, double s) {
  Tensor out = detail::unary_kernel("mul", x, [s](auto v) { return v * decltype(v)(s); });
  return record("mul_scalar", out, {x}, [s](const Tensor& g, const Needs&) -> Grads { return {mul(g, s)}; });
}

// Backward functions that need the op's own output capture out.detach(): the
// output holds its node, so capturing `out` itself would make a cycle
// (out → node → closure → out) that leaks every graph never backpropagated.
inline Tensor exp(const Tensor& x) {
  Tensor out = detail::unary_kernel("exp", x, [](auto v) { return std::exp(v); });
  return record("exp", out, {x}, [out = out.detach()](const Tensor& g, const Needs&) -> Grads { return {mul(g, out)}; });
}

inline Tensor log(const Tensor& x) {
  Tensor out = detail::unary_kernel("log", x, [](auto v) { return std::log(v); });
  return record("log", out, {x}, [x](const Tensor& g, const Needs&) -> Grads { return {div(g, x)}; });
}

inline Tensor sqrt(const Tensor& x) {
  Tensor out = detail::unary_kernel("sqrt", x, [](auto v) { return std::sqrt(v); });
  return record("sqrt", out, {x}, [out = out.detach()](const Tensor& g, const Needs&) -> Grads {
    return {div(mul(g, 0.5), out)};  // d√x = 1 / (2√x)
  });
}

inline Tensor pow(const Tensor& x, double p) {
  Tensor out = detail::unary_kernel("pow", x, [p](auto v) { return decltype(v)(std::pow(v, decltype(v)(p))); });
  return record("pow", out, {x}, [x, p](const Tensor& g, const Needs&) -> Grads {
    return {mul(g, mul(pow(x, p - 1), p))};
  });
}

inline Tensor sub(const Tensor& x, double s) { return add(x, -s); }
inline Tensor div(const Tensor& x, double s) { return mul(x, 1.0 / s); }

inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator-(const Tensor& x) { return neg(x); }
inline Tensor operator+(const Tensor& x, double s) { return add(x, s); }
inline Tensor operator-(const Tensor& x, double s) { return sub(x, s); }
inline Tensor operator*(const Tensor& x, double s) { return mul(x, s); }
inline Tensor operator/(const Tensor& x, double s) { return div(x, s); }
inline Tensor operator*(double s, const Tensor& x) { return mul(x, s); }

}  // namespace galvani
