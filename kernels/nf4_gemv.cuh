// kernels/nf4_gemv.cuh — y = x · Ŵᵀ (+ b) for a few input rows (decoding), reading W in 4 bits.
//
//   x (M, K) row-major, leading dimension ldx, T ∈ {float, bf16, f16}; M <= 8 in one pass
//   W (N, K) as bitsandbytes stores it (Nf4Weight: packed nibbles, f32 absmax per block)
//   y (M, N) row-major, leading dimension ldy, T; accumulated in float32
//
// Batch-1 decoding is bound by reading W: K/2 bytes per output row, once, for all M inputs.
// One warp per output row; each lane takes 4-byte words of the row (8 codes), decodes them
// through a 16-entry table in shared memory and scales by the word's block absmax
// (nf4_tiling.hpp: nf4_gemv_lane, which the CPU tests also run); the warp's partial sums meet
// through shuffles. This is bnb's gemv_4bit (kgemm_4bit_inference_naive) in purpose; the same
// product to rounding: the weights are bnb's values exactly, only the order of the sum differs.
// Errors: a shape or block size that does not fit, a host pointer, a failed launch.
#pragma once
#include "cuda_common.cuh"
#include "nf4_dequantize.cuh"
#include "nf4_tiling.hpp"

namespace galvani::kernels {

inline constexpr int kGemvWarps = 4;  // output rows per block
inline constexpr int kGemvMaxRows = 8;

namespace detail {

template <class T, int MR>
__global__ void __launch_bounds__(kGemvWarps * 32)
    nf4_gemv_kernel(const T* __restrict__ x, int64_t ldx, int64_t M, Nf4Weight w, const T* __restrict__ bias,
                    T* __restrict__ y, int64_t ldy) {
  __shared__ float lut[16];
  if (threadIdx.x < 16) lut[threadIdx.x] = quant::code4_value(w.quant_type, uint8_t(threadIdx.x));
  __syncthreads();
  const int lane = threadIdx.x % 32;
  const int64_t n = blockIdx.x * int64_t(kGemvWarps) + threadIdx.x / 32;
  const int64_t m0 = blockIdx.y * int64_t(MR);
  if (n >= w.rows) return;  // after the barrier: whole warps leave together
  const int mrows = int(M - m0 < MR ? M - m0 : MR);
  float acc[MR] = {};
  const T* xb = x + m0 * ldx;
  nf4_gemv_lane<MR>(lane, 32, w, lut, n, mrows, [&](int m, int64_t k) { return to_float(xb[m * ldx + k]); }, acc);
#pragma unroll
  for (int m = 0; m < MR; ++m) {
    float v = acc[m];
    for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
    if (lane == 0 && m < mrows) {
      if (bias != nullptr) v += to_float(bias[n]);
      y[(m0 + m) * ldy + n] = from_float<T>(v);
    }
  }
}

template <class T, int MR>
void launch_gemv(const T* x, int64_t ldx, int64_t M, const Nf4Weight& w, const T* bias, T* y, int64_t ldy,
                 cudaStream_t stream) {
  GALVANI_CHECK((M + MR - 1) / MR <= 65535, "nf4_gemv: ", M, " rows is more than one launch covers (",
                65535 * int64_t(MR), "); use nf4_gemm");
  const dim3 grid(unsigned((w.rows + kGemvWarps - 1) / kGemvWarps), unsigned((M + MR - 1) / MR));
  nf4_gemv_kernel<T, MR><<<grid, kGemvWarps * 32, 0, stream>>>(x, ldx, M, w, bias, y, ldy);
  GALVANI_CUDA_CHECK(cudaGetLastError());
}

}  // namespace detail

// y[m, n] = Σ_k x[m, k] · Ŵ(n, k) + bias[n]; bias may be null. M up to 524,280 (in passes of up
// to 8 rows, each pass reading W once); meant for M <= 8 — nf4_linear (nf4_gemm.cuh) picks the
// GEMM above. Errors: a leading dimension shorter than its row, M < 0 or too large, a bad weight
// (check_weight), a host pointer, a failed launch.
template <class T>
void nf4_gemv(const T* x, int64_t ldx, int64_t M, const Nf4Weight& w, const T* bias, T* y, int64_t ldy,
              cudaStream_t stream = nullptr) {
  detail::check_weight(w, "nf4_gemv");
  detail::check_ld("nf4_gemv", "x", ldx, w.cols);
  detail::check_ld("nf4_gemv", "y", ldy, w.rows);
  detail::check_rows("nf4_gemv", M);
  if (M == 0 || w.rows == 0) return;
  check_device_pointer(x, "x", "nf4_gemv");
  check_device_pointer(y, "y", "nf4_gemv");
  check_device_pointer(bias, "bias", "nf4_gemv");
  if (M == 1) detail::launch_gemv<T, 1>(x, ldx, M, w, bias, y, ldy, stream);
  else if (M == 2) detail::launch_gemv<T, 2>(x, ldx, M, w, bias, y, ldy, stream);
  else if (M <= 4) detail::launch_gemv<T, 4>(x, ldx, M, w, bias, y, ldy, stream);
  else detail::launch_gemv<T, kGemvMaxRows>(x, ldx, M, w, bias, y, ldy, stream);
}

}  // namespace galvani::kernels
