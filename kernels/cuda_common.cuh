// kernels/cuda_common.cuh — what every galvani CUDA kernel file shares: error checks that throw
// galvani::Error, the element types (float, __nv_bfloat16, __half) and their conversions, and
// the device's compute capability.
//
// Errors: every CUDA runtime and cuBLAS call goes through GALVANI_CUDA_CHECK / GALVANI_CUBLAS_CHECK,
// which throw galvani::Error naming the call, the error string, and the file and line — never
// an abort, never an ignored status.
#pragma once
#include <array>
#include <atomic>
#include <cstdint>
#include <string>

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <galvani/core/error.hpp>

#define GALVANI_CUDA_CHECK(call)                                                                              \
  do {                                                                                                        \
    const cudaError_t galvani_status_ = (call);                                                               \
    if (galvani_status_ != cudaSuccess)                                                                       \
      throw ::galvani::Error(::galvani::detail::cat(#call, " failed: ", cudaGetErrorName(galvani_status_), " (", \
                                                    cudaGetErrorString(galvani_status_), ") at ", __FILE__, ":", \
                                                    __LINE__));                                               \
  } while (0)

#define GALVANI_CUBLAS_CHECK(call)                                                                           \
  do {                                                                                                       \
    const cublasStatus_t galvani_status_ = (call);                                                           \
    if (galvani_status_ != CUBLAS_STATUS_SUCCESS)                                                            \
      throw ::galvani::Error(::galvani::detail::cat(#call, " failed: ", cublasGetStatusName(galvani_status_), \
                                                    " at ", __FILE__, ":", __LINE__));                       \
  } while (0)

namespace galvani::kernels {

// Element types: float, __nv_bfloat16 (bf16) and __half (f16), converted through float with
// round-to-nearest-even, as torch's .to(dtype) does.
template <class T>
__host__ __device__ inline float to_float(T v);
template <>
__host__ __device__ inline float to_float<float>(float v) { return v; }
template <>
__host__ __device__ inline float to_float<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }
template <>
__host__ __device__ inline float to_float<__half>(__half v) { return __half2float(v); }

template <class T>
__host__ __device__ inline T from_float(float v);
template <>
__host__ __device__ inline float from_float<float>(float v) { return v; }
template <>
__host__ __device__ inline __nv_bfloat16 from_float<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }
template <>
__host__ __device__ inline __half from_float<__half>(float v) { return __float2half_rn(v); }

template <class T>
inline const char* type_name();
template <>
inline const char* type_name<float>() { return "f32"; }
template <>
inline const char* type_name<__nv_bfloat16>() { return "bf16"; }
template <>
inline const char* type_name<__half>() { return "f16"; }

// The current device's compute capability as major·10 + minor (75 for a T4, 90 for an H100),
// asked of the driver once per device.
inline int device_capability() {
  int dev = 0;
  GALVANI_CUDA_CHECK(cudaGetDevice(&dev));
  static std::array<std::atomic<int>, 64> known{};  // 0: not asked yet
  if (dev >= 0 && dev < 64 && known[size_t(dev)].load(std::memory_order_relaxed) != 0)
    return known[size_t(dev)].load(std::memory_order_relaxed);
  int major = 0, minor = 0;
  GALVANI_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
  GALVANI_CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev));
  if (dev >= 0 && dev < 64) known[size_t(dev)].store(major * 10 + minor, std::memory_order_relaxed);
  return major * 10 + minor;
}

// Whether launchers check that the pointers they are given are device memory. A host pointer
// handed to a kernel faults asynchronously, far from its cause, and leaves the context unusable;
// the check turns that into a galvani::Error naming the argument. It costs one driver call
// (cudaPointerGetAttributes, about a microsecond) per pointer per launch, which matters only
// for launches of a few microseconds: set_pointer_checks(false) removes it (bench_nf4_cuda
// does, and says so). On by default.
inline std::atomic<bool>& pointer_checks_flag() {
  static std::atomic<bool> on{true};
  return on;
}
inline void set_pointer_checks(bool on) { pointer_checks_flag().store(on); }

inline void check_device_pointer(const void* p, const char* what, const char* op) {
  if (p == nullptr || !pointer_checks_flag().load(std::memory_order_relaxed)) return;
  cudaPointerAttributes attr{};
  GALVANI_CUDA_CHECK(cudaPointerGetAttributes(&attr, p));
  GALVANI_CHECK(attr.type == cudaMemoryTypeDevice || attr.type == cudaMemoryTypeManaged, op, ": ", what,
                " is not device memory (a host pointer was passed; copy it with cudaMemcpy first)");
}

}  // namespace galvani::kernels
