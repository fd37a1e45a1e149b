// quant/nf4_format.hpp — the bitsandbytes 4-bit format, one element at a time.
//
// Everything a quantizer, a dequantizer or a fused matmul needs to know about one element of a
// bitsandbytes 4-bit weight lives here, in functions marked GALVANI_HOST_DEVICE: the CPU code in
// quant/ calls them, the CUDA kernels in kernels/ will call the same ones, and the CPU test suite
// (tests/test_quant_nf4.cpp) checks their arithmetic against the bitsandbytes package.
//
// The format (bitsandbytes >= 0.41.3, what transformers saves for load_in_4bit):
//
//   W (out, in), any float dtype ──flatten row-major──► x[0 .. n)
//   blocks of `blocksize` elements (64 by default; 32 … 4096), the last one may be short
//   absmax[b] = max |x| over block b                                   float32 [nblocks]
//   code(i)   = the 4-bit code whose value is nearest x[i] / absmax[b]  (NF4 or FP4 table)
//   packed[j] = code(2j) << 4 | code(2j+1)   — the HIGH nibble holds the EVEN element
//               uint8 [(n+1)/2, 1]; an odd n pads the last low nibble with the code of 0.0
//   x̂[i]     = value(code(i)) * absmax[i / blocksize]                   (in float32)
//
// Double quantization (bnb_4bit_use_double_quant, "compress_statistics") stores the absmax
// themselves in 8 bits: offset = mean(absmax); (absmax − offset) is quantized blockwise, 256
// per block, with the signed 8-bit dynamic map below, giving uint8 codes and one float32
// nested_absmax per 256 blocks. Then absmax[b] = map8[q[b]] * nested_absmax[b / 256] + offset.
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#define GALVANI_HOST_DEVICE __host__ __device__
#else
#define GALVANI_HOST_DEVICE
#endif

namespace galvani::quant {

// Which 16-value table the codes index: NF4 (normal-float, QLoRA's choice) or FP4 (a 4-bit
// float: 1 sign, 2 exponent, 1 mantissa bit). transformers' BitsAndBytesConfig defaults to fp4.
enum class QuantType : uint8_t { nf4, fp4 };

inline constexpr int64_t kNestedBlocksize = 256;  // hard-coded in bnb's quantize_4bit

// The block sizes bitsandbytes' quantize_4bit accepts.
GALVANI_HOST_DEVICE constexpr bool valid_4bit_blocksize(int64_t bs) {
  return bs == 32 || bs == 64 || bs == 128 || bs == 256 || bs == 512 || bs == 1024 || bs == 2048 || bs == 4096;
}

// ------------------------------------------------------------------ the 4-bit code tables

// The value of a 4-bit code (bnb's get_4bit_type(); the same table as its CUDA
// nf4_dequantization_lut). NF4 codes are sorted by value, 7 is exactly 0; FP4 codes are
// sign (bit 3) and magnitude, so 0 and 8 are both +0.0 in bnb's table.
GALVANI_HOST_DEVICE inline float code4_value(QuantType t, uint8_t code) {
  const float nf4[16] = {-1.0f,          -0x1.647362p-1f, -0x1.0cd660p-1f, -0x1.946540p-2f,
                         -0x1.23449ap-2f, -0x1.7a6a7ep-3f, -0x1.74f0e2p-4f, 0.0f,
                         0x1.45f5fep-4f,  0x1.4995c6p-3f,  0x1.f809bap-3f,  0x1.5a0674p-2f,
                         0x1.c34970p-2f,  0x1.200f56p-1f,  0x1.722766p-1f,  1.0f};
  const float fp4[16] = {0.0f,  0x1.555556p-8f,  0x1.555556p-1f,  1.0f,  0x1.555556p-2f,  0.5f,  0x1.555556p-3f,  0.25f,
                         0.0f, -0x1.555556p-8f, -0x1.555556p-1f, -1.0f, -0x1.555556p-2f, -0.5f, -0x1.555556p-3f, -0.25f};
  return t == QuantType::nf4 ? nf4[code & 15] : fp4[code & 15];
}

// The code with the k-th smallest value: torch.argsort of the table, as bnb's CPU quantizer
// computes it (for FP4 the tie between the two zeros resolves to code 0 first).
GALVANI_HOST_DEVICE inline uint8_t code4_by_rank(QuantType t, int k) {
  const uint8_t fp4_order[16] = {11, 10, 13, 12, 15, 14, 9, 0, 8, 1, 6, 7, 4, 5, 2, 3};
  return t == QuantType::nf4 ? uint8_t(k) : fp4_order[k];
}

// Midpoint k between the k-th and (k+1)-th smallest code values, in float32: (a + b) / 2.
GALVANI_HOST_DEVICE inline float code4_midpoint(QuantType t, int k) {
  return (code4_value(t, code4_by_rank(t, k)) + code4_value(t, code4_by_rank(t, k + 1))) / 2.0f;
}

// The 4-bit code for a value already scaled into [-1, 1] (bnb's CPU quantizer, backends/default
// quantize_4bit): clamp to [-1, 1], then torch.bucketize(scaled, midpoints) — the number of
// midpoints strictly below the value — so a value exactly on a midpoint takes the LOWER code,
// as the CUDA kernel's `x > threshold` decision tree also does. NaN (0/0) is not produced here:
// the block scaling below never divides by zero.
GALVANI_HOST_DEVICE inline uint8_t quantize_code4(QuantType t, float scaled) {
  float x = scaled < -1.0f ? -1.0f : (scaled > 1.0f ? 1.0f : scaled);
  int lo = 0, hi = 15;  // lower_bound over the 15 midpoints
  while (lo < hi) {
    const int mid = (lo + hi) / 2;
    if (code4_midpoint(t, mid) < x) lo = mid + 1;
    else hi = mid;
  }
  return code4_by_rank(t, lo);
}

// ------------------------------------------------------------------ packing and indexing

// Byte j holds elements 2j (high nibble) and 2j+1 (low nibble).
GALVANI_HOST_DEVICE constexpr uint8_t pack_nibbles(uint8_t even, uint8_t odd) { return uint8_t((even << 4) | (odd & 15)); }
GALVANI_HOST_DEVICE constexpr uint8_t nibble_at(const uint8_t* packed, int64_t i) {
  return (i & 1) ? uint8_t(packed[i >> 1] & 15) : uint8_t(packed[i >> 1] >> 4);
}
// The block (and so the absmax) of flat element i.
GALVANI_HOST_DEVICE constexpr int64_t block_of(int64_t i, int64_t blocksize) { return i / blocksize; }
GALVANI_HOST_DEVICE constexpr int64_t num_blocks(int64_t n, int64_t blocksize) { return (n + blocksize - 1) / blocksize; }

// x̂ = value(code) * absmax, in float32 (bnb's dequantize_4bit; cast to the output dtype after).
GALVANI_HOST_DEVICE inline float dequantize_code4(QuantType t, uint8_t code, float absmax) {
  return code4_value(t, code) * absmax;
}

// ------------------------------------------------------------------ the nested (8-bit) absmax

// Signed 8-bit dynamic map, bnb's create_dynamic_map(signed=True, max_exponent_bits=7,
// total_bits=8) as float32: index 127 is 0, 255 is 1.0, and map[254 - i] = -map[128 + i].
// Stored rather than recomputed because torch's float32 linspace arithmetic decides the last
// bit; tests/test_quant_nf4.cpp checks all 256 against bitsandbytes.
GALVANI_HOST_DEVICE inline float dynamic_map_value(int i) {
  const float pos[127] = {
      0x1.27476ep-21f, 0x1.b43528p-19f, 0x1.040bfep-17f, 0x1.64840cp-16f, 0x1.6f0068p-15f, 0x1.15df66p-14f,
      0x1.743e96p-14f, 0x1.47ae16p-13f, 0x1.19ce0ap-12f, 0x1.8fc506p-12f, 0x1.02de02p-11f, 0x1.3dd982p-11f,
      0x1.78d500p-11f, 0x1.b3d07cp-11f, 0x1.eecbfep-11f, 0x1.4fdf3ap-10f, 0x1.e353f8p-10f, 0x1.3b645ap-9f,
      0x1.851eb8p-9f, 0x1.ced914p-9f, 0x1.0c49bap-8f, 0x1.3126e8p-8f, 0x1.56041ap-8f, 0x1.7ae148p-8f,
      0x1.9fbe76p-8f, 0x1.c49ba6p-8f, 0x1.e978d4p-8f, 0x1.072b02p-7f, 0x1.19999ap-7f, 0x1.2c0830p-7f,
      0x1.3e76c8p-7f, 0x1.75c290p-7f, 0x1.d1eb86p-7f, 0x1.170a3ep-6f, 0x1.451ebap-6f, 0x1.733334p-6f,
      0x1.a147aep-6f, 0x1.cf5c2ap-6f, 0x1.fd70a4p-6f, 0x1.15c290p-5f, 0x1.2ccccep-5f, 0x1.43d70ap-5f,
      0x1.5ae146p-5f, 0x1.71eb86p-5f, 0x1.88f5c2p-5f, 0x1.ap-5f, 0x1.b70a3ep-5f, 0x1.ce147ap-5f,
      0x1.e51ebap-5f, 0x1.fc28f6p-5f, 0x1.09999ap-4f, 0x1.151ebap-4f, 0x1.20a3d6p-4f, 0x1.2c28f6p-4f,
      0x1.37ae14p-4f, 0x1.433334p-4f, 0x1.4eb854p-4f, 0x1.5a3d70p-4f, 0x1.65c290p-4f, 0x1.7147aep-4f,
      0x1.7ccccep-4f, 0x1.8851eep-4f, 0x1.93d70ap-4f, 0x1.b66668p-4f, 0x1.fp-4f, 0x1.14ccccp-3f,
      0x1.31999ap-3f, 0x1.4e6666p-3f, 0x1.6b3334p-3f, 0x1.880000p-3f, 0x1.a4ccccp-3f, 0x1.c1999ap-3f,
      0x1.de6666p-3f, 0x1.fb3332p-3f, 0x1.0c0000p-2f, 0x1.1a6668p-2f, 0x1.28ccccp-2f, 0x1.373334p-2f,
      0x1.459998p-2f, 0x1.540000p-2f, 0x1.626666p-2f, 0x1.70ccccp-2f, 0x1.7f3334p-2f, 0x1.8d9998p-2f,
      0x1.9c0000p-2f, 0x1.aa6666p-2f, 0x1.b8ccccp-2f, 0x1.c73334p-2f, 0x1.d59998p-2f, 0x1.e40000p-2f,
      0x1.f26664p-2f, 0x1.006666p-1f, 0x1.079998p-1f, 0x1.0eccccp-1f, 0x1.160000p-1f, 0x1.1d3334p-1f,
      0x1.246668p-1f, 0x1.2b999ap-1f, 0x1.32ccccp-1f, 0x1.3a0000p-1f, 0x1.413334p-1f, 0x1.486668p-1f,
      0x1.4f999ap-1f, 0x1.56ccccp-1f, 0x1.5e0000p-1f, 0x1.653334p-1f, 0x1.6c6668p-1f, 0x1.73999ap-1f,
      0x1.7accccp-1f, 0x1.820000p-1f, 0x1.893334p-1f, 0x1.906666p-1f, 0x1.97999ap-1f, 0x1.9eccccp-1f,
      0x1.a60000p-1f, 0x1.ad3334p-1f, 0x1.b46666p-1f, 0x1.bb999ap-1f, 0x1.c2ccccp-1f, 0x1.ca0000p-1f,
      0x1.d13334p-1f, 0x1.d86666p-1f, 0x1.df999ap-1f, 0x1.e6ccccp-1f, 0x1.ee0000p-1f, 0x1.f53334p-1f,
      0x1.fc6666p-1f,
  };
  if (i == 255) return 1.0f;
  if (i == 127) return 0.0f;
  return i > 127 ? pos[i - 128] : -pos[126 - i];
}

// bitsandbytes' unsigned dynamic map, create_dynamic_map(signed=False): the code of Adam's
// second moment in the 8-bit optimizers (optim/bnb_adamw.hpp). 2^(i+1) bins per decade
// 10^(i-6), i = 0..6, plus 0 and 1, sorted: index 0 is 0, index 255 is 1.0. Stored, like the
// signed map above, because torch's float32 linspace decides the last bit
// (tests/test_optim_bnb.cpp checks all 256 against bitsandbytes).
GALVANI_HOST_DEVICE inline float dynamic_map_unsigned_value(int i) {
  const float table[256] = {
      0.0f, 0x1.5cf754p-22f, 0x1.a0133p-21f, 0x1.1d367p-19f, 0x1.2599ecp-18f, 0x1.bc98a2p-18f,
      0x1.29cbaap-17f, 0x1.0624dcp-16f, 0x1.c2e34p-16f, 0x1.3fd0dp-15f, 0x1.9e3p-15f, 0x1.fc8f34p-15f,
      0x1.2d7732p-14f, 0x1.5ca6c8p-14f, 0x1.8bd662p-14f, 0x1.0cb296p-13f, 0x1.82a994p-13f, 0x1.f8a092p-13f,
      0x1.374bc8p-12f, 0x1.724744p-12f, 0x1.ad42c6p-12f, 0x1.e83e44p-12f, 0x1.119ce2p-11f, 0x1.2f1aap-11f,
      0x1.4c986p-11f, 0x1.6a162p-11f, 0x1.8793dep-11f, 0x1.a511ap-11f, 0x1.c28f5ep-11f, 0x1.e00d1cp-11f,
      0x1.fd8adcp-11f, 0x1.2b020cp-10f, 0x1.74bc6ap-10f, 0x1.be76c8p-10f, 0x1.041894p-9f, 0x1.28f5c2p-9f,
      0x1.4dd2fp-9f, 0x1.72b02p-9f, 0x1.978d4ep-9f, 0x1.bc6a8p-9f, 0x1.e147aep-9f, 0x1.03126ep-8f,
      0x1.158104p-8f, 0x1.27ef9ep-8f, 0x1.3a5e34p-8f, 0x1.4cccccp-8f, 0x1.5f3b64p-8f, 0x1.71a9fap-8f,
      0x1.841894p-8f, 0x1.96872ap-8f, 0x1.a8f5c2p-8f, 0x1.bb645cp-8f, 0x1.cdd2fp-8f, 0x1.e0418ap-8f,
      0x1.f2b01ep-8f, 0x1.028f5cp-7f, 0x1.0bc6a8p-7f, 0x1.14fdf2p-7f, 0x1.1e354p-7f, 0x1.276c8ap-7f,
      0x1.30a3d6p-7f, 0x1.39db24p-7f, 0x1.43126ep-7f, 0x1.5eb854p-7f, 0x1.8ccccep-7f, 0x1.bae146p-7f,
      0x1.e8f5c4p-7f, 0x1.0b851ep-6f, 0x1.228f5ep-6f, 0x1.39999ap-6f, 0x1.50a3d6p-6f, 0x1.67ae16p-6f,
      0x1.7eb852p-6f, 0x1.95c28ep-6f, 0x1.accccep-6f, 0x1.c3d70ep-6f, 0x1.dae146p-6f, 0x1.f1eb86p-6f,
      0x1.047aep-5f, 0x1.1p-5f, 0x1.1b851ep-5f, 0x1.270a3ep-5f, 0x1.328f5ep-5f, 0x1.3e147ap-5f,
      0x1.49999ap-5f, 0x1.551eb8p-5f, 0x1.60a3d6p-5f, 0x1.6c28f6p-5f, 0x1.77ae14p-5f, 0x1.833334p-5f,
      0x1.8eb85p-5f, 0x1.9a3d7p-5f, 0x1.a5c28ep-5f, 0x1.b147aep-5f, 0x1.bccccep-5f, 0x1.c851eep-5f,
      0x1.d3d70ep-5f, 0x1.df5c2ap-5f, 0x1.eae146p-5f, 0x1.f66666p-5f, 0x1.00f5c4p-4f, 0x1.06b854p-4f,
      0x1.0c7ae2p-4f, 0x1.123d7p-4f, 0x1.18p-4f, 0x1.1dc29p-4f, 0x1.23852p-4f, 0x1.2947aep-4f,
      0x1.2f0a3ep-4f, 0x1.34cccep-4f, 0x1.3a8f5ep-4f, 0x1.4051ecp-4f, 0x1.46147cp-4f, 0x1.4bd70ap-4f,
      0x1.51999ap-4f, 0x1.575c2ap-4f, 0x1.5d1eb8p-4f, 0x1.62e148p-4f, 0x1.68a3d6p-4f, 0x1.6e6666p-4f,
      0x1.7428f6p-4f, 0x1.79eb86p-4f, 0x1.7fae16p-4f, 0x1.8570a4p-4f, 0x1.8b3334p-4f, 0x1.90f5c4p-4f,
      0x1.96b852p-4f, 0x1.a8p-4f, 0x1.c4ccccp-4f, 0x1.e1999ap-4f, 0x1.fe6666p-4f, 0x1.0d9998p-3f,
      0x1.1cp-3f, 0x1.2a6668p-3f, 0x1.38ccccp-3f, 0x1.473334p-3f, 0x1.559998p-3f, 0x1.64p-3f,
      0x1.726668p-3f, 0x1.80ccccp-3f, 0x1.8f3334p-3f, 0x1.9d9998p-3f, 0x1.acp-3f, 0x1.ba6668p-3f,
      0x1.c8ccccp-3f, 0x1.d73334p-3f, 0x1.e59998p-3f, 0x1.f4p-3f, 0x1.013332p-2f, 0x1.086666p-2f,
      0x1.0f999ap-2f, 0x1.16ccccp-2f, 0x1.1ep-2f, 0x1.253334p-2f, 0x1.2c6666p-2f, 0x1.339998p-2f,
      0x1.3accccp-2f, 0x1.42p-2f, 0x1.493334p-2f, 0x1.506666p-2f, 0x1.579998p-2f, 0x1.5eccccp-2f,
      0x1.66p-2f, 0x1.6d3334p-2f, 0x1.746666p-2f, 0x1.7b9998p-2f, 0x1.82ccccp-2f, 0x1.8ap-2f,
      0x1.913334p-2f, 0x1.986666p-2f, 0x1.9f9998p-2f, 0x1.a6ccccp-2f, 0x1.aep-2f, 0x1.b53334p-2f,
      0x1.bc6666p-2f, 0x1.c39998p-2f, 0x1.caccccp-2f, 0x1.d2p-2f, 0x1.d93334p-2f, 0x1.e06666p-2f,
      0x1.e79998p-2f, 0x1.eeccccp-2f, 0x1.f6p-2f, 0x1.fd3332p-2f, 0x1.023334p-1f, 0x1.05ccccp-1f,
      0x1.096666p-1f, 0x1.0dp-1f, 0x1.109998p-1f, 0x1.143334p-1f, 0x1.17ccccp-1f, 0x1.1b6668p-1f,
      0x1.1fp-1f, 0x1.22999ap-1f, 0x1.263334p-1f, 0x1.29ccccp-1f, 0x1.2d6668p-1f, 0x1.31p-1f,
      0x1.34999ap-1f, 0x1.383334p-1f, 0x1.3bccccp-1f, 0x1.3f6668p-1f, 0x1.43p-1f, 0x1.46999ap-1f,
      0x1.4a3334p-1f, 0x1.4dccccp-1f, 0x1.516668p-1f, 0x1.55p-1f, 0x1.58999ap-1f, 0x1.5c3334p-1f,
      0x1.5fccccp-1f, 0x1.636668p-1f, 0x1.67p-1f, 0x1.6a999ap-1f, 0x1.6e3334p-1f, 0x1.71ccccp-1f,
      0x1.756668p-1f, 0x1.79p-1f, 0x1.7c999ap-1f, 0x1.803334p-1f, 0x1.83ccccp-1f, 0x1.876668p-1f,
      0x1.8bp-1f, 0x1.8e9998p-1f, 0x1.923334p-1f, 0x1.95ccccp-1f, 0x1.996668p-1f, 0x1.9dp-1f,
      0x1.a09998p-1f, 0x1.a43334p-1f, 0x1.a7ccccp-1f, 0x1.ab6668p-1f, 0x1.afp-1f, 0x1.b29998p-1f,
      0x1.b63334p-1f, 0x1.b9ccccp-1f, 0x1.bd6668p-1f, 0x1.c1p-1f, 0x1.c49998p-1f, 0x1.c83334p-1f,
      0x1.cbccccp-1f, 0x1.cf6668p-1f, 0x1.d3p-1f, 0x1.d69998p-1f, 0x1.da3334p-1f, 0x1.ddccccp-1f,
      0x1.e16668p-1f, 0x1.e5p-1f, 0x1.e89998p-1f, 0x1.ec3334p-1f, 0x1.efccccp-1f, 0x1.f36668p-1f,
      0x1.f7p-1f, 0x1.fa9998p-1f, 0x1.fe3334p-1f, 0x1p+0f,
  };
  return table[i];
}

// absmax[b] = map8[q] * nested_absmax + offset, with two float32 roundings as bnb does
// (dequantize_blockwise, then `absmax += offset`) — never fused into one FMA, which would
// round once and could change the last bit.
GALVANI_HOST_DEVICE inline float dequantize_nested_absmax(float code_value, float nested_absmax, float offset) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(__fmul_rn(code_value, nested_absmax), offset);
#else
  volatile float scaled = code_value * nested_absmax;  // volatile: no contraction into an FMA
  return scaled + offset;
#endif
}

// bnb's CUDA rule for an 8-bit code (dQuantize<0> in csrc/kernels.cu): a 7-step binary search
// over the 256 sorted code values starting at index 127, then a comparison with the midpoint
// between the final pivot and its neighbour on x's side. A value exactly on that midpoint keeps
// the pivot. `code` is the 256-entry map; x is already scaled into [-1, 1].
GALVANI_HOST_DEVICE inline uint8_t quantize_code8_cuda(const float* code, float x) {
  int pivot = 127, upper_pivot = 255, lower_pivot = 0;
  float lower = -1.0f, upper = 1.0f;
  float val = code[pivot];
  for (int step = 64; step > 0; step >>= 1) {
    if (x > val) {
      lower_pivot = pivot;
      lower = val;
      pivot += step;
    } else {
      upper_pivot = pivot;
      upper = val;
      pivot -= step;
    }
    val = code[pivot];
  }
  if (upper_pivot == 255) upper = code[upper_pivot];
  if (lower_pivot == 0) lower = code[lower_pivot];
  if (x > val) return x > (upper + val) * 0.5f ? uint8_t(upper_pivot) : uint8_t(pivot);
  return x < (lower + val) * 0.5f ? uint8_t(lower_pivot) : uint8_t(pivot);
}

// bnb's CPU rule (csrc/cpu_ops.cpp, quantize_cpu_impl): [-1, 1] is cut into 65,536 evenly
// spaced points and a table maps each point to the code nearest it; a value takes the code of
// the point it rounds to. The point's index, in float32 exactly as bnb computes it:
GALVANI_HOST_DEVICE inline uint16_t lut8_index(float x) {
  x = x < -1.0f ? -1.0f : (x > 1.0f ? 1.0f : x);
  const float a = (x + 1.0f) * 0.5f;
  const float b = a * 65535.0f;
  return uint16_t(b + 0.5f);
}
// The value of table point i: -1 + 2i / 65535 (float32).
GALVANI_HOST_DEVICE inline float lut8_point(int i) { return -1.0f + (2.0f * float(i)) / 65535.0f; }

}  // namespace galvani::quant
