// Attention and RoPE: f64 gradient checks, values against naive loops written here, the
// KV-cache property (one query at a time equals the full causal pass), and the errors.
#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>

#include <galvani/ops/attention.hpp>
#include <galvani/ops/rope.hpp>

#include "support/gradcheck.hpp"

using namespace galvani;
using namespace galvani::testing;
using V = std::vector<Tensor>;


namespace {

// The oracle: every score, an explicit visibility test, exp, normalize — in double.
// q (B,H,T,D), k/v (B,Hkv,S,D) as row-major vectors; a row that sees nothing is zero.
// With opt.dropout_p > 0, probability (b,h,i,j) is kept when uniform01(seed, base + ((b·H+h)·T+i)·S+j)
// >= p and then scaled by 1 / (1 − p): the documented mask, written out independently here.
std::vector<double> naive_attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& opt,
                                    uint64_t seed = 0, uint64_t base = 0) {
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), D = q.size(3), Hkv = k.size(1), S = k.size(2);
  auto Q = q.to_vector<double>(), K = k.to_vector<double>(), Vv = v.to_vector<double>();
  std::vector<double> mask = opt.key_padding_mask.defined() ? opt.key_padding_mask.to_vector<double>()
                                                            : std::vector<double>(size_t(B * S), 1.0);
  const int64_t off = opt.query_offset < 0 ? S - T : opt.query_offset;
  const double scale = opt.scale != 0 ? opt.scale : 1 / std::sqrt(double(D));
  std::vector<double> out(size_t(B * H * T * D), 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h) {
      const int64_t g = h / (H / Hkv);
      for (int64_t i = 0; i < T; ++i) {
        const int64_t p = off + i;
        std::vector<double> w(size_t(S), 0.0);
        std::vector<bool> seen(size_t(S), false);
        double mx = -INFINITY;
        for (int64_t j = 0; j < S; ++j) {
          bool ok = mask[size_t(b * S + j)] != 0;
          if (opt.causal && j > p) ok = false;
          if (opt.sliding_window > 0 && !(p - j >= 0 && p - j < opt.sliding_window)) ok = false;
          if (!ok) continue;
          double s = 0;
          for (int64_t d = 0; d < D; ++d)
            s += Q[size_t(((b * H + h) * T + i) * D + d)] * K[size_t(((b * Hkv + g) * S + j) * D + d)];
          w[size_t(j)] = s * scale;
          seen[size_t(j)] = true;
          mx = std::max(mx, s * scale);
        }
        double total = 0;
        for (int64_t j = 0; j < S; ++j) {
          w[size_t(j)] = seen[size_t(j)] ? std::exp(w[size_t(j)] - mx) : 0.0;
          total += w[size_t(j)];
        }
        if (total == 0) continue;
        for (int64_t j = 0; j < S; ++j) {
          double pj = w[size_t(j)] / total;
          if (opt.dropout_p > 0) {
            const uint64_t counter = base + uint64_t(((b * H + h) * T + i) * S + j);
            pj = Generator::uniform01(seed, counter) >= opt.dropout_p ? pj / (1 - opt.dropout_p) : 0.0;
          }
          for (int64_t d = 0; d < D; ++d)
            out[size_t(((b * H + h) * T + i) * D + d)] += pj * Vv[size_t(((b * Hkv + g) * S + j) * D + d)];
        }
      }
    }
  return out;
}

double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
  return worst;
}

AttentionOptions with(std::function<void(AttentionOptions&)> set) {
  AttentionOptions o;
  set(o);
  return o;
}

}  // namespace

TEST_CASE("attention: gradient checks", "[ops][grad][attention]") {
  auto attn = [](AttentionOptions opt) {
    return [opt](const V& x) { return scaled_dot_product_attention(x[0], x[1], x[2], opt); };
  };
  SECTION("causal multi-head") {
    CHECK_GRAD(attn({}), randn64({2, 2, 5, 4}, 1), randn64({2, 2, 5, 4}, 2), randn64({2, 2, 5, 4}, 3));
  }
  SECTION("key padding mask, left padding gives rows that see no key") {
    // Batch 1 is left-padded by 2: its queries 0 and 1 see only padding and output zeros.
    Tensor m = Tensor::from_vector<int64_t>({1, 1, 1, 1, 1, 0, 0, 1, 1, 1}, {2, 5});
    CHECK_GRAD(attn(with([&](auto& o) { o.key_padding_mask = m; })), randn64({2, 2, 5, 3}, 4),
               randn64({2, 2, 5, 3}, 5), randn64({2, 2, 5, 3}, 6));
    // Right padding, non-causal: every row sees the real keys only.
    Tensor m2 = Tensor::from_vector<float>({1, 1, 1, 0, 0, 1, 1, 1, 1, 1}, {2, 5});
    CHECK_GRAD(attn(with([&](auto& o) { o.key_padding_mask = m2; o.causal = false; })), randn64({2, 2, 4, 3}, 7),
               randn64({2, 2, 5, 3}, 8), randn64({2, 2, 5, 3}, 9));
  }
  SECTION("grouped-query attention, H = 4 over Hkv = 2") {
    CHECK_GRAD(attn({}), randn64({1, 4, 5, 4}, 10), randn64({1, 2, 5, 4}, 11), randn64({1, 2, 5, 4}, 12));
  }
  SECTION("sliding window 3 over T = 8") {
    CHECK_GRAD(attn(with([](auto& o) { o.sliding_window = 3; })), randn64({1, 2, 8, 4}, 13),
               randn64({1, 2, 8, 4}, 14), randn64({1, 2, 8, 4}, 15));
  }
  SECTION("query_offset: 2 queries against 6 keys, as with a KV cache") {
    CHECK_GRAD(attn(with([](auto& o) { o.query_offset = 4; })), randn64({2, 2, 2, 4}, 16),
               randn64({2, 2, 6, 4}, 17), randn64({2, 2, 6, 4}, 18));
    CHECK_GRAD(attn(with([](auto& o) { o.query_offset = 1; })), randn64({1, 2, 2, 4}, 19),
               randn64({1, 2, 6, 4}, 20), randn64({1, 2, 6, 4}, 21));
  }
  SECTION("non-causal, custom scale") {
    CHECK_GRAD(attn(with([](auto& o) { o.causal = false; o.scale = 0.7; })), randn64({2, 1, 3, 4}, 22),
               randn64({2, 1, 6, 4}, 23), randn64({2, 1, 6, 4}, 24));
  }
  SECTION("non-contiguous inputs: q, k, v are transposes of (B, T, H, D)") {
    CHECK_GRAD(
        [](const V& x) {
          return scaled_dot_product_attention(x[0].transpose(1, 2), x[1].transpose(1, 2), x[2].transpose(1, 2));
        },
        randn64({2, 5, 4, 3}, 25), randn64({2, 5, 2, 3}, 26), randn64({2, 5, 2, 3}, 27));
    // Last dim not contiguous either: the kernel copies once.
    CHECK_GRAD([](const V& x) { return scaled_dot_product_attention(x[0].transpose(2, 3), x[1], x[2]); },
               randn64({1, 2, 4, 5}, 28), randn64({1, 2, 5, 4}, 29), randn64({1, 2, 5, 4}, 30));
  }
  SECTION("several query blocks (T = 40 crosses the 32-row block)") {
    CHECK_GRAD(attn(with([](auto& o) { o.sliding_window = 9; })), randn64({1, 2, 40, 2}, 31),
               randn64({1, 1, 40, 2}, 32), randn64({1, 1, 40, 2}, 33));
  }
}

TEST_CASE("attention: values against naive loops", "[ops][attention]") {
  struct Case {
    const char* name;
    int64_t B, H, Hkv, T, S, D;
    AttentionOptions opt;
  };
  Tensor left_pad = Tensor::from_vector<int32_t>(std::vector<int32_t>(70, 1), {2, 35});
  {
    auto* p = left_pad.data<int32_t>();
    for (int j = 0; j < 10; ++j) p[35 + j] = 0;  // batch 1: 10 padding tokens in front
  }
  std::vector<Case> cases = {
      {"causal", 2, 3, 3, 7, 7, 5, {}},
      {"GQA 8/2, 70 rows (3 blocks)", 1, 8, 2, 70, 70, 16, {}},
      {"window 5, offset", 2, 2, 1, 33, 40, 8, with([](auto& o) { o.sliding_window = 5; o.query_offset = 3; })},
      {"left padding", 2, 2, 2, 35, 35, 8, with([&](auto& o) { o.key_padding_mask = left_pad; })},
      {"non-causal cross", 2, 2, 2, 9, 35, 8, with([&](auto& o) { o.causal = false; o.key_padding_mask = left_pad; })},
      {"decode step", 2, 4, 2, 1, 35, 8, with([&](auto& o) { o.key_padding_mask = left_pad; })},
  };
  for (const Case& c : cases) {
    for (DType dt : {DType::f64, DType::f32}) {
      Generator gen(uint64_t(c.T * 31 + c.S));
      Tensor q = rand_normal({c.B, c.H, c.T, c.D}, 0, 1, gen, dt);
      Tensor k = rand_normal({c.B, c.Hkv, c.S, c.D}, 0, 1, gen, dt);
      Tensor v = rand_normal({c.B, c.Hkv, c.S, c.D}, 0, 1, gen, dt);
      Tensor out = scaled_dot_product_attention(q, k, v, c.opt);
      INFO(c.name << " " << dtype_name(dt));
      CHECK(out.shape() == Shape{c.B, c.H, c.T, c.D});
      CHECK(max_abs_diff(out.to_vector<double>(), naive_attention(q, k, v, c.opt)) < (dt == DType::f64 ? 1e-12 : 2e-5));
    }
  }
  // The padded rows of batch 1 ("left padding": queries 0..9 see only padding) are exactly zero.
  Generator gen(5);
  Tensor q = rand_normal({2, 1, 35, 4}, 0, 1, gen), k = rand_normal({2, 1, 35, 4}, 0, 1, gen);
  AttentionOptions opt;
  opt.key_padding_mask = left_pad;
  auto o = scaled_dot_product_attention(q, k, k, opt).to_vector<float>();
  for (int i = 0; i < 10 * 4; ++i) CHECK(o[size_t(35 * 4 + i)] == 0.0f);
  CHECK(o[size_t(35 * 4 + 10 * 4)] != 0.0f);
}

TEST_CASE("attention: one query at a time with a growing cache equals the full causal pass", "[ops][attention]") {
  for (DType dt : {DType::f64, DType::f32}) {
    Generator gen(42);
    const int64_t B = 2, H = 4, Hkv = 2, S = 9, D = 8;
    Tensor q = rand_normal({B, H, S, D}, 0, 1, gen, dt);
    Tensor k = rand_normal({B, Hkv, S, D}, 0, 1, gen, dt), v = rand_normal({B, Hkv, S, D}, 0, 1, gen, dt);
    for (int64_t window : {0, 4}) {
      AttentionOptions full;
      full.sliding_window = window;
      auto ref = scaled_dot_product_attention(q, k, v, full).to_vector<double>();
      for (int64_t t = 0; t < S; ++t) {
        AttentionOptions step;
        step.sliding_window = window;
        step.query_offset = t;  // the new token is at position t; keys 0..t are cached
        auto o = scaled_dot_product_attention(q.narrow(2, t, 1), k.narrow(2, 0, t + 1), v.narrow(2, 0, t + 1), step)
                     .to_vector<double>();
        double worst = 0;
        for (int64_t bh = 0; bh < B * H; ++bh)
          for (int64_t d = 0; d < D; ++d) worst = std::max(worst, std::abs(o[size_t(bh * D + d)] - ref[size_t((bh * S + t) * D + d)]));
        INFO(dtype_name(dt) << " window " << window << " step " << t);
        CHECK(worst < (dt == DType::f64 ? 1e-13 : 1e-6));
      }
    }
  }
}

TEST_CASE("attention: errors name the op and the shapes", "[ops][attention][errors]") {
  auto z = [](Shape s) { return Tensor::zeros(s); };
  auto sdpa = [](const Tensor& q, const Tensor& k, const Tensor& v, AttentionOptions o = {}) {
    return scaled_dot_product_attention(q, k, v, o);
  };
  CHECK_THROWS_WITH(sdpa(z({1, 2, 3, 4}), z({1, 2, 3, 5}), z({1, 2, 3, 5})),
                    Catch::Contains("scaled_dot_product_attention") && Catch::Contains("head dims differ") &&
                        Catch::Contains("[1, 2, 3, 4]") && Catch::Contains("[1, 2, 3, 5]"));
  CHECK_THROWS_WITH(sdpa(z({1, 3, 3, 4}), z({1, 2, 3, 4}), z({1, 2, 3, 4})), Catch::Contains("not a multiple"));
  CHECK_THROWS_WITH(sdpa(z({2, 2, 3, 4}), z({1, 2, 3, 4}), z({1, 2, 3, 4})), Catch::Contains("batch sizes differ"));
  CHECK_THROWS_WITH(sdpa(z({1, 2, 3, 4}), z({1, 2, 3, 4}), z({1, 2, 4, 4})), Catch::Contains("same shape"));
  CHECK_THROWS_WITH(sdpa(z({1, 2, 3}), z({1, 2, 3, 4}), z({1, 2, 3, 4})), Catch::Contains("(B, H, T, D)"));
  CHECK_THROWS_WITH(sdpa(z({1, 2, 3, 4}), z({1, 2, 3, 4}), z({1, 2, 3, 4}),
                         with([&](auto& o) { o.key_padding_mask = Tensor::ones({1, 4}); })),
                    Catch::Contains("key_padding_mask must be (B, S) = (1, 3)") && Catch::Contains("[1, 4]"));
  CHECK_THROWS_WITH(sdpa(z({1, 2, 4, 4}), z({1, 2, 3, 4}), z({1, 2, 3, 4})), Catch::Contains("query_offset + T > S"));
  CHECK_THROWS_WITH(sdpa(z({1, 2, 2, 4}), z({1, 2, 3, 4}), z({1, 2, 3, 4}), with([](auto& o) { o.query_offset = 2; })),
                    Catch::Contains("query_offset + T > S"));
  CHECK_THROWS_WITH(sdpa(z({1, 2, 3, 4}), z({1, 2, 3, 4}).to(DType::f64), z({1, 2, 3, 4})),
                    Catch::Contains("dtypes differ"));
  CHECK_THROWS_WITH(sdpa(z({1, 2, 3, 4}).to(DType::bf16), z({1, 2, 3, 4}).to(DType::bf16), z({1, 2, 3, 4}).to(DType::bf16)),
                    Catch::Contains("scaled_dot_product_attention: expected a f32 or f64 tensor"));
  CHECK_THROWS_WITH(sdpa(z({1, 2, 3, 4}), z({1, 2, 3, 4}), z({1, 2, 3, 4}), with([](auto& o) { o.sliding_window = -1; })),
                    Catch::Contains("sliding_window"));
  // Non-causal cross attention does not care where the queries sit.
  CHECK_NOTHROW(sdpa(z({1, 2, 5, 4}), z({1, 2, 3, 4}), z({1, 2, 3, 4}), with([](auto& o) { o.causal = false; })));
}

TEST_CASE("attention dropout: gradient checks with a fixed mask", "[ops][grad][attention][dropout]") {
  // The mask is a function of the Generator's state, so each call of the checked function
  // builds its Generator from the same seed: every evaluation sees the same mask.
  auto attn = [](AttentionOptions opt, uint64_t seed) {
    return [opt, seed](const V& x) mutable {
      Generator gen(seed);
      opt.dropout_p = 0.3;
      opt.gen = &gen;
      return scaled_dot_product_attention(x[0], x[1], x[2], opt);
    };
  };
  SECTION("causal multi-head") {
    CHECK_GRAD(attn({}, 101), randn64({2, 2, 5, 4}, 1), randn64({2, 2, 5, 4}, 2), randn64({2, 2, 5, 4}, 3));
  }
  SECTION("GQA 4/2 with left padding (rows that see no key)") {
    Tensor m = Tensor::from_vector<int64_t>({1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1}, {2, 6});
    CHECK_GRAD(attn(with([&](auto& o) { o.key_padding_mask = m; }), 102), randn64({2, 4, 6, 3}, 4),
               randn64({2, 2, 6, 3}, 5), randn64({2, 2, 6, 3}, 6));
  }
  SECTION("non-causal cross attention, custom scale") {
    CHECK_GRAD(attn(with([](auto& o) { o.causal = false; o.scale = 0.7; }), 103), randn64({2, 1, 3, 4}, 7),
               randn64({2, 1, 6, 4}, 8), randn64({2, 1, 6, 4}, 9));
  }
  SECTION("sliding window over T = 70: crosses the 32-row forward and 64-row backward blocks") {
    CHECK_GRAD(attn(with([](auto& o) { o.sliding_window = 9; }), 104), randn64({1, 2, 70, 2}, 10),
               randn64({1, 1, 70, 2}, 11), randn64({1, 1, 70, 2}, 12));
  }
  SECTION("the checked function really drops something") {
    Tensor q = randn64({2, 2, 5, 4}, 1), k = randn64({2, 2, 5, 4}, 2), v = randn64({2, 2, 5, 4}, 3);
    auto dropped = attn({}, 101)({q, k, v}).to_vector<double>();
    CHECK(max_abs_diff(dropped, scaled_dot_product_attention(q, k, v).to_vector<double>()) > 0.1);
  }
}

TEST_CASE("attention dropout: values against naive loops, the mask over the (B, H, T, S) grid",
          "[ops][attention][dropout]") {
  Tensor pad = Tensor::from_vector<int32_t>(std::vector<int32_t>(80, 1), {2, 40});
  for (int j = 0; j < 7; ++j) pad.data<int32_t>()[40 + j] = 0;
  struct Case {
    const char* name;
    int64_t B, H, Hkv, T, S, D;
    AttentionOptions opt;
  };
  std::vector<Case> cases = {
      {"causal GQA 4/2, 70 rows", 2, 4, 2, 70, 70, 8, {}},
      {"window 6, offset, padding", 2, 2, 1, 33, 40, 8,
       with([&](auto& o) { o.sliding_window = 6; o.query_offset = 5; o.key_padding_mask = pad; })},
      {"non-causal cross", 2, 2, 2, 9, 40, 8, with([&](auto& o) { o.causal = false; })},
  };
  for (const Case& c : cases) {
    for (DType dt : {DType::f64, DType::f32}) {
      Generator data(uint64_t(c.T * 7 + c.S));
      Tensor q = rand_normal({c.B, c.H, c.T, c.D}, 0, 1, data, dt);
      Tensor k = rand_normal({c.B, c.Hkv, c.S, c.D}, 0, 1, data, dt);
      Tensor v = rand_normal({c.B, c.Hkv, c.S, c.D}, 0, 1, data, dt);
      Generator gen(99);
      gen.advance(12345);  // a counter base other than zero
      AttentionOptions opt = c.opt;
      opt.dropout_p = 0.25;
      opt.gen = &gen;
      Tensor out = scaled_dot_product_attention(q, k, v, opt);
      INFO(c.name << " " << dtype_name(dt));
      CHECK(gen.counter() == 12345 + uint64_t(c.B * c.H * c.T * c.S));  // one advance over the full grid
      auto want = naive_attention(q, k, v, opt, 99, 12345);
      CHECK(max_abs_diff(out.to_vector<double>(), want) < (dt == DType::f64 ? 1e-12 : 5e-5));
      // The next call draws a fresh mask.
      CHECK(max_abs_diff(scaled_dot_product_attention(q, k, v, opt).to_vector<double>(), want) > 1e-3);
    }
  }
}

TEST_CASE("attention dropout: p = 0 is the plain kernel, bit for bit, and draws nothing", "[ops][attention][dropout]") {
  Generator data(3);
  Tensor q = rand_normal({2, 4, 40, 16}, 0, 1, data), k = rand_normal({2, 2, 40, 16}, 0, 1, data),
         v = rand_normal({2, 2, 40, 16}, 0, 1, data);
  Generator gen(5);
  AttentionOptions opt;
  opt.gen = &gen;
  CHECK(scaled_dot_product_attention(q, k, v, opt).to_vector<float>() ==
        scaled_dot_product_attention(q, k, v).to_vector<float>());
  CHECK(gen.counter() == 0);
}

TEST_CASE("attention dropout: about a fraction p of the probabilities is dropped", "[ops][attention][dropout]") {
  // q = 0 makes every probability 1/S; v = the identity (D = S) makes out[b,h,i,j] = Pd[i,j],
  // so the output is the dropped probability matrix itself.
  const int64_t B = 2, H = 4, T = 128, S = 64;
  const double p = 0.3;
  Tensor q = Tensor::zeros({B, H, T, S});
  Tensor eye = Tensor::zeros({1, 1, S, S});
  for (int64_t j = 0; j < S; ++j) eye.data<float>()[j * S + j] = 1;
  Tensor v = eye.expand({B, H, S, S}).contiguous();
  Generator gen(2024);
  AttentionOptions opt;
  opt.causal = false;
  opt.dropout_p = p;
  opt.gen = &gen;
  auto out = scaled_dot_product_attention(q, Tensor::zeros({B, H, S, S}), v, opt).to_vector<float>();
  int64_t dropped = 0;
  const float kept_value = float(1.0 / ((1 - p) * double(S)));
  for (float x : out) {
    if (x == 0) ++dropped;
    else CHECK(x == Approx(kept_value).epsilon(1e-6));
  }
  const double frac = double(dropped) / double(out.size());  // 65536 draws: sd ≈ 0.0018
  INFO("dropped fraction " << frac);
  CHECK(std::abs(frac - p) < 0.01);
}

TEST_CASE("attention dropout: same output and gradients for 1 and 2 threads", "[ops][attention][dropout]") {
  Generator data(8);
  Tensor q0 = rand_normal({2, 4, 70, 16}, 0, 1, data), k0 = rand_normal({2, 2, 70, 16}, 0, 1, data),
         v0 = rand_normal({2, 2, 70, 16}, 0, 1, data), g = rand_normal({2, 4, 70, 16}, 0, 1, data);
  auto run = [&](int threads) {
    const int before = omp_get_max_threads();
    omp_set_num_threads(threads);
    Tensor q = q0.clone().requires_grad_(), k = k0.clone().requires_grad_(), v = v0.clone().requires_grad_();
    Generator gen(77);
    AttentionOptions opt;
    opt.dropout_p = 0.2;
    opt.gen = &gen;
    opt.sliding_window = 20;
    Tensor o = scaled_dot_product_attention(q, k, v, opt);
    o.backward(g);
    omp_set_num_threads(before);
    return std::vector<std::vector<float>>{o.to_vector<float>(), q.grad().to_vector<float>(),
                                           k.grad().to_vector<float>(), v.grad().to_vector<float>()};
  };
  auto one = run(1), two = run(2);
  for (size_t i = 0; i < one.size(); ++i) {
    INFO("tensor " << i << " (out, dq, dk, dv)");
    CHECK(one[i] == two[i]);
  }
}

TEST_CASE("attention dropout: averaged over many seeds it is the undropped attention", "[ops][attention][dropout]") {
  Tensor q = randn64({1, 2, 6, 4}, 60), k = randn64({1, 2, 6, 4}, 61), v = randn64({1, 2, 6, 4}, 62);
  const auto want = scaled_dot_product_attention(q, k, v).to_vector<double>();
  std::vector<double> mean(want.size(), 0.0);
  const int n = 4000;
  NoGradGuard ng;
  for (int s = 0; s < n; ++s) {
    Generator gen(uint64_t(1000 + s));
    AttentionOptions opt;
    opt.dropout_p = 0.2;
    opt.gen = &gen;
    auto o = scaled_dot_product_attention(q, k, v, opt).to_vector<double>();
    for (size_t i = 0; i < o.size(); ++i) mean[i] += o[i] / n;
  }
  // Each element's sd over one draw is at most 0.5 |v|, so ≈ 0.008 |v| for the mean of 4000.
  CHECK(max_abs_diff(mean, want) < 0.1);
}

TEST_CASE("attention dropout: errors and edge cases", "[ops][attention][dropout][errors]") {
  Tensor q = randn64({1, 2, 3, 4}, 70), k = randn64({1, 2, 3, 4}, 71), v = randn64({1, 2, 3, 4}, 72);
  CHECK_THROWS_WITH(scaled_dot_product_attention(q, k, v, with([](auto& o) { o.dropout_p = 0.1; })),
                    Catch::Contains("scaled_dot_product_attention") && Catch::Contains("Generator") &&
                        Catch::Contains("dropout_p = 0.1"));
  Generator gen(1);
  CHECK_THROWS_WITH(scaled_dot_product_attention(q, k, v, with([&](auto& o) { o.dropout_p = 1.5; o.gen = &gen; })),
                    Catch::Contains("dropout_p must be in [0, 1]"));
  CHECK_THROWS_WITH(scaled_dot_product_attention(q, k, v, with([&](auto& o) { o.dropout_p = -0.1; o.gen = &gen; })),
                    Catch::Contains("dropout_p must be in [0, 1]"));
  // p = 1 drops everything: zeros out, zero gradients (as torch's dropout with p = 1).
  Tensor qg = q.clone().requires_grad_(), kg = k.clone().requires_grad_(), vg = v.clone().requires_grad_();
  Tensor o = scaled_dot_product_attention(qg, kg, vg, with([&](auto& opt) { opt.dropout_p = 1; opt.gen = &gen; }));
  for (double x : o.to_vector<double>()) CHECK(x == 0);
  sum(o).backward();
  for (const Tensor& t : {qg, kg, vg})
    for (double x : t.grad().to_vector<double>()) CHECK(x == 0);
}

// Hidden (run with "[.bench]"): forward + backward at GPT-2 training sizes.
TEST_CASE("attention: timing B=2 H=12 T=S=256 D=64 f32", "[.bench]") {
  Generator gen(1);
  const int64_t B = 2, H = 12, T = 256, D = 64;
  // As a model makes them: (B, T, H, D) projections seen through a transpose.
  Tensor q = rand_normal({B, T, H, D}, 0, 1, gen).requires_grad_();
  Tensor k = rand_normal({B, T, H, D}, 0, 1, gen).requires_grad_();
  Tensor v = rand_normal({B, T, H, D}, 0, 1, gen).requires_grad_();
  Tensor g = rand_normal({B, H, T, D}, 0, 1, gen);
  double best_f = 1e9, best_fb = 1e9;
  for (int rep = 0; rep < 10; ++rep) {
    auto t0 = std::chrono::steady_clock::now();
    Tensor o = scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2));
    auto t1 = std::chrono::steady_clock::now();
    o.backward(g);
    auto t2 = std::chrono::steady_clock::now();
    best_f = std::min(best_f, std::chrono::duration<double, std::milli>(t1 - t0).count());
    best_fb = std::min(best_fb, std::chrono::duration<double, std::milli>(t2 - t0).count());
    q.zero_grad(), k.zero_grad(), v.zero_grad();
  }
  std::printf("attention B=2 H=12 T=S=256 D=64 f32, %d threads: forward %.2f ms, forward+backward %.2f ms\n",
              omp_get_max_threads(), best_f, best_fb);
}

TEST_CASE("rope: gradient check", "[ops][grad][rope]") {
  Tensor pos = Tensor::from_vector<int64_t>({0, 1, 2, 5, 9});
  CHECK_GRAD([&](const V& x) { return rope(x[0], pos); }, randn64({2, 3, 5, 6}, 40));
  Tensor pos_bt = Tensor::from_vector<int32_t>({0, 1, 2, 3, 7, 8, 9, 10}, {2, 4});
  CHECK_GRAD([&](const V& x) { return rope(x[0].transpose(1, 2), pos_bt, 500.0); }, randn64({2, 4, 3, 8}, 41));
}

TEST_CASE("rope: a hand-computed case", "[ops][rope]") {
  // D = 4, theta = 10000: inv_freq = [1, 1/100]; at position 2 the angles are [2, 0.02].
  Tensor x = Tensor::from_vector<double>({1, 2, 3, 4}, {1, 1, 1, 4});
  auto o = rope(x, Tensor::from_vector<int64_t>({2})).to_vector<double>();
  const double c0 = std::cos(2.0), s0 = std::sin(2.0), c1 = std::cos(0.02), s1 = std::sin(0.02);
  CHECK(o[0] == Approx(1 * c0 - 3 * s0).epsilon(1e-14));
  CHECK(o[1] == Approx(2 * c1 - 4 * s1).epsilon(1e-14));
  CHECK(o[2] == Approx(3 * c0 + 1 * s0).epsilon(1e-14));
  CHECK(o[3] == Approx(4 * c1 + 2 * s1).epsilon(1e-14));
  // Position 0 is the identity; f32 follows HF's float32 angles closely.
  CHECK(rope(x, Tensor::from_vector<int64_t>({0})).to_vector<double>() == std::vector<double>{1, 2, 3, 4});
  auto o32 = rope(x.to(DType::f32), Tensor::from_vector<int32_t>({2})).to_vector<double>();
  CHECK(max_abs_diff(o32, o) < 1e-6);
}

TEST_CASE("rope: q·k depends only on the position difference", "[ops][rope]") {
  Tensor q = randn64({1, 1, 1, 16}, 50), k = randn64({1, 1, 1, 16}, 51);
  auto dot_at = [&](int64_t pq, int64_t pk) {
    auto a = rope(q, Tensor::from_vector<int64_t>({pq})).to_vector<double>();
    auto b = rope(k, Tensor::from_vector<int64_t>({pk})).to_vector<double>();
    double s = 0;
    for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
    return s;
  };
  const double d2 = dot_at(3, 1);
  CHECK(dot_at(10, 8) == Approx(d2).epsilon(1e-12));
  CHECK(dot_at(1000, 998) == Approx(d2).epsilon(1e-10));
  CHECK(dot_at(2, 2) == Approx(dot_at(77, 77)).epsilon(1e-12));
  CHECK(std::abs(dot_at(5, 1) - d2) > 1e-3);  // a different distance gives a different score
}

TEST_CASE("rope: errors", "[ops][rope][errors]") {
  Tensor pos = Tensor::from_vector<int64_t>({0, 1, 2});
  CHECK_THROWS_WITH(rope(Tensor::zeros({1, 2, 3, 5}), pos), Catch::Contains("rope") && Catch::Contains("even"));
  CHECK_THROWS_WITH(rope(Tensor::zeros({1, 2, 4, 4}), pos),
                    Catch::Contains("positions must be (T) = (4)") && Catch::Contains("[3]"));
  CHECK_THROWS_WITH(rope(Tensor::zeros({2, 2, 3, 4}), Tensor::zeros({3, 3}, DType::i64)),
                    Catch::Contains("(B, T) = (2, 3)"));
  CHECK_THROWS_WITH(rope(Tensor::zeros({1, 2, 3, 4}), Tensor::zeros({3})), Catch::Contains("i32 or i64"));
  CHECK_THROWS_WITH(rope(Tensor::zeros({2, 3, 4}), pos), Catch::Contains("(B, H, T, D)"));
}
