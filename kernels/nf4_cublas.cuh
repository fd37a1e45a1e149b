// kernels/nf4_cublas.cuh — the reference path: dequantize the 4-bit weight in full, then cuBLAS.
//
// This is what bitsandbytes does for training batches (matmul_4bit: dequantize_4bit, then
// torch.nn.functional.linear, i.e. cuBLAS), so it is both the tests' second opinion on
// nf4_gemm.cuh and the baseline the benchmarks beat.
//
//   dense_linear_cublas(h, x, M, W, N, K, y)           y (M, N) = x (M, K) · Wᵀ, W (N, K) dense
//   dense_linear_input_grad_cublas(h, dy, M, W, N, K, dx)   dx (M, K) = dy (M, N) · W
//   nf4_linear_cublas(h, x, M, w, scratch, y)          nf4_dequantize into scratch (N·K of T), then the first
//
// Row-major operands are handed to column-major cuBLAS as their transposes: y (M, N) row-major
// is yᵀ (N, M) column-major = W (N, K) · xᵀ, so W goes in as op T with ld K. All products use
// f32 accumulation (CUBLAS_COMPUTE_32F; no TF32 unless the handle's math mode allows it).
// An empty product (a zero dimension) writes zeros where the output has elements and calls no
// cuBLAS (which rejects leading dimensions of 0).
// Errors: a dimension beyond cuBLAS's int range, a host pointer, a cuBLAS or CUDA failure.
#pragma once
#include <climits>
#include <type_traits>

#include "cuda_common.cuh"
#include "nf4_dequantize.cuh"

namespace galvani::kernels {

template <class T>
constexpr cudaDataType_t cuda_data_type() {
  if constexpr (std::is_same_v<T, float>) return CUDA_R_32F;
  else if constexpr (std::is_same_v<T, __nv_bfloat16>) return CUDA_R_16BF;
  else return CUDA_R_16F;
}

namespace detail {
inline int cublas_dim(int64_t v, const char* op) {
  GALVANI_CHECK(v >= 0 && v <= INT_MAX, op, ": dimension ", v, " is beyond cuBLAS's int range");
  return int(v);
}
}  // namespace detail

template <class T>
void dense_linear_cublas(cublasHandle_t h, const T* x, int64_t M, const T* W, int64_t N, int64_t K, T* y) {
  if (M == 0 || N == 0) return;
  if (K == 0) {
    GALVANI_CUDA_CHECK(cudaMemset(y, 0, size_t(M * N) * sizeof(T)));
    return;
  }
  const float alpha = 1.0f, beta = 0.0f;
  const int m = detail::cublas_dim(N, "dense_linear_cublas"), n = detail::cublas_dim(M, "dense_linear_cublas"),
            k = detail::cublas_dim(K, "dense_linear_cublas");
  GALVANI_CUBLAS_CHECK(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &alpha, W, cuda_data_type<T>(), k, x,
                                    cuda_data_type<T>(), k, &beta, y, cuda_data_type<T>(), m, CUBLAS_COMPUTE_32F,
                                    CUBLAS_GEMM_DEFAULT));
}

template <class T>
void dense_linear_input_grad_cublas(cublasHandle_t h, const T* dy, int64_t M, const T* W, int64_t N, int64_t K, T* dx) {
  if (M == 0 || K == 0) return;
  if (N == 0) {
    GALVANI_CUDA_CHECK(cudaMemset(dx, 0, size_t(M * K) * sizeof(T)));
    return;
  }
  const float alpha = 1.0f, beta = 0.0f;
  const int m = detail::cublas_dim(K, "dense_linear_input_grad_cublas"),
            n = detail::cublas_dim(M, "dense_linear_input_grad_cublas"),
            k = detail::cublas_dim(N, "dense_linear_input_grad_cublas");
  GALVANI_CUBLAS_CHECK(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &alpha, W, cuda_data_type<T>(), m, dy,
                                    cuda_data_type<T>(), k, &beta, dx, cuda_data_type<T>(), m, CUBLAS_COMPUTE_32F,
                                    CUBLAS_GEMM_DEFAULT));
}

// scratch: T [w.rows · w.cols] on the device (the full dequantized weight bnb materializes).
// Sets h's stream to `stream` (cuBLAS handles carry their stream; this is the caller's handle).
template <class T>
void nf4_linear_cublas(cublasHandle_t h, const T* x, int64_t M, const Nf4Weight& w, T* scratch, T* y,
                       cudaStream_t stream = nullptr) {
  check_device_pointer(x, "x", "nf4_linear_cublas");
  check_device_pointer(scratch, "scratch", "nf4_linear_cublas");
  check_device_pointer(y, "y", "nf4_linear_cublas");
  nf4_dequantize(w, scratch, stream);
  GALVANI_CUBLAS_CHECK(cublasSetStream(h, stream));
  dense_linear_cublas(h, x, M, scratch, w.rows, w.cols, y);
}

}  // namespace galvani::kernels
