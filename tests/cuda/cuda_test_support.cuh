// tests/cuda/cuda_test_support.cuh — the little the CUDA tests share: a device buffer, the skip
// rule, and a check that counts failures. (The CUDA tests are plain programs, not Catch2: they
// are built by nvcc on the GPU machine too, where only the CUDA toolkit is installed.)
#pragma once
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "cuda_common.cuh"

namespace galvani::cuda_test {

// Exit status CTest reads as "skipped" (SKIP_RETURN_CODE 77 in tests/CMakeLists.txt).
inline constexpr int kSkip = 77;

// True when a CUDA device is usable; otherwise prints the skip line.
inline bool have_device() {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0) {
    std::printf("skipped: no CUDA device (%s)\n", e != cudaSuccess ? cudaGetErrorString(e) : "none found");
    return false;
  }
  cudaDeviceProp prop{};
  GALVANI_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  std::printf("device: %s, compute capability %d.%d, %d SMs\n", prop.name, prop.major, prop.minor,
              prop.multiProcessorCount);
  return true;
}

template <class T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t n) : n_(n) {
    if (n) GALVANI_CUDA_CHECK(cudaMalloc(&p_, n * sizeof(T)));
  }
  explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size()) { upload(host); }
  ~DeviceBuffer() { cudaFree(p_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  void upload(const std::vector<T>& host) {
    if (n_) GALVANI_CUDA_CHECK(cudaMemcpy(p_, host.data(), n_ * sizeof(T), cudaMemcpyHostToDevice));
  }
  std::vector<T> download() const {
    std::vector<T> host(n_);
    if (n_) GALVANI_CUDA_CHECK(cudaMemcpy(host.data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost));
    return host;
  }
  T* get() const { return p_; }
  size_t size() const { return n_; }

 private:
  T* p_ = nullptr;
  size_t n_ = 0;
};

// Failures are counted, printed with their context, and decide the exit status.
struct Checks {
  int failures = 0;
  int passed = 0;
  void expect(bool ok, const char* what) {
    if (ok) ++passed;
    else {
      ++failures;
      std::printf("FAILED: %s\n", what);
    }
  }
  int exit_status() const {
    std::printf("%s: %d checks passed, %d failed\n", failures ? "FAILED" : "ok", passed, failures);
    return failures ? 1 : 0;
  }
};

}  // namespace galvani::cuda_test
