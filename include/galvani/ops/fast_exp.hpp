// ops/fast_exp.hpp — e^x in float, written so that a `#pragma omp simd` loop vectorizes it.
//
// std::exp does not vectorize without -ffast-math, and the softmaxes of attention and of
// cross-entropy spend their time in exactly one exp per score. Both call this one.
#pragma once
#include <bit>
#include <cstdint>

namespace galvani::detail {

// e^x in float for x ≤ ~88, within 1 ulp of the correctly rounded value on
// [-87, 0] (checked against double exp), 0 below -87 (e^-∞ = 0), where e^x < 1.7e-38 adds
// nothing to a softmax, and NaN for a NaN x (as std::exp, so a NaN logit makes a NaN loss, as
// in torch, instead of vanishing). Branch-free so that a `#pragma omp simd` loop vectorizes it.
// Cody–Waite: x = n·ln2 + r with |r| ≤ ln2/2 (ln2 split in two so n·ln2_hi is exact),
// e^r by Cephes' degree-7 polynomial, then 2^n built in the exponent bits.
// The reduction and the polynomial, shared by expf_poly and ops/vec_math.hpp's lanes (V is float
// or a GCC vector of floats, taken by reference so that a vector never crosses a call by value):
// from the clamped xc, t = xc·log2(e) + 1.5·2²³ (n rounded, in t's low mantissa bits, from which
// the caller builds 2^n) and er = e^r.
template <class V> [[gnu::always_inline]] inline void expf_poly_core(const V& xc, V& t, V& er) {
  t = xc * 1.44269504088896341f + 12582912.0f;
  const V n = t - 12582912.0f;
  V r = xc - n * 0.693359375f;  // ln2_hi: 9 significant bits, n·ln2_hi exact
  r = r + n * 2.12194440e-4f;   // − n·ln2_lo
  V p = r * 1.9875691500e-4f + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  er = p * r * r + r + 1.0f;
}

inline float expf_poly(float x) {
  const float xc = x < -87.0f ? -87.0f : x;  // keeps 2^n a normal float (a NaN x stays NaN)
  float t, er;
  expf_poly_core(xc, t, er);
  const float two_n = std::bit_cast<float>((std::bit_cast<int32_t>(t) - 0x4B400000 + 127) << 23);
  const float keep = x < -87.0f ? 0.0f : 1.0f;  // 1 for a NaN x, whose er is NaN
  return er * two_n * keep;
}

}  // namespace galvani::detail
