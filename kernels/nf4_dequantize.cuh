// kernels/nf4_dequantize.cuh — bitsandbytes 4-bit weights decoded on the GPU.
//
//   nf4_decode_absmax(q, nested_absmax, offset, nblocks, out)
//       the double-quantized absmax back to float32: out[b] = map8[q[b]] · nested_absmax[b / 256]
//       + offset, two float32 roundings (bnb's dequantize_blockwise, then `absmax += offset`).
//       Done once per weight; the GEMV and GEMM read the f32 result (Nf4Weight::absmax).
//   nf4_dequantize<T>(w, out)
//       Ŵ (N, K) row-major in T ∈ {float, bf16, f16}: value(code) · absmax in float32, then
//       rounded to T — bit for bit bnb's dequantize_4bit, and galvani's CPU dequantize_4bit()
//       (tests/cuda/test_nf4_cuda.cu compares every element).
//
// One thread per packed byte (two elements), grid-stride; the 16-entry code table and the
// 256-entry dynamic map are staged in shared memory (a table indexed by data in a local array
// would spill to local memory). Errors: a block size bitsandbytes does not accept, a host
// pointer, a failed launch — galvani::Error naming the op.
#pragma once
#include <algorithm>

#include "cuda_common.cuh"
#include "nf4_tiling.hpp"

namespace galvani::kernels {

namespace detail {

__global__ void nf4_decode_absmax_kernel(const uint8_t* q, const float* nested_absmax, float offset, int64_t nblocks,
                                         float* out) {
  __shared__ float map8[256];
  for (int i = threadIdx.x; i < 256; i += blockDim.x) map8[i] = quant::dynamic_map_value(i);
  __syncthreads();
  for (int64_t b = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; b < nblocks; b += int64_t(gridDim.x) * blockDim.x)
    out[b] = quant::dequantize_nested_absmax(map8[q[b]], nested_absmax[b / quant::kNestedBlocksize], offset);
}

template <class T>
__global__ void nf4_dequantize_kernel(Nf4Weight w, T* out) {
  __shared__ float lut[16];
  if (threadIdx.x < 16) lut[threadIdx.x] = quant::code4_value(w.quant_type, uint8_t(threadIdx.x));
  __syncthreads();
  const int64_t n = w.rows * w.cols;
  const int64_t bytes = (n + 1) / 2;
  for (int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; j < bytes; j += int64_t(gridDim.x) * blockDim.x) {
    const uint8_t byte = w.packed[j];
    const int64_t i = 2 * j;
    // Elements 2j and 2j+1 share a block: block sizes are even.
    const float scale = w.absmax[block_index(i, w.blocksize)];
    out[i] = from_float<T>(lut[byte >> 4] * scale);
    if (i + 1 < n) out[i + 1] = from_float<T>(lut[byte & 15] * scale);
  }
}

inline int grid_for(int64_t work, int threads) {
  int dev = 0, sms = 1;
  GALVANI_CUDA_CHECK(cudaGetDevice(&dev));
  GALVANI_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  return int(std::max<int64_t>(1, std::min<int64_t>((work + threads - 1) / threads, int64_t(sms) * 8)));
}

inline void check_weight(const Nf4Weight& w, const char* op) {
  GALVANI_CHECK(quant::valid_4bit_blocksize(w.blocksize), op, ": blocksize ", w.blocksize,
                " is not one bitsandbytes accepts (32 … 4096, powers of two)");
  GALVANI_CHECK(w.rows >= 0 && w.cols >= 0, op, ": negative weight shape [", w.rows, ", ", w.cols, "]");
  GALVANI_CHECK(reinterpret_cast<uintptr_t>(w.packed) % 4 == 0, op,
                ": the packed weight must start on a 4-byte boundary (the GEMV reads it in 32-bit words; "
                "cudaMalloc gives 256-byte alignment)");
  check_device_pointer(w.packed, "the packed weight", op);
  check_device_pointer(w.absmax, "absmax", op);
}

// The checks the products (nf4_gemv, nf4_gemm, nf4_linear_input_grad) share.
inline void check_ld(const char* op, const char* what, int64_t ld, int64_t row) {
  GALVANI_CHECK(ld >= row, op, ": the leading dimension of ", what, " (", ld, ") is shorter than its row (", row, ")");
}
inline void check_rows(const char* op, int64_t M) { GALVANI_CHECK(M >= 0, op, ": M = ", M, " rows"); }

}  // namespace detail

// out[b] for b < nblocks, f32 (device pointers). nested_absmax has ceil(nblocks / 256) entries.
inline void nf4_decode_absmax(const uint8_t* q, const float* nested_absmax, float offset, int64_t nblocks, float* out,
                              cudaStream_t stream = nullptr) {
  if (nblocks == 0) return;
  check_device_pointer(q, "the 8-bit absmax codes", "nf4_decode_absmax");
  check_device_pointer(nested_absmax, "nested_absmax", "nf4_decode_absmax");
  check_device_pointer(out, "the output", "nf4_decode_absmax");
  detail::nf4_decode_absmax_kernel<<<detail::grid_for(nblocks, 256), 256, 0, stream>>>(q, nested_absmax, offset,
                                                                                       nblocks, out);
  GALVANI_CUDA_CHECK(cudaGetLastError());
}

// out: T [w.rows · w.cols] on the device.
template <class T>
void nf4_dequantize(const Nf4Weight& w, T* out, cudaStream_t stream = nullptr) {
  detail::check_weight(w, "nf4_dequantize");
  const int64_t bytes = (w.rows * w.cols + 1) / 2;
  if (bytes == 0) return;
  check_device_pointer(out, "the output", "nf4_dequantize");
  detail::nf4_dequantize_kernel<T><<<detail::grid_for(bytes, 256), 256, 0, stream>>>(w, out);
  GALVANI_CUDA_CHECK(cudaGetLastError());
}

}  // namespace galvani::kernels
