// quant/blockwise8.hpp — blockwise 8-bit quantization with the dynamic map (bnb's
// quantize_blockwise / dequantize_blockwise), as double quantization uses it for the absmax.
//
//   x[0 .. n) ──blocks of `blocksize`──► absmax[b] = max |x| (float32)
//                                         q[i] = code8(x[i] * (1 / absmax[b]))   uint8
//   x̂[i] = map[q[i]] * absmax[b]
//
// Which code a value gets depends on where bitsandbytes ran (both are "nearest", they differ on
// values near a midpoint):
//   Round8::cuda — bnb's CUDA kernel (binary search, quantize_code8_cuda): the nearest code.
//                  Checkpoints quantized on a GPU — most on the Hugging Face Hub — follow it.
//   Round8::cpu  — bnb's CPU kernel: a 65,536-point table (lut8_index), which is not always
//                  the nearest code. Checkpoints quantized by transformers on a CPU follow it.
// galvani's CPU quantizer follows the CPU rule by default, so that quantizing on load here gives
// the bytes transformers gives on the same machine; the CUDA kernels will follow the CUDA rule.
// A loaded checkpoint is never re-quantized, so either rule reads any checkpoint.
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

#include "../core/error.hpp"
#include "nf4_format.hpp"

namespace galvani::quant {

enum class Round8 : uint8_t { cpu, cuda };

// The 256-entry signed dynamic map as a vector (bnb's create_dynamic_map()).
inline std::vector<float> dynamic_map() {
  std::vector<float> m(256);
  for (int i = 0; i < 256; ++i) m[size_t(i)] = dynamic_map_value(i);
  return m;
}

// The CPU rule's table: for each of the 65,536 points of [-1, 1], the index of the nearest
// entry of `code` (sorted, 256 entries), ties to the lower — the first code whose upper
// midpoint is not below the point (bnb's build_quantize_lut).
inline std::vector<uint8_t> build_lut8(const float* code) {
  float mid[255];
  for (int i = 0; i < 255; ++i) mid[i] = 0.5f * (code[i] + code[i + 1]);
  std::vector<uint8_t> lut(65536);
  int c = 0;
  for (int i = 0; i < 65536; ++i) {
    const float v = lut8_point(i);
    while (c < 255 && mid[c] < v) ++c;
    lut[size_t(i)] = uint8_t(c);
  }
  return lut;
}

struct Blockwise8 {
  std::vector<uint8_t> codes;  // [n]
  std::vector<float> absmax;   // [ceil(n / blocksize)]
};

// bnb's quantize_blockwise(x, code=dynamic map, blocksize) on float32 x[0 .. n). The scale is
// x * (1 / absmax), the reciprocal taken once per block, as both bnb kernels do. A block whose
// absmax is 0 gets code 0 (the CPU kernel writes zeros; the CUDA kernel's 0 * inf = NaN also
// ends at code 0) and dequantizes to -0.99 * 0 = 0.
inline Blockwise8 quantize_blockwise8(const float* x, int64_t n, int64_t blocksize, Round8 rule = Round8::cpu) {
  GALVANI_CHECK(blocksize > 0, "quantize_blockwise8: blocksize must be positive, got ", blocksize);
  const std::vector<float> code = dynamic_map();
  static const std::vector<uint8_t> lut = build_lut8(dynamic_map().data());
  Blockwise8 out;
  out.codes.assign(size_t(n), 0);
  out.absmax.assign(size_t(num_blocks(n, blocksize)), 0.0f);
  for (int64_t b = 0; b * blocksize < n; ++b) {
    const int64_t lo = b * blocksize, hi = std::min(n, lo + blocksize);
    float am = 0.0f;
    for (int64_t i = lo; i < hi; ++i) am = std::max(am, std::fabs(x[i]));
    out.absmax[size_t(b)] = am;
    if (am == 0.0f) continue;
    const float inv = 1.0f / am;
    for (int64_t i = lo; i < hi; ++i) {
      const float s = x[i] * inv;
      out.codes[size_t(i)] = rule == Round8::cpu ? lut[lut8_index(s)] : quantize_code8_cuda(code.data(), s);
    }
  }
  return out;
}

// bnb's dequantize_blockwise: x̂[i] = code[q[i]] * absmax[i / blocksize] (float32).
inline std::vector<float> dequantize_blockwise8(const uint8_t* q, const float* absmax, const float* code, int64_t n,
                                                int64_t blocksize) {
  std::vector<float> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) out[size_t(i)] = code[q[i]] * absmax[block_of(i, blocksize)];
  return out;
}

}  // namespace galvani::quant
