// Gradient checks (f64, finite differences), forward values and error messages for
// the neural-network ops: softmax, log_softmax, layer_norm, rms_norm, gelu_tanh,
// silu, silu_mul, embedding, cross_entropy, dropout.
#include <catch2/catch.hpp>
#include <omp.h>

#include <galvani/ops/activation.hpp>
#include <galvani/ops/cross_entropy.hpp>
#include <galvani/ops/dropout.hpp>
#include <galvani/ops/embedding.hpp>
#include <galvani/ops/fast_exp.hpp>
#include <galvani/ops/vec_math.hpp>
#include <galvani/ops/layer_norm.hpp>
#include <galvani/ops/rms_norm.hpp>
#include <galvani/ops/softmax.hpp>

#include "support/cpu_levels.hpp"
#include "support/gradcheck.hpp"

using namespace galvani;
using namespace galvani::testing;
using V = std::vector<Tensor>;


static Tensor ids64(const std::vector<int64_t>& v, const Shape& s) { return Tensor::from_vector(v, s); }
static Tensor ids32(const std::vector<int32_t>& v, const Shape& s) { return Tensor::from_vector(v, s); }

static void check_close(const std::vector<double>& got, const std::vector<double>& want, double tol) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i);
    CHECK(got[i] == Approx(want[i]).margin(tol).epsilon(tol));
  }
}

TEST_CASE("softmax and log_softmax: gradient check over any dim and strides", "[ops][grad][softmax]") {
  CHECK_GRAD([](const V& v) { return softmax(v[0]); }, randn64({3, 5}, 1));
  CHECK_GRAD([](const V& v) { return softmax(v[0], 0); }, randn64({4, 3}, 2));
  CHECK_GRAD([](const V& v) { return softmax(v[0], 1); }, randn64({2, 4, 3}, 3));
  CHECK_GRAD([](const V& v) { return softmax(v[0].transpose(0, 2), -1); }, randn64({4, 3, 2}, 4));
  CHECK_GRAD([](const V& v) { return log_softmax(v[0]); }, randn64({3, 5}, 5));
  CHECK_GRAD([](const V& v) { return log_softmax(v[0], 1); }, randn64({2, 4, 3}, 6));
  CHECK_GRAD([](const V& v) { return log_softmax(v[0].transpose(0, 1), 0); }, randn64({5, 3}, 7));
  // A stride-0 upstream gradient (the backward of sum is an expand).
  CHECK_GRAD([](const V& v) { return sum(softmax(v[0]) * v[1], {1}); }, randn64({3, 4}, 8), randn64({3, 4}, 9));
}

TEST_CASE("softmax and log_softmax: values, stability", "[ops][softmax]") {
  Tensor x = Tensor::from_vector<double>({1, 2, 3}, {1, 3});
  double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  check_close(softmax(x).to_vector<double>(), {std::exp(1.0) / z, std::exp(2.0) / z, std::exp(3.0) / z}, 1e-14);
  check_close(log_softmax(x).to_vector<double>(), {1 - std::log(z), 2 - std::log(z), 3 - std::log(z)}, 1e-14);
  // Huge logits: no overflow, same result as the shifted row.
  Tensor big = Tensor::from_vector<float>({1000, 1001, 1002}, {3});
  check_close(softmax(big).to_vector<double>(), softmax(x.to(DType::f32)).to_vector<double>(), 1e-6);
  check_close(log_softmax(big).to_vector<double>(), log_softmax(x.to(DType::f32)).to_vector<double>(), 1e-4);  // ulp(1000) in f32 is 6e-5
  // Softmax over dim 0 of a transposed view: columns sum to one.
  Tensor y = softmax(randn64({3, 4}, 10).t(), 0);
  CHECK(y.shape() == Shape{4, 3});
  for (double s : sum(y, {0}).to_vector<double>()) CHECK(s == Approx(1.0).epsilon(1e-14));
  CHECK_THROWS_WITH(softmax(Tensor::zeros({2, 3}, DType::i64)), Catch::Contains("softmax") && Catch::Contains("i64 [2, 3]"));
  CHECK_THROWS_WITH(log_softmax(Tensor::zeros({2, 3}), 2), Catch::Contains("out of range"));
}

TEST_CASE("layer_norm: gradient check, values, errors", "[ops][grad][layer_norm]") {
  CHECK_GRAD([](const V& v) { return layer_norm(v[0], v[1], v[2]); }, randn64({2, 3, 5}, 11), randn64({5}, 12),
             randn64({5}, 13));
  CHECK_GRAD([](const V& v) { return layer_norm(v[0], v[1], Tensor()); }, randn64({4, 6}, 14), randn64({6}, 15));
  CHECK_GRAD([](const V& v) { return layer_norm(v[0].transpose(0, 1), v[1], v[2], 1e-3); }, randn64({6, 4}, 16),
             randn64({6}, 17), randn64({6}, 18));
  // More rows than one backward block (64), so the per-block dw/db partials are summed.
  CHECK_GRAD([](const V& v) { return layer_norm(v[0], v[1], v[2]); }, randn64({150, 3}, 19), randn64({3}, 20),
             randn64({3}, 21));

  Tensor x = Tensor::from_vector<double>({1, 2, 3, 4}, {1, 4});
  Tensor w = Tensor::from_vector<double>({1, 1, 2, 1}), b = Tensor::from_vector<double>({0, 0, 0, 10});
  const double r = 1 / std::sqrt(1.25 + 1e-5);  // mean 2.5, biased variance 1.25
  check_close(layer_norm(x, w, b).to_vector<double>(), {-1.5 * r, -0.5 * r, 2 * 0.5 * r, 1.5 * r + 10}, 1e-14);
  // Shifting every input by a constant changes nothing (two-pass variance keeps the digits).
  Tensor xf = Tensor::from_vector<float>({10000.5f, 10001.5f, 10002.5f, 10003.5f}, {1, 4});
  check_close(layer_norm(xf, w.to(DType::f32), Tensor()).to_vector<double>(),
              layer_norm(x, w, Tensor()).to_vector<double>(), 1e-5);

  CHECK_THROWS_WITH(layer_norm(Tensor::zeros({2, 4}), Tensor::ones({5}), Tensor()),
                    Catch::Contains("layer_norm") && Catch::Contains("weight f32 [5]") && Catch::Contains("[2, 4]"));
  CHECK_THROWS_WITH(layer_norm(Tensor::zeros({2, 4}), Tensor::ones({4}), Tensor::zeros({3})),
                    Catch::Contains("layer_norm: bias f32 [3]"));
  CHECK_THROWS_WITH(layer_norm(Tensor::zeros({2, 4}), Tensor::ones({4}, DType::f64), Tensor()),
                    Catch::Contains("weight f64 [4]"));
}

TEST_CASE("rms_norm: gradient check, values, errors", "[ops][grad][rms_norm]") {
  CHECK_GRAD([](const V& v) { return rms_norm(v[0], v[1], 1e-6); }, randn64({2, 3, 5}, 22), randn64({5}, 23));
  CHECK_GRAD([](const V& v) { return rms_norm(v[0].transpose(0, 1), v[1], 1e-5); }, randn64({6, 4}, 24),
             randn64({6}, 25));
  CHECK_GRAD([](const V& v) { return rms_norm(v[0], v[1], 1e-5); }, randn64({130, 2}, 26), randn64({2}, 27));
  Tensor x = Tensor::from_vector<double>({1, 2, 3, 4}, {1, 4});
  Tensor w = Tensor::from_vector<double>({1, 2, 1, 0.5});
  const double r = 1 / std::sqrt(7.5 + 1e-6);  // mean of squares (1 + 4 + 9 + 16) / 4
  check_close(rms_norm(x, w, 1e-6).to_vector<double>(), {r, 4 * r, 3 * r, 2 * r}, 1e-14);
  CHECK_THROWS_WITH(rms_norm(Tensor::zeros({2, 4}), Tensor::ones({2, 4}), 1e-6),
                    Catch::Contains("rms_norm: weight f32 [2, 4]") && Catch::Contains("input f32 [2, 4]"));
  CHECK_THROWS_WITH(rms_norm(Tensor::zeros({2, 4}, DType::i32), Tensor::ones({4}), 1e-6),
                    Catch::Contains("rms_norm: input must be f32 or f64, got i32 [2, 4]"));
}

TEST_CASE("gelu_tanh, silu, silu_mul: gradient check and values", "[ops][grad][activation]") {
  CHECK_GRAD([](const V& v) { return gelu_tanh(v[0] * 2.0); }, randn64({3, 7}, 30));
  CHECK_GRAD([](const V& v) { return gelu_tanh(v[0].t()); }, randn64({4, 3}, 31));
  CHECK_GRAD([](const V& v) { return silu(v[0] * 3.0); }, randn64({3, 7}, 32));
  CHECK_GRAD([](const V& v) { return silu_mul(v[0], v[1]); }, randn64({2, 3, 4}, 33), randn64({2, 3, 4}, 34));
  CHECK_GRAD([](const V& v) { return silu_mul(v[0].t(), v[1]); }, randn64({4, 3}, 35), randn64({3, 4}, 36));
  // Values from the formulas evaluated in Python (math.tanh, math.exp).
  Tensor x = Tensor::from_vector<double>({-3, -1, 0, 0.5, 1, 3});
  check_close(gelu_tanh(x).to_vector<double>(),
              {-0.0036373920817729943, -0.15880800939172324, 0.0, 0.34571400982514394, 0.8411919906082768,
               2.996362607918227},
              1e-14);
  check_close(silu(x).to_vector<double>(),
              {-0.14227761953270035, -0.2689414213699951, 0.0, 0.3112296656009273, 0.7310585786300049,
               2.8577223804673},
              1e-14);
  Tensor up = Tensor::from_vector<double>({1, 2, 3, 4, 5, 6});
  auto sm = silu_mul(x, up).to_vector<double>(), s = silu(x).to_vector<double>();
  for (size_t i = 0; i < s.size(); ++i) CHECK(sm[i] == Approx(s[i] * double(i + 1)).epsilon(1e-15));
  // No overflow far out in the tails.
  check_close(silu(Tensor::from_vector<float>({-100, 100})).to_vector<double>(), {-0.0, 100}, 1e-6);
  CHECK_THROWS_WITH(silu_mul(Tensor::zeros({2, 3}), Tensor::zeros({3, 2})),
                    Catch::Contains("silu_mul") && Catch::Contains("[2, 3]") && Catch::Contains("[3, 2]"));
  CHECK_THROWS_WITH(gelu_tanh(Tensor::zeros({2}, DType::i64)), Catch::Contains("gelu_tanh"));
}

// f32 gelu_tanh computes tanh through the polynomial e^x (ops/activation.hpp); f64 keeps
// std::tanh. Forward and backward (through autograd) against the f64 results, over ±90 in steps
// of 1/64 plus 0, tiny and large values; error relative to max(1, |f64 value|), the scale torch's
// comparisons use. silu and silu_mul (std::exp in both) are held to the same bound.
TEST_CASE("f32 gelu_tanh (polynomial tanh), silu, silu_mul match their f64 results", "[ops][activation]") {
  std::vector<double> xs;
  for (int i = -90 * 64; i <= 90 * 64; ++i) xs.push_back(i / 64.0);
  for (double v : {0.0, 1e-30, -1e-30, 1e-5, -1e-5, 1e3, -1e3}) xs.push_back(v);
  const int64_t n = int64_t(xs.size());
  std::vector<double> ups(xs.size());
  for (size_t i = 0; i < xs.size(); ++i) ups[i] = 0.5 + double(i % 7) * 0.25;
  const auto run = [&](DType dt, auto op, int inputs) {
    Tensor x = Tensor::from_vector(xs, {n}).to(dt).requires_grad_();
    Tensor u = Tensor::from_vector(ups, {n}).to(dt).requires_grad_();
    Tensor y = op(x, u);
    y.backward(Tensor::ones({n}, dt));
    std::vector<std::vector<double>> out = {y.to(DType::f64).to_vector<double>(), x.grad().to(DType::f64).to_vector<double>()};
    if (inputs == 2) out.push_back(u.grad().to(DType::f64).to_vector<double>());
    return out;
  };
  // Forward within 4e-7; gradients within 2e-6 (their f32 formulas alone are ~1e-6 from f64).
  // These tensors are contiguous: the eight-lane loops of ops/vec_math.hpp, 11,528 elements (a tail of 0).
  const auto compare = [&](const char* what, auto op, int inputs) {
    const auto got = run(DType::f32, op, inputs), want = run(DType::f64, op, inputs);
    for (size_t k = 0; k < got.size(); ++k) {
      double worst = 0;
      for (size_t i = 0; i < got[k].size(); ++i)
        worst = std::max(worst, std::abs(got[k][i] - want[k][i]) / std::max(1.0, std::abs(want[k][i])));
      INFO(what << (k == 0 ? " forward" : k == 1 ? " d/dx" : " d/dup"));
      CHECK(worst < (k == 0 ? 4e-7 : 2e-6));
    }
  };
  compare("gelu_tanh", [](const Tensor& x, const Tensor&) { return gelu_tanh(x); }, 1);
  compare("silu", [](const Tensor& x, const Tensor&) { return silu(x); }, 1);
  compare("silu_mul", [](const Tensor& x, const Tensor& u) { return silu_mul(x, u); }, 2);
  // NaN in → NaN out, as std::exp gives; ±inf at the ends.
  const auto f = silu(Tensor::from_vector<float>({std::nanf(""), -std::numeric_limits<float>::infinity(),
                                                  std::numeric_limits<float>::infinity()})).to_vector<float>();
  CHECK(std::isnan(f[0]));
  CHECK(f[2] == std::numeric_limits<float>::infinity());
  CHECK(std::isnan(gelu_tanh(Tensor::from_vector<float>({std::nanf("")})).to_vector<float>()[0]));
}

TEST_CASE("vec_math: the eight-lane e^x, softmax and activation loops against f64 and their scalar tails",
          "[ops][activation][vec_math]") {
  using namespace galvani::detail;
  // Every length from 0 to 40 (tails of 0..7 after whole vectors), over [-90, 10].
  std::vector<float> x;
  for (int i = 0; i < 4000; ++i) x.push_back(-90.0f + 100.0f * float(i) / 3999.0f);
  const float nan = std::nanf(""), inf = std::numeric_limits<float>::infinity();
  for (int64_t n = 0; n <= 40; ++n) {
    std::vector<float> y(size_t(n) + 1, -1.0f);
    exp_affine(x.data() + 1000, y.data(), n, 1.0f, 0.0f, 1.0f);
    for (int64_t j = 0; j < n; ++j) CHECK(y[size_t(j)] == Approx(expf_poly(x[size_t(1000 + j)])).epsilon(2.4e-7));
    CHECK(y[size_t(n)] == -1.0f);  // nothing written past n
  }
  // Sixteen lanes (the avx512 cross-entropy copies) compile and agree at any width.
  for (int64_t n = 0; n <= 40; ++n) {
    std::vector<float> y8(size_t(n) + 1, -1.0f), y16(size_t(n) + 1, -1.0f);
    exp_affine<8>(x.data() + 2000, y8.data(), n, 0.5f, 1.0f, 2.0f);
    exp_affine<16>(x.data() + 2000, y16.data(), n, 0.5f, 1.0f, 2.0f);
    for (int64_t j = 0; j < n; ++j) CHECK(y16[size_t(j)] == Approx(y8[size_t(j)]).epsilon(2.4e-7));
    CHECK(y16[size_t(n)] == -1.0f);
    if (n > 0) {
      CHECK(max_f32<16>(x.data() + 2000, n) == max_f32<8>(x.data() + 2000, n));
      CHECK(sum_exp_shift<16>(x.data() + 2000, n, 3.0f) == Approx(sum_exp_shift<8>(x.data() + 2000, n, 3.0f)).epsilon(1e-6));
    }
  }
  // e^x within 1 ulp of the correctly rounded value on [-87, 0]; 0 below; NaN stays NaN.
  std::vector<float> e(x.size());
  exp_affine(x.data(), e.data(), int64_t(x.size()), 1.0f, 0.0f, 1.0f);
  double worst = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    if (x[i] < -87.0f) {
      CHECK(e[i] == 0.0f);
    } else if (x[i] <= 0.0f) {
      const double want = std::exp(double(x[i]));
      worst = std::max(worst, std::abs(double(e[i]) - want) / want);
    }
  }
  CHECK(worst < 1.2e-7);
  std::vector<float> special = {nan, -inf, -87.5f, -87.0f, 0.0f, -0.0f, 1.0f, 88.0f, -1.0f};
  std::vector<float> es(special.size());
  exp_affine(special.data(), es.data(), int64_t(special.size()), 1.0f, 0.0f, 1.0f);
  CHECK(std::isnan(es[0]));
  CHECK(es[1] == 0.0f);
  CHECK(es[2] == 0.0f);
  CHECK(es[3] > 0.0f);
  CHECK(es[4] == 1.0f);
  CHECK(es[5] == 1.0f);
  CHECK(es[6] == Approx(std::exp(1.0)).epsilon(2.4e-7));
  CHECK(es[7] == Approx(std::exp(88.0)).epsilon(2.4e-7));
  // max (NaNs passed over, in the vector part and in the tail) and Σ e^(x − b) over a block.
  std::vector<float> m(19, 1.0f);
  m[3] = nan, m[17] = nan, m[11] = 7.5f, m[18] = -2.0f;
  CHECK(max_f32(m.data(), 19) == 7.5f);
  m[18] = 9.0f;
  CHECK(max_f32(m.data(), 19) == 9.0f);
  CHECK(max_f32(m.data() + 17, 1) == -inf);  // only a NaN: nothing is greater than -inf
  double want_sum = 0;
  for (int i = 0; i < 509; ++i) want_sum += std::exp(double(x[size_t(3000 + i)]) - 10.0);
  CHECK(sum_exp_shift(x.data() + 3000, 509, 10.0f) == Approx(want_sum).epsilon(1e-6));
  // sigmoid and tanh, vector lanes against the scalar formulas (the tails), at the extremes too.
  std::vector<float> s = {-200.0f, -88.0f, -30.0f, -1.0f, -0.0f, 0.0f, 1e-8f, 1.0f, 30.0f, 88.0f, 200.0f, nan,
                          -inf, inf, 3.5f, -3.5f};
  for (size_t i = 0; i < s.size(); i += 8) {
    Vec<8>::f v, sg, th;
    load_v<8>(v, s.data() + i);
    sigmoid_poly_v<8>(sg, v);
    tanh_poly_v<8>(th, v);
    for (int k = 0; k < 8; ++k) {
      INFO("x = " << s[i + size_t(k)]);
      const float xs = s[i + size_t(k)];
      if (std::isnan(xs)) {
        CHECK(std::isnan(sg[k]));
        CHECK(std::isnan(th[k]));
        continue;
      }
      CHECK(sg[k] == Approx(sigmoid_poly(xs)).epsilon(2.4e-7).margin(1e-37));
      CHECK(th[k] == Approx(tanh_poly(xs)).epsilon(2.4e-7).margin(1e-37));
      CHECK(sg[k] == Approx(1.0 / (1.0 + std::exp(-double(xs)))).epsilon(3e-7).margin(1e-37));
      // (1 − z)/(1 + z) cancels near 0: tanh_poly is within ~1e-7 absolute (what gelu's 1 + tanh needs).
      CHECK(th[k] == Approx(std::tanh(double(xs))).epsilon(3e-7).margin(1.2e-7));
    }
  }
}

TEST_CASE("gelu_tanh and silu_mul: the contiguous eight-lane path equals the strided one", "[ops][activation][vec_math]") {
  // A transposed (37, 64) view takes the generic strided loop (the scalar formulas); its
  // contiguous copy takes ops/vec_math.hpp's loops (the copy for the CPU's level). Forward and both
  // gradients agree within 1e-6 relative or absolute: the same formulas, but a multiply-add fused
  // in one copy and not in the other moves the last bit of tanh, and gelu's 1 + tanh cancels for
  // negative x, so near zero the difference is absolute (~1e-7·|x|), not relative. A wrong index
  // would be off by O(1).
  Generator gen(5);
  Tensor base = rand_normal({64, 37}, 0, 3, gen), up_base = rand_normal({64, 37}, 0, 1, gen);
  const auto close_enough = [](const Tensor& a, const Tensor& b) {
    const auto va = a.contiguous().to_vector<float>(), vb = b.contiguous().to_vector<float>();
    REQUIRE(va.size() == vb.size());
    double worst = 0;
    for (size_t i = 0; i < va.size(); ++i)
      worst = std::max(worst, std::abs(double(va[i]) - double(vb[i])) / std::max(1.0, std::abs(double(vb[i]))));
    INFO("worst difference " << worst);
    CHECK(worst < 1e-6);
  };
  {  // contiguous with an offset (rows 1..63 of a (64, 37) tensor): the fast path reads from the offset
    Tensor xo = base.narrow(0, 1, 63), ref = base.narrow(0, 1, 63).contiguous();
    REQUIRE(xo.is_contiguous());
    REQUIRE(xo.offset() == 37);
    close_enough(gelu_tanh(xo), gelu_tanh(ref));
    close_enough(silu_mul(xo, up_base.narrow(0, 1, 63)), silu_mul(ref, up_base.narrow(0, 1, 63).contiguous()));
  }
  for (int which = 0; which < 2; ++which) {
    Tensor xs = base.t().detach().requires_grad_(), us = up_base.t().detach().requires_grad_();  // strided
    Tensor xc = base.t().contiguous().requires_grad_(), uc = up_base.t().contiguous().requires_grad_();
    REQUIRE_FALSE(xs.is_contiguous());
    Tensor ys = which == 0 ? gelu_tanh(xs) : silu_mul(xs, us);
    Tensor yc = which == 0 ? gelu_tanh(xc) : silu_mul(xc, uc);
    INFO((which == 0 ? "gelu_tanh" : "silu_mul"));
    close_enough(ys, yc);
    Tensor g = rand_normal({37, 64}, 0, 1, gen);
    ys.backward(g);
    yc.backward(g);
    close_enough(xs.grad(), xc.grad());
    if (which == 1) close_enough(us.grad(), uc.grad());
  }
}

TEST_CASE("embedding: gradient check with repeated ids, values, errors", "[ops][grad][embedding]") {
  Tensor ids = ids64({1, 3, 1, 0, 3, 3}, {2, 3});
  CHECK_GRAD([ids](const V& v) { return embedding(v[0], ids); }, randn64({5, 4}, 40));
  CHECK_GRAD([](const V& v) { return embedding(v[0], ids32({2, 2, 0, 4}, {4})); }, randn64({5, 3}, 41));
  CHECK_GRAD([ids](const V& v) { return embedding(v[0].t(), ids); }, randn64({4, 5}, 42));  // (V, C) read via strides
  Tensor w = Tensor::arange(12, DType::f64).view({4, 3});
  Tensor out = embedding(w, ids32({3, 0}, {2, 1}));
  CHECK(out.shape() == Shape{2, 1, 3});
  CHECK(out.to_vector<double>() == std::vector<double>{9, 10, 11, 0, 1, 2});
  // Backward: rows are summed per id, rows never used get zeros.
  Tensor wg = Tensor::zeros({4, 2}, DType::f64).requires_grad_();
  embedding(wg, ids64({2, 2, 0, 2}, {4})).backward(Tensor::ones({4, 2}, DType::f64));
  CHECK(wg.grad().to_vector<double>() == std::vector<double>{1, 1, 0, 0, 3, 3, 0, 0});
  CHECK_THROWS_WITH(embedding(w, ids64({0, 1, 4, 2}, {2, 2})),
                    Catch::Contains("embedding") && Catch::Contains("id 4") && Catch::Contains("[1, 0]") &&
                        Catch::Contains("V = 4"));
  CHECK_THROWS_WITH(embedding(w, ids32({0, -1}, {2})), Catch::Contains("id -1") && Catch::Contains("[1]"));
  CHECK_THROWS_WITH(embedding(w, Tensor::zeros({2, 3}, DType::f32)),
                    Catch::Contains("embedding: ids must be an i32 or i64 tensor, got f32 [2, 3]"));
  CHECK_THROWS_WITH(embedding(Tensor::zeros({4}), ids64({0}, {1})), Catch::Contains("weight must be (V, C), got f32 [4]"));
}

TEST_CASE("cross_entropy: gradient check incl. ignore_index, reductions, strides", "[ops][grad][cross_entropy]") {
  Tensor t = ids64({2, -100, 0, 4}, {4});
  CHECK_GRAD([t](const V& v) { return cross_entropy(v[0], t); }, randn64({4, 5}, 50));
  CHECK_GRAD([t](const V& v) { return cross_entropy(v[0], t, -100, Reduction::sum); }, randn64({4, 5}, 51));
  CHECK_GRAD([t](const V& v) { return cross_entropy(v[0], t, -100, Reduction::none); }, randn64({4, 5}, 52));
  CHECK_GRAD([](const V& v) { return cross_entropy(v[0].t(), ids32({1, 1, 3}, {3}), 1); }, randn64({5, 3}, 53));
  CHECK_GRAD([](const V& v) { return cross_entropy(v[0] * 4.0, ids64({0, 1, 2}, {3})); }, randn64({3, 3}, 54));
}

TEST_CASE("cross_entropy: values and errors", "[ops][cross_entropy]") {
  // Uniform logits: every row's loss is log V.
  Tensor z = Tensor::zeros({3, 4}, DType::f64);
  CHECK(cross_entropy(z, ids64({0, 1, 3}, {3})).item() == Approx(std::log(4.0)).epsilon(1e-15));
  Tensor x = Tensor::from_vector<double>({1, 2, 3, 0, 0, 0}, {2, 3});
  const double l0 = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0)) - 1.0;
  check_close(cross_entropy(x, ids64({0, -100}, {2}), -100, Reduction::none).to_vector<double>(), {l0, 0.0}, 1e-14);
  CHECK(cross_entropy(x, ids64({0, -100}, {2})).item() == Approx(l0).epsilon(1e-14));  // mean over 1 row
  CHECK(cross_entropy(x, ids64({0, 1}, {2}), -100, Reduction::sum).item() ==
        Approx(l0 + std::log(3.0)).epsilon(1e-14));
  CHECK(std::isnan(cross_entropy(x, ids64({-100, -100}, {2})).item()));  // torch: 0/0
  // Backward of the mean with an ignored row: (softmax − onehot) / 1 on row 0, zeros on row 1.
  Tensor xg = x.detach().requires_grad_();
  cross_entropy(xg, ids64({2, -100}, {2})).backward();
  auto g = xg.grad().to_vector<double>();
  const double zs = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  check_close(g, {std::exp(1.0) / zs, std::exp(2.0) / zs, std::exp(3.0) / zs - 1, 0, 0, 0}, 1e-14);

  CHECK_THROWS_WITH(cross_entropy(x, ids64({0, 3}, {2})),
                    Catch::Contains("cross_entropy: target 3 at position 1") && Catch::Contains("[2, 3]"));
  CHECK_THROWS_WITH(cross_entropy(x, ids64({-1, 0}, {2})), Catch::Contains("target -1"));
  CHECK_THROWS_WITH(cross_entropy(Tensor::zeros({2, 3}, DType::i64), ids64({0, 1}, {2})),
                    Catch::Contains("cross_entropy: logits must be f32 or f64, got i64 [2, 3]"));
  CHECK_THROWS_WITH(cross_entropy(x, Tensor::zeros({2})),
                    Catch::Contains("targets must be an i32 or i64 tensor, got f32 [2]"));
  CHECK_THROWS_WITH(cross_entropy(x, ids64({0, 1, 2}, {3})),
                    Catch::Contains("logits [2, 3]") && Catch::Contains("targets [3]"));
}

// f32 logits with contiguous rows take the vectorized path (polynomial exp, blocked
// sums); a non-contiguous view of the same values takes the strided loop with libm exp
// and a double sum. Both must agree with each other and with f64, at GPT-2's V.
TEST_CASE("cross_entropy: the contiguous f32 path matches the strided path and f64", "[ops][cross_entropy]") {
  const int64_t N = 6, V = 50257;
  Generator gen(9);
  Tensor x = rand_normal({N, V}, 0, 4, gen);  // logits spread over ±16: exps over 14 decades
  {
    std::vector<float> v = x.to_vector<float>();
    v[size_t(1 * V + 7)] = 60.0f;  // row 1: one dominant logit, the target
    for (int64_t j = 0; j < V; j += 3) v[size_t(2 * V + j)] = -std::numeric_limits<float>::infinity();  // masked
    x = Tensor::from_vector(v, {N, V});
  }
  Tensor t = ids64({5, 7, 11, -100, 50256, 0}, {N});
  for (Reduction r : {Reduction::none, Reduction::mean}) for_each_cpu_capability([&](CpuCapability) {
    INFO("reduction " << int(r));
    Tensor xf = x.detach().requires_grad_();                // rows contiguous: vectorized
    Tensor xs_leaf = x.t().contiguous().requires_grad_();  // (V, N); its .t() has strides (1, N): strided
    Tensor x64 = x.to(DType::f64).requires_grad_();
    Tensor lf = cross_entropy(xf, t, -100, r), ls = cross_entropy(xs_leaf.t(), t, -100, r);
    Tensor l64 = cross_entropy(x64, t, -100, r);
    CHECK(max_rel_diff(lf, ls) < 1e-6);
    CHECK(max_rel_diff(lf, l64) < 1e-6);
    sum(lf).backward();
    sum(ls).backward();
    sum(l64).backward();
    Tensor gf = xf.grad(), gs = xs_leaf.grad().t(), g64 = x64.grad();
    CHECK(max_rel_diff(gf, gs) < 1e-6);
    CHECK(max_rel_diff(gf, g64) < 1e-6);
    auto g = gf.to_vector<float>();
    CHECK(g[size_t(2 * V + 3)] == 0.0f);  // exp(−∞) = 0
    CHECK(g[size_t(3 * V + 5)] == 0.0f);  // ignored row
  });
  // Contiguous rows with a row stride ≠ V (the first V − 3 columns) are still the fast path.
  Tensor xn = x.narrow(1, 0, V - 3), tn = ids64({5, 7, 11, -100, V - 4, 0}, {N});
  CHECK(max_rel_diff(cross_entropy(xn, tn, -100, Reduction::none),
                     cross_entropy(xn.t().contiguous().t(), tn, -100, Reduction::none)) < 1e-6);
}

// torch: a NaN logit makes the row's loss and its whole gradient row NaN. The polynomial exp
// once mapped NaN to 0, so the fast path silently dropped the NaN logit (a finite loss that the
// Trainer's NaN guard could not see).
TEST_CASE("cross_entropy: a NaN logit gives a NaN loss and gradient, as torch", "[ops][cross_entropy]") {
  CHECK(std::isnan(detail::expf_poly(std::numeric_limits<float>::quiet_NaN())));
  CHECK(detail::expf_poly(-std::numeric_limits<float>::infinity()) == 0.0f);
  CHECK(detail::expf_poly(-100.0f) == 0.0f);
  CHECK(detail::expf_poly(0.0f) == 1.0f);
  const int64_t N = 3, V = 1000;
  Generator gen(3);
  std::vector<float> v = rand_normal({N, V}, 0, 1, gen).to_vector<float>();
  v[size_t(1 * V + 17)] = std::numeric_limits<float>::quiet_NaN();  // row 1 only
  const Tensor x = Tensor::from_vector(v, {N, V});
  const Tensor t = ids64({4, 5, 6}, {N});
  for_each_cpu_capability([&](CpuCapability) {
    for (const bool strided : {false, true}) {
      INFO((strided ? "strided" : "contiguous rows"));
      Tensor leaf = strided ? x.t().contiguous().requires_grad_() : x.detach().requires_grad_();
      Tensor in = strided ? leaf.t() : leaf;
      std::vector<float> l = cross_entropy(in, t, -100, Reduction::none).to_vector<float>();
      CHECK(std::isfinite(l[0]));
      CHECK(std::isnan(l[1]));
      CHECK(std::isfinite(l[2]));
      Tensor mean = cross_entropy(in, t);
      CHECK(std::isnan(mean.item()));
      mean.backward();
      std::vector<float> g = (strided ? leaf.grad().t() : leaf.grad()).contiguous().to_vector<float>();
      CHECK(std::isnan(g[size_t(1 * V + 3)]));     // the NaN row: NaN everywhere
      CHECK(std::isfinite(g[size_t(0 * V + 3)]));  // the other rows keep finite gradients, as in torch
      CHECK(std::isfinite(g[size_t(2 * V + 3)]));
    }
  });
}

TEST_CASE("dropout: gradient check, mask statistics, determinism", "[ops][grad][dropout]") {
  CHECK_GRAD([](const V& v) { Generator g(7); return dropout(v[0], 0.3, true, g); }, randn64({4, 5}, 60));
  CHECK_GRAD([](const V& v) { Generator g(8); return dropout(v[0].t(), 0.5, true, g); }, randn64({3, 4}, 61));
  Tensor x = Tensor::ones({200, 500});
  Generator g1(42);
  Tensor y = dropout(x, 0.25, true, g1);
  CHECK(g1.counter() == 100000);
  auto v = y.to_vector<float>();
  int64_t kept = 0;
  for (float e : v) {
    CHECK((e == 0.0f || e == Approx(1 / 0.75f)));
    kept += e != 0.0f;
  }
  CHECK(double(kept) / 100000 == Approx(0.75).margin(0.01));
  // Thread count does not change the mask; a second draw gives a different one.
  int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  Generator g2(42);
  CHECK(dropout(x, 0.25, true, g2).to_vector<float>() == v);
  omp_set_num_threads(std::max(threads, 3));
  CHECK(dropout(x, 0.25, true, g2).to_vector<float>() != v);
  omp_set_num_threads(threads);
  // Backward applies the same mask and scale.
  Tensor xg = Tensor::ones({3, 7}).requires_grad_();
  Generator g3(5);
  Tensor yg = dropout(xg, 0.5, true, g3);
  yg.backward(Tensor::ones({3, 7}));
  CHECK(xg.grad().to_vector<float>() == yg.to_vector<float>());
  // Evaluation and p = 0 are the identity and draw nothing; p = 1 drops everything.
  Generator g4(1);
  CHECK(dropout(x, 0.5, false, g4).is_same(x));
  CHECK(dropout(x, 0.0, true, g4).is_same(x));
  CHECK(g4.counter() == 0);
  CHECK(sum(dropout(x, 1.0, true, g4)).item() == 0.0);
  CHECK_THROWS_WITH(dropout(x, 1.5, true, g4), Catch::Contains("dropout: probability p = 1.5"));
}
