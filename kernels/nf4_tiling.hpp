// kernels/nf4_tiling.hpp — the index logic of the CUDA NF4 kernels, as plain C++ the CPU tests run.
//
// Every decision the kernels in nf4_gemv.cuh and nf4_gemm.cuh make about WHICH element goes
// WHERE — which bytes a GEMV lane reads, which absmax scales them, which (row, column) of a
// shared-memory tile a thread fills and from which flat position of the 4-bit weight — lives
// in these GALVANI_HOST_DEVICE functions. The kernels call them; tests/test_cuda_tiling.cpp
// calls them on the CPU for every thread of a block (lanes summed, tiles assembled) and checks
// the result against galvani's CPU dequantizer, so this arithmetic is tested on every CI run,
// GPU or not. What only a GPU can test — the launch, shared memory, tensor-core fragments —
// is in the .cuh files and tests/cuda/test_nf4_cuda.cu.
//
// The weight (bitsandbytes' layout, quant/nf4_format.hpp): W (N, K) row-major, element (n, k) at
// flat index n·K + k, its code the nibble nibble_at(packed, n·K + k) (high nibble first), its
// scale absmax[(n·K + k) / blocksize] (f32, already un-nested). A block may straddle two rows
// when K is not a multiple of the block size; indexing by the flat position handles that.
//
// Nothing here includes a CUDA header: element types other than float reach these functions
// through the caller's load/store callables, so the CPU tests instantiate them with float.
#pragma once
#include <cstdint>

#include <galvani/quant/nf4_format.hpp>

namespace galvani::kernels {

using quant::QuantType;

// A 4-bit weight on the device, as the kernels read it. absmax is float32, one per block (the
// nested absmax decoded once by nf4_decode_absmax, nf4_dequantize.cuh).
struct Nf4Weight {
  const uint8_t* packed = nullptr;  // [(N·K + 1) / 2]
  const float* absmax = nullptr;    // [ceil(N·K / blocksize)]
  int64_t rows = 0;                 // N (out_features)
  int64_t cols = 0;                 // K (in_features)
  int64_t blocksize = 64;
  QuantType quant_type = QuantType::nf4;
};

// log2 of a power of two (the block sizes bitsandbytes accepts are): the block of flat element i
// is i >> log2(blocksize) — a shift where a 64-bit division would cost dozens of instructions
// per element on the GPU (bnb's kernels shift too).
GALVANI_HOST_DEVICE inline int log2_pow2(int64_t v) {
#if defined(__CUDA_ARCH__)
  return __ffsll(static_cast<long long>(v)) - 1;
#else
  return __builtin_ctzll(static_cast<unsigned long long>(v));
#endif
}
GALVANI_HOST_DEVICE inline int64_t block_index(int64_t flat, int64_t blocksize) { return flat >> log2_pow2(blocksize); }

// Ŵ(n, k) = value(code) · absmax, in float32 exactly as bnb's dequantize_4bit computes it; 0 for
// (n, k) outside the weight (the zero padding of edge tiles). `lut` is the 16-entry code table.
GALVANI_HOST_DEVICE inline float nf4_weight_at(const Nf4Weight& w, const float* lut, int64_t n, int64_t k) {
  if (n >= w.rows || k >= w.cols) return 0.0f;
  const int64_t flat = n * w.cols + k;
  return lut[quant::nibble_at(w.packed, flat)] * w.absmax[block_index(flat, w.blocksize)];
}

// ------------------------------------------------------------------ GEMV (decoding, M <= 8)
//
// y[m, n] = Σ_k x[m, k] · Ŵ(n, k). One warp per output row n; lane `lane` of `lanes` (32 on the
// GPU) sums its share of the row for every input row m at once, so each weight byte is read
// once for all M inputs. Fast path (K % 8 == 0, every real model): the row is cut into words of
// 8 elements = 4 bytes, lanes taking words lane, lane + lanes, … — a warp reads 128 contiguous
// bytes of W and 256 contiguous inputs per step (coalesced); a word lies in one block (block
// sizes are multiples of 32, words start on multiples of 8), so it needs one absmax, and a row
// starts on a 4-byte boundary (n·K/2 is a multiple of 4), which the 32-bit load needs.
// Otherwise: element by element, lanes interleaved.

inline constexpr int kGemvWord = 8;  // elements per 32-bit load

GALVANI_HOST_DEVICE constexpr bool nf4_gemv_fast_path(int64_t K) { return K % kGemvWord == 0; }

// The 4 bytes at p (4-byte aligned on the GPU) as one little-endian word: byte b is bits 8b … 8b+7.
GALVANI_HOST_DEVICE inline uint32_t load_word(const uint8_t* p) {
#if defined(__CUDA_ARCH__)
  return *reinterpret_cast<const uint32_t*>(p);
#else
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
#endif
}

// Adds lane `lane`'s share of row n to acc[m] for m < mrows (mrows <= MR).
// load_x(m, k) → float is x[m, k]. The lanes together cover k = 0 … K-1 exactly once.
template <int MR, class LoadX>
GALVANI_HOST_DEVICE inline void nf4_gemv_lane(int lane, int lanes, const Nf4Weight& w, const float* lut, int64_t n,
                                              int mrows, LoadX load_x, float (&acc)[MR]) {
  const int64_t K = w.cols;
  const int64_t row0 = n * K;
  if (nf4_gemv_fast_path(K)) {
    for (int64_t c = lane; c < K / kGemvWord; c += lanes) {
      const int64_t k0 = c * kGemvWord;
      const uint32_t word = load_word(w.packed + (row0 + k0) / 2);
      const float scale = w.absmax[block_index(row0 + k0, w.blocksize)];
      for (int b = 0; b < 4; ++b) {
        const uint32_t byte = (word >> (8 * b)) & 0xffu;
        const float w0 = lut[byte >> 4] * scale, w1 = lut[byte & 15u] * scale;
        for (int m = 0; m < MR; ++m)
          if (m < mrows) acc[m] += load_x(m, k0 + 2 * b) * w0 + load_x(m, k0 + 2 * b + 1) * w1;
      }
    }
  } else {
    for (int64_t k = lane; k < K; k += lanes) {
      const float wv = nf4_weight_at(w, lut, n, k);
      for (int m = 0; m < MR; ++m)
        if (m < mrows) acc[m] += load_x(m, k) * wv;
    }
  }
}

// ------------------------------------------------------------------ GEMM (training batches)
//
// C[M, NC] = A[M, R] · B[R, NC] with B read from the 4-bit weight:
//   forward       y  = x  · Ŵᵀ:  A = x  (M, K), R = K, NC = N, B(r, c) = Ŵ(c, r)
//   input grad    dx = dy · Ŵ :  A = dy (M, N), R = N, NC = K, B(r, c) = Ŵ(r, c)
// A block computes a kTileM × kTileN tile of C, stepping through R kTileK at a time; each step
// loads an A tile (kTileM × kTileK) and a B tile (kTileK × kTileN, dequantized on the way into
// shared memory) with all kGemmThreads threads, then multiplies them (tensor cores for bf16/f16,
// plain FMAs for f32). Out-of-range elements are loaded as 0, so edge tiles need no special
// case in the multiply.

inline constexpr int kTileM = 64;
inline constexpr int kTileN = 64;
inline constexpr int kTileK = 32;
inline constexpr int kGemmThreads = 128;  // 4 warps, 2 × 2, each a 32 × 32 sub-tile

// Fills the A tile at (m0, r0): store(i, j, A[m0 + i, r0 + j] or 0), i < kTileM, j < kTileK.
// Consecutive threads take consecutive j (one row of A is contiguous: coalesced reads).
// load_a(m, r) → float reads A; it is called only in range.
template <class LoadA, class Store>
GALVANI_HOST_DEVICE inline void gemm_load_a_tile(int tid, int64_t m0, int64_t r0, int64_t M, int64_t R, LoadA load_a,
                                                 Store store) {
  for (int e = tid; e < kTileM * kTileK; e += kGemmThreads) {
    const int i = e / kTileK, j = e % kTileK;
    const int64_t m = m0 + i, r = r0 + j;
    store(i, j, (m < M && r < R) ? load_a(m, r) : 0.0f);
  }
}

// Fills the B tile at (r0, c0): store(i, j, B[r0 + i, c0 + j] or 0), i < kTileK, j < kTileN.
// Consecutive threads walk along k, the contiguous direction of Ŵ's rows, so neighbouring
// threads read the same or adjacent bytes: along i (= k) for the forward product, along j
// (= k) for the input gradient.
template <class Store>
GALVANI_HOST_DEVICE inline void gemm_load_b_tile(int tid, bool forward, const Nf4Weight& w, const float* lut, int64_t r0,
                                                 int64_t c0, Store store) {
  for (int e = tid; e < kTileK * kTileN; e += kGemmThreads) {
    const int i = forward ? e % kTileK : e / kTileN;
    const int j = forward ? e / kTileK : e % kTileN;
    const int64_t r = r0 + i, c = c0 + j;
    store(i, j, forward ? nf4_weight_at(w, lut, c, r) : nf4_weight_at(w, lut, r, c));
  }
}

// The f32 path's register tile: thread tid owns rows tm·8 … tm·8+7 and columns tn·4 … tn·4+3 of
// the block's kTileM × kTileN tile (16 × 8 threads × 32 outputs = 64 × 64).
inline constexpr int kSimtRows = 8;
inline constexpr int kSimtCols = 4;
GALVANI_HOST_DEVICE constexpr int simt_row0(int tid) { return (tid / (kTileN / kSimtCols)) * kSimtRows; }
GALVANI_HOST_DEVICE constexpr int simt_col0(int tid) { return (tid % (kTileN / kSimtCols)) * kSimtCols; }
static_assert((kTileM / kSimtRows) * (kTileN / kSimtCols) == kGemmThreads, "the f32 register tiles cover the block tile");

// The tensor-core path's warp tile: warp `warp` (0..3) owns rows wm·32 … +31, columns wn·32 … +31.
GALVANI_HOST_DEVICE constexpr int wmma_warp_row0(int warp) { return (warp / 2) * 32; }
GALVANI_HOST_DEVICE constexpr int wmma_warp_col0(int warp) { return (warp % 2) * 32; }

// Grid of the GEMM: blocks along NC (x) and M (y).
GALVANI_HOST_DEVICE constexpr int64_t gemm_grid_x(int64_t NC) { return (NC + kTileN - 1) / kTileN; }
GALVANI_HOST_DEVICE constexpr int64_t gemm_grid_y(int64_t M) { return (M + kTileM - 1) / kTileM; }

}  // namespace galvani::kernels
