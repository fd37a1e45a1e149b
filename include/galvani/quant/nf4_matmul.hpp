// quant/nf4_matmul.hpp — y = x · Wᵀ (+ b) and dX = dY · W with W stored 4-bit, never dequantized
// in full.
//
//   x (M, K) row-major; W (N, K) as bnb stores it: packed u8 [(N·K+1)/2], absmax f32 [nblocks]
//   (already un-nested, QuantState4bit::absmax_f32()); element (n, k) is flat index n·K + k,
//   its block (n·K + k) / blocksize — a block may straddle two rows when K is not a multiple of
//   the block size, so the kernels index by the flat position, as bnb's CUDA kernels do.
//
// Where the time goes: a 4-bit weight costs one dequantization per element per call (a nibble,
// a 16-entry table, one multiply by its block's absmax); everything else is an f32 GEMM. So the
// fast f32 path does exactly that and no more, on top of ops/gemm.hpp:
//
//   GEMM (M > 8 rows: training batches, prefill). gemm()'s own loop nest and micro-kernel, with
//        one change: where gemm() copies B into NR-wide packed panels, we dequantize W straight
//        into them (gemm_packed's pack_b, ops/gemm_kernels.inl). The packed panel is the per-thread scratch buffer gemm()
//        already keeps, so the f32 weight never exists beyond one column block of packed panels,
//        which is exactly what the f32 GEMM would have copied anyway.
//          forward  y = x · Wᵀ:  B (K, N) = Wᵀ, a panel is 16 rows of W decoded, then transposed;
//          backward dx = dy · W: B (N, K) = W, a panel row is 16 consecutive elements of a W row.
//   GEMV (M <= 8: decoding). Each thread owns a range of output rows n. With AVX-512 or AVX2 and
//        whole blocks per row (K % blocksize == 0, every real model) the codes are decoded in
//        registers and multiplied with all M inputs at once (detail::gemv4_rows, one kernel per
//        level: a 16-entry vpermps with AVX-512, four in-lane vpshufb byte lookups and two rounds
//        of unpacks per 32 weights with AVX2); otherwise row n of W is
//        decoded into an L1-resident buffer and dotted by gemm()'s own GEMV kernel
//        (detail::gemv_dot). Either way W is read once: K/2 bytes per row, 8× fewer than f32.
//
// Decoding is a table lookup: vpermps is a 16-entry float table lookup in one AVX-512
// instruction, so dequantize_run() (codes → floats, for the GEMM's panels and the general GEMV)
// turns 16 codes into floats with five instructions, 8 with AVX2 (two 8-entry vpermps and a
// blend), one at a time otherwise; the fused GEMVs decode in registers (above). The kernels
// (quant/nf4_kernels.inl) are compiled once per instruction-set level (core/isa.hpp) and the
// copy for the CPU in use runs, whatever flags the program was built with; the tests run every
// copy this CPU can (tests/support/cpu_levels.hpp). Dequantized values are bit-identical
// to dequantize_4bit() (the same float product), so
// the GEMM path, which runs gemm()'s loop nest on the same packed values, gives bit for bit what
// linear(x, dequantize_4bit(W)) gives; the GEMV path differs from it only in summation order.
//
// The first fused kernels (scalar, one dequantized 64×256 tile at a time, dot products in plain
// loops) stay below as nf4_linear_forward_scalar / nf4_linear_backward_input_scalar: they serve
// f64 (gradient checks) and are the "before" of tools/bench_nf4.cpp.
#pragma once
#include <algorithm>
#include <bit>
#include <type_traits>
#include <vector>

#include <cstring>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>  // every intrinsic is declared whatever the flags; the kernels' targets enable them
#endif

#include "../autograd/node.hpp"
#include "../core/dispatch.hpp"
#include "../ops/autocast.hpp"
#include "../ops/gemm.hpp"
#include "../ops/op_args.hpp"
#include "quantize_4bit.hpp"

namespace galvani::quant {

// ------------------------------------------------------------------ the scalar kernels (reference)

inline constexpr int64_t kTileN = 64, kTileK = 256;

// W[n0 .. n0+nt, k0 .. k0+kt) → tile (nt, kt) float32.
inline void dequantize_tile(const uint8_t* packed, const float* absmax, QuantType qt, int64_t bs, int64_t K, int64_t n0,
                            int64_t nt, int64_t k0, int64_t kt, float* tile) {
  for (int64_t r = 0; r < nt; ++r) {
    const int64_t base = (n0 + r) * K + k0;
    for (int64_t c = 0; c < kt; ++c) {
      const int64_t i = base + c;
      tile[r * kt + c] = dequantize_code4(qt, nibble_at(packed, i), absmax[block_of(i, bs)]);
    }
  }
}

// y (M, N) = x (M, K) · Wᵀ + bias (N, or null).
template <class T>
void nf4_linear_forward_scalar(const T* x, const uint8_t* packed, const float* absmax, QuantType qt, int64_t bs,
                               const T* bias, T* y, int64_t M, int64_t N, int64_t K) {
  if (M <= 4) {  // GEMV
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
      T acc[4] = {0, 0, 0, 0};
      const int64_t base = n * K;
      for (int64_t k = 0; k < K; ++k) {
        const int64_t i = base + k;
        const T w = T(dequantize_code4(qt, nibble_at(packed, i), absmax[block_of(i, bs)]));
        for (int64_t m = 0; m < M; ++m) acc[m] += x[m * K + k] * w;
      }
      for (int64_t m = 0; m < M; ++m) y[m * N + n] = acc[m] + (bias ? bias[n] : T(0));
    }
    return;
  }
  // GEMM: threads own N tiles; each walks K in tiles, dequantizing into its own buffer.
#pragma omp parallel
  {
    std::vector<float> tile(static_cast<size_t>(kTileN * kTileK));
#pragma omp for schedule(dynamic)
    for (int64_t n0 = 0; n0 < N; n0 += kTileN) {
      const int64_t nt = std::min(kTileN, N - n0);
      for (int64_t m = 0; m < M; ++m)
        for (int64_t r = 0; r < nt; ++r) y[m * N + n0 + r] = bias ? bias[n0 + r] : T(0);
      for (int64_t k0 = 0; k0 < K; k0 += kTileK) {
        const int64_t kt = std::min(kTileK, K - k0);
        dequantize_tile(packed, absmax, qt, bs, K, n0, nt, k0, kt, tile.data());
        for (int64_t m = 0; m < M; ++m) {
          const T* xr = x + m * K + k0;
          for (int64_t r = 0; r < nt; ++r) {
            const float* wr = tile.data() + r * kt;
            T acc = 0;
            for (int64_t c = 0; c < kt; ++c) acc += xr[c] * T(wr[c]);
            y[m * N + n0 + r] += acc;
          }
        }
      }
    }
  }
}

// dx (M, K) = dy (M, N) · W (N, K).
template <class T>
void nf4_linear_backward_input_scalar(const T* dy, const uint8_t* packed, const float* absmax, QuantType qt, int64_t bs,
                                      T* dx, int64_t M, int64_t N, int64_t K) {
#pragma omp parallel
  {
    std::vector<float> tile(static_cast<size_t>(kTileN * kTileK));
#pragma omp for schedule(dynamic)
    for (int64_t k0 = 0; k0 < K; k0 += kTileK) {
      const int64_t kt = std::min(kTileK, K - k0);
      for (int64_t m = 0; m < M; ++m)
        for (int64_t c = 0; c < kt; ++c) dx[m * K + k0 + c] = T(0);
      for (int64_t n0 = 0; n0 < N; n0 += kTileN) {
        const int64_t nt = std::min(kTileN, N - n0);
        dequantize_tile(packed, absmax, qt, bs, K, n0, nt, k0, kt, tile.data());
        for (int64_t m = 0; m < M; ++m) {
          T* dxr = dx + m * K + k0;
          for (int64_t r = 0; r < nt; ++r) {
            const T g = dy[m * N + n0 + r];
            const float* wr = tile.data() + r * kt;
            for (int64_t c = 0; c < kt; ++c) dxr[c] += g * T(wr[c]);
          }
        }
      }
    }
  }
}

// ------------------------------------------------------------------ decoding a run of codes

// A 4-bit weight as the decoder reads it: the codes, the un-nested absmax, the 16-value table and
// log2(blocksize) (bnb's block sizes are powers of two, so block_of is a shift here).
struct Codes4 {
  const uint8_t* packed;
  const float* absmax;
  alignas(64) float lut[16];
  alignas(16) uint8_t lut_bytes[4][16];  // lut_bytes[b][code] = byte b of lut[code] (little-endian): AVX2's vpshufb tables
  int bs_shift;
  Codes4(const uint8_t* p, const float* am, QuantType qt, int64_t bs)
      : packed(p), absmax(am), bs_shift(std::countr_zero(uint64_t(bs))) {
    GALVANI_CHECK(valid_4bit_blocksize(bs), "nf4 matmul: blocksize ", bs, " is not a power of two in 32..4096");
    for (int c = 0; c < 16; ++c) lut[c] = code4_value(qt, uint8_t(c));
    const auto* lb = reinterpret_cast<const uint8_t*>(lut);
    for (int b = 0; b < 4; ++b)
      for (int c = 0; c < 16; ++c) lut_bytes[b][c] = lb[4 * c + b];
  }
};

// ------------------------------------------------------------------ the fast f32 kernels

namespace detail {
static_assert(GemmTile<float>::NR == 16, "the 4-bit packers write 16-wide panels");
// Once per instruction-set level: namespaces isa_avx512, isa_avx2, isa_base.
#define GALVANI_ISA_KERNELS "../quant/nf4_kernels.inl"
#include "../core/isa_foreach.inl"
}  // namespace detail

// The instruction-set level of the 4-bit kernels' copy that runs now (as gemm_kernels_level()).
inline int nf4_kernels_level() { GALVANI_ISA_CALL(detail, nf4_kernels_level()); }

// out[0 .. len) = the dequantized flat elements [i, i + len) of W: lut[code] · absmax[block],
// the same float product as dequantize_code4, with the decoder of cpu_capability().
inline void dequantize_run(const Codes4& d, int64_t i, int64_t len, float* __restrict out) {
  GALVANI_ISA_CALL(detail, dequantize_run(d, i, len, out));
}

// y (M, N) = x (M, K) · Wᵀ + bias (N, or null), f32: GEMV for M <= 8, else GEMM (see the top).
inline void nf4_linear_forward_f32(const float* x, const uint8_t* packed, const float* absmax, QuantType qt, int64_t bs,
                                   const float* bias, float* y, int64_t M, int64_t N, int64_t K) {
  GALVANI_ISA_CALL(detail, nf4_linear_forward_f32(x, packed, absmax, qt, bs, bias, y, M, N, K));
}

// dx (M, K) = dy (M, N) · W (N, K), f32: the GEMM with B = W, whose panel rows are runs of W's rows.
inline void nf4_linear_backward_input_f32(const float* dy, const uint8_t* packed, const float* absmax, QuantType qt,
                                          int64_t bs, float* dx, int64_t M, int64_t N, int64_t K) {
  GALVANI_ISA_CALL(detail, nf4_linear_backward_input_f32(dy, packed, absmax, qt, bs, dx, M, N, K));
}

// The dispatching kernels: the fast f32 path, the scalar one for f64.
template <class T>
void nf4_linear_forward(const T* x, const uint8_t* packed, const float* absmax, QuantType qt, int64_t bs, const T* bias,
                        T* y, int64_t M, int64_t N, int64_t K) {
  if constexpr (std::is_same_v<T, float>)
    nf4_linear_forward_f32(x, packed, absmax, qt, bs, bias, y, M, N, K);
  else
    nf4_linear_forward_scalar<T>(x, packed, absmax, qt, bs, bias, y, M, N, K);
}
template <class T>
void nf4_linear_backward_input(const T* dy, const uint8_t* packed, const float* absmax, QuantType qt, int64_t bs, T* dx,
                               int64_t M, int64_t N, int64_t K) {
  if constexpr (std::is_same_v<T, float>)
    nf4_linear_backward_input_f32(dy, packed, absmax, qt, bs, dx, M, N, K);
  else
    nf4_linear_backward_input_scalar<T>(dy, packed, absmax, qt, bs, dx, M, N, K);
}

// A frozen 4-bit weight ready for matmuls: packed bytes, the un-nested absmax, the layout.
struct Weight4bit {
  Tensor packed;   // u8 [(N·K+1)/2, 1]
  Tensor absmax;   // f32 [nblocks], un-nested
  QuantType quant_type = QuantType::nf4;
  int64_t blocksize = 64;
  int64_t out_features = 0, in_features = 0;  // N, K
};

// y (..., N) = x (..., K) · Wᵀ + bias — bnb's Linear4bit forward (matmul_4bit), fused. The
// autograd node gives the input's gradient (and the bias's); W is frozen.
// Under autocast (core/autocast.hpp) the input, the bias and the output are rounded to bf16/f16,
// as bitsandbytes' Linear4bit casts them to its compute dtype; the dequantized weight stays f32
// inside the fused kernel (bnb's bf16 path also rounds each dequantized weight to bf16).
inline Tensor nf4_linear(const Tensor& x, const Weight4bit& w, const Tensor& bias = Tensor()) {
  galvani::detail::check_float("nf4_linear", "input", x);
  if (galvani::detail::autocast_applies(x))  // input, bias and output rounded (see the comment above)
    return galvani::detail::autocast_lower([&w](const Tensor& x2, const Tensor& b2) { return nf4_linear(x2, w, b2); },
                                           x, bias);
  const int64_t N = w.out_features, K = w.in_features;
  GALVANI_CHECK(x.dim() >= 1 && x.size(-1) == K, "nf4_linear: input ", shape_str(x.shape()),
                " does not fit a 4-bit weight of shape (", N, ", ", K, ")");
  GALVANI_CHECK(!bias.defined() || (bias.shape() == Shape{N} && bias.dtype() == x.dtype()), "nf4_linear: bias ",
                galvani::detail::describe(bias), " does not match (", N, ") ", dtype_name(x.dtype()));
  const Tensor xc = galvani::detail::dense(x), bc = bias.defined() ? galvani::detail::dense(bias) : Tensor();
  const int64_t M = xc.numel() / std::max<int64_t>(K, 1);
  Shape out_shape = x.shape();
  out_shape.back() = N;
  Tensor y = Tensor::empty(out_shape, x.dtype(), x.device());
  dispatch("nf4_linear", {{"input", x}, {"weight", w.packed}, {"bias", bias}}, FloatTypes{x.dtype()}, [&]<class T>() {
    nf4_linear_forward<T>(xc.data<T>(), w.packed.data<uint8_t>(), w.absmax.data<float>(), w.quant_type, w.blocksize,
                          bc.defined() ? bc.data<T>() : nullptr, y.data<T>(), M, N, K);
  });
  return record("nf4_linear", y, {x, bias}, [w, M, N, K, x_shape = x.shape()](const Tensor& g, const Needs& need) -> Grads {
    const Tensor gc = galvani::detail::dense(g);
    Tensor dx, db;
    if (need[0]) {
      dx = Tensor::empty(x_shape, gc.dtype(), gc.device());
      dispatch("nf4_linear backward", {{"grad", gc}, {"weight", w.packed}}, FloatTypes{gc.dtype()}, [&]<class T>() {
        nf4_linear_backward_input<T>(gc.data<T>(), w.packed.data<uint8_t>(), w.absmax.data<float>(), w.quant_type,
                                     w.blocksize, dx.data<T>(), M, N, K);
      });
    }
    if (need[1]) {
      db = Tensor::zeros({N}, gc.dtype(), gc.device());
      dispatch("nf4_linear backward (bias)", {{"grad", gc}}, FloatTypes{gc.dtype()}, [&]<class T>() {
        const T* gp = gc.data<T>();
        T* d = db.data<T>();
        for (int64_t m = 0; m < M; ++m)
          for (int64_t n = 0; n < N; ++n) d[n] += gp[m * N + n];
      });
    }
    return {dx, db};
  });
}

}  // namespace galvani::quant
