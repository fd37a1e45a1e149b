// quant/quantize_4bit_array.hpp — bnb's 4-bit quantizer and double quantization on plain arrays.
//
// The whole-array half of quantize_4bit() (quant/quantize_4bit.hpp) without Tensor, JSON or
// OpenMP requirements, so that the CUDA tests (tests/cuda/, compiled by nvcc with nothing but the
// standard library) quantize with exactly the code the CPU path and its bitsandbytes fixtures
// use. The per-element arithmetic is in quant/nf4_format.hpp; the block scaling rules (a full
// block scaled by x * (1 / absmax), the short last block by x / absmax, absmax clamped to 1e-38)
// are bitsandbytes' CPU quantizer's, explained in quant/quantize_4bit.hpp.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "blockwise8.hpp"
#include "nf4_format.hpp"
#include "torch_sum.hpp"

namespace galvani::quant {

namespace detail {
template <class T>
float to_f32(T v) {
  if constexpr (std::is_same_v<T, float>) return v;
  else return float(v);
}
}  // namespace detail

// x[0 .. n) (f32, f64, or a type convertible to float) → packed[(n+1)/2], absmax[nblocks]
// (bnb's F.quantize_4bit with compress_statistics=False). One block per iteration; blocks are
// independent, so the loop is parallel and the result does not depend on the thread count.
// blocksize must be even and positive (valid_4bit_blocksize() is the caller's check).
template <class T>
void quantize_4bit_array(const T* x, int64_t n, int64_t bs, QuantType qt, uint8_t* packed, float* absmax) {
  using detail::to_f32;
  const int64_t nb = num_blocks(n, bs);
  const int64_t full = n / bs;  // blocks scaled by the reciprocal; block `full` (if any) is short
  if (n & 1) packed[n >> 1] = 0;
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < nb; ++b) {
    const int64_t lo = b * bs, hi = std::min(n, lo + bs);
    float am = 0.0f;
    for (int64_t i = lo; i < hi; ++i) am = std::max(am, std::fabs(to_f32(x[i])));
    const float clamped = std::max(am, 1e-38f);
    absmax[b] = b < full ? am : clamped;  // bnb stores the short block's absmax after the clamp
    const float inv = 1.0f / clamped;  // bnb: A_com * (1.0 / absmax.clamp(min=1e-38))
    // bs is even, so a block starts on a byte; elements 2j, 2j+1 share byte j.
    for (int64_t i = lo; i < hi; i += 2) {
      const float s0 = b < full ? to_f32(x[i]) * inv : to_f32(x[i]) / clamped;
      const uint8_t c0 = quantize_code4(qt, s0);
      uint8_t c1;
      if (i + 1 < hi) {
        const float s1 = b < full ? to_f32(x[i + 1]) * inv : to_f32(x[i + 1]) / clamped;
        c1 = quantize_code4(qt, s1);
      } else {
        c1 = quantize_code4(qt, 0.0f);  // odd n: bnb pads the scaled values with 0.0 (NF4 code 7)
      }
      packed[i >> 1] = pack_nibbles(c0, c1);
    }
  }
}

// Double quantization of the absmax (bnb's quantize_4bit, compress_statistics=True):
//   offset = absmax.mean() (torch's float32 sum order); codes, nested_absmax =
//   quantize_blockwise(absmax - offset, blocksize=256) with the signed dynamic map.
struct NestedAbsmax {
  std::vector<uint8_t> codes;         // u8 [nblocks]
  std::vector<float> nested_absmax;   // f32 [ceil(nblocks / 256)]
  float offset = 0.0f;                // "nested_offset"
};
inline NestedAbsmax double_quantize_absmax(const float* absmax, int64_t nblocks, Round8 rule = Round8::cpu) {
  NestedAbsmax out;
  out.offset = torch_mean_f32(absmax, nblocks);
  std::vector<float> centered(static_cast<size_t>(nblocks));
  for (int64_t b = 0; b < nblocks; ++b) centered[size_t(b)] = absmax[b] - out.offset;
  Blockwise8 b8 = quantize_blockwise8(centered.data(), nblocks, kNestedBlocksize, rule);
  out.codes = std::move(b8.codes);
  out.nested_absmax = std::move(b8.absmax);
  return out;
}

}  // namespace galvani::quant
