// ops/gemm_kernels.inl — the GEMM's kernels, compiled once per instruction-set level by
// core/isa_foreach.inl into namespace galvani::detail::GALVANI_ISA_NS (isa_avx512, isa_avx2,
// isa_base), every function marked GALVANI_ISA_FN (that copy's target attribute); ops/gemm.hpp's
// gemm() calls the copy for the CPU it runs on. No includes here
// (see core/isa_foreach.inl): ops/gemm.hpp includes what these need first.

namespace GALVANI_ISA_NS {

// The level this copy was compiled for (the public gemm_kernels_level() reports the one that runs).
GALVANI_ISA_FN inline int gemm_kernels_level() { return GALVANI_ISA_LEVEL; }

// An operand's element as the compute type T: f32/f64 as they are, bf16 and f16 widened to f32
// (exactly: every bf16 and f16 value is a float). gemm_mixed's operands go through this when
// they are packed or, on the GEMV path, loaded.
template <class T, class S>
GALVANI_ISA_FN inline T widen(S v) {
  if constexpr (std::is_same_v<S, T>)
    return v;
  else
    return T(float(v));
}

// L consecutive elements of an f32, bf16 or f16 array as one f32 vector V of the copy's width
// (L = its lanes). bf16 is the high half of an f32: zero-extend each 16-bit lane to 32 bits and
// shift it up, which vectorizes on every level; f16 goes element by element (no F16C in the
// base copy).
template <class V, int L, class S>
GALVANI_ISA_FN inline V load_widened(const S* p) {
  V v;
  if constexpr (std::is_same_v<S, bf16>) {
    typedef uint16_t H __attribute__((vector_size(GALVANI_ISA_VECTOR_BYTES / 2)));
    typedef uint32_t U __attribute__((vector_size(GALVANI_ISA_VECTOR_BYTES)));
    static_assert(sizeof(V) == GALVANI_ISA_VECTOR_BYTES && L * 2 == int(sizeof(H)), "bf16 loads fill one f32 vector");
    H h;
    std::memcpy(&h, p, sizeof h);
    const U u = __builtin_convertvector(h, U) << 16;
    std::memcpy(&v, &u, sizeof v);
  } else if constexpr (std::is_same_v<S, f16>) {
    for (int l = 0; l < L; ++l) v[l] = float(p[l]);
  } else {
    std::memcpy(&v, p, sizeof v);
  }
  return v;
}

// NV·L consecutive elements of an f32, bf16 or f16 row as NV f32 vectors of L lanes (wv[v] holds
// elements v·L .. v·L + L−1; one K step of gemv_dot, two vectors of a row in gemv_axpy), each
// through load_widened. bf16 on AVX2 takes one
// 32-byte load and in-lane unpacks with zero (a bf16 is the high half of its f32), then two
// lane-crossing permutes to restore the order: 4 shuffles per 16 weights instead of the 8 shuffles
// and 2 shifts the compiler made of load_widened — and the same values in the same lanes, so the
// sums are unchanged. (SmolLM2's q/down projections with the weights in cache: 28-33 -> 34-47 GB/s
// of bf16.)
template <class V, int L, int NV, class S>
GALVANI_ISA_FN inline void load_widened_step(const S* p, V (&wv)[NV]) {
#if GALVANI_ISA_LEVEL == 1
  if constexpr (std::is_same_v<S, bf16> && NV == 2 && sizeof(V) == 32) {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    const __m256i z = _mm256_setzero_si256();
    const __m256i lo = _mm256_unpacklo_epi16(z, h);  // elements 0-3 | 8-11 as f32
    const __m256i hi = _mm256_unpackhi_epi16(z, h);  // elements 4-7 | 12-15
    const __m256i w0 = _mm256_permute2x128_si256(lo, hi, 0x20), w1 = _mm256_permute2x128_si256(lo, hi, 0x31);
    std::memcpy(&wv[0], &w0, sizeof(V));
    std::memcpy(&wv[1], &w1, sizeof(V));
    return;
  }
#endif
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) wv[v] = load_widened<V, L>(p + v * L);
}

// The micro-kernel: C[MR x NR] (+)= Ap[kc x MR]ᵀ · Bp[kc x NR].
// The MR x NR block of C lives in vector registers (GCC/Clang vector types of the copy's
// hardware width, GALVANI_ISA_VECTOR_BYTES: NR / lanes of them per row) for the whole k loop;
// each step loads one row of B and broadcasts one element of A per row. Written with plain
// arrays, the compiler kept the block on the stack and ran 8x slower; written with one 64-byte
// vector per row, AVX2 code (two 32-byte registers per vector) ran at half the speed of SSE2.
template <class T, int MR, int NR>
GALVANI_ISA_FN inline void gemm_micro(int64_t kc, const T* __restrict ap, const T* __restrict bp, T* c, int64_t ldc,
                                      int64_t mr, int64_t nr, bool accumulate) {
  constexpr int VB = GALVANI_ISA_VECTOR_BYTES, NV = NR * int(sizeof(T)) / VB, L = VB / int(sizeof(T));
  static_assert(NV * L == NR, "the tile's width is a whole number of vectors");
  typedef T V __attribute__((vector_size(VB)));
  V acc[MR][NV];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = V{};
  for (int64_t k = 0; k < kc; ++k) {
    V b[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) std::memcpy(&b[v], bp + k * NR + v * L, sizeof(V));
    const T* a = ap + k * MR;
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] += a[i] * b[v];
  }
  if (mr == MR && nr == NR) {
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) {
        V out = acc[i][v];
        if (accumulate) {
          V old;
          std::memcpy(&old, c + i * ldc + v * L, sizeof(V));
          out += old;
        }
        std::memcpy(c + i * ldc + v * L, &out, sizeof(V));
      }
    return;
  }
  alignas(64) T tile[MR][NR];  // an edge tile: write only the valid part
  std::memcpy(tile, acc, sizeof tile);
  for (int64_t i = 0; i < mr; ++i)
    for (int64_t j = 0; j < nr; ++j) c[i * ldc + j] = accumulate ? c[i * ldc + j] + tile[i][j] : tile[i][j];
}

// GEMV: C (M, N) (+)= A (M, K) · B (K, N) for a handful of rows (decoding: M = 1),
// reading B where it lies. Packing B would copy the whole weight to multiply it by one
// row, and the 6-row micro-kernel tile would be 5/6 padding; here each element of B is
// loaded once and used for all M rows, so a decode step streams each weight once at
// memory bandwidth. A's rows are contiguous (a + i*lda), C's are c + i*ldc; both kernels
// cover the columns [n0, n1) so threads can split N.

// Rows of Bᵀ contiguous (b_rs == 1; `linear`'s x·Wᵀ with W (N, K) row-major):
// C[i, n] = dot(A[i, :], W[n, :]), M dot products per row of W, vectorized over K.
// TB, B's element type, is T or (gemm_mixed, T = float) bf16 / f16, widened as it is loaded.
// (Two rows of W at a time, for more loads in flight, ran SmolLM2's bf16 projections at 12-16
// instead of 18-22 GB/s: the rows stay one at a time.)
template <class T, int M, class TB = T>
GALVANI_ISA_FN void gemv_dot(const T* a, int64_t lda, const TB* b, int64_t b_cs, T* c, int64_t ldc, int64_t K,
                             int64_t n0, int64_t n1, bool accumulate) {
  // K in steps of 64 bytes of T, each held as NV vectors of the copy's hardware width.
  constexpr int VB = GALVANI_ISA_VECTOR_BYTES, W = 64 / int(sizeof(T)), NV = 64 / VB, L = VB / int(sizeof(T));
  typedef T V __attribute__((vector_size(VB)));
  for (int64_t n = n0; n < n1; ++n) {
    const TB* w = b + n * b_cs;
    V acc[M][NV];
#pragma GCC unroll 8
    for (int i = 0; i < M; ++i)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] = V{};
    int64_t k = 0;
    for (; k + W <= K; k += W) {
      V wv[NV];
      load_widened_step<V, L, NV>(w + k, wv);
#pragma GCC unroll 8
      for (int i = 0; i < M; ++i)
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) {
          V av;
          std::memcpy(&av, a + i * lda + k + v * L, sizeof av);
          acc[i][v] += av * wv[v];
        }
    }
    for (int i = 0; i < M; ++i) {
      T s = 0;
      for (int v = 0; v < NV; ++v)
        for (int l = 0; l < L; ++l) s += acc[i][v][l];
      for (int64_t r = k; r < K; ++r) s += a[i * lda + r] * widen<T>(w[r]);
      T& out = c[i * ldc + n];
      out = accumulate ? out + s : s;
    }
  }
}

// Rows of B contiguous (b_cs == 1; `conv1d_linear`'s x·W with W (K, N) row-major):
// C[i, :] = Σ_k A[i, k]·W[k, :], an axpy per row of W, vectorized over N. The
// columns go in blocks of NB so the M partial rows stay in L1 while all of K streams.
// Four rows of W at a time: each vector of partial sums is loaded once, takes the four rows'
// products (k, k+1, k+2, k+3, in that order: the sums of one row at a time, to the bit) and is
// stored once — a quarter of the partial sums' L1 traffic — and 2-byte rows are widened 16 weights
// at a time (load_widened_step). With the weights in cache, GPT-2's Conv1D projections ran at
// 22-25 GB/s of bf16 before, 35-49 after (f32: 36-53 -> 45-56 GB/s).
// The axpy's column blocks: 512 columns of a 2-byte W, else 256 (1 KB of each row of f32 or bf16
// weights, 2 KB of f64), read K rows apart. (512-byte
// runs of bf16 fed GPT-2's Conv1D projections 1-2 GB/s slower from memory, and its bf16 decoding
// ran at 68-94 instead of 93-97 tokens/s; 512 f32 columns were no faster than 256.)
template <class TB>
constexpr int64_t gemv_axpy_columns() { return sizeof(TB) == 2 ? 512 : 256; }

// acc[i][j] += ak[i]·row[j] for j in [j0, nb): one row of W into the partial sums, the loop
// gemv_axpy ran over all of its rows before it took four at a time (it still runs the rows past a
// multiple of four, and the columns past the two-vector steps).
template <class T, int M, int64_t NB, class TB>
GALVANI_ISA_FN inline void gemv_axpy_row(T (&acc)[M][NB], const T* ak, const TB* row, int64_t j0, int64_t nb) {
#pragma omp simd
  for (int64_t j = j0; j < nb; ++j) {
    const T r = widen<T>(row[j]);
#pragma GCC unroll 8
    for (int i = 0; i < M; ++i) acc[i][j] += ak[i] * r;
  }
}

template <class T, int M, class TB = T>
GALVANI_ISA_FN void gemv_axpy(const T* a, int64_t lda, const TB* b, int64_t b_rs, T* c, int64_t ldc, int64_t K, int64_t n0,
               int64_t n1, bool accumulate) {
  constexpr int64_t NB = gemv_axpy_columns<TB>();
  constexpr int KR = 4, L = GALVANI_ISA_VECTOR_BYTES / int(sizeof(T));
  typedef T V __attribute__((vector_size(GALVANI_ISA_VECTOR_BYTES)));
  alignas(64) T acc[M][NB];
  for (int64_t j0 = n0; j0 < n1; j0 += NB) {
    const int64_t nb = std::min(NB, n1 - j0);
    for (int i = 0; i < M; ++i)
      for (int64_t j = 0; j < nb; ++j) acc[i][j] = accumulate ? c[i * ldc + j0 + j] : T(0);
    int64_t k = 0;
    for (; k + KR <= K; k += KR) {
      const TB* row[KR];
      T ak[KR][M];
#pragma GCC unroll 4
      for (int q = 0; q < KR; ++q) {
        row[q] = b + (k + q) * b_rs + j0;
        for (int i = 0; i < M; ++i) ak[q][i] = a[i * lda + k + q];
      }
      int64_t j = 0;
      for (; j + 2 * L <= nb; j += 2 * L) {  // two vectors of each row: load_widened_step's bf16 unpacks
        V w[KR][2];
#pragma GCC unroll 4
        for (int q = 0; q < KR; ++q) load_widened_step<V, L, 2>(row[q] + j, w[q]);
#pragma GCC unroll 8
        for (int i = 0; i < M; ++i)
#pragma GCC unroll 2
          for (int v = 0; v < 2; ++v) {
            V s;
            std::memcpy(&s, &acc[i][j + v * L], sizeof s);
#pragma GCC unroll 4
            for (int q = 0; q < KR; ++q) s += ak[q][i] * w[q][v];
            std::memcpy(&acc[i][j + v * L], &s, sizeof s);
          }
      }
      for (int q = 0; q < KR; ++q) gemv_axpy_row<T, M, NB>(acc, ak[q], row[q], j, nb);  // the last columns
    }
    for (; k < K; ++k) {
      T ak[M];
      for (int i = 0; i < M; ++i) ak[i] = a[i * lda + k];
      gemv_axpy_row<T, M, NB>(acc, ak, b + k * b_rs + j0, 0, nb);
    }
    for (int i = 0; i < M; ++i) std::copy_n(acc[i], nb, c + i * ldc + j0);
  }
}

// Columns [0, N) of the GEMV in blocks of at most 256 (the axpy: gemv_axpy_columns), one parallel
// region, static blocks: each thread streams its own slice of B. The blocks come in whole rounds of
// the thread count, as equal as multiples of 16 columns allow: in fixed 256-column blocks SmolLM2's
// o_proj (N = 576: 256 + 256 + 64) gave one of 2 threads 512 rows of W and the other 64, and k_proj
// (N = 192) one block, so one thread. (A named function rather than a lambda: a lambda does not
// take its enclosing function's target attribute.)
template <class T, int MM, class TB>
GALVANI_ISA_FN void gemv_blocks(const T* a, int64_t lda, const TB* b, int64_t b_rs, int64_t b_cs, T* c, int64_t ldc,
                                int64_t N, int64_t K, bool accumulate, bool parallel) {
  const bool dot = b_rs == 1;
  const int64_t most = dot ? 256 : gemv_axpy_columns<TB>();
  const int64_t threads = parallel ? std::max(1, omp_get_max_threads()) : 1;
  const int64_t rounds = ((N + most - 1) / most + threads - 1) / threads;
  const int64_t NB = std::min(most, ((N + rounds * threads - 1) / (rounds * threads) + 15) / 16 * 16);
  const int64_t nblocks = (N + NB - 1) / NB;
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t blk = 0; blk < nblocks; ++blk) {
    const int64_t n0 = blk * NB, n1 = std::min(N, n0 + NB);
    if (dot)
      gemv_dot<T, MM, TB>(a, lda, b, b_cs, c, ldc, K, n0, n1, accumulate);
    else
      gemv_axpy<T, MM, TB>(a, lda, b, b_rs, c, ldc, K, n0, n1, accumulate);
  }
}

// The GEMV path of gemm() (b_rs == 1 or b_cs == 1), M <= kGemvRows rows. A of another type
// than T (gemm_mixed) is widened into a contiguous copy first (at most 8·K elements).
template <class T, class TA, class TB>
GALVANI_ISA_FN void gemv(int64_t M, int64_t N, int64_t K, const TA* a_in, int64_t a_rs, int64_t a_cs, const TB* b,
                         int64_t b_rs, int64_t b_cs, T* c, int64_t ldc, bool accumulate, bool parallel) {
  int64_t lda = a_rs;
  const T* a;
  if (a_cs != 1 || !std::is_same_v<TA, T>) {  // a strided row of A: make it contiguous once
    T* ac = scratch<T, 2>(size_t(M * K));
    for (int64_t i = 0; i < M; ++i)
      for (int64_t k = 0; k < K; ++k) ac[i * K + k] = widen<T>(a_in[i * a_rs + k * a_cs]);
    a = ac;
    lda = K;
  } else {
    a = reinterpret_cast<const T*>(a_in);  // TA is T here
  }
  const bool par = parallel && M * N * K > 65536;
  switch (M) {
    case 1: return gemv_blocks<T, 1, TB>(a, lda, b, b_rs, b_cs, c, ldc, N, K, accumulate, par);
    case 2: return gemv_blocks<T, 2, TB>(a, lda, b, b_rs, b_cs, c, ldc, N, K, accumulate, par);
    case 3: return gemv_blocks<T, 3, TB>(a, lda, b, b_rs, b_cs, c, ldc, N, K, accumulate, par);
    case 4: return gemv_blocks<T, 4, TB>(a, lda, b, b_rs, b_cs, c, ldc, N, K, accumulate, par);
    case 5: return gemv_blocks<T, 5, TB>(a, lda, b, b_rs, b_cs, c, ldc, N, K, accumulate, par);
    case 6: return gemv_blocks<T, 6, TB>(a, lda, b, b_rs, b_cs, c, ldc, N, K, accumulate, par);
    case 7: return gemv_blocks<T, 7, TB>(a, lda, b, b_rs, b_cs, c, ldc, N, K, accumulate, par);
    default: return gemv_blocks<T, 8, TB>(a, lda, b, b_rs, b_cs, c, ldc, N, K, accumulate, par);
  }
}

// The packed path: gemm()'s loop nest (see ops/gemm.hpp) with B's packing done by
// pack_b(dst, k0, kc, n0, nr), which writes the KC-deep, NR-wide panel dst[k·NR + j] for
// k < kc, j < NR, zero where j >= nr, of B's rows k0 .. k0+kc and columns n0 .. n0+nr. gemm()
// packs a strided B; the 4-bit matmuls (quant/nf4_kernels.inl) decode W straight into the panels.
// Panels are packed in parallel when K·nc exceeds pack_parallel_min (decoding costs more than
// copying, so the 4-bit packers go parallel sooner).
//
// Threads meet at two barriers per column block, not one per K slice: B's
// whole column block (all of K) is packed first, then each work item (a block
// of rows × a group of column panels) walks all of K on its own. With K in the
// tens of thousands (the lm_head's input gradient sums over the vocabulary)
// this matters: hundreds of barriers per call are slow whenever another
// process takes a core for a moment.
template <class T, class TA, class PackB>
GALVANI_ISA_FN void gemm_packed_blocks(int64_t M, int64_t N, int64_t K, const TA* a, int64_t a_rs, int64_t a_cs,
                                       PackB&& pack_b, T* c, int64_t ldc, bool accumulate, bool parallel,
                                       int64_t pack_parallel_min) {
  constexpr int MR = GemmTile<T>::MR, NR = GemmTile<T>::NR;
  constexpr int64_t KC = kGemmKC, MC = kGemmMC;
  // Column block width: as many NR-wide panels as fit kGemmPackedB bytes with all of K.
  const int64_t NC = std::max<int64_t>(NR, kGemmPackedB / int64_t(sizeof(T)) / K / NR * NR);
  const int64_t kslices = (K + KC - 1) / KC;
  for (int64_t jc = 0; jc < N; jc += NC) {
    const int64_t nc = std::min(NC, N - jc);
    const int64_t npanels = (nc + NR - 1) / NR;
    // Packed B[:, jc:jc+nc]: slice s (KC deep) of panel p starts at (s*npanels + p)*KC*NR.
    T* bpack = scratch<T, 0>(size_t(kslices * npanels * KC * NR));
#pragma omp parallel for collapse(2) schedule(static) if (parallel && K * nc > pack_parallel_min)
    for (int64_t sl = 0; sl < kslices; ++sl)
      for (int64_t p = 0; p < npanels; ++p) {
        const int64_t k0 = sl * KC, n0 = jc + p * NR;
        pack_b(bpack + (sl * npanels + p) * KC * NR, k0, std::min(KC, K - k0), n0,
               std::min<int64_t>(NR, jc + nc - n0));
      }
    // Work items: (row block, group of column panels). With few row blocks
    // (decoding: M = 1) the column panels are split so every core works.
    const int64_t mblocks = (M + MC - 1) / MC;
    const int64_t threads = parallel ? omp_get_max_threads() : 1;
    const int64_t ngroups = std::max<int64_t>(1, std::min<int64_t>(npanels, (2 * threads + mblocks - 1) / mblocks));
    const int64_t per_group = (npanels + ngroups - 1) / ngroups;
#pragma omp parallel if (parallel && M * nc * K > 100000)
    {
      T* apack = scratch<T, 1>(size_t(((MC + MR - 1) / MR) * MR * KC));
#pragma omp for schedule(dynamic, 1)
      for (int64_t item = 0; item < mblocks * ngroups; ++item) {
        const int64_t ic = (item / ngroups) * MC, mc = std::min(MC, M - ic);
        const int64_t jp0 = (item % ngroups) * per_group, jp1 = std::min(npanels, jp0 + per_group);
        const int64_t mpanels = (mc + MR - 1) / MR;
        for (int64_t sl = 0; sl < kslices; ++sl) {
          const int64_t k0 = sl * KC, kc = std::min(KC, K - k0);
          // Pack A[ic:ic+mc, k0:k0+kc] into MR-row panels, k-major, zero-padded.
          for (int64_t p = 0; p < mpanels; ++p) {
            T* dst = apack + p * kc * MR;
            const int64_t m0 = ic + p * MR, mr = std::min<int64_t>(MR, ic + mc - m0);
            for (int64_t k = 0; k < kc; ++k) {
              const TA* src = a + m0 * a_rs + (k0 + k) * a_cs;
              int64_t i = 0;
              for (; i < mr; ++i) dst[k * MR + i] = widen<T>(src[i * a_rs]);
              for (; i < MR; ++i) dst[k * MR + i] = T(0);
            }
          }
          const bool acc = accumulate || sl > 0;
          for (int64_t jp = jp0; jp < jp1; ++jp) {
            const int64_t n0 = jp * NR, nr = std::min<int64_t>(NR, nc - n0);
            const T* bp = bpack + (sl * npanels + jp) * KC * NR;
            for (int64_t ip = 0; ip < mpanels; ++ip) {
              const int64_t m0 = ip * MR, mr = std::min<int64_t>(MR, mc - m0);
              gemm_micro<T, MR, NR>(kc, apack + ip * kc * MR, bp, c + (ic + m0) * ldc + jc + n0, ldc, mr, nr, acc);
            }
          }
        }
      }
    }
  }
}

// gemm_packed_blocks with K split into chunks (gemm_k_chunk in ops/gemm.hpp) when K is so long
// that a column block holding all of it would be narrow. The tied head's input gradient sums over
// the vocabulary (K = 49,152, N = 576): all of K in kGemmPackedB leaves 80 columns per block, and
// A (M × 49,152) was packed again for each of the 8 blocks — 80–105 instead of 120–137 GFLOP/s on
// 2 Zen 3 cores (docs/benchmarks.md). Each chunk is a whole pass that adds into C; chunks start on
// slice boundaries, so each element of C gets the same partial sums, slice after slice, in the
// same order as without chunks: the result is the same to the bit.
template <class T, class TA, class PackB>
GALVANI_ISA_FN void gemm_packed(int64_t M, int64_t N, int64_t K, const TA* a, int64_t a_rs, int64_t a_cs, PackB&& pack_b,
                                T* c, int64_t ldc, bool accumulate, bool parallel, int64_t pack_parallel_min) {
  const int64_t kchunk = gemm_k_chunk<T>(N, K);
  if (kchunk >= K) {
    gemm_packed_blocks<T>(M, N, K, a, a_rs, a_cs, pack_b, c, ldc, accumulate, parallel, pack_parallel_min);
    return;
  }
  for (int64_t k0 = 0; k0 < K; k0 += kchunk) {
    const auto pack_chunk = [&](T* dst, int64_t k, int64_t kc, int64_t n0, int64_t nr) { pack_b(dst, k0 + k, kc, n0, nr); };
    gemm_packed_blocks<T>(M, N, std::min(kchunk, K - k0), a + k0 * a_cs, a_rs, a_cs, pack_chunk, c, ldc,
                          accumulate || k0 > 0, parallel, pack_parallel_min);
  }
}

// gemm() for one level: the degenerate shapes, the GEMV path, else the packed path with B
// copied (through its strides) into the panels. TA and TB are T, or (gemm_mixed, T = float)
// bf16 / f16 operands widened to f32 as they are packed: the micro-kernel and the order of
// every sum are those of the f32 product of the widened operands, to the bit.
template <class T, class TA, class TB>
GALVANI_ISA_FN void gemm_typed(int64_t M, int64_t N, int64_t K, const TA* a, int64_t a_rs, int64_t a_cs, const TB* b,
                               int64_t b_rs, int64_t b_cs, T* c, int64_t ldc, bool accumulate, bool parallel) {
  constexpr int NR = GemmTile<T>::NR;
  if (M == 0 || N == 0) return;
  if (K == 0) {
    if (!accumulate)
      for (int64_t m = 0; m < M; ++m) std::fill_n(c + m * ldc, N, T(0));
    return;
  }
  if (M <= kGemvRows && (b_rs == 1 || b_cs == 1)) {
    gemv<T>(M, N, K, a, a_rs, a_cs, b, b_rs, b_cs, c, ldc, accumulate, parallel);
    return;
  }
  gemm_packed<T>(
      M, N, K, a, a_rs, a_cs,
      [&](T* dst, int64_t k0, int64_t kc, int64_t n0, int64_t nr) {
        for (int64_t k = 0; k < kc; ++k) {
          const TB* src = b + (k0 + k) * b_rs + n0 * b_cs;
          if constexpr (std::is_same_v<TB, T>)
            if (nr == NR && b_cs == 1) {  // a whole row of the panel: a fixed-size copy, not a memmove call
              std::memcpy(dst + k * NR, src, NR * sizeof(T));
              continue;
            }
          int64_t j = 0;
          for (; j < nr; ++j) dst[k * NR + j] = widen<T>(src[j * b_cs]);
          for (; j < NR; ++j) dst[k * NR + j] = T(0);
        }
      },
      c, ldc, accumulate, parallel, 65536);
}

template <class T>
GALVANI_ISA_FN void gemm(int64_t M, int64_t N, int64_t K, const T* a, int64_t a_rs, int64_t a_cs, const T* b, int64_t b_rs,
                         int64_t b_cs, T* c, int64_t ldc, bool accumulate, bool parallel) {
  gemm_typed<T, T, T>(M, N, K, a, a_rs, a_cs, b, b_rs, b_cs, c, ldc, accumulate, parallel);
}

// The GEMV path alone, f32 A with a bf16 or f16 B widened as it is loaded (M <= kGemvRows, b_rs == 1
// or b_cs == 1): what `linear` over a 2-byte weight needs for decoding, without gemm_mixed's packed
// path. Every translation unit that includes ops/matmul.hpp compiles this at each level, so it takes
// two row counts, not gemv's eight: one row as it is, else groups of four rows, the last padded with
// zero rows (streaming B is the cost, not the extra multiply-adds). Each output element is the same
// dot product in the same order as gemv's, so the result is gemv<float>'s over the widened B.
template <class TB>
GALVANI_ISA_FN void gemv_mixed(int64_t M, int64_t N, int64_t K, const float* a, int64_t a_rs, int64_t a_cs, const TB* b,
                               int64_t b_rs, int64_t b_cs, float* c, int64_t ldc, bool accumulate, bool parallel) {
  if (M == 0 || N == 0) return;
  if (K == 0) {
    if (!accumulate)
      for (int64_t m = 0; m < M; ++m) std::fill_n(c + m * ldc, N, 0.0f);
    return;
  }
  const bool par = parallel && M * N * K > 65536;
  if (M == 1 && a_cs == 1) {
    gemv_blocks<float, 1, TB>(a, a_rs, b, b_rs, b_cs, c, ldc, N, K, accumulate, par);
    return;
  }
  constexpr int64_t G = 4;
  float* ap = scratch<float, 2>(size_t(G * K));
  float* cp = scratch<float, 3>(size_t(G * N));
  for (int64_t m0 = 0; m0 < M; m0 += G) {
    const int64_t g = std::min(G, M - m0);
    for (int64_t i = 0; i < G; ++i)
      for (int64_t k = 0; k < K; ++k) ap[i * K + k] = i < g ? a[(m0 + i) * a_rs + k * a_cs] : 0.0f;
    if (accumulate) {
      for (int64_t i = 0; i < G; ++i) {
        if (i < g) std::copy_n(c + (m0 + i) * ldc, N, cp + i * N);
        else std::fill_n(cp + i * N, N, 0.0f);
      }
    }
    gemv_blocks<float, G, TB>(ap, K, b, b_rs, b_cs, cp, N, N, K, accumulate, par);
    for (int64_t i = 0; i < g; ++i) std::copy_n(cp + i * N, N, c + (m0 + i) * ldc);
  }
}

template <class TA, class TB>
GALVANI_ISA_FN void gemm_mixed(int64_t M, int64_t N, int64_t K, const TA* a, int64_t a_rs, int64_t a_cs, const TB* b,
                               int64_t b_rs, int64_t b_cs, float* c, int64_t ldc, bool accumulate, bool parallel) {
  gemm_typed<float, TA, TB>(M, N, K, a, a_rs, a_cs, b, b_rs, b_cs, c, ldc, accumulate, parallel);
}

}  // namespace GALVANI_ISA_NS
