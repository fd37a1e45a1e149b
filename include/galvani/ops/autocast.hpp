// ops/autocast.hpp — the pieces the lower-precision ops of autocast share (core/autocast.hpp
// says which ops and why): rounding f32 values to bf16/f16, 2-byte copies of operands, the
// weight-cast cache, and autocast_round, the differentiable "cast to bf16 and read back".
#pragma once
#include <cstdint>

#include "../autograd/node.hpp"
#include "../core/autocast.hpp"
#include "../core/tensor.hpp"

namespace galvani {

namespace detail {

// Whether an op given f32 `t` runs in the lower precision now: autocast is on and t is an f32
// CPU tensor (an f64 gradient check, or integer ids, are left alone, as torch's autocast leaves
// f64; a GPU tensor is the [cuda] backend's, whose ops bring their own 16-bit kernels).
inline bool autocast_applies(const Tensor& t) {
  return is_autocast_enabled() && t.defined() && t.dtype() == DType::f32 && t.device().is_cpu();
}

// t (f32, contiguous, on the CPU) rounded in place to `low`'s values: each element becomes the
// nearest bf16 or f16 value (ties to even; f16 overflows to ±inf), widened back — torch's
// x.to(low).float(). Error: t is not a contiguous f32 CPU tensor.
inline void round_to_precision_(Tensor& t, DType low) {
  GALVANI_CHECK(t.dtype() == DType::f32 && t.is_contiguous() && t.device().is_cpu(), "autocast: rounding needs a "
                "contiguous f32 CPU tensor, got a ", t.is_contiguous() ? "" : "non-contiguous ", dtype_name(t.dtype()),
                " tensor on ", t.device().str());
  float* p = t.data<float>();
  const int64_t n = t.numel();
  if (low == DType::bf16) {
#pragma omp parallel for simd schedule(static) if (n > (1 << 18))
    for (int64_t i = 0; i < n; ++i) p[i] = float(bf16(p[i]));
  } else {
#pragma omp parallel for schedule(static) if (n > (1 << 18))
    for (int64_t i = 0; i < n; ++i) p[i] = f16::to_float(f16::from_float(p[i]));
  }
}

// A contiguous f32 copy of t (any layout) rounded to `low`: t.to(low).float(), recording nothing.
inline Tensor rounded_copy(const Tensor& t, DType low) {
  Tensor r = Tensor::empty(t.shape(), DType::f32, t.device());
  copy_into(r, t);
  round_to_precision_(r, low);
  return r;
}

// A contiguous copy of t in dtype `to` (bf16, f16 or f32), recording nothing: the lower-precision
// ops record their own backward.
inline Tensor cast_raw(const Tensor& t, DType to) {
  Tensor out = Tensor::empty(t.shape(), to, t.device());
  const Tensor c = t.contiguous();
  const int64_t n = c.numel();
  if (c.dtype() == DType::f32 && to == DType::bf16) {
    const float* s = c.data<float>();
    bf16* d = out.data<bf16>();
#pragma omp parallel for simd schedule(static) if (n > (1 << 18))
    for (int64_t i = 0; i < n; ++i) d[i] = bf16(s[i]);
  } else {
    copy_into(out, c);
  }
  return out;
}

// w in `low`, cast once per outermost autocast region when w is a leaf that requires grad (a
// trainable weight: torch's autocast caches exactly those), else cast now.
inline Tensor autocast_weight(const Tensor& w, DType low) {
  if (!(w.is_leaf() && w.requires_grad())) return cast_raw(w, low);
  AutocastState& s = autocast_state();
  auto it = s.cache.find(w.impl_ptr().get());
  if (it != s.cache.end() && it->second.second.dtype() == low) return it->second.second;
  Tensor c = cast_raw(w, low);
  s.cache[w.impl_ptr().get()] = {w.impl_ptr(), c};
  return c;
}

}  // namespace detail

// x (f32) rounded to `low` (bf16 or f16) and kept in f32: torch's x.to(low) as the next op reads
// it. Backward rounds the incoming gradient to `low` the same way (the gradient of a bf16 tensor
// is bf16; its cast back to f32 is exact). x's shape, any layout; the result is contiguous.
// Error: low is not bf16 or f16; x is not f32.
inline Tensor autocast_round(const Tensor& x, DType low) {
  GALVANI_CHECK(low == DType::bf16 || low == DType::f16, "autocast_round: ", dtype_name(low),
                " is not bf16 or f16");
  GALVANI_CHECK(x.dtype() == DType::f32, "autocast_round: the input is ", dtype_name(x.dtype()), ", expected f32");
  return record("autocast_round", detail::rounded_copy(x, low), {x}, [low](const Tensor& g, const Needs&) -> Grads {
    return {detail::rounded_copy(g, low)};
  });
}

namespace detail {
// An op on torch's autocast list that has no 16-bit kernel of its own, under autocast: its f32
// inputs rounded to the autocast dtype (autocast_round), the op run with autocast off, its output
// rounded — matmul, attention and the 4-bit linear. `op(inputs…)` is the op itself; undefined
// inputs (an absent bias) pass through.
template <class Op, class... Ts>
Tensor autocast_lower(Op&& op, const Ts&... inputs) {
  const DType low = get_autocast_dtype();
  const auto lower = [low](const Tensor& t) { return t.defined() ? autocast_round(t, low) : t; };
  Tensor y;
  {
    AutocastGuard off(low, false);
    y = op(lower(inputs)...);
  }
  return autocast_round(y, low);
}
}  // namespace detail

}  // namespace galvani
