// ops/vec_math.hpp — e^x, sigmoid and tanh eight floats at a time, and the f32 array loops of
// softmax, cross-entropy, silu and gelu built on them.
//
// ops/fast_exp.hpp's expf_poly is branch-free, yet GCC leaves a `#pragma omp simd` loop over it
// scalar unless the target has AVX-512 masks: under -ftrapping-math (the default) it will not
// if-convert the two float compares into selects ("control flow in loop"). So these loops are
// written with GCC's vector extension (`float __attribute__((vector_size(32)))`, also Clang's):
// eight lanes of the same operations, which the compiler maps onto whatever the enclosing code
// may use — one AVX register in an avx2/avx512 kernel copy or a -march=native build, two SSE
// registers in a build with no flags, two NEON registers on aarch64. The vectors are passed by
// reference only, never by value: a 32-byte vector argument changes the calling convention
// without AVX, and GCC warns about it (-Wpsabi). A tail of fewer than eight runs the scalar
// functions of the same formulas.
//
// Accuracy: the lanes compute exactly what expf_poly computes (the same operations in the same
// order; a compiler may fuse a multiply-add in one and not the other, so results may differ in
// the last bit), within 1 ulp of e^x on [-87, 0]; tests/test_ops_nn.cpp checks every function
// here against double-precision std::exp/tanh and against the scalar version.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#include "../core/isa.hpp"
#include "fast_exp.hpp"

namespace galvani::detail {

// L lanes of float and of int32 (L = 8: one AVX register; 16: one AVX-512 register). The
// per-ISA kernel copies pick 16 at the avx512 levels, everything else 8 (kVecLanes below).
template <int L> struct Vec {
  typedef float f __attribute__((vector_size(4 * L)));
  typedef int32_t i __attribute__((vector_size(4 * L)));
};
#if defined(__AVX512F__)
inline constexpr int kVecLanes = 16;  // the program's own flags have AVX-512
#else
inline constexpr int kVecLanes = 8;
#endif

#define GALVANI_VEC_INLINE [[gnu::always_inline]] inline
#define GALVANI_VEC_TYPES           \
  using fv = typename Vec<L>::f;    \
  using iv = typename Vec<L>::i;    \
  (void)sizeof(fv), (void)sizeof(iv)

template <int L> GALVANI_VEC_INLINE void load_v(typename Vec<L>::f& v, const float* p) { std::memcpy(&v, p, sizeof v); }
template <int L> GALVANI_VEC_INLINE void store_v(float* p, const typename Vec<L>::f& v) { std::memcpy(p, &v, sizeof v); }
template <int L> GALVANI_VEC_INLINE void splat_v(typename Vec<L>::f& v, float s) {
  v = typename Vec<L>::f{} + s;
}
// Σ lanes in a fixed order: halves added pairwise (L = 8: ((v0+v4)+(v2+v6)) + ((v1+v5)+(v3+v7))).
template <int L> GALVANI_VEC_INLINE float hsum_v(const typename Vec<L>::f& v) {
  float a[L];
  std::memcpy(a, &v, sizeof a);
  for (int w = L / 2; w >= 1; w /= 2)
    for (int k = 0; k < w; ++k) a[k] += a[k + w];
  return a[0];
}

// y = e^x, lane by lane: expf_poly (ops/fast_exp.hpp) with its two selects as bit masks.
template <int L> GALVANI_VEC_INLINE void expf_poly_v(typename Vec<L>::f& y, const typename Vec<L>::f& x) {
  GALVANI_VEC_TYPES;
  fv lo;
  splat_v<L>(lo, -87.0f);
  const iv under = x < lo;  // all ones where x < -87 (false for NaN, which stays NaN)
  const fv xc = (fv)(((iv)x & ~under) | ((iv)lo & under));
  fv t, er;
  expf_poly_core(xc, t, er);  // ops/fast_exp.hpp: the scalar's operations, lane by lane
  const fv two_n = (fv)((((iv)t) - 0x4B400000 + 127) << 23);
  y = (fv)((iv)(er * two_n) & ~under);  // 0 below -87
}

// σ(x) = 1 / (1 + e^-x) from e^-|x| ∈ (0, 1], so exp never overflows: 1 / (1 + z) for x ≥ 0,
// z / (1 + z) below (torch's sigmoid is the same function; it rounds differently in the last bit).
// NaN gives NaN.
GALVANI_VEC_INLINE float sigmoid_poly(float x) {
  const float z = expf_poly(-std::fabs(x)), d = 1.0f + z;
  return x >= 0.0f ? 1.0f / d : z / d;
}
template <int L> GALVANI_VEC_INLINE void sigmoid_poly_v(typename Vec<L>::f& y, const typename Vec<L>::f& x) {
  GALVANI_VEC_TYPES;
  const iv negative = ((iv)x & int32_t(0x80000000u)) != 0;
  const fv neg_abs = (fv)((iv)x | int32_t(0x80000000u));  // −|x|
  fv z, one;
  expf_poly_v<L>(z, neg_abs);
  splat_v<L>(one, 1.0f);
  const fv num = (fv)(((iv)z & negative) | ((iv)one & ~negative));  // z below 0, else 1
  y = num / (one + z);
}

// tanh(u) = sign(u)·(1 − z)/(1 + z), z = e^(−2|u|): within ~1e-7 absolute (near 0 the
// subtraction cancels, so not within an ulp there: tanh(1e-8) gives 0) — what gelu's 1 + tanh needs.
GALVANI_VEC_INLINE float tanh_poly(float u) {
  const float z = expf_poly(-2.0f * std::fabs(u)), t = (1.0f - z) / (1.0f + z);
  return std::copysign(t, u);
}
template <int L> GALVANI_VEC_INLINE void tanh_poly_v(typename Vec<L>::f& y, const typename Vec<L>::f& u) {
  GALVANI_VEC_TYPES;
  const iv sign = (iv)u & int32_t(0x80000000u);
  const fv m2abs = (fv)((iv)u | int32_t(0x80000000u)) * 2.0f;  // −2|u|
  fv z;
  expf_poly_v<L>(z, m2abs);
  const fv t = (1.0f - z) / (1.0f + z);
  y = (fv)((iv)t | sign);  // t ≥ 0 (or NaN): the sign of u
}

// ---------------------------------------------------------------- array loops (f32, contiguous)

// The array loops are always inlined, like the lanes: a kernel compiled for AVX2 (a
// core/isa_foreach.inl copy) must get them at its own width, not call a copy built for SSE2.
// Each takes the lane count L (default kVecLanes) and runs the scalar formula on the tail.

// max_j x[j], j < n (n ≥ 1); NaNs are passed over, as `x > m ? x : m` does.
template <int L = kVecLanes> GALVANI_VEC_INLINE float max_f32(const float* x, int64_t n) {
  GALVANI_VEC_TYPES;
  const int64_t nv = n - n % L;
  float m = -__builtin_inff();
  int64_t j = 0;
  if (nv > 0) {
    fv vm, v;
    splat_v<L>(vm, m);
    for (; j < nv; j += L) {
      load_v<L>(v, x + j);
      const iv gt = v > vm;
      vm = (fv)(((iv)v & gt) | ((iv)vm & ~gt));
    }
    float a[L];
    std::memcpy(a, &vm, sizeof a);
    for (int k = 0; k < L; ++k) m = a[k] > m ? a[k] : m;
  }
  for (j = nv; j < n; ++j) m = x[j] > m ? x[j] : m;
  return m;
}

// y[j] = c·e^(a·x[j] − b) for j < n; y may be x (in place).
template <int L = kVecLanes>
GALVANI_VEC_INLINE void exp_affine(const float* x, float* y, int64_t n, float a, float b, float c) {
  GALVANI_VEC_TYPES;
  const int64_t nv = n - n % L;
  fv va, vb, vc, v, e;
  splat_v<L>(va, a), splat_v<L>(vb, b), splat_v<L>(vc, c);
  for (int64_t j = 0; j < nv; j += L) {
    load_v<L>(v, x + j);
    v = va * v - vb;
    expf_poly_v<L>(e, v);
    store_v<L>(y + j, e * vc);
  }
  for (int64_t j = nv; j < n; ++j) y[j] = expf_poly(a * x[j] - b) * c;
}

// Σ_j e^(x[j] − b), j < n, in float: L partial sums, added in a fixed order at the end.
template <int L = kVecLanes> GALVANI_VEC_INLINE float sum_exp_shift(const float* x, int64_t n, float b) {
  GALVANI_VEC_TYPES;
  const int64_t nv = n - n % L;
  fv vb, acc, v, e;
  splat_v<L>(vb, b), splat_v<L>(acc, 0.0f);
  for (int64_t j = 0; j < nv; j += L) {
    load_v<L>(v, x + j);
    v = v - vb;
    expf_poly_v<L>(e, v);
    acc += e;
  }
  float s = hsum_v<L>(acc);
  for (int64_t j = nv; j < n; ++j) s += expf_poly(x[j] - b);
  return s;
}

// silu_mul: y = silu(a)·u = a·σ(a)·u.
template <int L = kVecLanes> GALVANI_VEC_INLINE void silu_mul_forward_f32(const float* a, const float* u, float* y, int64_t n) {
  GALVANI_VEC_TYPES;
  const int64_t nv = n - n % L;
  fv va, vu, s;
  for (int64_t j = 0; j < nv; j += L) {
    load_v<L>(va, a + j), load_v<L>(vu, u + j);
    sigmoid_poly_v<L>(s, va);
    store_v<L>(y + j, va * s * vu);
  }
  for (int64_t j = nv; j < n; ++j) y[j] = a[j] * sigmoid_poly(a[j]) * u[j];
}

// silu_mul backward: da = g·u·σ(a)·(1 + a·(1 − σ(a))), du = g·a·σ(a).
template <int L = kVecLanes>
GALVANI_VEC_INLINE void silu_mul_backward_f32(const float* g, const float* a, const float* u, float* da, float* du,
                                              int64_t n) {
  GALVANI_VEC_TYPES;
  const int64_t nv = n - n % L;
  fv vg, va, vu, s;
  for (int64_t j = 0; j < nv; j += L) {
    load_v<L>(vg, g + j), load_v<L>(va, a + j), load_v<L>(vu, u + j);
    sigmoid_poly_v<L>(s, va);
    store_v<L>(da + j, vg * vu * s * (1.0f + va * (1.0f - s)));
    store_v<L>(du + j, vg * va * s);
  }
  for (int64_t j = nv; j < n; ++j) {
    const float s1 = sigmoid_poly(a[j]);
    da[j] = g[j] * u[j] * s1 * (1.0f + a[j] * (1.0f - s1));
    du[j] = g[j] * a[j] * s1;
  }
}

// gelu_tanh (GPT-2's "gelu_new"): y = ½x(1 + tanh(√(2/π)(x + 0.044715x³))).
template <int L = kVecLanes> GALVANI_VEC_INLINE void gelu_tanh_forward_f32(const float* x, float* y, int64_t n) {
  GALVANI_VEC_TYPES;
  constexpr float k = 0.7978845608028654f;
  const int64_t nv = n - n % L;
  fv v, t;
  for (int64_t j = 0; j < nv; j += L) {
    load_v<L>(v, x + j);
    const fv arg = k * (v + 0.044715f * v * v * v);
    tanh_poly_v<L>(t, arg);
    store_v<L>(y + j, 0.5f * v * (1.0f + t));
  }
  for (int64_t j = nv; j < n; ++j) y[j] = 0.5f * x[j] * (1.0f + tanh_poly(k * (x[j] + 0.044715f * x[j] * x[j] * x[j])));
}

// gelu_tanh backward: dx = g·(½(1 + t) + ½x(1 − t²)·√(2/π)(1 + 3·0.044715x²)).
template <int L = kVecLanes>
GALVANI_VEC_INLINE void gelu_tanh_backward_f32(const float* g, const float* x, float* dx, int64_t n) {
  GALVANI_VEC_TYPES;
  constexpr float k = 0.7978845608028654f, c3 = float(3 * 0.044715);
  const int64_t nv = n - n % L;
  fv vg, v, t;
  for (int64_t j = 0; j < nv; j += L) {
    load_v<L>(vg, g + j), load_v<L>(v, x + j);
    const fv arg = k * (v + 0.044715f * v * v * v);
    tanh_poly_v<L>(t, arg);
    store_v<L>(dx + j, vg * (0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * k * (1.0f + c3 * v * v)));
  }
  for (int64_t j = nv; j < n; ++j) {
    const float xv = x[j], tj = tanh_poly(k * (xv + 0.044715f * xv * xv * xv));
    dx[j] = g[j] * (0.5f * (1.0f + tj) + 0.5f * xv * (1.0f - tj * tj) * k * (1.0f + c3 * xv * xv));
  }
}

// ---------------------------------------------------------------- one copy per instruction set

// The loops above once per level (core/isa.hpp), namespaces isa_avx512, isa_avx2, isa_base, each
// with exp_affine_k, silu_mul_forward_k, silu_mul_backward_k, gelu_tanh_forward_k and
// gelu_tanh_backward_k (ops/vec_math_kernels.inl); the *_isa functions below run the copy for
// cpu_capability(). The cross-entropy inlines the loops into its own kernel file instead.
#define GALVANI_ISA_KERNELS "../ops/vec_math_kernels.inl"
#include "../core/isa_foreach.inl"

// y[j] = c·e^(a·x[j] − b), j < n (y may be x), at the level in use.
inline void exp_affine_isa(const float* x, float* y, int64_t n, float a, float b, float c) {
  GALVANI_ISA_CALL(detail, exp_affine_k(x, y, n, a, b, c));
}
// y = silu(a)·u over n contiguous floats, at the level in use.
inline void silu_mul_forward_isa(const float* a, const float* u, float* y, int64_t n) {
  GALVANI_ISA_CALL(detail, silu_mul_forward_k(a, u, y, n));
}
// da = g·u·σ(a)·(1 + a(1 − σ(a))), du = g·a·σ(a) over n contiguous floats, at the level in use.
inline void silu_mul_backward_isa(const float* g, const float* a, const float* u, float* da, float* du, int64_t n) {
  GALVANI_ISA_CALL(detail, silu_mul_backward_k(g, a, u, da, du, n));
}
// y = gelu_tanh(x) over n contiguous floats, at the level in use.
inline void gelu_tanh_forward_isa(const float* x, float* y, int64_t n) {
  GALVANI_ISA_CALL(detail, gelu_tanh_forward_k(x, y, n));
}
// dx = g·gelu_tanh'(x) over n contiguous floats, at the level in use.
inline void gelu_tanh_backward_isa(const float* g, const float* x, float* dx, int64_t n) {
  GALVANI_ISA_CALL(detail, gelu_tanh_backward_k(g, x, dx, n));
}

#undef GALVANI_VEC_TYPES
#undef GALVANI_VEC_INLINE

}  // namespace galvani::detail

namespace galvani {
// The instruction-set level of the activation/softmax loop copy that runs now (as gemm_kernels_level()).
inline int vec_math_kernels_level() { GALVANI_ISA_CALL(detail, vec_math_kernels_level()); }
}  // namespace galvani
