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
//        into them (gemm_pack_b below). The packed panel is the per-thread scratch buffer gemm()
//        already keeps, so the f32 weight never exists beyond one column block of packed panels,
//        which is exactly what the f32 GEMM would have copied anyway.
//          forward  y = x · Wᵀ:  B (K, N) = Wᵀ, a panel is 16 rows of W decoded, then transposed;
//          backward dx = dy · W: B (N, K) = W, a panel row is 16 consecutive elements of a W row.
//   GEMV (M <= 8: decoding). Each thread owns a range of output rows n. With AVX-512 and whole
//        blocks per row (K % blocksize == 0, every real model) the codes are decoded in registers
//        and multiplied with all M inputs at once (detail::gemv4_rows); otherwise row n of W is
//        decoded into an L1-resident buffer and dotted by gemm()'s own GEMV kernel
//        (detail::gemv_dot). Either way W is read once: K/2 bytes per row, 8× fewer than f32.
//
// Decoding is a table lookup: vpermps is a 16-entry float table lookup in one AVX-512
// instruction, so dequantize_run() (codes → floats, for the GEMM's panels and the general GEMV)
// turns 16 codes into floats with five instructions, 8 with AVX2, one at a time otherwise; the
// fused GEMV does the same in registers. The instruction set is the compiler's (-march=native
// with GALVANI_NATIVE); the plain Release flags get the scalar loops, which the tests also run. Dequantized values are bit-identical to dequantize_4bit() (the same float product), so
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

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

#include "../autograd/node.hpp"
#include "../core/dispatch.hpp"
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
  int bs_shift;
  Codes4(const uint8_t* p, const float* am, QuantType qt, int64_t bs)
      : packed(p), absmax(am), bs_shift(std::countr_zero(uint64_t(bs))) {
    GALVANI_CHECK(valid_4bit_blocksize(bs), "nf4 matmul: blocksize ", bs, " is not a power of two in 32..4096");
    for (int c = 0; c < 16; ++c) lut[c] = code4_value(qt, uint8_t(c));
  }
};

// GCC 12 warns that _mm512_cvtepu8_epi32's internal _mm512_undefined_epi32() "may be used
// uninitialized" (-Wmaybe-uninitialized, a false positive of its intrinsic headers).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// out[0 .. len) = the dequantized flat elements [i, i + len) of W: lut[code] · absmax[block],
// the same float product as dequantize_code4. The run is cut at block boundaries (one absmax per
// piece); an odd start takes one low nibble first so the vector body reads whole bytes.
inline void dequantize_run(const Codes4& d, int64_t i, int64_t len, float* __restrict out) {
  const int64_t end = i + len;
#if defined(__AVX512F__)
  const __m512 lut = _mm512_load_ps(d.lut);
#elif defined(__AVX2__)
  const __m256 lut_lo = _mm256_load_ps(d.lut), lut_hi = _mm256_load_ps(d.lut + 8);
#endif
  while (i < end) {
    const int64_t b = i >> d.bs_shift;
    const int64_t stop = std::min(end, (b + 1) << d.bs_shift);
    const float am = d.absmax[b];
    if (i & 1) {
      *out++ = d.lut[d.packed[i >> 1] & 15] * am;
      ++i;
    }
    const uint8_t* p = d.packed + (i >> 1);
#if defined(__AVX512F__)
    // 8 bytes → 16 indices (high nibble first): unpack (byte >> 4, byte) pairs; vpermps only
    // looks at the low 4 bits of each index, so neither half needs masking.
    const __m512 vam = _mm512_set1_ps(am);
    for (; i + 16 <= stop; i += 16, p += 8, out += 16) {
      const __m128i bytes = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
      const __m128i idx8 = _mm_unpacklo_epi8(_mm_srli_epi16(bytes, 4), bytes);
      const __m512 v = _mm512_permutexvar_ps(_mm512_cvtepu8_epi32(idx8), lut);
      _mm512_storeu_ps(out, _mm512_mul_ps(v, vam));
    }
#elif defined(__AVX2__)
    // 4 bytes → 8 indices; vpermps over 8 entries, twice, and bit 3 (moved to the sign) picks.
    const __m256 vam = _mm256_set1_ps(am);
    for (; i + 8 <= stop; i += 8, p += 4, out += 8) {
      int32_t word;
      std::memcpy(&word, p, 4);
      const __m128i bytes = _mm_cvtsi32_si128(word);
      const __m128i idx8 = _mm_unpacklo_epi8(_mm_srli_epi16(bytes, 4), bytes);
      const __m256i idx = _mm256_and_si256(_mm256_cvtepu8_epi32(idx8), _mm256_set1_epi32(15));
      const __m256 lo = _mm256_permutevar8x32_ps(lut_lo, idx), hi = _mm256_permutevar8x32_ps(lut_hi, idx);
      const __m256 v = _mm256_blendv_ps(lo, hi, _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)));
      _mm256_storeu_ps(out, _mm256_mul_ps(v, vam));
    }
#endif
    for (; i + 2 <= stop; i += 2, ++p, out += 2) {
      out[0] = d.lut[*p >> 4] * am;
      out[1] = d.lut[*p & 15] * am;
    }
    if (i < stop) {
      *out++ = d.lut[*p >> 4] * am;
      ++i;
    }
  }
}
#pragma GCC diagnostic pop

// ------------------------------------------------------------------ the fast f32 kernels

namespace detail {

// C (M, N) = A (M, K) · B (K, N), A's rows contiguous (lda), any M (best for M > kGemvRows): gemm()'s loop
// nest (ops/gemm.hpp: column blocks of packed B, MC×KC blocks of packed A, the MR×NR
// micro-kernel) with B's packing done by pack_b(dst, k0, kc, n0, nr), which writes the KC-deep
// panel dst[k·NR + j] for k < kc, j < NR, zero where j >= nr. Same blocking constants and
// scratch slots as gemm(), so a 4-bit GEMM uses the memory an f32 one already holds.
static_assert(GemmTile<float>::NR == 16, "the 4-bit packers below write 16-wide panels");

template <class PackB>
void gemm_pack_b(int64_t M, int64_t N, int64_t K, const float* a, int64_t lda, PackB&& pack_b, float* c,
                 int64_t ldc) {
  using T = float;
  constexpr int MR = GemmTile<T>::MR, NR = GemmTile<T>::NR;
  constexpr int64_t KC = 256, MC = 72;
  constexpr int64_t kPackedB = 16 << 20;
  if (M == 0 || N == 0) return;
  if (K == 0) {
    for (int64_t m = 0; m < M; ++m) std::fill_n(c + m * ldc, N, T(0));
    return;
  }
  const int64_t NC = std::max<int64_t>(NR, kPackedB / int64_t(sizeof(T)) / K / NR * NR);
  const int64_t kslices = (K + KC - 1) / KC;
  for (int64_t jc = 0; jc < N; jc += NC) {
    const int64_t nc = std::min(NC, N - jc);
    const int64_t npanels = (nc + NR - 1) / NR;
    T* bpack = galvani::detail::scratch<T, 0>(size_t(kslices * npanels * KC * NR));
#pragma omp parallel for collapse(2) schedule(static) if (K * nc > 16384)
    for (int64_t sl = 0; sl < kslices; ++sl)
      for (int64_t p = 0; p < npanels; ++p) {
        const int64_t k0 = sl * KC, n0 = jc + p * NR;
        pack_b(bpack + (sl * npanels + p) * KC * NR, k0, std::min(KC, K - k0), n0, std::min<int64_t>(NR, jc + nc - n0));
      }
    const int64_t mblocks = (M + MC - 1) / MC;
    const int64_t threads = omp_get_max_threads();
    const int64_t ngroups = std::max<int64_t>(1, std::min<int64_t>(npanels, (2 * threads + mblocks - 1) / mblocks));
    const int64_t per_group = (npanels + ngroups - 1) / ngroups;
#pragma omp parallel if (M * nc * K > 100000)
    {
      T* apack = galvani::detail::scratch<T, 1>(size_t(((MC + MR - 1) / MR) * MR * KC));
#pragma omp for schedule(dynamic, 1)
      for (int64_t item = 0; item < mblocks * ngroups; ++item) {
        const int64_t ic = (item / ngroups) * MC, mc = std::min(MC, M - ic);
        const int64_t jp0 = (item % ngroups) * per_group, jp1 = std::min(npanels, jp0 + per_group);
        const int64_t mpanels = (mc + MR - 1) / MR;
        for (int64_t sl = 0; sl < kslices; ++sl) {
          const int64_t k0 = sl * KC, kc = std::min(KC, K - k0);
          for (int64_t p = 0; p < mpanels; ++p) {
            T* dst = apack + p * kc * MR;
            const int64_t m0 = ic + p * MR, mr = std::min<int64_t>(MR, ic + mc - m0);
            for (int64_t k = 0; k < kc; ++k) {
              const T* src = a + m0 * lda + k0 + k;
              int64_t i = 0;
              for (; i < mr; ++i) dst[k * MR + i] = src[i * lda];
              for (; i < MR; ++i) dst[k * MR + i] = T(0);
            }
          }
          for (int64_t jp = jp0; jp < jp1; ++jp) {
            const int64_t n0 = jp * NR, nr = std::min<int64_t>(NR, nc - n0);
            const T* bp = bpack + (sl * npanels + jp) * KC * NR;
            for (int64_t ip = 0; ip < mpanels; ++ip) {
              const int64_t m0 = ip * MR, mr = std::min<int64_t>(MR, mc - m0);
              galvani::detail::gemm_micro<T, MR, NR>(kc, apack + ip * kc * MR, bp, c + (ic + m0) * ldc + jc + n0,
                                                     ldc, mr, nr, sl > 0);
            }
          }
        }
      }
    }
  }
}

#if defined(__AVX512F__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // see dequantize_run; _mm512_reduce_add_ps too
#pragma GCC diagnostic ignored "-Wuninitialized"
// The fused decode GEMV, when every block lies inside one row (K % blocksize == 0, true of every
// real model: in_features 576, 768, 1536, 3072 … at blocksize 64): y[m, n .. n+R) = x[m] · W[n .. n+R)
// with the codes decoded in registers and never stored.
//   xs (M, K): each row of x de-interleaved once per call, even elements then odd ones, so that
//   16 packed bytes decode with one vpmovzxbd (16 bytes → 16 lanes) and one shift: the high
//   nibbles are the 16 even elements, the low nibbles the 16 odd ones — no interleaving shuffle.
// R rows at once and two accumulators per (row, input) keep 2·R·MM independent FMA chains in
// flight, so the loop is bound by decoding or by memory, not by FMA latency. Each decoded weight
// is lut[code] · absmax, the same float as dequantize_4bit's; only the summation order differs.
template <int MM, int R>
inline void gemv4_rows(const Codes4& d, const float* xs, float* y, int64_t N, int64_t K, int64_t n) {
  const __m512 lut = _mm512_load_ps(d.lut);
  const int64_t bs = int64_t(1) << d.bs_shift, half = K / 2;
  __m512 acc[R][MM][2];
  const uint8_t* p[R];
  const float* am[R];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) {
    p[r] = d.packed + (((n + r) * K) >> 1);
    am[r] = d.absmax + (((n + r) * K) >> d.bs_shift);
#pragma GCC unroll 8
    for (int m = 0; m < MM; ++m) acc[r][m][0] = acc[r][m][1] = _mm512_setzero_ps();
  }
  for (int64_t j0 = 0, b = 0; j0 < half; j0 += bs / 2, ++b) {  // j: byte = element pair
    __m512 scale[R];
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      scale[r] = _mm512_set1_ps(am[r][b]);
      // The next R rows' bytes at this offset: a decode step streams W from memory, and each
      // call's rows are short (K/2 bytes), too short for the hardware prefetcher to ramp up.
      _mm_prefetch(reinterpret_cast<const char*>(p[r] + R * half + j0), _MM_HINT_T0);
    }
    for (int64_t j = j0; j < j0 + bs / 2; j += 16) {
      __m512 we[R], wo[R];
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        const __m512i codes = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p[r] + j)));
        // vpermps reads only the low 4 bits of each index: the low nibble needs no mask.
        we[r] = _mm512_mul_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(codes, 4), lut), scale[r]);
        wo[r] = _mm512_mul_ps(_mm512_permutexvar_ps(codes, lut), scale[r]);
      }
#pragma GCC unroll 8
      for (int m = 0; m < MM; ++m) {
        const __m512 xe = _mm512_loadu_ps(xs + m * K + j), xo = _mm512_loadu_ps(xs + m * K + half + j);
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) {
          acc[r][m][0] = _mm512_fmadd_ps(xe, we[r], acc[r][m][0]);
          acc[r][m][1] = _mm512_fmadd_ps(xo, wo[r], acc[r][m][1]);
        }
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int m = 0; m < MM; ++m) y[m * N + n + r] = _mm512_reduce_add_ps(_mm512_add_ps(acc[r][m][0], acc[r][m][1]));
}
#pragma GCC diagnostic pop
#endif

// 16 rows of kc floats → one packed panel: dst[k·16 + j] = src[j·lds + k] (rows of W become the
// panel's 16 columns). A plain loop: at M = 512 it is a few per cent of the GEMM it feeds.
inline void transpose16(const float* src, int64_t lds, float* dst, int64_t kc) {
  for (int64_t k = 0; k < kc; ++k)
#pragma GCC unroll 16
    for (int j = 0; j < 16; ++j) dst[k * 16 + j] = src[j * lds + k];
}

}  // namespace detail

// y (M, N) = x (M, K) · Wᵀ + bias (N, or null), f32: GEMV for M <= 8, else GEMM (see the top).
inline void nf4_linear_forward_f32(const float* x, const uint8_t* packed, const float* absmax, QuantType qt, int64_t bs,
                                   const float* bias, float* y, int64_t M, int64_t N, int64_t K) {
  const Codes4 d(packed, absmax, qt, bs);
  if (M <= galvani::detail::kGemvRows) {
    constexpr int64_t NB = 16;  // rows of W per work item
    [[maybe_unused]] const bool fused = K % bs == 0;
    [[maybe_unused]] float* xs = nullptr;
#if defined(__AVX512F__)
    if (fused) {  // x de-interleaved for gemv4_rows: (M, K) = evens then odds per row
      xs = galvani::detail::scratch<float, 4>(size_t(M * K));
      for (int64_t m = 0; m < M; ++m)
        for (int64_t k = 0; k < K / 2; ++k) {
          xs[m * K + k] = x[m * K + 2 * k];
          xs[m * K + K / 2 + k] = x[m * K + 2 * k + 1];
        }
    }
#endif
    auto run = [&]<int MM>() {
#pragma omp parallel if (M * N * K > 65536)
      {
        float* row = galvani::detail::scratch<float, 3>(size_t(K));
#pragma omp for schedule(static)
        for (int64_t n0 = 0; n0 < N; n0 += NB) {
          const int64_t n1 = std::min(N, n0 + NB);
          int64_t n = n0;
#if defined(__AVX512F__)
          if (fused) {  // bs >= 32, so K is a multiple of 32 too
            constexpr int R = MM == 1 ? 4 : MM == 2 ? 2 : 1;
            for (; n + R <= n1; n += R) detail::gemv4_rows<MM, R>(d, xs, y, N, K, n);
            for (; n < n1; ++n) detail::gemv4_rows<MM, 1>(d, xs, y, N, K, n);
          }
#endif
          for (; n < n1; ++n) {  // the general layout: decode row n into L1, then gemm's own dot
            dequantize_run(d, n * K, K, row);
            galvani::detail::gemv_dot<float, MM>(x, K, row, 0, y + n, N, K, 0, 1, false);
          }
        }
      }
    };
    switch (M) {
      case 1: run.template operator()<1>(); break;
      case 2: run.template operator()<2>(); break;
      case 3: run.template operator()<3>(); break;
      case 4: run.template operator()<4>(); break;
      case 5: run.template operator()<5>(); break;
      case 6: run.template operator()<6>(); break;
      case 7: run.template operator()<7>(); break;
      default: run.template operator()<8>(); break;
    }
  } else {
    // B (K, N) = Wᵀ: the panel (k0.., n0..) is rows n0 .. n0+nr of W, columns k0 .. k0+kc, transposed.
    detail::gemm_pack_b(M, N, K, x, K,
                        [&](float* dst, int64_t k0, int64_t kc, int64_t n0, int64_t nr) {
                          constexpr int64_t KC = 256;
                          alignas(64) float rows[16 * KC];  // 16 rows of W, kc each
                          for (int64_t j = 0; j < 16; ++j) {
                            if (j < nr) dequantize_run(d, (n0 + j) * K + k0, kc, rows + j * KC);
                            else std::fill_n(rows + j * KC, kc, 0.0f);
                          }
                          detail::transpose16(rows, KC, dst, kc);
                        },
                        y, N);
  }
  if (bias)
#pragma omp parallel for if (M * N > 65536)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) y[m * N + n] += bias[n];
}

// dx (M, K) = dy (M, N) · W (N, K), f32: the GEMM with B = W, whose panel rows are runs of W's rows.
inline void nf4_linear_backward_input_f32(const float* dy, const uint8_t* packed, const float* absmax, QuantType qt,
                                          int64_t bs, float* dx, int64_t M, int64_t N, int64_t K) {
  const Codes4 d(packed, absmax, qt, bs);
  detail::gemm_pack_b(M, K, N, dy, N,
                      [&](float* dst, int64_t r0, int64_t rc, int64_t c0, int64_t cr) {
                        for (int64_t r = 0; r < rc; ++r) {
                          dequantize_run(d, (r0 + r) * K + c0, cr, dst + r * 16);
                          std::fill(dst + r * 16 + cr, dst + r * 16 + 16, 0.0f);
                        }
                      },
                      dx, K);
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
inline Tensor nf4_linear(const Tensor& x, const Weight4bit& w, const Tensor& bias = Tensor()) {
  galvani::detail::check_float("nf4_linear", "input", x);
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
