// quant/nf4_kernels.inl — the fast f32 4-bit kernels (quant/nf4_matmul.hpp explains them),
// compiled once per instruction-set level by core/isa_foreach.inl into namespace
// galvani::quant::detail::GALVANI_ISA_NS, every function marked GALVANI_ISA_FN (that copy's
// target attribute); GALVANI_ISA_LEVEL picks the AVX-512 (2), AVX2 (1) or
// scalar (0) decoder. No includes here: quant/nf4_matmul.hpp includes what these need first.

namespace GALVANI_ISA_NS {

// The level this copy was compiled for (the public nf4_kernels_level() reports the one that runs).
GALVANI_ISA_FN inline int nf4_kernels_level() { return GALVANI_ISA_LEVEL; }


#if GALVANI_ISA_LEVEL >= 2
// The AVX-512 intrinsics used here in their zero-masking form with every lane selected (the
// same instructions): the plain forms start from _mm512_undefined_*(), which GCC 12 reports as
// "may be used uninitialized" wherever they are inlined, and a diagnostic pragma cannot silence
// that inside a precompiled header.
inline constexpr __mmask16 kAll16 = 0xFFFF;

// Σ v[i] in _mm512_reduce_add_ps's order (halves added: 16 → 8 → 4 → 2 → 1), without its
// _mm512_undefined start (see kAll16).
GALVANI_ISA_FN inline float reduce_add16(__m512 v) {
  alignas(64) float t[16];
  _mm512_store_ps(t, v);
  for (int w = 8; w >= 1; w /= 2)
    for (int i = 0; i < w; ++i) t[i] += t[i + w];
  return t[0];
}
#endif

// out[0 .. len) = the dequantized flat elements [i, i + len) of W: lut[code] · absmax[block],
// the same float product as dequantize_code4. The run is cut at block boundaries (one absmax per
// piece); an odd start takes one low nibble first so the vector body reads whole bytes.
GALVANI_ISA_FN inline void dequantize_run(const Codes4& d, int64_t i, int64_t len, float* __restrict out) {
  const int64_t end = i + len;
#if GALVANI_ISA_LEVEL >= 2
  const __m512 lut = _mm512_load_ps(d.lut);
#elif GALVANI_ISA_LEVEL >= 1
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
#if GALVANI_ISA_LEVEL >= 2
    // 8 bytes → 16 indices (high nibble first): unpack (byte >> 4, byte) pairs; vpermps only
    // looks at the low 4 bits of each index, so neither half needs masking.
    const __m512 vam = _mm512_set1_ps(am);
    for (; i + 16 <= stop; i += 16, p += 8, out += 16) {
      const __m128i bytes = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
      const __m128i idx8 = _mm_unpacklo_epi8(_mm_srli_epi16(bytes, 4), bytes);
      const __m512 v = _mm512_maskz_permutexvar_ps(kAll16, _mm512_maskz_cvtepu8_epi32(kAll16, idx8), lut);
      _mm512_storeu_ps(out, _mm512_mul_ps(v, vam));
    }
#elif GALVANI_ISA_LEVEL >= 1
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

#if GALVANI_ISA_LEVEL >= 2
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
GALVANI_ISA_FN inline void gemv4_rows(const Codes4& d, const float* xs, float* y, int64_t N, int64_t K, int64_t n) {
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
        const __m512i codes =
            _mm512_maskz_cvtepu8_epi32(kAll16, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p[r] + j)));
        // vpermps reads only the low 4 bits of each index: the low nibble needs no mask.
        we[r] = _mm512_mul_ps(_mm512_maskz_permutexvar_ps(kAll16, _mm512_maskz_srli_epi32(kAll16, codes, 4), lut), scale[r]);
        wo[r] = _mm512_mul_ps(_mm512_maskz_permutexvar_ps(kAll16, codes, lut), scale[r]);
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
    for (int m = 0; m < MM; ++m) y[m * N + n + r] = reduce_add16(_mm512_add_ps(acc[r][m][0], acc[r][m][1]));
}
#endif

#if GALVANI_ISA_LEVEL == 1
// The fused decode GEMV for AVX2: y[m, n .. n+R) = x[m] · W[n .. n+R), the codes decoded in
// registers and never stored. AVX2 has no 16-entry float permute, and its 8-entry vpermps
// crosses 128-bit lanes (slow on AMD before Zen 4), so the table is looked up byte by byte:
// vpshufb is a 16-entry byte lookup in each lane, so four of them (one per byte of the f32
// values, Codes4::lut_bytes) look up 32 codes, and two rounds of unpacks put the bytes back together as
// 32 floats — every shuffle inside a lane. 16 packed bytes (32 weights) go in one lane as their
// high nibbles (the even elements), in the other as their low ones (the odd); after the unpacks
// each 8 floats are elements 8g … 8g+7 in the order 0 2 4 6 1 3 5 7, so x is rearranged once per
// call to match (xs: in every 8 elements, the 4 even ones then the 4 odd ones). Each decoded
// weight is lut[code] · absmax, the same float as dequantize_4bit's; only the summation order
// differs. R rows at a time; A = accumulators per (row, input), 2 while R·MM is small.
template <int MM, int R>
GALVANI_ISA_FN inline void gemv4_rows(const Codes4& d, const float* xs, float* y, int64_t N, int64_t K, int64_t n) {
  constexpr int A = R * MM <= 2 ? 2 : 1;
  __m256i tab[4];  // Codes4::lut_bytes, in both lanes
  for (int b = 0; b < 4; ++b)
    tab[b] = _mm256_broadcastsi128_si256(_mm_load_si128(reinterpret_cast<const __m128i*>(d.lut_bytes[b])));
  const __m256i low4 = _mm256_set1_epi8(15);
  const int64_t bs = int64_t(1) << d.bs_shift, half = K / 2;
  __m256 acc[R][MM][A];
  const uint8_t* p[R];
  const float* am[R];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) {
    p[r] = d.packed + (((n + r) * K) >> 1);
    am[r] = d.absmax + (((n + r) * K) >> d.bs_shift);
#pragma GCC unroll 8
    for (int m = 0; m < MM; ++m)
#pragma GCC unroll 2
      for (int a = 0; a < A; ++a) acc[r][m][a] = _mm256_setzero_ps();
  }
  for (int64_t j0 = 0, b = 0; j0 < half; j0 += bs / 2, ++b) {  // j: byte = element pair
    __m256 scale[R];
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      scale[r] = _mm256_set1_ps(am[r][b]);
      _mm_prefetch(reinterpret_cast<const char*>(p[r] + R * half + j0), _MM_HINT_T0);  // see the AVX-512 kernel
    }
    for (int64_t j = j0; j < j0 + bs / 2; j += 16) {  // 16 bytes: elements 2j … 2j+31
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p[r] + j));
        const __m256i idx = _mm256_and_si256(
            _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_srli_epi16(bytes, 4)), bytes, 1), low4);
        const __m256i t0 = _mm256_shuffle_epi8(tab[0], idx), t1 = _mm256_shuffle_epi8(tab[1], idx);
        const __m256i t2 = _mm256_shuffle_epi8(tab[2], idx), t3 = _mm256_shuffle_epi8(tab[3], idx);
        const __m256i lo01 = _mm256_unpacklo_epi8(t0, t1), hi01 = _mm256_unpackhi_epi8(t0, t1);
        const __m256i lo23 = _mm256_unpacklo_epi8(t2, t3), hi23 = _mm256_unpackhi_epi8(t2, t3);
        const __m256 w[4] = {_mm256_mul_ps(_mm256_castsi256_ps(_mm256_unpacklo_epi16(lo01, lo23)), scale[r]),
                             _mm256_mul_ps(_mm256_castsi256_ps(_mm256_unpackhi_epi16(lo01, lo23)), scale[r]),
                             _mm256_mul_ps(_mm256_castsi256_ps(_mm256_unpacklo_epi16(hi01, hi23)), scale[r]),
                             _mm256_mul_ps(_mm256_castsi256_ps(_mm256_unpackhi_epi16(hi01, hi23)), scale[r])};
#pragma GCC unroll 8
        for (int m = 0; m < MM; ++m)
#pragma GCC unroll 4
          for (int q = 0; q < 4; ++q)
            acc[r][m][q % A] = _mm256_fmadd_ps(_mm256_loadu_ps(xs + m * K + 2 * j + 8 * q), w[q], acc[r][m][q % A]);
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int m = 0; m < MM; ++m) {
      const __m256 v = A == 2 ? _mm256_add_ps(acc[r][m][0], acc[r][m][A - 1]) : acc[r][m][0];
      alignas(32) float t[8];  // 8 → 4 → 2 → 1, halves added
      _mm256_store_ps(t, v);
      for (int w = 4; w >= 1; w /= 2)
        for (int i = 0; i < w; ++i) t[i] += t[i + w];
      y[m * N + n + r] = t[0];
    }
}
#endif

// 16 rows of kc floats → one packed panel: dst[k·16 + j] = src[j·lds + k] (rows of W become the
// panel's 16 columns). A plain loop: at M = 512 it is a few per cent of the GEMM it feeds.
GALVANI_ISA_FN inline void transpose16(const float* src, int64_t lds, float* dst, int64_t kc) {
  for (int64_t k = 0; k < kc; ++k)
#pragma GCC unroll 16
    for (int j = 0; j < 16; ++j) dst[k * 16 + j] = src[j * lds + k];
}

// y (MM, N) = x (MM, K) · Wᵀ for MM ≤ 8 rows, both row-major, in work items of 16 rows of W
// (one parallel region). xs (MM, K): x de-interleaved for gemv4_rows when `fused` (AVX-512 or
// AVX2), else unused.
template <int MM>
GALVANI_ISA_FN void gemv4_blocks(const Codes4& d, const float* x, [[maybe_unused]] const float* xs, float* y,
                                 int64_t N, int64_t K, [[maybe_unused]] bool fused, bool parallel) {
  constexpr int64_t NB = 16;  // rows of W per work item
#pragma omp parallel if (parallel)
  {
    float* row = galvani::detail::scratch<float, 3>(size_t(K));
#pragma omp for schedule(static)
    for (int64_t n0 = 0; n0 < N; n0 += NB) {
      const int64_t n1 = std::min(N, n0 + NB);
      int64_t n = n0;
#if GALVANI_ISA_LEVEL >= 1
      if (fused) {  // bs >= 32, so K is a multiple of 32 too
        constexpr int R = GALVANI_ISA_LEVEL >= 2 ? (MM == 1 ? 4 : MM == 2 ? 2 : 1) : (MM == 1 ? 2 : 1);
        for (; n + R <= n1; n += R) gemv4_rows<MM, R>(d, xs, y, N, K, n);
        for (; n < n1; ++n) gemv4_rows<MM, 1>(d, xs, y, N, K, n);
      }
#endif
      for (; n < n1; ++n) {  // the general layout: decode row n into L1, then gemm's own dot
        dequantize_run(d, n * K, K, row);
        galvani::detail::GALVANI_ISA_NS::gemv_dot<float, MM>(x, K, row, 0, y + n, N, K, 0, 1, false);
      }
    }
  }
}

// y (M, N) = x (M, K) · Wᵀ + bias (N, or null), f32: GEMV for M <= 8, else GEMM (see the top).
GALVANI_ISA_FN inline void nf4_linear_forward_f32(const float* x, const uint8_t* packed, const float* absmax,
                                                  QuantType qt, int64_t bs, const float* bias, float* y, int64_t M,
                                                  int64_t N, int64_t K) {
  if (M == 0 || N == 0) return;
  if (K == 0) {  // an empty sum: y = bias (or 0)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) y[m * N + n] = bias ? bias[n] : 0.0f;
    return;
  }
  const Codes4 d(packed, absmax, qt, bs);
  if (M <= galvani::detail::kGemvRows) {
    const bool fused = GALVANI_ISA_LEVEL >= 1 && K % bs == 0;
    float* xs = nullptr;
    if (fused) {  // x rearranged for gemv4_rows, row by row
      xs = galvani::detail::scratch<float, 4>(size_t(M * K));
      for (int64_t m = 0; m < M; ++m) {
#if GALVANI_ISA_LEVEL >= 2
        for (int64_t k = 0; k < K / 2; ++k) {  // the even elements, then the odd ones
          xs[m * K + k] = x[m * K + 2 * k];
          xs[m * K + K / 2 + k] = x[m * K + 2 * k + 1];
        }
#else
        for (int64_t k = 0; k < K; k += 8)  // in every 8 elements (K % 32 == 0), the evens, then the odds
          for (int64_t i = 0; i < 4; ++i) {
            xs[m * K + k + i] = x[m * K + k + 2 * i];
            xs[m * K + k + 4 + i] = x[m * K + k + 2 * i + 1];
          }
#endif
      }
    }
    const bool par = M * N * K > 65536;
    switch (M) {
      case 1: gemv4_blocks<1>(d, x, xs, y, N, K, fused, par); break;
      case 2: gemv4_blocks<2>(d, x, xs, y, N, K, fused, par); break;
      case 3: gemv4_blocks<3>(d, x, xs, y, N, K, fused, par); break;
      case 4: gemv4_blocks<4>(d, x, xs, y, N, K, fused, par); break;
      case 5: gemv4_blocks<5>(d, x, xs, y, N, K, fused, par); break;
      case 6: gemv4_blocks<6>(d, x, xs, y, N, K, fused, par); break;
      case 7: gemv4_blocks<7>(d, x, xs, y, N, K, fused, par); break;
      default: gemv4_blocks<8>(d, x, xs, y, N, K, fused, par); break;
    }
  } else {
    // B (K, N) = Wᵀ: the panel (k0.., n0..) is rows n0 .. n0+nr of W, columns k0 .. k0+kc, transposed.
    galvani::detail::GALVANI_ISA_NS::gemm_packed<float>(
        M, N, K, x, K, 1,
        [&](float* dst, int64_t k0, int64_t kc, int64_t n0, int64_t nr) {
          constexpr int64_t KC = galvani::detail::kGemmKC;
          alignas(64) float rows[16 * KC];  // 16 rows of W, kc each
          for (int64_t j = 0; j < 16; ++j) {
            if (j < nr) dequantize_run(d, (n0 + j) * K + k0, kc, rows + j * KC);
            else std::fill_n(rows + j * KC, kc, 0.0f);
          }
          transpose16(rows, KC, dst, kc);
        },
        y, N, false, true, 16384);
  }
  if (bias)
#pragma omp parallel for if (M * N > 65536)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) y[m * N + n] += bias[n];
}

// dx (M, K) = dy (M, N) · W (N, K), f32: the GEMM with B = W, whose panel rows are runs of W's rows.
GALVANI_ISA_FN inline void nf4_linear_backward_input_f32(const float* dy, const uint8_t* packed, const float* absmax,
                                                         QuantType qt, int64_t bs, float* dx, int64_t M, int64_t N,
                                                         int64_t K) {
  if (M == 0 || K == 0) return;
  if (N == 0) {  // an empty sum
    std::fill_n(dx, M * K, 0.0f);
    return;
  }
  const Codes4 d(packed, absmax, qt, bs);
  galvani::detail::GALVANI_ISA_NS::gemm_packed<float>(
      M, K, N, dy, N, 1,
      [&](float* dst, int64_t r0, int64_t rc, int64_t c0, int64_t cr) {
        for (int64_t r = 0; r < rc; ++r) {
          dequantize_run(d, (r0 + r) * K + c0, cr, dst + r * 16);
          std::fill(dst + r * 16 + cr, dst + r * 16 + 16, 0.0f);
        }
      },
      dx, K, false, true, 16384);
}

}  // namespace GALVANI_ISA_NS
