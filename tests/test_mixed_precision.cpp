// Mixed precision: gemm_mixed (ops/gemm.hpp), autocast (core/autocast.hpp, ops/autocast.hpp),
// GradScaler (optim/grad_scaler.hpp) and the Trainer's bf16/fp16.
//
// gemm_mixed must be the f32 GEMM of the widened operands, to the bit, at every CPU level. The
// autocast linear must be bit-identical to its definition (round the operands, multiply in f32,
// round the result and every gradient) and agree with torch's CPU autocast (fixtures from
// tools/gen_autocast_fixtures.py, torch 2.15) within one rounding of the lower precision, since
// the sums' order differs. GradScaler must follow torch.amp.GradScaler step for step.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <galvani/core/autocast.hpp>
#include <galvani/io/safetensors.hpp>
#include <galvani/eval/generate.hpp>
#include <galvani/models/auto.hpp>
#include <galvani/models/gpt2.hpp>
#include <galvani/models/mistral.hpp>
#include <galvani/models/peft.hpp>
#include <galvani/ops/attention.hpp>
#include <galvani/ops/matmul.hpp>
#include <galvani/ops/reduction.hpp>
#include <galvani/optim/grad_scaler.hpp>
#include <galvani/quant/nf4_matmul.hpp>
#include <galvani/train/trainer.hpp>
#include <nlohmann/json.hpp>

#include "io_test_util.hpp"
#include "support/cpu_levels.hpp"
#include "support/tiny_models.hpp"
#include "support/training_args.hpp"

using namespace galvani;
using galvani::io::testing::same_bytes;
using galvani::testing::for_each_cpu_capability;
namespace fs = std::filesystem;

namespace {

const fs::path kFixtures = fs::path(GALVANI_SOURCE_DIR) / "tests/fixtures/autocast";

template <class S>
std::vector<S> narrow_all(const std::vector<float>& v) {
  std::vector<S> out;
  out.reserve(v.size());
  for (float x : v) out.push_back(S(x));
  return out;
}

template <class S>
std::vector<float> widen_all(const std::vector<S>& v) {
  std::vector<float> out;
  out.reserve(v.size());
  for (S x : v) out.push_back(float(x));
  return out;
}

// gemm_mixed<TA, TB> against gemm<float> of the widened operands, bit for bit, over the GEMV
// rows (M ≤ 8) and the packed path (several row blocks, K slices, a partial panel), both
// layouts of B, a strided A and accumulation, at every CPU level.
template <class TA, class TB>
void check_gemm_mixed() {
  Generator g(31);
  for (int64_t M : {1, 3, 8, 151})
    for (bool b_t : {false, true})
      for (bool a_strided : {false, true}) {
        const int64_t N = 203, K = 291, ldc = N + 3;
        const std::vector<float> a32 = rand_normal({M * K}, 0, 1, g).to_vector<float>();
        const std::vector<float> b32 = rand_normal({K * N}, 0, 1, g).to_vector<float>();
        std::vector<TA> a;
        std::vector<TB> b;
        if constexpr (std::is_same_v<TA, float>) a = a32; else a = narrow_all<TA>(a32);
        if constexpr (std::is_same_v<TB, float>) b = b32; else b = narrow_all<TB>(b32);
        std::vector<float> aw, bw;
        if constexpr (std::is_same_v<TA, float>) aw = a; else aw = widen_all(a);
        if constexpr (std::is_same_v<TB, float>) bw = b; else bw = widen_all(b);
        const int64_t a_rs = a_strided ? 1 : K, a_cs = a_strided ? M : 1;
        const int64_t b_rs = b_t ? 1 : N, b_cs = b_t ? K : 1;
        INFO("M " << M << " B transposed " << b_t << " A strided " << a_strided);
        for_each_cpu_capability([&](CpuCapability) {
          std::vector<float> want(size_t(M * ldc), 0.5f), got(size_t(M * ldc), 0.5f);
          gemm<float>(M, N, K, aw.data(), a_rs, a_cs, bw.data(), b_rs, b_cs, want.data(), ldc, true);
          gemm_mixed<TA, TB>(M, N, K, a.data(), a_rs, a_cs, b.data(), b_rs, b_cs, got.data(), ldc, true);
          CHECK(std::memcmp(want.data(), got.data(), want.size() * sizeof(float)) == 0);
        });
      }
}

// Values of t rounded to `low` (f32 storage), no autograd.
Tensor rounded(const Tensor& t, DType low) {
  Tensor r = t.detach().clone();
  detail::round_to_precision_(r, low);
  return r;
}

io::StateDict load(const std::string& file) { return io::load_safetensors(kFixtures / file); }
Tensor get(const io::StateDict& sd, const std::string& name) {
  const io::StateEntry* e = sd.find(name);
  REQUIRE(e != nullptr);
  return e->tensor.to(DType::f32).contiguous();
}

// |got - want| ≤ ulps · ulp_low(|want|) elementwise (the spacing of `low` at want's magnitude,
// with an absolute floor at 2^-14 · ulp for values near zero). Returns the worst ratio.
double worst_ulps(const Tensor& got, const Tensor& want, DType low) {
  const std::vector<float> g = got.contiguous().to_vector<float>(), w = want.contiguous().to_vector<float>();
  REQUIRE(g.size() == w.size());
  const int mant = low == DType::bf16 ? 7 : 10;
  double worst = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    const double mag = std::max(std::abs(double(w[i])), 1e-3);
    const double ulp = std::ldexp(1.0, std::ilogb(mag) - mant);
    worst = std::max(worst, std::abs(double(g[i]) - double(w[i])) / ulp);
  }
  return worst;
}

// max |got - want| in units of `low`'s spacing at max |want| (the whole tensor's scale: a
// gradient's small elements come from cancellations that summation order moves freely).
double ulps_of_max(const Tensor& got, const Tensor& want, DType low) {
  const std::vector<float> g = got.contiguous().to_vector<float>(), w = want.contiguous().to_vector<float>();
  REQUIRE(g.size() == w.size());
  double top = 0, diff = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    top = std::max(top, std::abs(double(w[i])));
    diff = std::max(diff, std::abs(double(g[i]) - double(w[i])));
  }
  return diff / std::ldexp(1.0, std::ilogb(top) - (low == DType::bf16 ? 7 : 10));
}

}  // namespace

TEST_CASE("gemm_mixed is the f32 GEMM of the widened operands, bit for bit, at every level", "[mixed][gemm][isa]") {
  check_gemm_mixed<bf16, bf16>();
  check_gemm_mixed<f16, f16>();
  check_gemm_mixed<float, bf16>();  // bf16 weights, f32 activations (decoding)
  check_gemm_mixed<bf16, float>();
}

// gemv_mixed (ops/gemm.hpp): one row as it is, more in zero-padded groups of four, the same sums as
// gemm<float>'s GEMV over the widened B for every M up to 8, both layouts of B, a strided A, with and
// without accumulation.
TEST_CASE("gemv_mixed is gemm<float> over the widened B, bit for bit, for 1 to 8 rows at every level",
          "[mixed][gemm][weight16][isa]") {
  Generator g(43);
  // N = 77: one block; N = 1,100 with K = 300: parallel, balanced blocks of uneven starts and, for
  // the axpy, more than one 512-column chunk per block.
  for (const std::pair<int64_t, int64_t>& nk : {std::pair<int64_t, int64_t>{77, 150}, {1100, 300}})
  for (int64_t M = 1, N = nk.first, K = nk.second; M <= 8; M += (N > 100 ? 3 : 1))
    for (bool b_t : {false, true})
      for (bool a_strided : {false, true})
        for (bool accumulate : {false, true}) {
          const int64_t ldc = N + 2;
          const std::vector<float> a = rand_normal({(M + 1) * K}, 0, 1, g).to_vector<float>();
          const std::vector<bf16> b = narrow_all<bf16>(rand_normal({K * N}, 0, 1, g).to_vector<float>());
          const std::vector<f16> h = narrow_all<f16>(rand_normal({K * N}, 0, 1, g).to_vector<float>());
          const std::vector<float> bw = widen_all(b), hw = widen_all(h);
          const int64_t a_rs = a_strided ? 1 : K, a_cs = a_strided ? M + 1 : 1;  // column-major, padded
          const int64_t b_rs = b_t ? 1 : N, b_cs = b_t ? K : 1;
          INFO("N " << N << " M " << M << " B transposed " << b_t << " A strided " << a_strided << " accumulate "
                    << accumulate);
          for_each_cpu_capability([&](CpuCapability) {
            std::vector<float> want(size_t(M * ldc), 0.25f), got(size_t(M * ldc), 0.25f);
            gemm<float>(M, N, K, a.data(), a_rs, a_cs, bw.data(), b_rs, b_cs, want.data(), ldc, accumulate);
            gemv_mixed<bf16>(M, N, K, a.data(), a_rs, a_cs, b.data(), b_rs, b_cs, got.data(), ldc, accumulate);
            CHECK(std::memcmp(want.data(), got.data(), want.size() * sizeof(float)) == 0);
            std::fill(want.begin(), want.end(), 0.25f), std::fill(got.begin(), got.end(), 0.25f);
            gemm<float>(M, N, K, a.data(), a_rs, a_cs, hw.data(), b_rs, b_cs, want.data(), ldc, accumulate);
            gemv_mixed<f16>(M, N, K, a.data(), a_rs, a_cs, h.data(), b_rs, b_cs, got.data(), ldc, accumulate);
            CHECK(std::memcmp(want.data(), got.data(), want.size() * sizeof(float)) == 0);
          });
        }
  std::vector<float> a(9 * 4), c(9 * 4);
  std::vector<bf16> b(16);
  CHECK_THROWS_WITH(gemv_mixed<bf16>(9, 4, 4, a.data(), 4, 1, b.data(), 4, 1, c.data(), 4),
                    Catch::Contains("at most 8 rows"));
  CHECK_THROWS_WITH(gemv_mixed<bf16>(1, 2, 2, a.data(), 2, 1, b.data(), 4, 2, c.data(), 2),
                    Catch::Contains("contiguous along one dimension"));
}

TEST_CASE("AutocastGuard: state, nesting, enabled=false inside, and bad dtypes", "[mixed][autocast]") {
  CHECK(!is_autocast_enabled());
  {
    AutocastGuard amp(DType::f16);
    CHECK(is_autocast_enabled());
    CHECK(get_autocast_dtype() == DType::f16);
    {
      AutocastGuard off(DType::bf16, false);
      CHECK(!is_autocast_enabled());
    }
    CHECK(is_autocast_enabled());
    CHECK(get_autocast_dtype() == DType::f16);
  }
  CHECK(!is_autocast_enabled());
  CHECK(detail::autocast_state().cache.empty());
  CHECK_THROWS_WITH(AutocastGuard(DType::f32), Catch::Contains("bf16 or f16"));
}

// linear and conv1d_linear under autocast equal their definition bit for bit: the operands
// rounded, the f32 product, the result rounded; backward from the rounded gradient, each
// gradient rounded. A trainable weight is cast once per region (the cache).
TEST_CASE("autocast linear and conv1d_linear: rounded operands, f32 sums, rounded results and gradients",
          "[mixed][autocast][linear]") {
  Generator g(5);
  const Tensor x0 = rand_normal({2, 3, 40}, 0, 1, g), w0 = rand_normal({24, 40}, 0, 0.2, g),
               b0 = rand_normal({24}, 0, 1, g), up = rand_normal({2, 3, 24}, 0, 1, g);
  for (DType low : {DType::bf16, DType::f16})
    for (bool conv : {false, true}) {
      INFO(dtype_name(low) << (conv ? " conv1d_linear" : " linear"));
      const Tensor wl = conv ? w0.transpose(0, 1).contiguous() : w0;
      Tensor x = x0.clone().requires_grad_(), w = wl.clone().requires_grad_(), b = b0.clone().requires_grad_();
      Tensor y;
      {
        AutocastGuard amp(low);
        y = conv ? conv1d_linear(x, w, b) : linear(x, w, b);
        CHECK(detail::autocast_state().cache.size() == 1);  // w, cast once
        Tensor again = conv ? conv1d_linear(x, w, b) : linear(x, w, b);
        CHECK(detail::autocast_state().cache.size() == 1);
        CHECK(same_bytes(again, y));
      }
      CHECK(detail::autocast_state().cache.empty());
      sum(mul(y, up)).backward();
      // The definition with f32 ops on rounded values.
      Tensor xr = rounded(x0, low).requires_grad_(), wr = rounded(wl, low).requires_grad_(),
             br = rounded(b0, low).requires_grad_();
      Tensor yr = conv ? conv1d_linear(xr, wr, br) : linear(xr, wr, br);
      CHECK(same_bytes(y.detach(), rounded(yr, low)));
      yr.backward(rounded(up, low));
      CHECK(same_bytes(x.grad(), rounded(xr.grad(), low)));
      CHECK(same_bytes(w.grad(), rounded(wr.grad(), low)));
      CHECK(same_bytes(b.grad(), rounded(br.grad(), low)));
    }
}

// matmul and the 4-bit linear have no 16-bit kernel of their own: under autocast they are the op
// on rounded inputs with the output rounded, forward and backward — bit for bit.
TEST_CASE("autocast matmul and nf4_linear: the op on rounded inputs, rounded output and gradients",
          "[mixed][autocast][matmul][nf4]") {
  Generator g(8);
  for (DType low : {DType::bf16, DType::f16}) {
    INFO(dtype_name(low));
    const Tensor a0 = rand_normal({2, 5, 64}, 0, 1, g), b0 = rand_normal({64, 7}, 0, 1, g),
                 up = rand_normal({2, 5, 7}, 0, 1, g);
    Tensor a = a0.clone().requires_grad_(), b = b0.clone().requires_grad_();
    Tensor y;
    {
      AutocastGuard amp(low);
      y = matmul(a, b);
    }
    y.backward(up);
    Tensor ar = rounded(a0, low).requires_grad_(), br = rounded(b0, low).requires_grad_();
    Tensor yr = matmul(ar, br);
    CHECK(same_bytes(y.detach(), rounded(yr, low)));
    yr.backward(rounded(up, low));
    CHECK(same_bytes(a.grad(), rounded(ar.grad(), low)));
    CHECK(same_bytes(b.grad(), rounded(br.grad(), low)));

    // A 4-bit weight (64 × 128 in blocks of 64): the input's gradient goes through the same rule.
    const Tensor w = rand_normal({64, 128}, 0, 0.1, g);
    const quant::Quantized4bit q = quant::quantize_4bit(w, quant::Quantize4bitOptions{});
    const quant::Weight4bit w4{q.packed, Tensor::from_vector(q.state.absmax_f32(), {q.state.nblocks()}),
                               quant::QuantType::nf4, 64, 64, 128};
    const Tensor x0 = rand_normal({3, 128}, 0, 1, g), up4 = rand_normal({3, 64}, 0, 1, g);
    Tensor x = x0.clone().requires_grad_();
    Tensor y4;
    {
      AutocastGuard amp(low);
      y4 = quant::nf4_linear(x, w4);
    }
    y4.backward(up4);
    Tensor xr = rounded(x0, low).requires_grad_();
    Tensor y4r = quant::nf4_linear(xr, w4);
    CHECK(same_bytes(y4.detach(), rounded(y4r, low)));
    y4r.backward(rounded(up4, low));
    CHECK(same_bytes(x.grad(), rounded(xr.grad(), low)));
  }
}

TEST_CASE("autocast_round and the weight cache: errors, and the cache across nested guards", "[mixed][autocast]") {
  CHECK_THROWS_WITH(autocast_round(Tensor::zeros({2}, DType::f64), DType::bf16), Catch::Contains("f64"));
  CHECK_THROWS_WITH(autocast_round(Tensor::zeros({2}), DType::f32), Catch::Contains("not bf16 or f16"));
  Tensor w = Tensor::ones({3, 4}).requires_grad_(), x = Tensor::ones({2, 4});
  AutocastGuard amp(DType::bf16);
  linear(x, w);
  CHECK(detail::autocast_state().cache.size() == 1);
  {
    AutocastGuard off(DType::bf16, false);  // switched off inside: the outer region's cache stays
    linear(x, w);
  }
  CHECK(detail::autocast_state().cache.size() == 1);
  {
    AutocastGuard half(DType::f16);  // another dtype: the cached bf16 cast is replaced, not reused
    linear(x, w);
    CHECK(detail::autocast_state().cache.begin()->second.second.dtype() == DType::f16);
  }
  CHECK(detail::autocast_state().cache.size() == 1);
}

TEST_CASE("autocast linear agrees with torch's CPU autocast within one rounding", "[mixed][autocast][torch]") {
  for (const auto& [file, low] : {std::pair{"linear_bf16.safetensors", DType::bf16}, {"linear_f16.safetensors", DType::f16}})
    for (const std::string tag : {"s.", "l."}) {
      INFO(file << " " << tag);
      const io::StateDict sd = load(file);
      Tensor x = get(sd, tag + "x").requires_grad_(), w = get(sd, tag + "w").requires_grad_(),
             b = get(sd, tag + "b").requires_grad_();
      Tensor y;
      {
        AutocastGuard amp(low);
        y = linear(x, w, b);
      }
      y.backward(get(sd, tag + "g"));
      CHECK(worst_ulps(y, get(sd, tag + "y"), low) <= 1.0);
      CHECK(worst_ulps(x.grad(), get(sd, tag + "dx"), low) <= 1.0);
      CHECK(worst_ulps(w.grad(), get(sd, tag + "dw"), low) <= 1.0);
      CHECK(worst_ulps(b.grad(), get(sd, tag + "db"), low) <= 1.0);
      // And autocast changed something: the f32 result is not the rounded one.
      CHECK(!same_bytes(y.detach(), linear(x, w, b).detach()));
    }
}

TEST_CASE("autocast scaled_dot_product_attention agrees with torch's CPU autocast", "[mixed][autocast][torch]") {
  for (const auto& [file, low] : {std::pair{"sdpa_bf16.safetensors", DType::bf16}, {"sdpa_f16.safetensors", DType::f16}}) {
    INFO(file);
    const io::StateDict sd = load(file);
    Tensor q = get(sd, "q").requires_grad_(), k = get(sd, "k").requires_grad_(), v = get(sd, "v").requires_grad_();
    AttentionOptions opt;
    opt.causal = true;
    Tensor out;
    {
      AutocastGuard amp(low);
      out = scaled_dot_product_attention(q, k, v, opt);
    }
    out.backward(get(sd, "g"));
    // torch's flash kernel rounds P (and in backward dP, dS) to the dtype; galvani's keeps them
    // f32 and rounds only inputs and outputs. Element by element that moves small values by many
    // of their own ulps; at the tensor's scale it is within one (measured: 0.22–0.5).
    CHECK(ulps_of_max(out, get(sd, "out"), low) <= 1.0);
    CHECK(ulps_of_max(q.grad(), get(sd, "dq"), low) <= 1.0);
    CHECK(ulps_of_max(k.grad(), get(sd, "dk"), low) <= 1.0);
    CHECK(ulps_of_max(v.grad(), get(sd, "dv"), low) <= 1.0);
    // Every output value is a value of the lower precision.
    CHECK(same_bytes(out.detach(), rounded(out, low)));
  }
}

TEST_CASE("GradScaler follows torch.amp.GradScaler update for update", "[mixed][grad_scaler][torch]") {
  std::ifstream f(kFixtures / "grad_scaler.json");
  REQUIRE(f);
  const nlohmann::json fixture = nlohmann::json::parse(f);
  REQUIRE(fixture["cases"].size() == 3);
  for (const nlohmann::json& ref : fixture["cases"]) {
    GradScalerOptions o;
    o.init_scale = ref["init_scale"];
    o.growth_factor = ref["growth_factor"];
    o.backoff_factor = ref["backoff_factor"];
    o.growth_interval = ref["growth_interval"];
    INFO("init_scale " << o.init_scale << " growth " << o.growth_factor << " backoff " << o.backoff_factor);
    GradScaler scaler(o);
    Tensor p = Tensor::from_vector(ref["param"].get<std::vector<float>>(), {3}).requires_grad_();
    struct Sgd {  // torch.optim.SGD(lr=1)
      Tensor p;
      void step() {
        NoGradGuard ng;
        float* d = p.data<float>();
        const float* gr = p.grad().data<float>();
        for (int i = 0; i < 3; ++i) d[i] -= gr[i];
      }
    } sgd{p};
    int i = 0;
    for (const auto& st : ref["steps"]) {
      INFO("update " << i);
      p.set_grad(Tensor());
      Tensor coef = Tensor::from_vector(std::vector<float>{1.0f, 0.25f, -3.0f - float(i)}, {3});
      scaler.scale(sum(mul(p, coef))).backward();
      if (st["overflow"].get<bool>()) p.grad().data<float>()[1] = INFINITY;
      const std::vector<float> scaled = p.grad().to_vector<float>();
      bool any_inf = false;
      for (float v : scaled) any_inf = any_inf || !std::isfinite(v);
      CHECK(scaler.unscale_({p}) == any_inf);
      const std::vector<float> grad = p.grad().to_vector<float>();
      for (int j = 0; j < 3; ++j) {
        const nlohmann::json& want = st["unscaled_grad"][size_t(j)];
        if (want.is_string())  // "inf" (JSON has no infinities)
          CHECK(std::isinf(grad[size_t(j)]));
        else
          CHECK(grad[size_t(j)] == want.get<double>());
      }
      CHECK_THROWS_WITH(scaler.unscale_({p}), Catch::Contains("already called"));
      CHECK(scaler.step(sgd, {p}) == st["stepped"].get<bool>());
      scaler.update();
      CHECK(scaler.get_scale() == st["scale_after"].get<double>());
      const std::vector<float> after = p.to_vector<float>();
      for (int j = 0; j < 3; ++j) CHECK(after[size_t(j)] == st["param_after"][size_t(j)].get<float>());
      ++i;
    }
    CHECK(i == int(ref["steps"].size()));
  }
}

TEST_CASE("GradScaler: bad options, states and gradients are errors naming them", "[mixed][grad_scaler][errors]") {
  CHECK_THROWS_WITH(GradScaler(GradScalerOptions{0.0}), Catch::Contains("init_scale"));
  CHECK_THROWS_WITH(GradScaler(GradScalerOptions{1e39}), Catch::Contains("init_scale"));  // beyond f32
  CHECK_THROWS_WITH(GradScaler(GradScalerOptions{1024, 1.0}), Catch::Contains("growth_factor"));
  CHECK_THROWS_WITH(GradScaler(GradScalerOptions{1024, 2.0, 1.0}), Catch::Contains("backoff_factor"));
  CHECK_THROWS_WITH(GradScaler(GradScalerOptions{1024, 2.0, 0.5, 0}), Catch::Contains("growth_interval"));
  GradScaler s;
  CHECK_THROWS_WITH(s.update(), Catch::Contains("no inf checks"));
  CHECK_THROWS_WITH(s.load_state(1024, 2000), Catch::Contains("growth_tracker"));
  CHECK_THROWS_WITH(s.load_state(-1, 0), Catch::Contains("scale"));
  // A non-f32 gradient is refused before any gradient is divided.
  Tensor a = Tensor::from_vector(std::vector<float>{8, 16}, {2}).requires_grad_();
  Tensor b = Tensor::from_vector(std::vector<double>{1, 2}, {2}).requires_grad_();
  a.set_grad(Tensor::from_vector(std::vector<float>{65536, 65536}, {2}));
  b.set_grad(Tensor::from_vector(std::vector<double>{1, 1}, {2}));
  CHECK_THROWS_WITH(s.unscale_({a, b}), Catch::Contains("parameter 1 is f64"));
  CHECK(a.grad().to_vector<float>() == std::vector<float>{65536, 65536});
}

// A small model's forward under autocast: every logit a bf16 value, close to f32's, not equal.
TEST_CASE("GPT-2 and Mistral under autocast: logits near f32's, in the lower precision", "[mixed][autocast][models]") {
  std::vector<int64_t> ids_v;
  for (int64_t t = 0; t < 24; ++t) ids_v.push_back((7 * t + 3) % 256);
  const Tensor ids = Tensor::from_vector(ids_v, {2, 12});
  auto check = [&](CausalLM& m) {
    m.eval();
    NoGradGuard ng;
    const Tensor f32 = m.forward(ids, Tensor());
    for (DType low : {DType::bf16, DType::f16}) {
      INFO(dtype_name(low));
      Tensor amp;
      {
        AutocastGuard guard(low);
        amp = m.forward(ids, Tensor());
      }
      CHECK(same_bytes(amp, rounded(amp, low)));  // the head is a linear: its output is rounded
      CHECK(!same_bytes(amp, f32));
      const double bound = low == DType::bf16 ? 0.05 : 0.01;  // relative to max(1, |logit|)
      const std::vector<float> a = amp.to_vector<float>(), b = f32.to_vector<float>();
      double worst = 0;
      for (size_t i = 0; i < a.size(); ++i)
        worst = std::max(worst, std::abs(double(a[i]) - double(b[i])) / std::max(1.0, std::abs(double(b[i]))));
      CHECK(worst < bound);
      CHECK(worst > 0);
    }
  };
  GPT2LMHeadModel gpt2(testing::tiny_gpt2_config(), 9);
  check(gpt2);
  const MistralConfig mc = testing::tiny_mistral_config("mistral");
  MistralForCausalLM mistral(mc, 9);
  check(mistral);
}

// Weight-only 16-bit (ops/matmul.hpp's weight_only_16): an f32 input with bf16/f16 parameters is
// the f32 op over the widened parameters, bit for bit — the GEMV rows (M ≤ 8, gemv_mixed for bf16),
// the widened-copy GEMM beyond, both linear layouts, 2-byte and f32 biases, at every CPU level — and
// a parameter's gradient is the f32 one rounded to its dtype.
TEST_CASE("bf16/f16 weights under f32 inputs: linear, conv1d_linear, embedding and the norms are the f32 ops over the "
          "widened weights, bit for bit", "[mixed][weight16][isa]") {
  Generator g(41);
  const int64_t K = 83, N = 70;
  for (DType low : {DType::bf16, DType::f16})
    for (int64_t M : {1, 5, 8, 9, 33})
      for (bool fan_in_fan_out : {false, true})
        for (bool f32_bias : {false, true}) {
          INFO(dtype_name(low) << " M " << M << " fan_in_fan_out " << fan_in_fan_out << " f32 bias " << f32_bias);
          const Tensor w = (fan_in_fan_out ? rand_normal({K, N}, 0, 1, g) : rand_normal({N, K}, 0, 1, g)).to(low);
          const Tensor b = f32_bias ? rand_normal({N}, 0, 1, g) : rand_normal({N}, 0, 1, g).to(low);
          const Tensor x = rand_normal({M, K}, 0, 1, g), gy = rand_normal({M, N}, 0, 1, g);
          const auto layer = [&](const Tensor& xi, const Tensor& wi, const Tensor& bi) {
            return fan_in_fan_out ? conv1d_linear(xi, wi, bi) : linear(xi, wi, bi);
          };
          for_each_cpu_capability([&](CpuCapability) {  // the reference at the same level: the same kernels' sums
            Tensor xr = x.detach().clone().requires_grad_(), wr = w.to(DType::f32).detach().requires_grad_();
            Tensor br = b.to(DType::f32).detach().requires_grad_();
            const Tensor want_y = layer(xr, wr, br);
            want_y.backward(gy);
            const Tensor want_dx = xr.grad(), want_dw = wr.grad().to(low), want_db = br.grad().to(b.dtype());
            Tensor xg = x.detach().clone().requires_grad_(), wg = w.detach().clone().requires_grad_();
            Tensor bg = b.detach().clone().requires_grad_();
            Tensor y = layer(xg, wg, bg);
            CHECK(y.dtype() == DType::f32);
            CHECK(same_bytes(y, want_y));
            y.backward(gy);
            CHECK(same_bytes(xg.grad(), want_dx));
            CHECK(wg.grad().dtype() == low);
            CHECK(same_bytes(wg.grad(), want_dw));
            CHECK(same_bytes(bg.grad(), want_db));
          });
        }
  // A 3-D input, no bias, under no_grad (decoding's case).
  {
    NoGradGuard ng;
    const Tensor w = rand_normal({N, K}, 0, 1, g).to(DType::bf16), x = rand_normal({2, 3, K}, 0, 1, g);
    const Tensor y = linear(x, w);
    CHECK(y.shape() == Shape{2, 3, N});
    CHECK(same_bytes(y, linear(x, w.to(DType::f32))));
  }
  // A bias of a third dtype is refused, naming both.
  CHECK_THROWS_WITH(linear(rand_normal({1, K}, 0, 1, g), rand_normal({N, K}, 0, 1, g).to(DType::bf16),
                           rand_normal({N}, 0, 1, g).to(DType::f16)),
                    Catch::Contains("bias f16") && Catch::Contains("bf16 weight"));

  for (DType low : {DType::bf16, DType::f16}) {
    INFO(dtype_name(low));
    // embedding: f32 rows from a 2-byte table; the table's gradient in its dtype.
    const Tensor table = rand_normal({40, 24}, 0, 1, g).to(low);
    const Tensor ids = Tensor::from_vector(std::vector<int64_t>{3, 39, 0, 3, 17, 3}, {2, 3});
    const Tensor gy = rand_normal({2, 3, 24}, 0, 1, g);
    Tensor tr = table.to(DType::f32).detach().requires_grad_(), tg = table.detach().clone().requires_grad_();
    Tensor want = embedding(tr, ids), got = embedding(tg, ids);
    CHECK(got.dtype() == DType::f32);
    CHECK(same_bytes(got, want));
    want.backward(gy);
    got.backward(gy);
    CHECK(same_bytes(tg.grad(), tr.grad().to(low)));
    CHECK_THROWS_WITH(embedding(table, Tensor::from_vector(std::vector<int64_t>{40}, {1})), Catch::Contains("out of range"));
    // rms_norm and layer_norm with 2-byte weight and bias.
    const Tensor x = rand_normal({5, 24}, 0, 1, g);
    const Tensor nw = rand_normal({24}, 1, 0.1, g).to(low), nb = rand_normal({24}, 0, 0.1, g).to(low);
    CHECK(same_bytes(rms_norm(x, nw, 1e-5), rms_norm(x, nw.to(DType::f32), 1e-5)));
    CHECK(same_bytes(layer_norm(x, nw, nb, 1e-5), layer_norm(x, nw.to(DType::f32), nb.to(DType::f32), 1e-5)));
    // Gradients: the f32 ones rounded to the parameters' dtype.
    const Tensor gy_n = rand_normal({5, 24}, 0, 1, g);
    Tensor nwg = nw.detach().clone().requires_grad_(), nwr = nw.to(DType::f32).detach().requires_grad_();
    rms_norm(x, nwg, 1e-5).backward(gy_n);
    rms_norm(x, nwr, 1e-5).backward(gy_n);
    CHECK(nwg.grad().dtype() == low);
    CHECK(same_bytes(nwg.grad(), nwr.grad().to(low)));
    Tensor lwg = nw.detach().clone().requires_grad_(), lbg = nb.detach().clone().requires_grad_();
    Tensor lwr = nw.to(DType::f32).detach().requires_grad_(), lbr = nb.to(DType::f32).detach().requires_grad_();
    layer_norm(x, lwg, lbg, 1e-5).backward(gy_n);
    layer_norm(x, lwr, lbr, 1e-5).backward(gy_n);
    CHECK(same_bytes(lwg.grad(), lwr.grad().to(low)));
    CHECK(same_bytes(lbg.grad(), lbr.grad().to(low)));
  }
}

// A model built or loaded in bf16 (BuildOptions / LoadCausalLMOptions dtype) keeps every parameter
// in 2 bytes and computes in f32: its logits, cached decoding steps and greedy tokens are those of
// the f32 model whose weights are the bf16 ones widened — to the bit.
TEST_CASE("a model stored in bf16 computes as the f32 model over its rounded weights: logits, KV cache, greedy tokens",
          "[mixed][weight16][models]") {
  std::vector<int64_t> ids_v;
  for (int64_t t = 0; t < 24; ++t) ids_v.push_back((7 * t + 3) % 256);
  const Tensor ids = Tensor::from_vector(ids_v, {2, 12});
  const std::vector<int64_t> prompt = {5, 77, 203};
  GenerationOptions opt;
  opt.max_new_tokens = 12;
  opt.stop_at_eos = false;
  // model16 in bf16; model32 in f32 (other random weights), then loaded from model16's state dict.
  auto check = [&](CausalLM& model16, CausalLM& model32) {
    for (const auto& [name, p] : model16.named_parameters()) {
      INFO(name);
      CHECK(p.dtype() == DType::bf16);
    }
    const io::StateDict sd16 = model16.state_dict();
    io::StateDict sd;
    for (const auto& e : sd16) sd.insert(e.name, e.tensor.to(DType::f32).contiguous());
    model32.load_state_dict(sd);
    model16.eval();
    model32.eval();
    NoGradGuard ng;
    const Tensor l16 = model16.forward(ids, Tensor()), l32 = model32.forward(ids, Tensor());
    CHECK(l16.dtype() == DType::f32);
    CHECK(same_bytes(l16, l32));
    for_each_cpu_capability([&](CpuCapability) {
      CHECK(generate(model16, prompt, opt) == generate(model32, prompt, opt));
      // The cached steps themselves (one row: gemv_mixed), logits to the bit.
      KVCache c16 = model16.new_cache(1, 16), c32 = model32.new_cache(1, 16);
      const Tensor p = Tensor::from_vector(prompt, {1, int64_t(prompt.size())});
      CHECK(same_bytes(model16.forward(p, Tensor(), &c16), model32.forward(p, Tensor(), &c32)));
      for (int64_t id : {11, 250, 42}) {
        const Tensor step = Tensor::from_vector(std::vector<int64_t>{id}, {1, 1});
        CHECK(same_bytes(model16.forward(step, Tensor(), &c16), model32.forward(step, Tensor(), &c32)));
      }
    });
    // load_causal_lm(dir, bf16) of an f32 directory: the same rounding as .to(bfloat16).
    const fs::path dir = io::testing::scratch_dir("galvani_weight16_" + model32.config_json().value("model_type", std::string("m")));
    save_causal_lm(model32, dir);
    auto loaded = load_causal_lm(dir, DType::bf16);
    for (const auto& [name, p] : loaded->named_parameters()) {
      INFO(name);
      CHECK(p.dtype() == DType::bf16);
    }
    loaded->eval();
    CHECK(same_bytes(loaded->forward(ids, Tensor()), l32));
    fs::remove_all(dir);
  };
  BuildOptions bf16_opts{9};
  bf16_opts.dtype = DType::bf16;
  GPT2LMHeadModel gpt2_16(testing::tiny_gpt2_config(), bf16_opts), gpt2_32(testing::tiny_gpt2_config(), 1);
  check(gpt2_16, gpt2_32);
  const MistralConfig mc = testing::tiny_mistral_config("llama");
  MistralForCausalLM llama_16(mc, bf16_opts), llama_32(mc, 1);
  check(llama_16, llama_32);
}

// A model stored in bf16 cannot take optimizer updates (they are f32): the Trainer refuses it before
// writing anything, naming a parameter; a LoRA over it trains (f32 adapters, peft's
// autocast_adapter_dtype) and leaves the bf16 base as it was.
TEST_CASE("a bf16 model: the Trainer refuses its trainable bf16 weights and trains a LoRA over it",
          "[mixed][weight16][trainer]") {
  BuildOptions opts{5};
  opts.dtype = DType::bf16;
  {
    GPT2LMHeadModel m(testing::tiny_gpt2_config(), opts);
    const fs::path out = io::testing::scratch_dir("galvani_weight16_full");
    fs::remove_all(out);
    Trainer t(m, testing::quick_training_args(out), testing::pattern_rows(8), 0);
    CHECK_THROWS_WITH(t.train(), Catch::Contains("'transformer.wte.weight' is bf16 and trainable") &&
                                     Catch::Contains("load the model in float32"));
    CHECK(!fs::exists(out));
  }
  GPT2LMHeadModel m(testing::tiny_gpt2_config(), opts);
  std::map<std::string, Tensor> before;
  for (const auto& [name, p] : m.named_parameters()) before[name] = p.detach().clone();
  LoraConfig cfg;
  cfg.r = 4;
  cfg.lora_alpha = 8;
  REQUIRE(!get_peft_model(m, cfg).empty());
  const fs::path out = io::testing::scratch_dir("galvani_weight16_lora");
  Trainer t(m, testing::quick_training_args(out), testing::pattern_rows(16), 0);
  const TrainResult r = t.train();
  CHECK(std::isfinite(r.final_loss));
  int lora = 0;
  for (const auto& [name, p] : m.named_parameters()) {
    INFO(name);
    if (name.find("lora_") != std::string::npos) {
      CHECK(p.dtype() == DType::f32);
      if (name.find("lora_B") != std::string::npos) {  // B starts at zero: the updates moved it
        const std::vector<float> v = p.to_vector<float>();
        CHECK(std::any_of(v.begin(), v.end(), [](float x) { return x != 0; }));
      }
      ++lora;
    } else {
      CHECK(p.dtype() == DType::bf16);
      std::string plain = name;  // the name before get_peft_model wrapped the layer
      if (const size_t at = plain.find("base_layer."); at != std::string::npos) plain.erase(at, 11);
      CHECK(same_bytes(p, before.at(plain)));
    }
  }
  CHECK(lora == 2 * testing::tiny_gpt2_config().n_layer);  // A and B of each layer's c_attn
  fs::remove_all(out);
}

namespace {

using testing::pattern_rows;

std::vector<nlohmann::json> read_log(const fs::path& dir) {
  std::ifstream f(dir / "log.jsonl");
  std::vector<nlohmann::json> out;
  for (std::string line; std::getline(f, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

}  // namespace

// The Trainer with bf16 and fp16 learns the toy task as the f32 run does: the same data, the
// same seed, the loss falls by as much (within 0.05 nats), the test loss ends within 2% of f32's,
// and the weights stay f32.
TEST_CASE("Trainer with bf16 and fp16: the loss falls as in f32", "[mixed][trainer]") {
  const Trainer::Rows rows = pattern_rows(40), eval = pattern_rows(6);
  std::map<std::string, double> first, last, eval_last;
  for (const std::string mode : {"no", "bf16", "fp16"}) {
    INFO(mode);
    GPT2Config c = testing::tiny_gpt2_config();
    c.n_embd = 128;  // room to learn the pattern's table within 40 updates
    GPT2LMHeadModel m(c, 3);
    TrainingArguments a = testing::quick_training_args(io::testing::scratch_dir("galvani_test_mixed_" + mode));
    a.num_train_epochs = 2;
    a.learning_rate = 3e-3;
    a.bf16 = mode == "bf16";
    a.fp16 = mode == "fp16";
    Trainer t(m, a, rows, 0, eval);
    const TrainResult r = t.train();
    REQUIRE(r.log.size() == 40);
    for (int i = 0; i < 5; ++i) first[mode] += r.log[size_t(i)].loss / 5, last[mode] += r.log[size_t(35 + i)].loss / 5;
    eval_last[mode] = r.eval_loss.back().second;
    for (const auto& [name, p] : m.named_parameters()) CHECK(p.dtype() == DType::f32);
    CHECK(last[mode] < first[mode] - 0.25);  // measured: 5.59 -> 5.16-5.17 in each precision
  }
  for (const std::string mode : {"bf16", "fp16"}) {
    INFO(mode << ": eval loss " << eval_last[mode] << " vs f32 " << eval_last["no"]);
    CHECK(std::abs(eval_last[mode] - eval_last["no"]) < 0.02 * eval_last["no"]);
    CHECK(std::abs(last[mode] - last["no"]) < 0.05);
    CHECK(eval_last[mode] != eval_last["no"]);  // it did run in another precision
  }
}

// A scale far too large for f16 (2^30): the first updates overflow and are skipped, each halving
// the scale, with no optimizer and no scheduler step; then training proceeds at the schedule's
// first learning rate. Skipped updates still count as steps (HF's global_step) and are logged
// as HF logs them (loss, the lr not advanced) with the new scale.
TEST_CASE("Trainer with fp16: overflowing updates are skipped, the scale halves, the schedule waits",
          "[mixed][trainer][grad_scaler]") {
  const Trainer::Rows rows = pattern_rows(40);
  GPT2LMHeadModel m(testing::tiny_gpt2_config(), 3);
  const fs::path out = io::testing::scratch_dir("galvani_test_fp16_overflow");
  TrainingArguments a = testing::quick_training_args(out);
  a.fp16 = true;
  a.num_train_epochs = 2;
  a.warmup_steps = 0;
  a.lr_scheduler_type = "linear";
  a.save_steps = 1;
  a.grad_scaler.init_scale = std::ldexp(1.0, 30);
  const io::StateDict initial = m.state_dict();
  std::map<std::string, Tensor> before;
  for (const auto& e : initial) before[e.name] = e.tensor.clone();
  Trainer t(m, a, rows, 0, {}, [](const CausalLM& mm, const fs::path& d) {
    io::save_safetensors(d / "model.safetensors", mm.state_dict());
  });
  const TrainResult r = t.train();
  CHECK(r.global_step == 40);  // two epochs of 40 rows, batch 2: skipped updates count
  const std::vector<nlohmann::json> log = read_log(out);
  REQUIRE(log.size() == 40);
  size_t skipped = 0;
  double scale = std::ldexp(1.0, 30);
  while (skipped < log.size() && log[skipped].contains("skipped_overflow")) {
    INFO("update " << skipped + 1);
    scale /= 2;
    CHECK(log[skipped]["loss_scale"].get<double>() == scale);
    CHECK(log[skipped]["step"].get<int64_t>() == int64_t(skipped) + 1);
    CHECK(std::isfinite(log[skipped]["loss"].get<double>()));
    ++skipped;
  }
  INFO(skipped << " updates skipped at the start");
  CHECK(skipped >= 3);  // the logits' gradient alone, ~1/46 of the scale, is far above f16's 65,504
  REQUIRE(skipped < log.size());
  // Every entry's lr is the schedule's at the number of updates made before it: the first made
  // update runs at factor(0) = 1, not 1 - skipped / total.
  const LRSchedule sched{LRSchedule::Kind::linear, 0, 40};
  int64_t made = 0;
  for (const auto& e : log) {
    INFO("step " << e["step"]);
    CHECK(e["learning_rate"].get<double>() == a.learning_rate * sched.factor(made));
    made += !e.contains("skipped_overflow");
  }
  // The checkpoints of the skipped updates hold the initial weights; Adam's step count is the
  // number of updates made.
  for (size_t k = 1; k <= skipped; ++k) {
    const io::StateDict ck = io::load_safetensors(out / ("checkpoint-" + std::to_string(k)) / "model.safetensors");
    for (const auto& [name, t0] : before) {
      INFO("checkpoint-" << k << " " << name);
      const io::StateEntry* e = ck.find(name);
      REQUIRE(e != nullptr);
      CHECK(same_bytes(e->tensor, t0));
    }
  }
  const nlohmann::json st = io::read_json_file(out / "checkpoint-40" / "trainer_state.json");
  CHECK(st["optimizer_step_count"].get<int64_t>() == made);
  CHECK(st["optimizer_steps_skipped"].get<int64_t>() == 40 - made);
  CHECK(st["mixed_precision"] == "fp16");
  // No growth within 2,000 updates: the scale is 2^30 halved once per skip.
  CHECK(st["scaler"]["scale"].get<double>() == std::ldexp(1.0, 30 - int(40 - made)));
}

// An fp16 run's checkpoint cannot be resumed as bf16 or f32, nor without its scaler state.
TEST_CASE("resuming an fp16 checkpoint: another precision or a missing scaler state is refused", "[mixed][trainer]") {
  const Trainer::Rows rows = pattern_rows(8);
  const fs::path out = io::testing::scratch_dir("galvani_test_fp16_resume_errors");
  const auto save = [](const CausalLM& mm, const fs::path& d) {
    io::save_safetensors(d / "model.safetensors", mm.state_dict());
  };
  {
    GPT2LMHeadModel m(testing::tiny_gpt2_config(), 3);
    TrainingArguments a = testing::quick_training_args(out);
    a.fp16 = true;
    a.save_steps = 2;
    Trainer(m, a, rows, 0, {}, save).train();
  }
  const auto resume = [&](bool fp16, bool bf16) {
    GPT2LMHeadModel m(testing::tiny_gpt2_config(), 3);
    TrainingArguments a = testing::quick_training_args(out);
    a.fp16 = fp16;
    a.bf16 = bf16;
    a.save_steps = 2;
    a.resume_from_checkpoint = (out / "checkpoint-2").string();
    Trainer(m, a, rows, 0, {}, save).train();
  };
  CHECK_THROWS_WITH(resume(false, true), Catch::Contains("mixed_precision") && Catch::Contains("fp16"));
  CHECK_THROWS_WITH(resume(false, false), Catch::Contains("mixed_precision"));
  nlohmann::json st = io::read_json_file(out / "checkpoint-2" / "trainer_state.json");
  st.erase("scaler");
  io::write_json_file(out / "checkpoint-2" / "trainer_state.json", st);
  CHECK_THROWS_WITH(resume(true, false), Catch::Contains("no \"scaler\" state"));
}

TEST_CASE("TrainingArguments: fp16 with bf16, and a bad grad_scaler, are errors naming them", "[mixed][trainer]") {
  TrainingArguments a;
  a.fp16 = a.bf16 = true;
  CHECK_THROWS_WITH(a.validate(), Catch::Contains("fp16 and bf16"));
  a.bf16 = false;
  a.grad_scaler.growth_factor = 0.5;
  CHECK_THROWS_WITH(a.validate(), Catch::Contains("growth_factor"));
}
