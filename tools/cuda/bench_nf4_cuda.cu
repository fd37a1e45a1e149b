// bench_nf4_cuda — galvani's NF4 kernels against cuBLAS and bitsandbytes' path, on one GPU.
//
//   bench_nf4_cuda [--quick] [--json FILE]
//
// For each layer shape of Mistral-7B and SmolLM2-135M (W is N × K, NF4, blocksize 64, bf16
// activations; f16 below sm_80), side by side in one run:
//   copy      a device-to-device copy of 1 GiB: the bandwidth to compare against (bytes read + written)
//   gemv      M = 1: galvani's nf4_gemv · cuBLAS bf16 GEMV on the dense weight · dequantize + cuBLAS
//             (bnb's path); the NF4 GEMV's bandwidth counts the packed weight and absmax bytes it reads
//   gemm      M = 1024: galvani's nf4_gemm (forward) and nf4_linear_input_grad · dequantize + cuBLAS
//             · cuBLAS on the dense bf16 weight (TFLOP/s)
// Each time is the mean of repeated launches after warm-ups (CUDA events). Weights and inputs
// are random bytes: the kernels' speed does not depend on the values. galvani's launchers run
// with their device-pointer checks off (set_pointer_checks, cuda_common.cuh), as cuBLAS has
// none; the first line printed says what the checks cost per GEMV call.
// Goals (issue #12): GEMV >= 85% of copy bandwidth and >= 2.5x cuBLAS bf16 GEMV; GEMM at M = 1024
// faster than dequantize + cuBLAS and >= 70% of dense cuBLAS bf16.
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "nf4_cublas.cuh"
#include "nf4_gemm.cuh"

using namespace galvani;
using namespace galvani::kernels;

namespace {

template <class T>
T* device_alloc(size_t n) {
  T* p = nullptr;
  GALVANI_CUDA_CHECK(cudaMalloc(&p, n * sizeof(T)));
  return p;
}

// Fills n bytes with a xorshift stream on the host, then copies them.
void fill_random(void* dst, size_t bytes, uint64_t seed) {
  std::vector<uint8_t> h(bytes);
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < bytes; ++i) {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    h[i] = uint8_t(s >> 24);
  }
  GALVANI_CUDA_CHECK(cudaMemcpy(dst, h.data(), bytes, cudaMemcpyHostToDevice));
}

template <class T>
void fill_values(T* dst, size_t n, float scale, uint64_t seed) {
  std::vector<T> h(n);
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 7;
  for (size_t i = 0; i < n; ++i) {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    h[i] = from_float<T>(scale * (float((s >> 11) & 0xffff) / 32768.0f - 1.0f));
  }
  GALVANI_CUDA_CHECK(cudaMemcpy(dst, h.data(), n * sizeof(T), cudaMemcpyHostToDevice));
}

// Mean milliseconds per call of f: 3 warm-ups, then enough calls for ~50 ms (at least 5).
double time_ms(const std::function<void()>& f) {
  cudaEvent_t a, b;
  GALVANI_CUDA_CHECK(cudaEventCreate(&a));
  GALVANI_CUDA_CHECK(cudaEventCreate(&b));
  for (int i = 0; i < 3; ++i) f();
  GALVANI_CUDA_CHECK(cudaEventRecord(a));
  f();
  GALVANI_CUDA_CHECK(cudaEventRecord(b));
  GALVANI_CUDA_CHECK(cudaEventSynchronize(b));
  float one = 0;
  GALVANI_CUDA_CHECK(cudaEventElapsedTime(&one, a, b));
  const int reps = std::max(5, std::min(2000, int(50.0 / std::max(one, 1e-3f))));
  GALVANI_CUDA_CHECK(cudaEventRecord(a));
  for (int i = 0; i < reps; ++i) f();
  GALVANI_CUDA_CHECK(cudaEventRecord(b));
  GALVANI_CUDA_CHECK(cudaEventSynchronize(b));
  float total = 0;
  GALVANI_CUDA_CHECK(cudaEventElapsedTime(&total, a, b));
  GALVANI_CUDA_CHECK(cudaEventDestroy(a));
  GALVANI_CUDA_CHECK(cudaEventDestroy(b));
  return double(total) / reps;
}

struct LayerShape {
  const char* model;
  const char* name;
  int64_t N, K;
};

template <class T>
void bench(bool quick, FILE* json) {
  const int64_t kBlock = 64, kM = 1024;
  // The copy bandwidth: 1 GiB device to device, bytes read + written.
  const size_t copy_bytes = size_t(1) << (quick ? 28 : 30);
  uint8_t* src = device_alloc<uint8_t>(copy_bytes);
  uint8_t* dst = device_alloc<uint8_t>(copy_bytes);
  GALVANI_CUDA_CHECK(cudaMemset(src, 1, copy_bytes));
  const double copy_ms = time_ms([&] { GALVANI_CUDA_CHECK(cudaMemcpyAsync(dst, src, copy_bytes, cudaMemcpyDeviceToDevice)); });
  const double copy_gbs = 2.0 * double(copy_bytes) / copy_ms / 1e6;
  cudaFree(src);
  cudaFree(dst);
  cublasHandle_t handle;
  GALVANI_CUBLAS_CHECK(cublasCreate(&handle));
  {  // what the pointer checks cost: the smallest GEMV with and without them
    uint8_t* packed = device_alloc<uint8_t>(192 * 576 / 2);
    float* absmax = device_alloc<float>(192 * 576 / kBlock);
    T* x = device_alloc<T>(576);
    T* y = device_alloc<T>(192);
    const Nf4Weight v{packed, absmax, 192, 576, kBlock, quant::QuantType::nf4};
    GALVANI_CUDA_CHECK(cudaMemset(packed, 0x77, 192 * 576 / 2));
    GALVANI_CUDA_CHECK(cudaMemset(absmax, 0, 192 * 576 / kBlock * sizeof(float)));
    set_pointer_checks(true);
    const double on = time_ms([&] { nf4_gemv(x, 576, 1, v, static_cast<const T*>(nullptr), y, 192); });
    set_pointer_checks(false);
    const double off = time_ms([&] { nf4_gemv(x, 576, 1, v, static_cast<const T*>(nullptr), y, 192); });
    std::printf("pointer checks: GEMV 192 x 576 takes %.2f µs per call with them, %.2f µs without (off below)\n\n",
                on * 1e3, off * 1e3);
    cudaFree(packed), cudaFree(absmax), cudaFree(x), cudaFree(y);
  }
  std::printf("copy bandwidth (read + write): %.0f GB/s; activations %s\n\n", copy_gbs, type_name<T>());
  std::printf("| model | layer | N × K | NF4 GEMV µs | GB/s (%% copy) | cuBLAS %s GEMV µs | × | deq+cuBLAS GEMV µs | "
              "NF4 GEMM ms | deq+cuBLAS ms | dense cuBLAS ms (TFLOP/s) | NF4 / dense | dX NF4 ms | dX deq+cuBLAS ms |\n",
              type_name<T>());
  std::printf("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");

  const LayerShape shapes[] = {
      {"Mistral-7B", "q_proj/o_proj", 4096, 4096}, {"Mistral-7B", "k_proj/v_proj", 1024, 4096},
      {"Mistral-7B", "gate/up_proj", 14336, 4096}, {"Mistral-7B", "down_proj", 4096, 14336},
      {"SmolLM2-135M", "q/o_proj", 576, 576},      {"SmolLM2-135M", "k/v_proj", 192, 576},
      {"SmolLM2-135M", "gate/up_proj", 1536, 576}, {"SmolLM2-135M", "down_proj", 576, 1536},
  };
  for (const LayerShape& s : shapes) {
    if (quick && s.N * s.K > 4096 * 4096) continue;
    const int64_t n = s.N * s.K, nb = n / kBlock;
    uint8_t* packed = device_alloc<uint8_t>(size_t(n / 2));
    float* absmax = device_alloc<float>(size_t(nb));
    fill_random(packed, size_t(n / 2), uint64_t(n));
    fill_values(absmax, size_t(nb), 0.1f, 3);  // values in ±0.1: signs do not matter to the speed
    const Nf4Weight w{packed, absmax, s.N, s.K, kBlock, quant::QuantType::nf4};
    T* dense = device_alloc<T>(size_t(n));
    nf4_dequantize(w, dense);
    T* x = device_alloc<T>(size_t(kM * std::max(s.N, s.K)));
    T* y = device_alloc<T>(size_t(kM * std::max(s.N, s.K)));
    fill_values(x, size_t(kM * std::max(s.N, s.K)), 1.0f, 5);

    const double gemv_ms = time_ms([&] { nf4_gemv(x, s.K, 1, w, static_cast<const T*>(nullptr), y, s.N); });
    const double gemv_dense_ms = time_ms([&] { dense_linear_cublas(handle, x, 1, dense, s.N, s.K, y); });
    const double gemv_bnb_ms = time_ms([&] { nf4_linear_cublas(handle, x, 1, w, dense, y); });
    const double gemv_bytes = double(n) / 2 + double(nb) * 4 + double(s.K + s.N) * sizeof(T);
    const double gemv_gbs = gemv_bytes / gemv_ms / 1e6;
    const double gemm_ms = time_ms([&] { nf4_gemm(x, s.K, kM, w, static_cast<const T*>(nullptr), y, s.N); });
    const double gemm_bnb_ms = time_ms([&] { nf4_linear_cublas(handle, x, kM, w, dense, y); });
    const double gemm_dense_ms = time_ms([&] { dense_linear_cublas(handle, x, kM, dense, s.N, s.K, y); });
    const double dx_ms = time_ms([&] { nf4_linear_input_grad(x, s.N, kM, w, y, s.K); });
    const double dx_bnb_ms = time_ms([&] {
      nf4_dequantize(w, dense);
      dense_linear_input_grad_cublas(handle, x, kM, dense, s.N, s.K, y);
    });
    const double tflops = 2.0 * double(kM) * double(n) / gemm_dense_ms / 1e9;
    std::printf("| %s | %s | %lld × %lld | %.1f | %.0f (%.0f%%) | %.1f | %.2f | %.1f | %.3f | %.3f | %.3f (%.0f) | %.2f | %.3f | %.3f |\n",
                s.model, s.name, (long long)s.N, (long long)s.K, gemv_ms * 1e3, gemv_gbs, 100 * gemv_gbs / copy_gbs,
                gemv_dense_ms * 1e3, gemv_dense_ms / gemv_ms, gemv_bnb_ms * 1e3, gemm_ms, gemm_bnb_ms, gemm_dense_ms,
                tflops, gemm_dense_ms / gemm_ms, dx_ms, dx_bnb_ms);
    if (json)
      std::fprintf(json,
                   "{\"model\": \"%s\", \"layer\": \"%s\", \"N\": %lld, \"K\": %lld, \"dtype\": \"%s\", \"copy_gbs\": %.1f, "
                   "\"gemv_nf4_ms\": %.5f, \"gemv_nf4_gbs\": %.1f, \"gemv_cublas_dense_ms\": %.5f, \"gemv_bnb_path_ms\": %.5f, "
                   "\"gemm_m\": %lld, \"gemm_nf4_ms\": %.5f, \"gemm_bnb_path_ms\": %.5f, \"gemm_cublas_dense_ms\": %.5f, "
                   "\"dense_tflops\": %.1f, \"input_grad_nf4_ms\": %.5f, \"input_grad_bnb_path_ms\": %.5f}\n",
                   s.model, s.name, (long long)s.N, (long long)s.K, type_name<T>(), copy_gbs, gemv_ms, gemv_gbs,
                   gemv_dense_ms, gemv_bnb_ms, (long long)kM, gemm_ms, gemm_bnb_ms, gemm_dense_ms, tflops, dx_ms,
                   dx_bnb_ms);
    cudaFree(packed);
    cudaFree(absmax);
    cudaFree(dense);
    cudaFree(x);
    cudaFree(y);
  }
  cublasDestroy(handle);
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  const char* json_path = nullptr;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") quick = true;
    else if (a == "--json" && i + 1 < argc) json_path = argv[++i];
    else {
      std::printf("Usage: bench_nf4_cuda [--quick] [--json FILE]\n"
                  "  NF4 GEMV/GEMM (galvani) vs cuBLAS and dequantize+cuBLAS on Mistral-7B and SmolLM2 layer shapes.\n"
                  "  --quick      the small shapes only, a 256 MiB copy\n"
                  "  --json FILE  one JSON object per shape\n");
      return a == "--help" || a == "-h" ? 0 : 2;
    }
  }
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    std::printf("skipped: no CUDA device\n");
    return 77;
  }
  try {
    cudaDeviceProp prop{};
    GALVANI_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    std::printf("device: %s (sm_%d%d, %d SMs)\n", prop.name, prop.major, prop.minor, prop.multiProcessorCount);
    FILE* json = json_path ? std::fopen(json_path, "w") : nullptr;
    GALVANI_CHECK(json_path == nullptr || json != nullptr, "bench_nf4_cuda: cannot write ", json_path);
    if (device_capability() >= 80) bench<__nv_bfloat16>(quick, json);
    else bench<__half>(quick, json);
    if (json) std::fclose(json);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_nf4_cuda: %s\n", e.what());
    return 1;
  }
  return 0;
}
