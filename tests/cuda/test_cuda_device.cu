// Compile check for the CUDA toolchain, and a run-time probe of the device.
// Without a GPU it prints "skipped: no CUDA device" and exits 77 (CTest: skipped).
#include <cstdio>
#include <cuda_runtime.h>

__global__ void add_one(float* x, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) x[i] += 1.0f;
}

int main() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    std::printf("skipped: no CUDA device\n");
    return 77;
  }
  const int n = 1000;
  float* d = nullptr;
  cudaMalloc(&d, n * sizeof(float));
  cudaMemset(d, 0, n * sizeof(float));
  add_one<<<(n + 255) / 256, 256>>>(d, n);
  float h[n];
  cudaMemcpy(h, d, sizeof h, cudaMemcpyDeviceToHost);
  cudaFree(d);
  for (int i = 0; i < n; ++i)
    if (h[i] != 1.0f) { std::printf("FAILED at %d: %f\n", i, h[i]); return 1; }
  std::printf("ok: %d CUDA device(s)\n", count);
  return 0;
}
