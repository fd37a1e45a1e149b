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
// in place, once. A K so long that a column block holding all of it would be narrow (the tied
// head's input gradient sums over the vocabulary) is split into chunks, each a whole pass that
// adds into C (detail::gemm_k_chunk).
// Convention (as in CuTe): A (M, K), B (K, N), C (M, N) row-major with ldc.
//
// The kernels live in ops/gemm_kernels.inl, compiled once per instruction-set level
// (core/isa.hpp: default, AVX2+FMA, AVX-512); gemm() runs the copy for the CPU it finds, so a
// program built without -march flags multiplies as fast as one built with -march=native.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <type_traits>

#include <omp.h>
#if defined(__x86_64__) || defined(__SSE__)
#include <immintrin.h>  // the AVX2 copy's bf16 loads (ops/gemm_kernels.inl)
#endif

#include "../core/dtype.hpp"
#include "../core/isa.hpp"

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

// Up to this many rows of A take the GEMV path. At 8 the dot kernel keeps 8 vector
// accumulators (of 32 AVX-512 registers) and an 8-token prompt's lm_head ran 4.5x
// faster than packed (bench_gemm: 6.4 vs 29 ms for x(8,768)·Wt(768,50257)).
constexpr int64_t kGemvRows = 8;

// The packed path's blocking: A blocks of MC x KC (72 x 256, ~72 KB of f32, fit L2); B column
// blocks of up to kGemmPackedB bytes of packed panels (~L3).
constexpr int64_t kGemmKC = 256, kGemmMC = 72, kGemmPackedB = 16 << 20;
// A column block should be at least this wide (or all of N): below it, K is split into chunks
// (gemm_packed in ops/gemm_kernels.inl) rather than A packed once per narrow block.
constexpr int64_t kGemmWideBlock = 1024;

// The length of the K chunks gemm_packed splits an N-column product over K into, or K when it
// needs no split: a column block should hold min(N, kGemmWideBlock) columns (rounded up to NR)
// with all of its chunk's K within kGemmPackedB bytes. Chunks are whole numbers of kGemmKC
// slices and as equal as that allows (K = 4,097 with N = 2,048 gives 2,304 + 1,793, not
// 4,096 + 1). The tied head's input gradient of SmolLM2 (N = 576, K = 49,152): 6 × 7,168 + 6,144.
template <class T>
constexpr int64_t gemm_k_chunk(int64_t N, int64_t K) {
  constexpr int64_t NR = GemmTile<T>::NR, budget = kGemmPackedB / int64_t(sizeof(T));
  const int64_t want = (std::min(N, kGemmWideBlock) + NR - 1) / NR * NR;
  if (K <= kGemmKC || budget / K >= want) return K;
  const int64_t most = std::max<int64_t>(kGemmKC, budget / want / kGemmKC * kGemmKC);
  const int64_t chunks = (K + most - 1) / most, even = (K + chunks - 1) / chunks;
  return (even + kGemmKC - 1) / kGemmKC * kGemmKC;
}

// The kernels, once per instruction-set level: namespaces isa_avx512, isa_avx2, isa_base.
#define GALVANI_ISA_KERNELS "../ops/gemm_kernels.inl"
#include "../core/isa_foreach.inl"

}  // namespace detail

// C (M, N) = A (M, K) · B (K, N)  [+ C when accumulate].
// A element (m, k) is a[m*a_rs + k*a_cs]; B element (k, n) is b[k*b_rs + n*b_cs].
// `parallel` lets the caller run many small GEMMs on separate threads instead.
// Runs the kernels compiled for cpu_capability() (core/isa.hpp). Error: GALVANI_CPU_CAPABILITY
// names a level this CPU lacks.
template <class T>
void gemm(int64_t M, int64_t N, int64_t K, const T* a, int64_t a_rs, int64_t a_cs, const T* b, int64_t b_rs,
          int64_t b_cs, T* c, int64_t ldc, bool accumulate = false, bool parallel = true) {
  if constexpr (std::is_same_v<T, float>) {
    GALVANI_ISA_CALL(detail, gemm<T>(M, N, K, a, a_rs, a_cs, b, b_rs, b_cs, c, ldc, accumulate, parallel));
  } else {  // f64 (gradient checks, where speed does not matter) always takes the base copy
    detail::isa_base::gemm<T>(M, N, K, a, a_rs, a_cs, b, b_rs, b_cs, c, ldc, accumulate, parallel);
  }
}

// C (M, N) f32 = A (M, K) · B (K, N) [+ C] with A and B each f32, bf16 or f16 (TA, TB ∈ {float,
// bf16, f16}): the product of a lower-precision GEMM with f32 accumulation, as torch's autocast runs
// `linear`/`matmul` on bf16 or f16 operands (oneDNN's bf16 GEMM: bf16 in, f32 sums). Each operand is
// widened to f32 exactly as it is packed (or loaded, on the GEMV path), and the f32 kernels run, so
// the result is bit-identical to gemm<float> over the widened operands (tests/test_mixed_precision.cpp).
// Strides and the other arguments as gemm(). What it saves is memory traffic and storage (2 bytes
// an operand element: bf16 weights stream at half the bytes in decoding); the multiply-adds are f32.
template <class TA, class TB>
void gemm_mixed(int64_t M, int64_t N, int64_t K, const TA* a, int64_t a_rs, int64_t a_cs, const TB* b, int64_t b_rs,
                int64_t b_cs, float* c, int64_t ldc, bool accumulate = false, bool parallel = true) {
  static_assert((std::is_same_v<TA, float> || std::is_same_v<TA, bf16> || std::is_same_v<TA, f16>) &&
                    (std::is_same_v<TB, float> || std::is_same_v<TB, bf16> || std::is_same_v<TB, f16>),
                "gemm_mixed: operands are float, bf16 or f16");
  GALVANI_ISA_CALL(detail, gemm_mixed<TA, TB>(M, N, K, a, a_rs, a_cs, b, b_rs, b_cs, c, ldc, accumulate, parallel));
}

// C (M, N) f32 = A (M, K) f32 · B (K, N) with B bf16 or f16 (TB), for M <= kGemvRows (8) and B with
// unit stride along one dimension (b_rs == 1: `linear`'s Wᵀ over W (N, K) row-major; b_cs == 1:
// `conv1d_linear`'s W (K, N)): gemm_mixed's GEMV path alone — each element of B loaded once and
// widened in registers, the sums in the order of gemm<float>'s GEMV over the widened B, so the result
// is that product's to the bit. Decoding with 2-byte weights streams half the bytes of f32.
// Error: M above kGemvRows or B strided along both dimensions (a precondition the callers meet).
template <class TB>
void gemv_mixed(int64_t M, int64_t N, int64_t K, const float* a, int64_t a_rs, int64_t a_cs, const TB* b, int64_t b_rs,
                int64_t b_cs, float* c, int64_t ldc, bool accumulate = false, bool parallel = true) {
  static_assert(std::is_same_v<TB, bf16> || std::is_same_v<TB, f16>, "gemv_mixed: B is bf16 or f16");
  GALVANI_CHECK(M <= detail::kGemvRows && (b_rs == 1 || b_cs == 1), "gemv_mixed: needs at most ",
                detail::kGemvRows, " rows of A and B contiguous along one dimension (got M = ", M, ", B strides ",
                b_rs, ", ", b_cs, ")");
  GALVANI_ISA_CALL(detail, gemv_mixed<TB>(M, N, K, a, a_rs, a_cs, b, b_rs, b_cs, c, ldc, accumulate, parallel));
}

// The instruction-set level (0 baseline, 1 AVX2, 2 AVX-512) of the GEMM copy that runs now —
// what forcing GALVANI_CPU_CAPABILITY reaches; the tests check it for every level.
inline int gemm_kernels_level() { GALVANI_ISA_CALL(detail, gemm_kernels_level()); }

}  // namespace galvani
