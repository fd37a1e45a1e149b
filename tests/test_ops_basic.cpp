// Gradient checks (f64, finite differences) and forward values for the basic ops:
// broadcasting arithmetic, exp/log/pow/sqrt, sum/mean, matmul and both Linear layouts.
#include <catch2/catch.hpp>

#include "support/cpu_levels.hpp"
#include "support/gradcheck.hpp"

using namespace galvani;
using namespace galvani::testing;


TEST_CASE("broadcasting arithmetic: gradient check", "[ops][grad]") {
  using V = std::vector<Tensor>;
  CHECK_GRAD([](const V& v) { return v[0] + v[1]; }, randn64({3, 4}, 1), randn64({4}, 2));
  CHECK_GRAD([](const V& v) { return v[0] - v[1]; }, randn64({2, 1, 4}, 3), randn64({3, 1}, 4));
  CHECK_GRAD([](const V& v) { return v[0] * v[1]; }, randn64({2, 3, 4}, 5), randn64({1, 3, 1}, 6));
  CHECK_GRAD([](const V& v) { return v[0] / (exp(v[1]) + 0.5); }, randn64({3, 4}, 7), randn64({3, 1}, 8));
  CHECK_GRAD([](const V& v) { return -v[0] * 3.0 + 1.0; }, randn64({5}, 9));
  CHECK_GRAD([](const V& v) { return v[0] / 4.0 - 2.0; }, randn64({5}, 9));
}

TEST_CASE("exp, log, pow, sqrt: gradient check", "[ops][grad]") {
  using V = std::vector<Tensor>;
  CHECK_GRAD([](const V& v) { return exp(v[0]); }, randn64({3, 4}, 10));
  CHECK_GRAD([](const V& v) { return log(exp(v[0]) + 1.0); }, randn64({3, 4}, 11));
  CHECK_GRAD([](const V& v) { return pow(exp(v[0]), 2.5); }, randn64({6}, 12));
  CHECK_GRAD([](const V& v) { return pow(v[0], 3.0); }, randn64({6}, 12));
  CHECK_GRAD([](const V& v) { return sqrt(exp(v[0]) + 0.1); }, randn64({6}, 13));
}

TEST_CASE("sum and mean over dims: gradient check and values", "[ops][grad]") {
  using V = std::vector<Tensor>;
  CHECK_GRAD([](const V& v) { return sum(v[0]); }, randn64({3, 4, 5}, 14));
  CHECK_GRAD([](const V& v) { return sum(v[0], {1}); }, randn64({3, 4, 5}, 15));
  CHECK_GRAD([](const V& v) { return sum(v[0], {0, 2}, true); }, randn64({3, 4, 5}, 16));
  CHECK_GRAD([](const V& v) { return mean(v[0], {-1}); }, randn64({3, 4, 5}, 17));
  CHECK_GRAD([](const V& v) { return mean(v[0].transpose(0, 2), {0}); }, randn64({3, 4, 5}, 18));
  Tensor a = Tensor::arange(24, DType::f64).view({2, 3, 4});
  CHECK(sum(a).item() == 276.0);
  CHECK(sum(a, {0}).to_vector<double>()[0] == 12.0);
  CHECK(sum(a, {2}).to_vector<double>() == std::vector<double>{6, 22, 38, 54, 70, 86});
  CHECK(sum(a, {1}, true).shape() == Shape{2, 1, 4});
  CHECK(mean(a, {0, 1}).to_vector<double>() == std::vector<double>{10, 11, 12, 13});
  CHECK_THROWS_WITH(sum(a, {3}), Catch::Contains("out of range"));
}

TEST_CASE("matmul 2-D to 4-D with broadcast batches: values and gradients", "[ops][grad][matmul]") {
  using V = std::vector<Tensor>;
  CHECK_GRAD([](const V& v) { return matmul(v[0], v[1]); }, randn64({3, 5}, 20), randn64({5, 2}, 21));
  CHECK_GRAD([](const V& v) { return matmul(v[0], v[1]); }, randn64({2, 3, 5}, 22), randn64({5, 4}, 23));
  CHECK_GRAD([](const V& v) { return matmul(v[0], v[1].transpose(-1, -2)); }, randn64({2, 2, 3, 4}, 24),
             randn64({2, 1, 5, 4}, 25));
  CHECK_GRAD([](const V& v) { return matmul(v[0].transpose(0, 1), v[1]); }, randn64({4, 3}, 26), randn64({4, 2}, 27));
  // Values against a naive triple loop, at sizes that cross every block edge of the GEMM.
  for (auto [M, N, K] : {std::tuple{1, 1, 1}, {7, 17, 3}, {73, 33, 300}, {130, 4100, 5}}) {
    Generator g(uint64_t(M * N + K));
    Tensor a = rand_normal({M, K}, 0, 1, g), b = rand_normal({K, N}, 0, 1, g);
    auto va = a.to_vector<float>(), vb = b.to_vector<float>(), vc = matmul(a, b).to_vector<float>();
    double worst = 0;
    for (int i = 0; i < M; ++i)
      for (int j = 0; j < N; ++j) {
        double ref = 0;
        for (int k = 0; k < K; ++k) ref += double(va[size_t(i * K + k)]) * vb[size_t(k * N + j)];
        worst = std::max(worst, std::abs(ref - vc[size_t(i * N + j)]));
      }
    INFO("M=" << M << " N=" << N << " K=" << K);
    CHECK(worst < 1e-3);
  }
  CHECK_THROWS_WITH(matmul(Tensor::zeros({2, 3}), Tensor::zeros({4, 2})),
                    Catch::Contains("[2, 3]") && Catch::Contains("[4, 2]") && Catch::Contains("cannot be multiplied"));
  CHECK_THROWS_WITH(matmul(Tensor::zeros({2, 3}), Tensor::zeros({3, 2}, DType::f64)), Catch::Contains("dtypes differ"));
  CHECK_THROWS_WITH(matmul(Tensor::zeros({3}), Tensor::zeros({3, 2})), Catch::Contains("2-D to 4-D"));
}

TEST_CASE("linear and conv1d_linear: gradient check and layouts agree", "[ops][grad][linear]") {
  using V = std::vector<Tensor>;
  CHECK_GRAD([](const V& v) { return linear(v[0], v[1], v[2]); }, randn64({2, 3, 4}, 30), randn64({5, 4}, 31),
             randn64({5}, 32));
  CHECK_GRAD([](const V& v) { return linear(v[0], v[1]); }, randn64({3, 4}, 33), randn64({5, 4}, 34));
  CHECK_GRAD([](const V& v) { return conv1d_linear(v[0], v[1], v[2]); }, randn64({2, 3, 4}, 35), randn64({4, 5}, 36),
             randn64({5}, 37));
  CHECK_GRAD([](const V& v) { return linear(v[0].transpose(0, 1), v[1]); }, randn64({4, 3}, 38), randn64({2, 4}, 39));
  Tensor x = randn64({2, 4}, 40), w = randn64({3, 4}, 41), b = randn64({3}, 42);
  auto y1 = linear(x, w, b).to_vector<double>();
  auto y2 = conv1d_linear(x, w.t().contiguous(), b).to_vector<double>();
  for (size_t i = 0; i < y1.size(); ++i) CHECK(y1[i] == Approx(y2[i]).epsilon(1e-12));
  CHECK_THROWS_WITH(linear(Tensor::zeros({2, 3}), Tensor::zeros({4, 5})), Catch::Contains("does not fit weight [4, 5]"));
  CHECK_THROWS_WITH(conv1d_linear(Tensor::zeros({2, 3}), Tensor::zeros({4, 5})), Catch::Contains("Conv1D"));
  CHECK_THROWS_WITH(linear(Tensor::zeros({2, 5}), Tensor::zeros({4, 5}), Tensor::zeros({3})),
                    Catch::Contains("bias [3]"));
}

// gemm() with at most 8 rows reads B in place (detail::gemv) instead of packing it;
// M = 9 takes the packed path. Both are checked against the naive triple loop, for
// both weight layouts (Bᵀ rows contiguous as linear reads W; B rows contiguous as
// conv1d_linear does), strided rows of A, odd N and K, and accumulation into C.
template <class T>
static void check_small_m_gemm(double tol) {
  Generator g(7);
  for (int64_t M = 1; M <= 9; ++M)
    for (int64_t N : {1, 17, 300, 531})
      for (int64_t K : {1, 13, 67, 129})
        for (bool b_transposed : {false, true})
          for (bool a_strided : {false, true})
            for (bool accumulate : {false, true}) {
              // A (M, K): contiguous, or the transpose of a (K, M) buffer (a_cs = M).
              std::vector<T> a = rand_normal({M * K}, 0, 1, g, dtype_of<T>::value).template to_vector<T>();
              std::vector<T> b = rand_normal({K * N}, 0, 1, g, dtype_of<T>::value).template to_vector<T>();
              const int64_t a_rs = a_strided ? 1 : K, a_cs = a_strided ? M : 1;
              // B (K, N): rows contiguous (b_cs = 1), or W (N, K) row-major read transposed (b_rs = 1).
              const int64_t b_rs = b_transposed ? 1 : N, b_cs = b_transposed ? K : 1;
              const int64_t ldc = N + 3;  // C rows padded: ldc ≠ N
              std::vector<T> c(size_t(M * ldc), T(0.5)), want = c;
              for (int64_t i = 0; i < M; ++i)
                for (int64_t n = 0; n < N; ++n) {
                  double s = accumulate ? double(want[size_t(i * ldc + n)]) : 0.0;
                  for (int64_t k = 0; k < K; ++k)
                    s += double(a[size_t(i * a_rs + k * a_cs)]) * double(b[size_t(k * b_rs + n * b_cs)]);
                  want[size_t(i * ldc + n)] = T(s);
                }
              gemm<T>(M, N, K, a.data(), a_rs, a_cs, b.data(), b_rs, b_cs, c.data(), ldc, accumulate);
              double worst = 0;
              for (int64_t i = 0; i < M; ++i)
                for (int64_t n = 0; n < N; ++n)
                  worst = std::max(worst, std::abs(double(c[size_t(i * ldc + n)]) - double(want[size_t(i * ldc + n)])));
              for (int64_t i = 0; i < M; ++i)  // the padding between rows of C is untouched
                for (int64_t n = N; n < ldc; ++n) REQUIRE(c[size_t(i * ldc + n)] == T(0.5));
              INFO("M " << M << " N " << N << " K " << K << " b_transposed " << b_transposed << " a_strided "
                        << a_strided << " accumulate " << accumulate);
              CHECK(worst < tol * std::sqrt(double(K)));
            }
}

TEST_CASE("gemm with 1 to 9 rows (the GEMV path) matches the naive loop", "[ops][matmul][gemv]") {
  check_small_m_gemm<double>(1e-13);
  // |C| ~ √K; f32 rounding of the sum and of the inputs. Every compiled copy of the kernels.
  for_each_cpu_capability([](CpuCapability) { check_small_m_gemm<float>(1e-5); });
}

// The packed path at every instruction-set level: several row blocks (MC = 72) with a partial
// 6-row tile, several 256-deep K slices with a short last one (91, not a multiple of 8), a
// partial 16-wide panel, both layouts of B, strided A, accumulation, and ldc > N.
TEST_CASE("gemm's packed path matches the naive loop at every CPU capability", "[ops][matmul][isa]") {
  Generator g(17);
  const int64_t M = 151, N = 203, K = 603, ldc = N + 5;
  const std::vector<float> a = rand_normal({M * K}, 0, 1, g).to_vector<float>();
  const std::vector<float> b = rand_normal({K * N}, 0, 1, g).to_vector<float>();
  for (bool b_transposed : {false, true})
    for (bool a_strided : {false, true}) {
      const int64_t a_rs = a_strided ? 1 : K, a_cs = a_strided ? M : 1;
      const int64_t b_rs = b_transposed ? 1 : N, b_cs = b_transposed ? K : 1;
      std::vector<double> want(size_t(M * N));
      for (int64_t i = 0; i < M; ++i)
        for (int64_t n = 0; n < N; ++n) {
          double s = 0.25;  // accumulate onto C = 0.25
          for (int64_t k = 0; k < K; ++k) s += double(a[size_t(i * a_rs + k * a_cs)]) * double(b[size_t(k * b_rs + n * b_cs)]);
          want[size_t(i * N + n)] = s;
        }
      for_each_cpu_capability([&](CpuCapability) {
        std::vector<float> c(size_t(M * ldc), 0.25f);
        gemm<float>(M, N, K, a.data(), a_rs, a_cs, b.data(), b_rs, b_cs, c.data(), ldc, true);
        double worst = 0;
        for (int64_t i = 0; i < M; ++i) {
          for (int64_t n = 0; n < N; ++n)
            worst = std::max(worst, std::abs(double(c[size_t(i * ldc + n)]) - want[size_t(i * N + n)]));
          for (int64_t n = N; n < ldc; ++n) REQUIRE(c[size_t(i * ldc + n)] == 0.25f);
        }
        INFO("b_transposed " << b_transposed << " a_strided " << a_strided);
        CHECK(worst < 1e-5 * std::sqrt(double(K)));
      });
    }
}

// A K so long that a column block holding all of it would be narrower than kGemmWideBlock
// (the lm_head's input gradient: K = vocabulary) is split into chunks of K (ops/gemm_kernels.inl
// gemm_packed). N = 40 → blocks of 48 wanted, at most 87,296 of K with them in 4 Mi floats → two
// chunks of 45,056 and 44,944. The result equals the unsplit loop nest's bit for bit (same
// additions in the same order), checked on the base copy, and the naive loop within f32 rounding
// at every level.
TEST_CASE("gemm splits a very long K into chunks with the unsplit result", "[ops][matmul][isa]") {
  CHECK(detail::gemm_k_chunk<float>(40, 90000) == 45056);         // this test's shape is split
  CHECK(detail::gemm_k_chunk<float>(576, 49152) == 7168);         // SmolLM2's tied head, dX
  CHECK(detail::gemm_k_chunk<float>(2048, 4097) == 2304);         // balanced, not 4,096 + 1
  CHECK(detail::gemm_k_chunk<float>(2048, 4096) == 4096);         // fits: no split
  CHECK(detail::gemm_k_chunk<float>(576, 512) == 512);            // a step's own products: no split
  Generator g(23);
  const int64_t M = 13, N = 40, K = 90000;
  const std::vector<float> a = rand_normal({M * K}, 0, 1, g).to_vector<float>();
  const std::vector<float> b = rand_normal({K * N}, 0, 1, g).to_vector<float>();  // B (K, N) row-major
  std::vector<double> want(size_t(M * N));
  for (int64_t i = 0; i < M; ++i)
    for (int64_t n = 0; n < N; ++n) {
      double s = 0;
      for (int64_t k = 0; k < K; ++k) s += double(a[size_t(i * K + k)]) * double(b[size_t(k * N + n)]);
      want[size_t(i * N + n)] = s;
    }
  for_each_cpu_capability([&](CpuCapability level) {
    std::vector<float> c(size_t(M * N));
    gemm<float>(M, N, K, a.data(), K, 1, b.data(), N, 1, c.data(), N);
    double worst = 0;
    for (size_t i = 0; i < c.size(); ++i) worst = std::max(worst, std::abs(double(c[i]) - want[i]));
    CHECK(worst < 1e-5 * std::sqrt(double(K)));
    if (level != CpuCapability::baseline) return;
    constexpr int NR = GemmTile<float>::NR;
    std::vector<float> whole(size_t(M * N));
    detail::isa_base::gemm_packed_blocks<float>(
        M, N, K, a.data(), K, 1,
        [&](float* dst, int64_t k0, int64_t kc, int64_t n0, int64_t nr) {
          for (int64_t k = 0; k < kc; ++k)
            for (int64_t j = 0; j < NR; ++j) dst[k * NR + j] = j < nr ? b[size_t((k0 + k) * N + n0 + j)] : 0.0f;
        },
        whole.data(), N, false, true, 65536);
    CHECK(c == whole);
  });
}

// Run by CTest with GALVANI_CPU_CAPABILITY set (tests/CMakeLists.txt: isa_env_*).
TEST_CASE("GALVANI_CPU_CAPABILITY chooses the level the kernels use", "[.isa-env]") {
  const char* env = std::getenv("GALVANI_CPU_CAPABILITY");
  REQUIRE(env != nullptr);
  CHECK(cpu_capability() == parse_cpu_capability(env));
}

TEST_CASE("forcing a CPU capability reaches that level's copy of every kernel file", "[isa]") {
  // Expected: the forced level's copy (capped at AVX-512), or the base copy where the program's
  // own flags already give that level or more (its namespace is then an alias of the base one).
  for_each_cpu_capability([&](CpuCapability c) {
    const int want = testing::kernel_copy_at(int(c));
    CHECK(gemm_kernels_level() == want);
    CHECK(cross_entropy_kernels_level() == want);
    CHECK(quant::nf4_kernels_level() == want);
    CHECK(adamw_kernels_level() == want);
    CHECK(vec_math_kernels_level() == want);
  });
}

// The activation and softmax loops (ops/vec_math_kernels.inl) at every level against f64: gelu_tanh
// and silu_mul forward and backward, and attention's c·e^(a·x − b). 1,003 elements: whole vectors
// of 8 and 16 lanes and a tail. Relative to max(1, |f64 value|): forward 4e-7, gradients 2e-6 (the
// f32 formulas' own rounding); e^x within 2.4e-7 of the value of the same float argument.
TEST_CASE("gelu_tanh, silu_mul and the softmax exp at every level match f64", "[isa][activation]") {
  const int n = 1003;
  std::vector<float> x(n), u(n), g(n);
  for (int i = 0; i < n; ++i) {
    x[size_t(i)] = -12.0f + 24.0f * float(i) / float(n - 1);
    u[size_t(i)] = 0.5f + float(i % 7) * 0.25f;
    g[size_t(i)] = 1.0f - float(i % 5) * 0.3f;
  }
  const double k = 0.7978845608028654;
  const auto check = [](const std::vector<float>& got, const std::vector<double>& want, double tol, const char* what) {
    double worst = 0;
    for (size_t i = 0; i < got.size(); ++i)
      worst = std::max(worst, std::abs(double(got[i]) - want[i]) / std::max(1.0, std::abs(want[i])));
    INFO(what << ": worst " << worst);
    CHECK(worst < tol);
  };
  std::vector<double> gelu(n), dgelu(n), sm(n), dsa(n), dsu(n), ex(n);
  for (int i = 0; i < n; ++i) {
    const double xv = x[size_t(i)], t = std::tanh(k * (xv + 0.044715 * xv * xv * xv)), s = 1 / (1 + std::exp(-xv));
    gelu[size_t(i)] = 0.5 * xv * (1 + t);
    dgelu[size_t(i)] = g[size_t(i)] * (0.5 * (1 + t) + 0.5 * xv * (1 - t * t) * k * (1 + 3 * 0.044715 * xv * xv));
    sm[size_t(i)] = xv * s * u[size_t(i)];
    dsa[size_t(i)] = g[size_t(i)] * u[size_t(i)] * s * (1 + xv * (1 - s));
    dsu[size_t(i)] = g[size_t(i)] * xv * s;
    ex[size_t(i)] = 2.0 * std::exp(double(0.5f * x[size_t(i)] - 1.5f));  // a = 0.5 (exact), b = 1.5, c = 2
  }
  for_each_cpu_capability([&](CpuCapability) {
    std::vector<float> y(n), da(n), du(n);
    detail::gelu_tanh_forward_isa(x.data(), y.data(), n);
    check(y, gelu, 4e-7, "gelu_tanh");
    detail::gelu_tanh_backward_isa(g.data(), x.data(), y.data(), n);
    check(y, dgelu, 2e-6, "gelu_tanh backward");
    detail::silu_mul_forward_isa(x.data(), u.data(), y.data(), n);
    check(y, sm, 4e-7, "silu_mul");
    detail::silu_mul_backward_isa(g.data(), x.data(), u.data(), da.data(), du.data(), n);
    check(da, dsa, 2e-6, "silu_mul backward (gate)");
    check(du, dsu, 2e-6, "silu_mul backward (up)");
    detail::exp_affine_isa(x.data(), y.data(), n, 0.5f, 1.5f, 2.0f);
    double worst = 0;
    for (int i = 0; i < n; ++i) worst = std::max(worst, std::abs(double(y[size_t(i)]) - ex[size_t(i)]) / ex[size_t(i)]);
    INFO("exp_affine: worst " << worst);
    CHECK(worst < 2.4e-7);
  });
}

// AdamW's f32 kernel (optim/adamw_kernels.inl: vector square root, chunks over threads, a scalar
// tail) at every level against the same optimizer run on f64 copies: torch's and transformers'
// legacy update, weight decay on, 5 steps. 40,009 elements: several chunks, parallel, a tail
// shorter than any vector. f32 rounding of each step's few operations, relative to |θ|.
TEST_CASE("AdamW's f32 kernel matches the f64 update at every CPU capability", "[optim][isa]") {
  Generator gen(29);
  const int64_t n = 40009;
  const Tensor p0 = rand_normal({n}, 0, 1, gen);
  std::vector<Tensor> grads;
  for (int t = 0; t < 5; ++t) grads.push_back(rand_normal({n}, 0, t == 2 ? 1e-6 : 1.0, gen));  // a step of tiny g
  for (bool legacy : {false, true}) {
    AdamWOptions o;
    o.lr = 1e-2, o.weight_decay = 0.1, o.legacy_hf = legacy;
    Tensor want = p0.to(DType::f64).clone();
    {
      AdamW opt({want}, o);
      for (const Tensor& g : grads) want.set_grad(g.to(DType::f64)), opt.step();
    }
    const std::vector<double> w = want.to_vector<double>();
    for_each_cpu_capability([&](CpuCapability) {
      Tensor p = p0.clone();
      AdamW opt({p}, o);
      for (const Tensor& g : grads) p.set_grad(g.clone()), opt.step();
      const std::vector<float> got = p.to_vector<float>();
      double worst = 0;
      for (int64_t i = 0; i < n; ++i) worst = std::max(worst, std::abs(double(got[size_t(i)]) - w[size_t(i)]) / (1 + std::abs(w[size_t(i)])));
      INFO("legacy " << legacy);
      CHECK(worst < 2e-6);
    });
  }
}

TEST_CASE("CPU capability: names, the CPU's level, and levels it lacks refused", "[isa]") {
  CHECK(parse_cpu_capability("default") == CpuCapability::baseline);
  CHECK(parse_cpu_capability("baseline") == CpuCapability::baseline);
  CHECK(parse_cpu_capability("avx2") == CpuCapability::avx2);
  CHECK(parse_cpu_capability("avx512") == CpuCapability::avx512);
  CHECK(parse_cpu_capability("avx512_bf16") == CpuCapability::avx512_bf16);
  CHECK_THROWS_WITH(parse_cpu_capability("sse9"), Catch::Contains("unknown CPU capability 'sse9'") &&
                                                      Catch::Contains("default, avx2, avx512 or avx512_bf16"));
  for (auto c : {CpuCapability::baseline, CpuCapability::avx2, CpuCapability::avx512, CpuCapability::avx512_bf16})
    CHECK(parse_cpu_capability(cpu_capability_name(c)) == c);
  const CpuCapability have = cpu_capability_supported(), was = cpu_capability();
  CHECK(int(was) <= int(have));
  if (have != CpuCapability::avx512_bf16) {
    CHECK_THROWS_WITH(set_cpu_capability(CpuCapability::avx512_bf16),
                      Catch::Contains("this CPU supports at most") && Catch::Contains(cpu_capability_name(have)));
    CHECK(cpu_capability() == was);  // unchanged after the refusal
  }
  set_cpu_capability(CpuCapability::baseline);
  CHECK(cpu_capability() == CpuCapability::baseline);
  CHECK(detail::kernel_variant() == 0);
  set_cpu_capability(was);
}

TEST_CASE("linear and conv1d_linear on one row agree with the packed path", "[ops][linear][gemv]") {
  // The same product as 1 row (GEMV) and inside 11 rows (packed GEMM): row 3 must agree.
  Generator g(8);
  Tensor x = rand_normal({11, 96}, 0, 1, g), w = rand_normal({301, 96}, 0, 1, g), b = rand_normal({301}, 0, 1, g);
  Tensor x3 = x.narrow(0, 3, 1);
  CHECK(max_rel_diff(linear(x3, w, b), linear(x, w, b).narrow(0, 3, 1)) < 1e-6);
  Tensor wt = w.t().contiguous();
  CHECK(max_rel_diff(conv1d_linear(x3, wt, b), conv1d_linear(x, wt, b).narrow(0, 3, 1)) < 1e-6);
  // A row read through a column stride (a transposed view of x).
  Tensor xt = x.t().contiguous().t().narrow(0, 3, 1);
  CHECK(max_rel_diff(linear(xt, w), linear(x, w).narrow(0, 3, 1)) < 1e-6);
}

TEST_CASE("broadcast and dtype errors name the op and the shapes", "[ops][errors]") {
  CHECK_THROWS_WITH(Tensor::zeros({2, 3}) + Tensor::zeros({4}),
                    Catch::Contains("add") && Catch::Contains("[2, 3]") && Catch::Contains("[4]"));
  CHECK_THROWS_WITH(Tensor::zeros({2}) * Tensor::zeros({2}, DType::f64), Catch::Contains("mul: dtypes differ"));
  CHECK_THROWS_WITH(exp(Tensor::zeros({2}, DType::i64)), Catch::Contains("exp: expected a f32 or f64 tensor"));
}
