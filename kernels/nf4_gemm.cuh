// kernels/nf4_gemm.cuh — the 4-bit weight in training-sized products, forward and input gradient.
//
//   nf4_linear(x, M, w, bias, y)          y  = x · Ŵᵀ + b   x (M, K), y (M, N), row-major
//   nf4_linear_input_grad(dy, M, w, dx)   dx = dy · Ŵ      dy (M, N), dx (M, K), row-major
//
// T ∈ {float, bf16, f16} for inputs and outputs; products accumulate in float32. Ŵ is the
// bitsandbytes 4-bit weight (N, K) (Nf4Weight, nf4_tiling.hpp), never dequantized in full: each
// block of 128 threads computes a 64 × 64 tile of the output, stepping through the reduction
// 32 at a time; per step it copies a 64 × 32 tile of the input into shared memory and DECODES a
// 32 × 64 tile of Ŵ into shared memory (nibble → 16-entry table → × block absmax, then rounded
// to T as bnb's dequantize_4bit rounds), then multiplies the two — with tensor cores (WMMA
// 16 × 16 × 16, f32 accumulators; bf16 needs sm_80, f16 runs from sm_70) for bf16/f16, with
// plain FMAs (8 × 4 outputs per thread) for f32. The weight is frozen in QLoRA, so the input
// gradient is the only backward product; no gradient for Ŵ exists.
//
// Which thread loads which element, and from where, is nf4_tiling.hpp (tested on the CPU by
// tests/test_cuda_tiling.cpp); the products are tested against the CPU reference and cuBLAS on
// the dequantized weight by tests/cuda/test_nf4_cuda.cu where a GPU is present.
// Where a faster path would go (not done here): double-buffered cp.async loads, wgmma on sm_90,
// decoding two codes per byte load. The reference path is nf4_cublas.cuh (dequantize, cuBLAS).
//
// Errors: shapes that do not fit the weight, bf16 on a device below sm_80, host pointers, a
// failed launch — galvani::Error naming the op.
#pragma once
#include <type_traits>

#include <mma.h>

#include "cuda_common.cuh"
#include "nf4_dequantize.cuh"
#include "nf4_gemv.cuh"
#include "nf4_tiling.hpp"

namespace galvani::kernels {

namespace detail {

// C[M, NC] = A[M, R] · B[R, NC] (+ bias[c] when Forward), B from Ŵ (nf4_tiling.hpp). f32 path.
template <bool Forward>
__global__ void __launch_bounds__(kGemmThreads)
    nf4_gemm_f32_kernel(const float* __restrict__ A, int64_t lda, int64_t M, int64_t R, int64_t NC, Nf4Weight w,
                        const float* __restrict__ bias, float* __restrict__ C, int64_t ldc) {
  __shared__ float lut[16];
  __shared__ float As[kTileM][kTileK + 1];
  __shared__ float Bs[kTileK][kTileN + 4];
  const int tid = threadIdx.x;
  if (tid < 16) lut[tid] = quant::code4_value(w.quant_type, uint8_t(tid));
  __syncthreads();
  const int64_t m0 = blockIdx.y * int64_t(kTileM), c0 = blockIdx.x * int64_t(kTileN);
  const int tr = simt_row0(tid), tc = simt_col0(tid);
  float acc[kSimtRows][kSimtCols] = {};
  for (int64_t r0 = 0; r0 < R; r0 += kTileK) {
    gemm_load_a_tile(tid, m0, r0, M, R, [&](int64_t m, int64_t r) { return A[m * lda + r]; },
                     [&](int i, int j, float v) { As[i][j] = v; });
    gemm_load_b_tile(tid, Forward, w, lut, r0, c0, [&](int i, int j, float v) { Bs[i][j] = v; });
    __syncthreads();
#pragma unroll 4
    for (int kk = 0; kk < kTileK; ++kk) {
      float a[kSimtRows], b[kSimtCols];
#pragma unroll
      for (int i = 0; i < kSimtRows; ++i) a[i] = As[tr + i][kk];
#pragma unroll
      for (int j = 0; j < kSimtCols; ++j) b[j] = Bs[kk][tc + j];
#pragma unroll
      for (int i = 0; i < kSimtRows; ++i)
#pragma unroll
        for (int j = 0; j < kSimtCols; ++j) acc[i][j] += a[i] * b[j];
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < kSimtRows; ++i)
#pragma unroll
    for (int j = 0; j < kSimtCols; ++j) {
      const int64_t m = m0 + tr + i, c = c0 + tc + j;
      if (m < M && c < NC) C[m * ldc + c] = acc[i][j] + ((Forward && bias != nullptr) ? bias[c] : 0.0f);
    }
}

// The same product for bf16/f16 on tensor cores (nvcuda::wmma, 16 × 16 × 16, f32 accumulators).
template <class T, bool Forward>
__device__ inline void nf4_gemm_wmma_body(const T* __restrict__ A, int64_t lda, int64_t M, int64_t R, int64_t NC,
                                          const Nf4Weight& w, const T* __restrict__ bias, T* __restrict__ C,
                                          int64_t ldc) {
  namespace wmma = nvcuda::wmma;
  // Leading dimensions padded by 8 (16-bit) / 4 (f32) elements: a multiple of 16 bytes, as WMMA
  // needs, and rows that do not all start in the same shared-memory bank. Every fragment pointer
  // below is 32-byte aligned (row strides 80, 144 and 272 bytes times 16 rows).
  __shared__ float lut[16];
  __shared__ __align__(32) T As[kTileM][kTileK + 8];
  __shared__ __align__(32) T Bs[kTileK][kTileN + 8];
  __shared__ __align__(32) float Cs[kTileM][kTileN + 4];
  const int tid = threadIdx.x;
  if (tid < 16) lut[tid] = quant::code4_value(w.quant_type, uint8_t(tid));
  __syncthreads();
  const int64_t m0 = blockIdx.y * int64_t(kTileM), c0 = blockIdx.x * int64_t(kTileN);
  const int warp = tid / 32, wr = wmma_warp_row0(warp), wc = wmma_warp_col0(warp);
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.0f);
  for (int64_t r0 = 0; r0 < R; r0 += kTileK) {
    gemm_load_a_tile(tid, m0, r0, M, R, [&](int64_t m, int64_t r) { return to_float(A[m * lda + r]); },
                     [&](int i, int j, float v) { As[i][j] = from_float<T>(v); });
    gemm_load_b_tile(tid, Forward, w, lut, r0, c0, [&](int i, int j, float v) { Bs[i][j] = from_float<T>(v); });
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kTileK; kk += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> a[2];
      wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> b[2];
      for (int i = 0; i < 2; ++i) wmma::load_matrix_sync(a[i], &As[wr + 16 * i][kk], kTileK + 8);
      for (int j = 0; j < 2; ++j) wmma::load_matrix_sync(b[j], &Bs[kk][wc + 16 * j], kTileN + 8);
      for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 2; ++j) wmma::mma_sync(acc[i][j], a[i], b[j], acc[i][j]);
    }
    __syncthreads();
  }
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j)
      wmma::store_matrix_sync(&Cs[wr + 16 * i][wc + 16 * j], acc[i][j], kTileN + 4, wmma::mem_row_major);
  __syncthreads();
  for (int e = tid; e < kTileM * kTileN; e += kGemmThreads) {
    const int i = e / kTileN, j = e % kTileN;
    const int64_t m = m0 + i, c = c0 + j;
    if (m < M && c < NC) {
      float v = Cs[i][j];
      if (Forward && bias != nullptr) v += to_float(bias[c]);
      C[m * ldc + c] = from_float<T>(v);
    }
  }
}

template <class T, bool Forward>
__global__ void __launch_bounds__(kGemmThreads)
    nf4_gemm_wmma_kernel(const T* __restrict__ A, int64_t lda, int64_t M, int64_t R, int64_t NC, Nf4Weight w,
                         const T* __restrict__ bias, T* __restrict__ C, int64_t ldc) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
  // bf16 tensor cores start at sm_80; the launcher refuses bf16 below that, so this never runs.
  if constexpr (std::is_same_v<T, __nv_bfloat16>) __trap();
  else nf4_gemm_wmma_body<T, Forward>(A, lda, M, R, NC, w, bias, C, ldc);
#else
  nf4_gemm_wmma_body<T, Forward>(A, lda, M, R, NC, w, bias, C, ldc);
#endif
}

template <class T, bool Forward>
void launch_gemm(const T* A, int64_t lda, int64_t M, int64_t R, int64_t NC, const Nf4Weight& w, const T* bias, T* C,
                 int64_t ldc, cudaStream_t stream, const char* op) {
  GALVANI_CHECK(gemm_grid_y(M) <= 65535, op, ": ", M, " rows is more than one launch covers (", 65535 * kTileM, ")");
  if constexpr (std::is_same_v<T, __nv_bfloat16>)
    GALVANI_CHECK(device_capability() >= 80, op, ": bf16 needs a GPU of compute capability 8.0 or newer (this one is ",
                  device_capability() / 10, ".", device_capability() % 10, "); use f16 on it, as the course's T4 does");
  const dim3 grid(unsigned(gemm_grid_x(NC)), unsigned(gemm_grid_y(M)));
  if constexpr (std::is_same_v<T, float>)
    nf4_gemm_f32_kernel<Forward><<<grid, kGemmThreads, 0, stream>>>(A, lda, M, R, NC, w, bias, C, ldc);
  else
    nf4_gemm_wmma_kernel<T, Forward><<<grid, kGemmThreads, 0, stream>>>(A, lda, M, R, NC, w, bias, C, ldc);
  GALVANI_CUDA_CHECK(cudaGetLastError());
}

}  // namespace detail

// y (M, N) = x (M, K) · Ŵᵀ + bias, through the tiled GEMM whatever M (tests and benchmarks call
// it directly; nf4_linear chooses). bias (N) may be null.
template <class T>
void nf4_gemm(const T* x, int64_t ldx, int64_t M, const Nf4Weight& w, const T* bias, T* y, int64_t ldy,
              cudaStream_t stream = nullptr) {
  detail::check_weight(w, "nf4_gemm");
  detail::check_ld("nf4_gemm", "x", ldx, w.cols);
  detail::check_ld("nf4_gemm", "y", ldy, w.rows);
  detail::check_rows("nf4_gemm", M);
  if (M == 0 || w.rows == 0) return;
  check_device_pointer(x, "x", "nf4_gemm");
  check_device_pointer(y, "y", "nf4_gemm");
  check_device_pointer(bias, "bias", "nf4_gemm");
  detail::launch_gemm<T, true>(x, ldx, M, w.cols, w.rows, w, bias, y, ldy, stream, "nf4_gemm");
}

// y = x · Ŵᵀ + bias: the GEMV for M <= 8 (decoding), the tiled GEMM above. Shapes as nf4_gemm.
template <class T>
void nf4_linear(const T* x, int64_t ldx, int64_t M, const Nf4Weight& w, const T* bias, T* y, int64_t ldy,
                cudaStream_t stream = nullptr) {
  if (M <= kGemvMaxRows) nf4_gemv(x, ldx, M, w, bias, y, ldy, stream);
  else nf4_gemm(x, ldx, M, w, bias, y, ldy, stream);
}

// dx (M, K) = dy (M, N) · Ŵ — the input gradient of nf4_linear (the weight is frozen).
template <class T>
void nf4_linear_input_grad(const T* dy, int64_t lddy, int64_t M, const Nf4Weight& w, T* dx, int64_t lddx,
                           cudaStream_t stream = nullptr) {
  detail::check_weight(w, "nf4_linear_input_grad");
  detail::check_ld("nf4_linear_input_grad", "dy", lddy, w.rows);
  detail::check_ld("nf4_linear_input_grad", "dx", lddx, w.cols);
  detail::check_rows("nf4_linear_input_grad", M);
  if (M == 0 || w.cols == 0) return;
  check_device_pointer(dy, "dy", "nf4_linear_input_grad");
  check_device_pointer(dx, "dx", "nf4_linear_input_grad");
  detail::launch_gemm<T, false>(dy, lddy, M, w.rows, w.cols, w, static_cast<const T*>(nullptr), dx, lddx, stream,
                                "nf4_linear_input_grad");
}

}  // namespace galvani::kernels
