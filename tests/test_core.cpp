// Tensor basics: dtypes and conversions, views without copies, RNG determinism, printing.
#include <catch2/catch.hpp>
#include <omp.h>

#include <galvani/galvani.hpp>
#include <sstream>

using namespace galvani;

TEST_CASE("bf16 and f16 round to nearest even", "[core][dtype]") {
  // 1 + 2^-8 is exactly halfway between two bf16 values (1 and 1 + 2^-7): ties to even → 1.
  CHECK(float(bf16(1.0f + 0x1.0p-8f)) == 1.0f);
  CHECK(float(bf16(1.0f + 3 * 0x1.0p-8f)) == 1.0f + 0x1.0p-6f);  // tie, odd below → rounds up
  CHECK(float(bf16(3.140625f)) == 3.140625f);
  CHECK(std::isnan(float(bf16(std::nanf("")))));
  CHECK(float(f16(1.0f + 0x1.0p-11f)) == 1.0f);               // tie → even
  CHECK(float(f16(1.0f + 3 * 0x1.0p-11f)) == 1.0f + 0x1.0p-9f);
  CHECK(float(f16(65504.0f)) == 65504.0f);                    // largest half
  CHECK(std::isinf(float(f16(65520.0f))));                    // rounds up past it
  CHECK(float(f16(0x1.0p-24f)) == 0x1.0p-24f);                // smallest subnormal
  CHECK(float(f16(0x1.0p-26f)) == 0.0f);                      // below half of it
  CHECK(float(f16(-2.5f)) == -2.5f);
}

TEST_CASE("conversions between dtypes", "[core][dtype]") {
  Tensor a = Tensor::from_vector<float>({1.5f, -2.25f, 3.0f});
  CHECK(a.to(DType::f64).to_vector<double>() == std::vector<double>{1.5, -2.25, 3.0});
  CHECK(a.to(DType::i64).to_vector<int64_t>() == std::vector<int64_t>{1, -2, 3});
  CHECK(a.to(DType::bf16).to(DType::f32).to_vector<float>() == std::vector<float>{1.5f, -2.25f, 3.0f});
  CHECK(a.to(DType::f16).dtype() == DType::f16);
  CHECK(itemsize(DType::bf16) == 2);
  CHECK_THROWS_WITH(a.data<double>(), Catch::Contains("holds f32"));
}

TEST_CASE("views share storage and do not copy", "[core][views]") {
  Tensor a = Tensor::arange(24, DType::f32).view({2, 3, 4});
  Tensor t = a.transpose(0, 2);
  CHECK(t.shape() == Shape{4, 3, 2});
  CHECK(t.storage() == a.storage());
  CHECK_FALSE(t.is_contiguous());
  CHECK(t.contiguous().is_contiguous());
  CHECK(t.contiguous().to_vector<float>()[1] == 12.0f);  // t[0,0,1] = a[1,0,0]
  Tensor p = a.permute({1, 2, 0});
  CHECK(p.shape() == Shape{3, 4, 2});
  CHECK(p.to_vector<float>()[1] == 12.0f);
  Tensor n = a.narrow(2, 1, 2);
  CHECK(n.shape() == Shape{2, 3, 2});
  CHECK(n.storage() == a.storage());
  CHECK(n.to_vector<float>() == std::vector<float>{1, 2, 5, 6, 9, 10, 13, 14, 17, 18, 21, 22});
  Tensor s = a.select(1, -1);
  CHECK(s.shape() == Shape{2, 4});
  CHECK(s.to_vector<float>()[0] == 8.0f);
  Tensor e = Tensor::from_vector<float>({1, 2, 3}).view({3, 1}).expand({3, 4});
  CHECK(e.strides() == Strides{1, 0});
  CHECK(e.to_vector<float>()[5] == 2.0f);
  CHECK(a.reshape({-1, 4}).shape() == Shape{6, 4});
  CHECK(t.reshape({24}).to_vector<float>()[1] == 12.0f);  // non-contiguous: reshape copies
  CHECK_THROWS_WITH(t.view({24}), Catch::Contains("not contiguous"));
  CHECK_THROWS_WITH(a.view({5, -1}), Catch::Contains("invalid for input of shape [2, 3, 4]"));
  CHECK(a.unsqueeze(0).shape() == Shape{1, 2, 3, 4});
  CHECK(a.unsqueeze(-1).shape() == Shape{2, 3, 4, 1});
  CHECK(a.unsqueeze(1).squeeze(1).shape() == a.shape());
  // Writing through a view changes the base.
  n.data<float>()[0] = 100.0f;
  CHECK(a.to_vector<float>()[1] == 100.0f);
}

TEST_CASE("bad shapes and dims raise galvani::Error", "[core][errors]") {
  Tensor a = Tensor::zeros({2, 3});
  CHECK_THROWS_AS(a.transpose(0, 2), Error);
  CHECK_THROWS_WITH(a.narrow(1, 2, 2), Catch::Contains("out of range"));
  CHECK_THROWS_WITH(a.expand({4, 4}), Catch::Contains("cannot be expanded"));
  CHECK_THROWS_WITH(Tensor::from_vector<float>({1, 2, 3}, {2, 2}), Catch::Contains("do not fill shape [2, 2]"));
  CHECK_THROWS_WITH(Tensor().shape(), Catch::Contains("undefined"));
  CHECK_THROWS_WITH(a.item(), Catch::Contains("6 elements"));
  CHECK_THROWS_WITH(Tensor::zeros({2}, DType::i64).requires_grad_(), Catch::Contains("floating-point"));
}

TEST_CASE("storage is 64-byte aligned", "[core]") {
  for (int64_t n : {1, 3, 17, 1000}) {
    Tensor t = Tensor::empty({n});
    CHECK(reinterpret_cast<uintptr_t>(t.raw_data()) % 64 == 0);
  }
}

TEST_CASE("random tensors depend on the seed, not on the thread count", "[core][random]") {
  const int before = omp_get_max_threads();
  omp_set_num_threads(1);
  Generator g1(42);
  Tensor a = rand_normal({300000}, 0, 1, g1);
  Tensor a2 = rand_uniform({1000}, -1, 1, g1);
  omp_set_num_threads(std::max(2, before));
  Generator g2(42);
  Tensor b = rand_normal({300000}, 0, 1, g2);
  Tensor b2 = rand_uniform({1000}, -1, 1, g2);
  omp_set_num_threads(before);
  CHECK(a.to_vector<float>() == b.to_vector<float>());
  CHECK(a2.to_vector<float>() == b2.to_vector<float>());
  Generator g3(43);
  const std::vector<float> a_all = a.to_vector<float>();  // one vector: begin() and end() of the same one
  CHECK(rand_normal({10}, 0, 1, g3).to_vector<float>() != std::vector<float>(a_all.begin(), a_all.begin() + 10));
  // Moments of N(0, 1) and U(-1, 1).
  auto v = a.to_vector<double>();
  double m = 0, s = 0;
  for (double x : v) m += x;
  m /= double(v.size());
  for (double x : v) s += (x - m) * (x - m);
  s = std::sqrt(s / double(v.size()));
  CHECK(std::abs(m) < 0.01);
  CHECK(std::abs(s - 1) < 0.01);
  for (float x : a2.to_vector<float>()) CHECK((x >= -1 && x < 1));
  // Kaiming-uniform with a = sqrt(5): bound 1/sqrt(fan_in).
  Generator g4(1);
  auto k = kaiming_uniform({8, 25}, std::sqrt(5.0), g4).to_vector<float>();
  for (float x : k) CHECK(std::abs(x) <= 0.2f + 1e-6f);
}

TEST_CASE("the printer shows values, shape and dtype", "[core][print]") {
  std::ostringstream os;
  os << Tensor::arange(6, DType::f32).view({2, 3});
  CHECK(os.str() == "tensor([[0.0000, 1.0000, 2.0000],\n        [3.0000, 4.0000, 5.0000]], shape=[2, 3], dtype=f32)");
  std::ostringstream big;
  big << Tensor::arange(5000, DType::i64);
  CHECK(big.str() == "tensor([0, 1, 2, ..., 4997, 4998, 4999], shape=[5000], dtype=i64)");
}
