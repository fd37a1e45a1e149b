// ops/gemm.hpp — C = A·B (+ C) on the CPU: galvani's own cache-blocked GEMM.
//
// By far the most time in training and evaluation is spent in this function.
// It follows the BLIS/GotoBLAS plan:
//   for each block of columns of B:
//     pack it into NR-wide column panels, KC-deep slices (contiguous, read many times)
//     for each MC-tall block of rows of A (threads split these), for each KC slice:
//       pack A's block into MR-tall row panels
//       for each (MR x NR) tile: the micro-kernel keeps an MR x NR block of C
//       in registers while it streams K: MR*NR multiply-adds per MR+NR loads.
// A and B are read through arbitrary (row, column) strides, so a transposed
// operand (W^T in a Linear layer) costs nothing extra: packing absorbs it.
// Products with at most 8 rows (decoding, a short prompt) skip all of this: detail::gemv reads B
// in place, once.
// Convention (as in CuTe): A (M, K), B (K, N), C (M, N) row-major with ldc.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>

#include <omp.h>

namespace galvani {

template <class T> struct GemmTile;
template <> struct GemmTile<float> { static constexpr int MR = 6, NR = 16; };
template <> struct GemmTile<double> { static constexpr int MR = 6, NR = 8; };

namespace detail {

// Scratch memory for packed panels: one buffer per thread and per Slot (packed B is
// filled by the calling thread and read by all; packed A is private to each thread),
// grown when a call needs more and otherwise reused, never freed. A std::vector
// resize() here would value-initialise, i.e. memset up to 16 MB of packed B, on every
// call; `new T[n]` leaves it uninitialised and the packing loops write every element
// the micro-kernel reads (the padding lanes of edge panels included).
template <class T, int Slot>
T* scratch(size_t n) {
  thread_local std::unique_ptr<T[]> buf;
  thread_local size_t cap = 0;
  if (n > cap) {
    buf.reset(new T[n]);
    cap = n;
  }
  return buf.get();
}

// The micro-kernel: C[MR x NR] (+)= Ap[kc x MR]ᵀ · Bp[kc x NR].
// The MR x NR block of C lives in MR vector registers (GCC/Clang vector types:
// one NR-wide vector per row) for the whole k loop; each step loads one row of
// B and broadcasts one element of A per row. Written with plain arrays, the
// compiler kept the block on the stack and ran 8x slower.
template <class T, int MR, int NR>
inline void gemm_micro(int64_t kc, const T* __restrict ap, const T* __restrict bp, T* c, int64_t ldc,
                       int64_t mr, int64_t nr, bool accumulate) {
  typedef T V __attribute__((vector_size(NR * sizeof(T))));
  V acc[MR];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) acc[i] = V{};
  for (int64_t k = 0; k < kc; ++k) {
    V b;
    std::memcpy(&b, bp + k * NR, sizeof(V));
    const T* a = ap + k * MR;
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) acc[i] += a[i] * b;
  }
  if (mr == MR && nr == NR) {
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      V out = acc[i];
      if (accumulate) {
        V old;
        std::memcpy(&old, c + i * ldc, sizeof(V));
        out += old;
      }
      std::memcpy(c + i * ldc, &out, sizeof(V));
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
template <class T, int M>
void gemv_dot(const T* a, int64_t lda, const T* b, int64_t b_cs, T* c, int64_t ldc, int64_t K, int64_t n0,
              int64_t n1, bool accumulate) {
  constexpr int W = 64 / int(sizeof(T));  // one 64-byte vector of T
  typedef T V __attribute__((vector_size(64)));
  for (int64_t n = n0; n < n1; ++n) {
    const T* w = b + n * b_cs;
    V acc[M];
#pragma GCC unroll 8
    for (int i = 0; i < M; ++i) acc[i] = V{};
    int64_t k = 0;
    for (; k + W <= K; k += W) {
      V wv;
      std::memcpy(&wv, w + k, sizeof wv);
#pragma GCC unroll 8
      for (int i = 0; i < M; ++i) {
        V av;
        std::memcpy(&av, a + i * lda + k, sizeof av);
        acc[i] += av * wv;
      }
    }
    for (int i = 0; i < M; ++i) {
      T s = 0;
      for (int l = 0; l < W; ++l) s += acc[i][l];
      for (int64_t r = k; r < K; ++r) s += a[i * lda + r] * w[r];
      T& out = c[i * ldc + n];
      out = accumulate ? out + s : s;
    }
  }
}

// Rows of B contiguous (b_cs == 1; `conv1d_linear`'s x·W with W (K, N) row-major):
// C[i, :] = Σ_k A[i, k]·W[k, :], an axpy per row of W, vectorized over N. The
// columns go in blocks of NB so the M partial rows stay in L1 while all of K streams.
template <class T, int M>
void gemv_axpy(const T* a, int64_t lda, const T* b, int64_t b_rs, T* c, int64_t ldc, int64_t K, int64_t n0,
               int64_t n1, bool accumulate) {
  constexpr int64_t NB = 256;
  alignas(64) T acc[M][NB];
  for (int64_t j0 = n0; j0 < n1; j0 += NB) {
    const int64_t nb = std::min(NB, n1 - j0);
    for (int i = 0; i < M; ++i)
      for (int64_t j = 0; j < nb; ++j) acc[i][j] = accumulate ? c[i * ldc + j0 + j] : T(0);
    for (int64_t k = 0; k < K; ++k) {
      const T* row = b + k * b_rs + j0;
      T ak[M];
      for (int i = 0; i < M; ++i) ak[i] = a[i * lda + k];
#pragma omp simd
      for (int64_t j = 0; j < nb; ++j) {
        const T r = row[j];
#pragma GCC unroll 8
        for (int i = 0; i < M; ++i) acc[i][j] += ak[i] * r;
      }
    }
    for (int i = 0; i < M; ++i) std::copy_n(acc[i], nb, c + i * ldc + j0);
  }
}

// Up to this many rows of A take the GEMV path. At 8 the dot kernel keeps 8 vector
// accumulators (of 32 AVX-512 registers) and an 8-token prompt's lm_head ran 4.5x
// faster than packed (bench_gemm: 6.4 vs 29 ms for x(8,768)·Wt(768,50257)).
constexpr int64_t kGemvRows = 8;

// The GEMV path of gemm() (b_rs == 1 or b_cs == 1). One parallel region, static blocks
// of columns: each thread streams its own slice of B.
template <class T>
void gemv(int64_t M, int64_t N, int64_t K, const T* a, int64_t a_rs, int64_t a_cs, const T* b, int64_t b_rs,
          int64_t b_cs, T* c, int64_t ldc, bool accumulate, bool parallel) {
  int64_t lda = a_rs;
  if (a_cs != 1) {  // a strided row of A (M·K elements, at most 8·K): make it contiguous once
    T* ac = scratch<T, 2>(size_t(M * K));
    for (int64_t i = 0; i < M; ++i)
      for (int64_t k = 0; k < K; ++k) ac[i * K + k] = a[i * a_rs + k * a_cs];
    a = ac;
    lda = K;
  }
  const bool dot = b_rs == 1;
  constexpr int64_t NB = 256;  // columns per work item
  const int64_t nblocks = (N + NB - 1) / NB;
  auto run = [&]<int MM>() {
#pragma omp parallel for schedule(static) if (parallel && M * N * K > 65536)
    for (int64_t blk = 0; blk < nblocks; ++blk) {
      const int64_t n0 = blk * NB, n1 = std::min(N, n0 + NB);
      if (dot)
        gemv_dot<T, MM>(a, lda, b, b_cs, c, ldc, K, n0, n1, accumulate);
      else
        gemv_axpy<T, MM>(a, lda, b, b_rs, c, ldc, K, n0, n1, accumulate);
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
}

}  // namespace detail

// C (M, N) = A (M, K) · B (K, N)  [+ C when accumulate].
// A element (m, k) is a[m*a_rs + k*a_cs]; B element (k, n) is b[k*b_rs + n*b_cs].
// `parallel` lets the caller run many small GEMMs on separate threads instead.
//
// Threads meet at two barriers per column block, not one per K slice: B's
// whole column block (all of K) is packed first, then each work item (a block
// of rows × a group of column panels) walks all of K on its own. With K in the
// tens of thousands (the lm_head's input gradient sums over the vocabulary)
// this matters: hundreds of barriers per call are slow whenever another
// process takes a core for a moment.
template <class T>
void gemm(int64_t M, int64_t N, int64_t K, const T* a, int64_t a_rs, int64_t a_cs, const T* b, int64_t b_rs,
          int64_t b_cs, T* c, int64_t ldc, bool accumulate = false, bool parallel = true) {
  constexpr int MR = GemmTile<T>::MR, NR = GemmTile<T>::NR;
  constexpr int64_t KC = 256, MC = 72;   // A block: 72 x 256 (~72 KB of f32, fits L2)
  constexpr int64_t kPackedB = 16 << 20;  // bytes of packed B per column block (~L3)
  if (M == 0 || N == 0) return;
  if (K == 0) {
    if (!accumulate)
      for (int64_t m = 0; m < M; ++m) std::fill_n(c + m * ldc, N, T(0));
    return;
  }
  if (M <= detail::kGemvRows && (b_rs == 1 || b_cs == 1)) {
    detail::gemv<T>(M, N, K, a, a_rs, a_cs, b, b_rs, b_cs, c, ldc, accumulate, parallel);
    return;
  }
  // Column block width: as many NR-wide panels as fit kPackedB with all of K.
  const int64_t NC = std::max<int64_t>(NR, kPackedB / int64_t(sizeof(T)) / K / NR * NR);
  const int64_t kslices = (K + KC - 1) / KC;
  for (int64_t jc = 0; jc < N; jc += NC) {
    const int64_t nc = std::min(NC, N - jc);
    const int64_t npanels = (nc + NR - 1) / NR;
    // Pack B[:, jc:jc+nc]: slice s (KC deep) of panel p starts at (s*npanels + p)*KC*NR.
    T* bpack = detail::scratch<T, 0>(size_t(kslices * npanels * KC * NR));
#pragma omp parallel for collapse(2) schedule(static) if (parallel && K * nc > 65536)
    for (int64_t sl = 0; sl < kslices; ++sl)
      for (int64_t p = 0; p < npanels; ++p) {
        T* dst = bpack + (sl * npanels + p) * KC * NR;
        const int64_t k0 = sl * KC, kc = std::min(KC, K - k0);
        const int64_t n0 = jc + p * NR, nr = std::min<int64_t>(NR, jc + nc - n0);
        for (int64_t k = 0; k < kc; ++k) {
          const T* src = b + (k0 + k) * b_rs + n0 * b_cs;
          if (nr == NR && b_cs == 1) {  // a whole row of the panel: a fixed-size copy, not a memmove call
            std::memcpy(dst + k * NR, src, NR * sizeof(T));
            continue;
          }
          int64_t j = 0;
          for (; j < nr; ++j) dst[k * NR + j] = src[j * b_cs];
          for (; j < NR; ++j) dst[k * NR + j] = T(0);
        }
      }
    // Work items: (row block, group of column panels). With few row blocks
    // (decoding: M = 1) the column panels are split so every core works.
    const int64_t mblocks = (M + MC - 1) / MC;
    const int64_t threads = parallel ? omp_get_max_threads() : 1;
    const int64_t ngroups = std::max<int64_t>(1, std::min<int64_t>(npanels, (2 * threads + mblocks - 1) / mblocks));
    const int64_t per_group = (npanels + ngroups - 1) / ngroups;
#pragma omp parallel if (parallel && M * nc * K > 100000)
    {
      T* apack = detail::scratch<T, 1>(size_t(((MC + MR - 1) / MR) * MR * KC));
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
              const T* src = a + m0 * a_rs + (k0 + k) * a_cs;
              int64_t i = 0;
              for (; i < mr; ++i) dst[k * MR + i] = src[i * a_rs];
              for (; i < MR; ++i) dst[k * MR + i] = T(0);
            }
          }
          const bool acc = accumulate || sl > 0;
          for (int64_t jp = jp0; jp < jp1; ++jp) {
            const int64_t n0 = jp * NR, nr = std::min<int64_t>(NR, nc - n0);
            const T* bp = bpack + (sl * npanels + jp) * KC * NR;
            for (int64_t ip = 0; ip < mpanels; ++ip) {
              const int64_t m0 = ip * MR, mr = std::min<int64_t>(MR, mc - m0);
              detail::gemm_micro<T, MR, NR>(kc, apack + ip * kc * MR, bp, c + (ic + m0) * ldc + jc + n0, ldc,
                                            mr, nr, acc);
            }
          }
        }
      }
    }
  }
}

}  // namespace galvani
