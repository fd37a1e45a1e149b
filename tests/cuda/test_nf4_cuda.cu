// The CUDA NF4 kernels (kernels/nf4_*.cuh) against the CPU reference, where a GPU is present.
//
//   nf4_decode_absmax   bit for bit the CPU's un-nesting (dequantize_nested_absmax)
//   nf4_dequantize      bit for bit the CPU's value(code) · absmax, rounded to f32/bf16/f16
//   nf4_gemv, nf4_gemm, nf4_linear_input_grad
//                       within a stated tolerance of a float64 sum over the same weights
//   nf4_linear_cublas   (dequantize, then cuBLAS: bitsandbytes' path) agrees with nf4_gemm
//   errors              a host pointer, a bad block size, bf16 below sm_80 → galvani::Error
//
// Weights are quantized on the host by galvani's own CPU quantizer (quant/quantize_4bit_array.hpp,
// the code tests/test_quant_nf4.cpp holds to bitsandbytes' bytes), double quantization with the
// CUDA rounding rule. Shapes include K and N that are not multiples of the tiles (64, 32), K not
// a multiple of 8 (the GEMV's element-by-element path), blocks that straddle rows, and a block
// size larger than the whole weight. Without a GPU: "skipped: no CUDA device", exit 77.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <galvani/quant/quantize_4bit_array.hpp>

#include "cuda_test_support.cuh"
#include "nf4_cublas.cuh"
#include "nf4_gemm.cuh"

using namespace galvani;
using namespace galvani::kernels;
using cuda_test::Checks;
using cuda_test::DeviceBuffer;
using quant::QuantType;

namespace {

struct HostWeight {
  int64_t N = 0, K = 0, blocksize = 64;
  QuantType qt = QuantType::nf4;
  bool nested = false;
  std::vector<uint8_t> packed;
  std::vector<float> absmax;          // f32, as the kernels read it (un-nested on the host when nested)
  std::vector<uint8_t> absmax_codes;  // nested: the 8-bit codes
  std::vector<float> nested_absmax;
  float offset = 0.0f;
  std::vector<float> dense;  // Ŵ (N, K), f32: value(code) · absmax
};

HostWeight make_weight(int64_t N, int64_t K, int64_t bs, QuantType qt, bool nested, uint32_t seed) {
  HostWeight h;
  h.N = N, h.K = K, h.blocksize = bs, h.qt = qt, h.nested = nested;
  const int64_t n = N * K;
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.05f);
  std::vector<float> W(static_cast<size_t>(n));
  for (float& v : W) v = normal(rng);
  if (n >= bs && n > 3) {  // a value exactly on an NF4 midpoint: block 0 scaled by 1 / 1.0
    W[0] = 1.0f;
    W[1] = quant::code4_midpoint(qt, 7);
    W[2] = quant::code4_midpoint(qt, 3);
  }
  if (n > 3 * bs)  // an all-zero block
    for (int64_t i = bs; i < 2 * bs; ++i) W[size_t(i)] = 0.0f;
  h.packed.assign(size_t((n + 1) / 2), 0);
  h.absmax.assign(size_t(quant::num_blocks(n, bs)), 0.0f);
  quant::quantize_4bit_array(W.data(), n, bs, qt, h.packed.data(), h.absmax.data());
  if (nested) {
    quant::NestedAbsmax q = quant::double_quantize_absmax(h.absmax.data(), int64_t(h.absmax.size()), quant::Round8::cuda);
    h.absmax_codes = q.codes;
    h.nested_absmax = q.nested_absmax;
    h.offset = q.offset;
    for (size_t b = 0; b < h.absmax.size(); ++b)
      h.absmax[b] = quant::dequantize_nested_absmax(quant::dynamic_map_value(h.absmax_codes[b]),
                                                    h.nested_absmax[b / quant::kNestedBlocksize], h.offset);
  }
  h.dense.resize(size_t(n));
  for (int64_t i = 0; i < n; ++i)
    h.dense[size_t(i)] = quant::dequantize_code4(qt, quant::nibble_at(h.packed.data(), i), h.absmax[size_t(i / bs)]);
  return h;
}

struct DeviceWeight {
  DeviceBuffer<uint8_t> packed;
  DeviceBuffer<float> absmax;
  Nf4Weight view;
  explicit DeviceWeight(const HostWeight& h) : packed(h.packed), absmax(h.absmax.size()) {
    if (h.nested) {
      DeviceBuffer<uint8_t> codes(h.absmax_codes);
      DeviceBuffer<float> nested(h.nested_absmax);
      nf4_decode_absmax(codes.get(), nested.get(), h.offset, int64_t(h.absmax.size()), absmax.get());
      GALVANI_CUDA_CHECK(cudaDeviceSynchronize());
    } else {
      absmax.upload(h.absmax);
    }
    view = Nf4Weight{packed.get(), absmax.get(), h.N, h.K, h.blocksize, h.qt};
  }
};

std::string label(const HostWeight& h) {
  return "[" + std::to_string(h.N) + ", " + std::to_string(h.K) + "] bs " + std::to_string(h.blocksize) + " " +
         (h.qt == QuantType::nf4 ? "nf4" : "fp4") + (h.nested ? " nested" : "");
}

template <class T>
std::vector<T> random_input(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<T> v(static_cast<size_t>(n));
  for (T& x : v) x = from_float<T>(normal(rng));
  return v;
}

// Machine epsilon of T's output rounding (half an ulp at 1).
template <class T>
double out_eps() {
  if constexpr (std::is_same_v<T, float>) return 0x1p-24;
  else if constexpr (std::is_same_v<T, __nv_bfloat16>) return 0x1p-8;
  else return 0x1p-11;
}

// |got − ref| <= eps_T·|ref| + 1e-5·Σ|terms| (f32 accumulation of up to 4,096-term sums, in any
// order) — per element; prints the first few failures.
template <class T>
bool close_to(const std::vector<T>& got, const std::vector<double>& ref, const std::vector<double>& mag,
              const std::string& what) {
  int bad = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double g = to_float(got[i]);
    const double tol = out_eps<T>() * std::fabs(ref[i]) + 1e-5 * mag[i] + 1e-30;
    if (!(std::fabs(g - ref[i]) <= tol) && bad++ < 3)
      std::printf("  %s: element %zu is %.9g, reference %.9g (tolerance %.3g)\n", what.c_str(), i, g, ref[i], tol);
  }
  return bad == 0;
}

void test_decode_and_dequantize(Checks& checks, const HostWeight& h) {
  DeviceWeight d(h);
  const std::vector<float> am = d.absmax.download();
  bool same = true;
  for (size_t b = 0; b < am.size(); ++b) same &= std::memcmp(&am[b], &h.absmax[b], 4) == 0;
  checks.expect(same, ("nf4_decode_absmax bit-exact " + label(h)).c_str());

  auto check_dtype = [&]<class T>(T*) {
    DeviceBuffer<T> out(h.dense.size());
    nf4_dequantize(d.view, out.get());
    const std::vector<T> got = out.download();
    bool exact = true;
    for (size_t i = 0; i < got.size(); ++i) {
      const T want = from_float<T>(h.dense[i]);
      exact &= std::memcmp(&got[i], &want, sizeof(T)) == 0;
    }
    checks.expect(exact, ("nf4_dequantize<" + std::string(type_name<T>()) + "> bit-exact " + label(h)).c_str());
  };
  check_dtype(static_cast<float*>(nullptr));
  check_dtype(static_cast<__half*>(nullptr));
  if (device_capability() >= 80) check_dtype(static_cast<__nv_bfloat16*>(nullptr));
}

// y = x · Ŵᵀ + b by nf4_gemv (M <= 8) or nf4_gemm, against a float64 sum. The GEMV multiplies
// by Ŵ in f32; the tensor-core GEMM by Ŵ rounded to T (as bnb's dequantize-then-cuBLAS does).
template <class T>
void test_forward(Checks& checks, const HostWeight& h, const DeviceWeight& d, int64_t M, bool gemm) {
  const int64_t N = h.N, K = h.K;
  const std::vector<T> x = random_input<T>(M * K, uint32_t(M * 7 + K));
  const std::vector<T> bias = random_input<T>(N, uint32_t(N + 3));
  DeviceBuffer<T> d_x(x), d_bias(bias), d_y(size_t(M * N));
  if (gemm) nf4_gemm(d_x.get(), K, M, d.view, d_bias.get(), d_y.get(), N);
  else nf4_gemv(d_x.get(), K, M, d.view, d_bias.get(), d_y.get(), N);
  GALVANI_CUDA_CHECK(cudaDeviceSynchronize());
  const bool rounded_w = gemm && !std::is_same_v<T, float>;
  std::vector<double> ref(size_t(M * N)), mag(size_t(M * N));
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double s = to_float(bias[size_t(n)]), a = std::fabs(s);
      for (int64_t k = 0; k < K; ++k) {
        const float w = h.dense[size_t(n * K + k)];
        const double t = double(to_float(x[size_t(m * K + k)])) * (rounded_w ? to_float(from_float<T>(w)) : w);
        s += t, a += std::fabs(t);
      }
      ref[size_t(m * N + n)] = s, mag[size_t(m * N + n)] = a;
    }
  const std::string what = std::string(gemm ? "nf4_gemm<" : "nf4_gemv<") + type_name<T>() + "> M=" +
                           std::to_string(M) + " " + label(h);
  checks.expect(close_to(d_y.download(), ref, mag, what), what.c_str());
}

// dx = dy · Ŵ by nf4_linear_input_grad, against a float64 sum.
template <class T>
void test_input_grad(Checks& checks, const HostWeight& h, const DeviceWeight& d, int64_t M) {
  const int64_t N = h.N, K = h.K;
  const std::vector<T> g = random_input<T>(M * N, uint32_t(M * 5 + N));
  DeviceBuffer<T> d_dy(g), d_dx(size_t(M * K));
  nf4_linear_input_grad(d_dy.get(), N, M, d.view, d_dx.get(), K);
  GALVANI_CUDA_CHECK(cudaDeviceSynchronize());
  const bool rounded_w = !std::is_same_v<T, float>;
  std::vector<double> ref(size_t(M * K), 0.0), mag(size_t(M * K), 0.0);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      const double gv = to_float(g[size_t(m * N + n)]);
      for (int64_t k = 0; k < K; ++k) {
        const float w = h.dense[size_t(n * K + k)];
        const double t = gv * (rounded_w ? to_float(from_float<T>(w)) : w);
        ref[size_t(m * K + k)] += t, mag[size_t(m * K + k)] += std::fabs(t);
      }
    }
  const std::string what = std::string("nf4_linear_input_grad<") + type_name<T>() + "> M=" + std::to_string(M) + " " + label(h);
  checks.expect(close_to(d_dx.download(), ref, mag, what), what.c_str());
}

// bitsandbytes' path (dequantize in full, cuBLAS) and the fused GEMM give the same product.
template <class T>
void test_cublas_agrees(Checks& checks, cublasHandle_t handle, const HostWeight& h, const DeviceWeight& d, int64_t M) {
  const int64_t N = h.N, K = h.K;
  const std::vector<T> x = random_input<T>(M * K, 99);
  DeviceBuffer<T> d_x(x), scratch(size_t(N * K)), y_fused(size_t(M * N)), y_ref(size_t(M * N));
  nf4_gemm(d_x.get(), K, M, d.view, static_cast<const T*>(nullptr), y_fused.get(), N);
  nf4_linear_cublas(handle, d_x.get(), M, d.view, scratch.get(), y_ref.get());
  GALVANI_CUDA_CHECK(cudaDeviceSynchronize());
  const std::vector<T> a = y_fused.download(), b = y_ref.download();
  // Both sum the same rounded products in f32, in different orders, and each rounds once to T:
  // |a − b| <= 2·eps_T·|b| + 1e-5·Σ|x·w|.
  std::vector<double> ref(a.size()), mag(a.size());
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double s = 0;
      for (int64_t k = 0; k < K; ++k)
        s += std::fabs(double(to_float(x[size_t(m * K + k)])) * h.dense[size_t(n * K + k)]);
      const size_t i = size_t(m * N + n);
      ref[i] = to_float(b[i]);
      mag[i] = s + out_eps<T>() * std::fabs(ref[i]) / 1e-5;  // the second rounding, in close_to's units
    }
  const std::string what = std::string("nf4_gemm<") + type_name<T>() + "> equals dequantize + cuBLAS, M=" +
                           std::to_string(M) + " " + label(h);
  checks.expect(close_to(a, ref, mag, what), what.c_str());
}

void test_errors(Checks& checks) {
  const HostWeight h = make_weight(8, 64, 64, QuantType::nf4, false, 1);
  DeviceWeight d(h);
  std::vector<float> host_x(64), host_y(8);
  DeviceBuffer<float> d_y(8);
  auto throws = [](auto&& f, const char* needle) {
    try {
      f();
    } catch (const Error& e) {
      if (std::string(e.what()).find(needle) != std::string::npos) return true;
      std::printf("  error text: %s\n", e.what());
      return false;
    }
    return false;
  };
  checks.expect(throws([&] { nf4_gemv(host_x.data(), 64, 1, d.view, static_cast<const float*>(nullptr), d_y.get(), 8); },
                       "x is not device memory"),
                "a host pointer is refused with an error naming it");
  Nf4Weight bad = d.view;
  bad.blocksize = 48;
  checks.expect(throws([&] { nf4_dequantize(bad, d_y.get()); }, "blocksize 48"), "a bad block size is refused");
  Nf4Weight misaligned = d.view;
  misaligned.packed += 1;
  checks.expect(throws([&] { nf4_dequantize(misaligned, d_y.get()); }, "4-byte boundary"),
                "a packed weight off a 4-byte boundary is refused");
  checks.expect(throws([&] { nf4_gemm(host_x.data(), 32, 16, d.view, static_cast<const float*>(nullptr), d_y.get(), 8); },
                       "leading dimension of x"),
                "a leading dimension shorter than a row is refused");
  if (device_capability() < 80) {
    DeviceBuffer<__nv_bfloat16> bx(16 * 64), by(16 * 8);
    checks.expect(throws([&] {
                    nf4_gemm(bx.get(), 64, 16, d.view, static_cast<const __nv_bfloat16*>(nullptr), by.get(), 8);
                  },
                         "compute capability 8.0"),
                  "bf16 below sm_80 is refused");
  }
}

}  // namespace

// --quick: the small shapes only (for runs under compute-sanitizer, which is 10–100× slower).
int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::string(argv[1]) == "--quick";
  if (!cuda_test::have_device()) return cuda_test::kSkip;
  Checks checks;
  try {
    cublasHandle_t handle;
    GALVANI_CUBLAS_CHECK(cublasCreate(&handle));
    // Sums in f32 all the way (no reduced-precision split-K), as the tolerances assume.
    GALVANI_CUBLAS_CHECK(cublasSetMathMode(handle, cublasMath_t(CUBLAS_DEFAULT_MATH |
                                                                 CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION)));
    const bool bf16 = device_capability() >= 80;
    struct Case {
      int64_t N, K, bs;
      QuantType qt;
      bool nested;
    };
    const Case cases[] = {
        {1, 64, 64, QuantType::nf4, false},     {5, 100, 64, QuantType::nf4, true},   // K % 8 != 0, blocks straddle rows
        {37, 96, 128, QuantType::fp4, false},   {130, 200, 64, QuantType::nf4, true},  // N, K off the tiles
        {96, 72, 32, QuantType::nf4, true},     {300, 1000, 4096, QuantType::nf4, true},  // one block spans many rows
        {64, 4096, 64, QuantType::nf4, true},   {1027, 576, 64, QuantType::nf4, true},    // > 256 blocks: two nested blocks
        {7, 33, 32, QuantType::nf4, true},      {3, 9, 32, QuantType::fp4, false},        // odd K: rows start mid-byte, odd N·K
    };
    for (const Case& c : cases) {
      if (quick && c.N * c.K > 40000) continue;
      const HostWeight h = make_weight(c.N, c.K, c.bs, c.qt, c.nested, uint32_t(c.N * 31 + c.K));
      test_decode_and_dequantize(checks, h);
      DeviceWeight d(h);
      for (int64_t M : {1, 2, 3, 5, 8}) {
        test_forward<float>(checks, h, d, M, false);
        test_forward<__half>(checks, h, d, M, false);
        if (bf16) test_forward<__nv_bfloat16>(checks, h, d, M, false);
      }
      for (int64_t M : {1, 17, 64, 130}) {
        test_forward<float>(checks, h, d, M, true);
        test_forward<__half>(checks, h, d, M, true);
        test_input_grad<float>(checks, h, d, M);
        test_input_grad<__half>(checks, h, d, M);
        if (bf16) {
          test_forward<__nv_bfloat16>(checks, h, d, M, true);
          test_input_grad<__nv_bfloat16>(checks, h, d, M);
        }
      }
      test_cublas_agrees<float>(checks, handle, h, d, 70);
      test_cublas_agrees<__half>(checks, handle, h, d, 70);
      if (bf16) test_cublas_agrees<__nv_bfloat16>(checks, handle, h, d, 70);
    }
    test_errors(checks);
    cublasDestroy(handle);
  } catch (const std::exception& e) {
    std::printf("FAILED: %s\n", e.what());
    return 1;
  }
  return checks.exit_status();
}
