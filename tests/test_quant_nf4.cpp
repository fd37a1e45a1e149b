// NF4/FP4 4-bit quantization against the bitsandbytes package (fixtures written by
// tools/gen_nf4_fixtures.py with bitsandbytes 0.50.2 on the CPU): packed bytes, absmax, nested
// absmax, offset, quant-state JSON and dequantized values, byte for byte.
#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>
#include <set>
#include <galvani/io/safetensors.hpp>
#include <galvani/quant/quantize_4bit.hpp>

#include "io_test_util.hpp"
#include "support/cpu_levels.hpp"

using namespace galvani;
using namespace galvani::quant;
namespace fs = std::filesystem;
using galvani::io::testing::same_bytes;
using galvani::testing::for_each_cpu_capability;

namespace {
const fs::path kDir = fs::path(GALVANI_SOURCE_DIR) / "tests/fixtures/nf4";

std::string as_string(const Tensor& u8) {
  const Tensor t = u8.contiguous();
  return std::string(reinterpret_cast<const char*>(t.raw_data()), size_t(t.numel()));
}
// The fixture's case names: every "<case>.input".
std::vector<std::string> cases(const io::StateDict& sd) {
  std::vector<std::string> out;
  for (const auto& name : sd.names())
    if (name.size() > 6 && name.ends_with(".input")) out.push_back(name.substr(0, name.size() - 6));
  return out;
}
const io::StateEntry* quant_state_entry(const io::StateDict& sd, const std::string& prefix) {
  if (auto* e = sd.find(prefix + ".quant_state.bitsandbytes__nf4")) return e;
  return sd.find(prefix + ".quant_state.bitsandbytes__fp4");
}
}  // namespace

TEST_CASE("the NF4/FP4 tables and the 8-bit dynamic map are bitsandbytes' own", "[quant][nf4]") {
  io::StateDict q = io::load_safetensors(kDir / "quantize_4bit.safetensors");
  io::StateDict b8 = io::load_safetensors(kDir / "blockwise8.safetensors");
  CHECK(same_bytes(code4_table(QuantType::nf4), q.at("nf4_bs64.weight.quant_map")));
  CHECK(same_bytes(code4_table(QuantType::fp4), q.at("fp4_bs64.weight.quant_map")));
  CHECK(same_bytes(Tensor::from_vector(dynamic_map(), {256}), b8.at("dynamic_map")));
  CHECK(same_bytes(Tensor::from_vector(dynamic_map(), {256}), q.at("nf4_bs64_dq.weight.nested_quant_map")));
}

TEST_CASE("per-element arithmetic: nibble order, midpoints, block index", "[quant][nf4]") {
  // The even element is the high nibble.
  const uint8_t b[2] = {pack_nibbles(0xA, 0x3), pack_nibbles(0x7, 0xF)};
  CHECK(b[0] == 0xA3);
  CHECK(nibble_at(b, 0) == 0xA);
  CHECK(nibble_at(b, 1) == 0x3);
  CHECK(nibble_at(b, 2) == 0x7);
  CHECK(nibble_at(b, 3) == 0xF);
  // A value exactly on a midpoint takes the lower code; just above it, the upper one.
  for (int k = 0; k < 15; ++k) {
    const float m = code4_midpoint(QuantType::nf4, k);
    CHECK(quantize_code4(QuantType::nf4, m) == k);
    CHECK(quantize_code4(QuantType::nf4, std::nextafter(m, 2.0f)) == k + 1);
  }
  CHECK(quantize_code4(QuantType::nf4, 0.0f) == 7);
  CHECK(quantize_code4(QuantType::fp4, 0.0f) == 0);
  CHECK(quantize_code4(QuantType::fp4, -1.0f) == 11);
  CHECK(quantize_code4(QuantType::nf4, 5.0f) == 15);  // clamped
  CHECK(block_of(63, 64) == 0);
  CHECK(block_of(64, 64) == 1);
  CHECK(num_blocks(129, 64) == 3);
  // Nested absmax: two roundings, not one FMA.
  CHECK(dequantize_nested_absmax(0.5f, 3.0f, 0.25f) == 1.75f);
}

TEST_CASE("torch's float32 mean, reproduced bit for bit (the double-quant offset)", "[quant][nf4]") {
  io::StateDict b8 = io::load_safetensors(kDir / "blockwise8.safetensors");
  int checked = 0;
  for (const auto& name : b8.names()) {
    if (!name.starts_with("mean.") || name.ends_with(".value")) continue;
    const Tensor& v = b8.at(name);
    const float want = b8.at(name + ".value").data<float>()[0];
    INFO(name);
    CHECK(torch_mean_f32(v.data<float>(), v.numel()) == want);
    ++checked;
  }
  CHECK(checked == 16);
}

TEST_CASE("blockwise 8-bit: the CPU table rule and the CUDA nearest rule", "[quant][nf4]") {
  io::StateDict b8 = io::load_safetensors(kDir / "blockwise8.safetensors");
  int64_t rules_differ = 0;
  for (const char* name : {"b8_random", "b8_absmax_like", "b8_short"}) {
    INFO(name);
    const std::string c = name;
    const Tensor& x = b8.at(c + ".input");
    Blockwise8 cpu = quantize_blockwise8(x.data<float>(), x.numel(), 256, Round8::cpu);
    Blockwise8 cuda = quantize_blockwise8(x.data<float>(), x.numel(), 256, Round8::cuda);
    CHECK(same_bytes(Tensor::from_vector(cpu.codes, {x.numel()}), b8.at(c + ".codes_cpu")));
    CHECK(same_bytes(Tensor::from_vector(cpu.absmax, {int64_t(cpu.absmax.size())}), b8.at(c + ".absmax")));
    // No exact ties in random data, so the CUDA rule equals torch.bucketize over the midpoints.
    CHECK(same_bytes(Tensor::from_vector(cuda.codes, {x.numel()}), b8.at(c + ".codes_nearest")));
    for (int64_t i = 0; i < x.numel(); ++i) rules_differ += cpu.codes[size_t(i)] != cuda.codes[size_t(i)];
  }
  CHECK(rules_differ > 0);  // the fixture holds a value where the two rules disagree
}

TEST_CASE("quantize_4bit is byte-identical to bitsandbytes' quantize_4bit", "[quant][nf4][fixture]") {
  io::StateDict q = io::load_safetensors(kDir / "quantize_4bit.safetensors");
  const auto names = cases(q);
  CHECK(names.size() == 19);
  const io::json manifest = io::read_json_file(kDir / "manifest.json");
  std::set<std::string> bnb_cpu_dequant_wrong;
  for (const auto& c : manifest.at("cases"))
    if (c.at("bnb_cpu_dequant_differs").get<bool>()) bnb_cpu_dequant_wrong.insert(c.at("name").get<std::string>());
  // bnb 0.50.2's AVX-512 CPU dequantizer indexes absmax per row: wrong for (16, 96) at 64, (20, 160) at 128.
  CHECK(bnb_cpu_dequant_wrong == std::set<std::string>{"nf4_bs64", "nf4_bs128_dq"});
  for (const std::string& c : names) {
    INFO("case " << c);
    const std::string p = c + ".weight";
    const io::StateEntry* js = quant_state_entry(q, p);
    REQUIRE(js);
    const QuantState4bit ref = QuantState4bit::from_json(as_string(js->tensor), p);
    Quantize4bitOptions opt;
    opt.quant_type = ref.quant_type;
    opt.blocksize = ref.blocksize;
    opt.double_quant = ref.nested;
    const Tensor& input = q.at(c + ".input");
    Quantized4bit got = quantize_4bit(input, opt, p);
    CHECK(got.packed.shape() == q.at(p).shape());
    CHECK(same_bytes(got.packed, q.at(p)));
    CHECK(same_bytes(got.state.absmax, q.at(p + ".absmax")));
    CHECK(same_bytes(got.state.code, q.at(p + ".quant_map")));
    CHECK(got.state.to_json() == as_string(js->tensor));
    if (ref.nested) {
      CHECK(same_bytes(got.state.nested_absmax, q.at(p + ".nested_absmax")));
      CHECK(same_bytes(got.state.nested_code, q.at(p + ".nested_quant_map")));
      CHECK(got.state.offset == ref.offset);
    }
    const Tensor& want = q.at(c + ".dequantized_flat");
    CHECK(same_bytes(dequantize_4bit(got.packed, got.state), want));
    if (!bnb_cpu_dequant_wrong.count(c)) CHECK(same_bytes(want, q.at(c + ".dequantized")));

    // And bnb's own tensors dequantize to bnb's values.
    QuantState4bit st = ref;
    st.absmax = q.at(p + ".absmax");
    st.code = q.at(p + ".quant_map");
    if (st.nested) {
      st.nested_absmax = q.at(p + ".nested_absmax");
      st.nested_code = q.at(p + ".nested_quant_map");
    }
    CHECK(same_bytes(dequantize_4bit(q.at(p), st), want));
  }
}

TEST_CASE("quant-state JSON: Python's float repr and clear errors", "[quant][nf4]") {
  CHECK(python_float_repr(2.6226248741149902) == "2.6226248741149902");
  CHECK(python_float_repr(double(0.1f)) == "0.10000000149011612");
  CHECK(python_float_repr(1e-05) == "1e-05");
  CHECK(python_float_repr(0.0001) == "0.0001");
  CHECK(python_float_repr(-3.0) == "-3.0");
  CHECK(python_float_repr(1e16) == "1e+16");
  CHECK(python_float_repr(123456.5) == "123456.5");
  auto err = [](const std::string& js) {
    try {
      QuantState4bit::from_json(js, "model.layers.0.mlp.up_proj.weight");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  const std::string ok = R"({"quant_type": "nf4", "blocksize": 64, "dtype": "bfloat16", "shape": [4, 64]})";
  CHECK(err(ok).empty());
  CHECK_THAT(err(R"({"blocksize": 64, "dtype": "bfloat16", "shape": [4, 64]})"),
             Catch::Contains("up_proj.weight") && Catch::Contains("quant_type"));
  CHECK_THAT(err(R"({"quant_type": "int4", "blocksize": 64, "dtype": "bfloat16", "shape": [4, 64]})"),
             Catch::Contains("unknown quant_type"));
  CHECK_THAT(err(R"({"quant_type": "nf4", "blocksize": 48, "dtype": "bfloat16", "shape": [4, 64]})"),
             Catch::Contains("blocksize 48"));
  CHECK_THAT(err(R"({"quant_type": "nf4", "blocksize": 64, "dtype": "bfloat16", "shape": [4, 64], "nested_blocksize": 256})"),
             Catch::Contains("nested_dtype"));
}

// ------------------------------------------------------------------ Linear4bit

#include <galvani/nn/linear4bit.hpp>
#include <galvani/ops/elementwise.hpp>
#include <galvani/ops/reduction.hpp>

namespace {
// The fixture case `c` as the state dict of one Linear4bit (keys "weight", "weight.absmax", …).
io::StateDict layer_state(const io::StateDict& q, const std::string& c) {
  io::StateDict sd;
  for (const auto& e : q)
    if (e.name.starts_with(c + ".weight")) sd.insert(e.name.substr(c.size() + 1), e.tensor);
  return sd;
}
float max_abs_diff(const Tensor& a, const Tensor& b) {
  const Tensor x = a.contiguous(), y = b.contiguous();
  float m = 0;
  for (int64_t i = 0; i < x.numel(); ++i) m = std::max(m, std::fabs(x.data<float>()[i] - y.data<float>()[i]));
  return m;
}
}  // namespace

TEST_CASE("Linear4bit loads bnb's tensors, saves them byte for byte, and multiplies fused", "[quant][nf4][linear4bit]") {
  io::StateDict q = io::load_safetensors(kDir / "quantize_4bit.safetensors");
  for (const char* c : {"nf4_bs64_dq", "nf4_odd_dq", "nf4_bs64"}) {
    INFO(c);
    const Tensor& input = q.at(std::string(c) + ".input");
    const int64_t out = input.size(0), in = input.size(1);
    Linear4bitOptions opt;
    opt.quant.double_quant = std::string(c).ends_with("_dq");
    Linear4bit layer(in, out, false, opt);
    io::StateDict sd = layer_state(q, c);
    LoadReport r = layer.load_state_dict(sd);
    CHECK(r.unexpected_keys.empty());
    io::StateDict saved = layer.state_dict();
    CHECK(saved.size() == sd.size());
    for (const auto& e : sd) CHECK(same_bytes(saved.at(e.name), e.tensor));
    CHECK(same_bytes(layer.dequantized(DType::f32), q.at(std::string(c) + ".dequantized_flat").to(DType::f32)));

    // Quantizing on arrival (a float checkpoint) gives the same bytes.
    Linear4bitOptions fopt = opt;
    fopt.expect_packed = false;
    Linear4bit fresh(in, out, false, fopt);
    io::StateDict fsd;
    fsd.insert("weight", input);
    fresh.load_state_dict(fsd);
    io::StateDict fsaved = fresh.state_dict();
    for (const auto& e : sd) CHECK(same_bytes(fsaved.at(e.name), e.tensor));

    // Fused GEMV (M = 1, 3) and GEMM (M = 9) against dequantize-then-linear, forward and dX.
    const Tensor W = layer.dequantized(DType::f32);
    Generator gen(7);
    for (int64_t M : {1, 3, 9}) {
      Tensor x = rand_normal({M, in}, 0, 1, gen).requires_grad_();
      Tensor x2 = x.detach().clone().requires_grad_();
      Tensor y = layer.forward(x), y_ref = linear(x2, W);
      CHECK(max_abs_diff(y, y_ref) < 1e-4f);
      Tensor g = rand_normal({M, out}, 0, 1, gen);
      sum(y * g).backward();
      sum(y_ref * g).backward();
      CHECK(max_abs_diff(x.grad(), x2.grad()) < 1e-4f);
    }
  }
}

TEST_CASE("malformed 4-bit tensors give errors naming the tensor", "[quant][nf4][linear4bit]") {
  io::StateDict q = io::load_safetensors(kDir / "quantize_4bit.safetensors");
  const std::string c = "nf4_bs64_dq";
  auto load = [&](const std::function<void(io::StateDict&)>& edit) {
    Linear4bitOptions opt;
    opt.quant.double_quant = true;
    Linear4bit layer(128, 24, false, opt);
    io::StateDict sd = layer_state(q, c);
    edit(sd);
    try {
      layer.load_state_dict(sd);
      layer.validate();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  auto json_tensor = [](const std::string& s) {
    Tensor t = Tensor::empty({int64_t(s.size())}, DType::u8);
    std::memcpy(t.raw_data(), s.data(), s.size());
    return t;
  };
  const std::string key = "weight.quant_state.bitsandbytes__nf4";
  CHECK(load([](io::StateDict&) {}).empty());
  CHECK_THAT(load([&](io::StateDict& sd) {
               sd.set(key, json_tensor(R"({"quant_type": "nf4", "dtype": "float32", "shape": [24, 128], "nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": 1.0})"));
             }),
             Catch::Contains("weight") && Catch::Contains("blocksize"));
  CHECK_THAT(load([&](io::StateDict& sd) {
               sd.set(key, json_tensor(R"({"quant_type": "nf4", "blocksize": 100, "dtype": "float32", "shape": [24, 128], "nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": 1.0})"));
             }),
             Catch::Contains("blocksize 100"));
  CHECK_THAT(load([&](io::StateDict& sd) {
               sd.set(key, json_tensor(R"({"quant_type": "nf5", "blocksize": 64, "dtype": "float32", "shape": [24, 128]})"));
             }),
             Catch::Contains("unknown quant_type"));
  CHECK_THAT(load([&](io::StateDict& sd) { sd.set("weight.absmax", sd.at("weight.absmax").narrow(0, 0, 10).clone()); }),
             Catch::Contains("weight.absmax has 10 entries"));
  CHECK_THAT(load([&](io::StateDict& sd) { sd.set("weight", sd.at("weight").narrow(0, 0, 100).clone()); }),
             Catch::Contains("packed weight has 100 bytes"));
}

// ------------------------------------------------------------------ the fast kernels vs the oracle
//
// The oracle is the plain path: dequantize_4bit, then linear / its input gradient (dense f32
// GEMM). Every fast path (the 16-wide decoder, the dequantize-into-packed-panels GEMM forward and
// backward, the fused GEMV) is checked on shapes that hit every edge: K not a multiple of the block
// size (blocks straddle rows, odd rows start on a low nibble), N not a multiple of the 16-wide
// panel, K not a multiple of the GEMM's 256-deep slice, M = 1 … 8 (GEMV) and M > 8 (GEMM, with
// a partial 6-row tile), bias or none, double quantization on and off, NF4 and FP4.

#include <galvani/quant/nf4_matmul.hpp>

TEST_CASE("dequantize_run decodes any run bit for bit like dequantize_4bit", "[quant][nf4][kernel]") {
  Generator gen(11);
  for (int64_t bs : {32, 64, 128}) {
    for (bool dq : {false, true}) {
      Quantize4bitOptions opt;
      opt.blocksize = bs;
      opt.double_quant = dq;
      const int64_t N = 13, K = 157;  // 2041 elements: odd, blocks straddle rows
      Quantized4bit q = quantize_4bit(rand_normal({N, K}, 0, 1, gen), opt);
      const Tensor W = dequantize_4bit(q.packed, q.state, DType::f32).contiguous();
      const std::vector<float> am = q.state.absmax_f32();
      const Codes4 d(q.packed.data<uint8_t>(), am.data(), QuantType::nf4, bs);
      std::vector<float> out(size_t(N * K));
      for_each_cpu_capability([&](CpuCapability) {  // the AVX-512, AVX2 and scalar decoders
        for (int64_t i0 : {int64_t(0), int64_t(1), int64_t(15), int64_t(63), int64_t(64), int64_t(157), int64_t(1000)})
          for (int64_t len : {int64_t(1), int64_t(2), int64_t(16), int64_t(17), int64_t(33), int64_t(300)}) {
            if (i0 + len > N * K) continue;
            dequantize_run(d, i0, len, out.data());
            INFO("bs " << bs << " dq " << dq << " i0 " << i0 << " len " << len);
            CHECK(std::memcmp(out.data(), W.data<float>() + i0, size_t(len) * 4) == 0);
          }
      });
    }
  }
}

namespace {
// max |a - b| / max |b|, over f32 tensors of the same shape.
float rel_diff(const Tensor& a, const Tensor& b) {
  const Tensor x = a.contiguous(), y = b.contiguous();
  float m = 0, s = 0;
  for (int64_t i = 0; i < x.numel(); ++i) {
    m = std::max(m, std::fabs(x.data<float>()[i] - y.data<float>()[i]));
    s = std::max(s, std::fabs(y.data<float>()[i]));
  }
  return s > 0 ? m / s : m;
}
}  // namespace

TEST_CASE("nf4_linear: GEMV and GEMM paths, forward and input gradient, match dequantize-then-linear",
          "[quant][nf4][kernel]") {
  Generator gen(5);
  struct Shape2 { int64_t N, K; };
  // (out, in): aligned; in not a multiple of 64 (and odd); out not a multiple of 16; K > 256 slices;
  // whole rows of blocks of 128, 32 (one 16-byte chunk per block in the AVX2 GEMV) and 256. Rows
  // in whole blocks take the fused GEMV (AVX-512 and AVX2: gemv4_rows), the others decode a row
  // and dot it.
  for (Shape2 s : {Shape2{48, 128}, Shape2{37, 100}, Shape2{70, 333}, Shape2{130, 576}, Shape2{17, 64}, Shape2{5, 7},
                   Shape2{41, 256}, Shape2{24, 96}, Shape2{9, 512}}) {
    for (QuantType qt : {QuantType::nf4, QuantType::fp4}) {
      for (bool dq : {false, true}) {
        Quantize4bitOptions opt;
        opt.quant_type = qt;
        opt.double_quant = dq;
        opt.blocksize = s.K == 333 || s.K == 256 ? 128 : s.K == 96 ? 32 : s.K == 512 ? 256 : 64;
        Quantized4bit q = quantize_4bit(rand_normal({s.N, s.K}, 0, 1, gen), opt);
        const Tensor W = dequantize_4bit(q.packed, q.state, DType::f32).contiguous();
        Weight4bit w{q.packed, Tensor::from_vector(q.state.absmax_f32(), {q.state.nblocks()}), qt, opt.blocksize, s.N, s.K};
        for (bool with_bias : {false, true}) {
          const Tensor b = with_bias ? rand_normal({s.N}, 0, 1, gen) : Tensor();
          for (int64_t M : {1, 2, 5, 8, 9, 13, 77}) for_each_cpu_capability([&](CpuCapability) {
            INFO("N " << s.N << " K " << s.K << " qt " << int(qt) << " dq " << dq << " bias " << with_bias << " M " << M);
            Tensor x = rand_normal({M, s.K}, 0, 1, gen).requires_grad_();
            Tensor x2 = x.detach().clone().requires_grad_();
            Tensor y = nf4_linear(x, w, b), y_ref = linear(x2, W, b);
            CHECK(rel_diff(y, y_ref) < 2e-6f);
            Tensor g = rand_normal({M, s.N}, 0, 1, gen);
            sum(y * g).backward();
            sum(y_ref * g).backward();
            CHECK(rel_diff(x.grad(), x2.grad()) < 2e-6f);
            if (M > galvani::detail::kGemvRows) {
              // The GEMM path is gemm()'s own loop nest (gemm_packed) with the same packed values:
              // bit for bit what linear() gives on the dequantized weight at the same level.
              CHECK(rel_diff(y, y_ref) == 0.0f);
              CHECK(rel_diff(x.grad(), x2.grad()) == 0.0f);
            }
            // The scalar kernels (f64's path, the benchmark's "before") agree too.
            Tensor y0 = Tensor::empty({M, s.N}, DType::f32), dx0 = Tensor::empty({M, s.K}, DType::f32);
            const Tensor xc = x.detach().contiguous();
            nf4_linear_forward_scalar<float>(xc.data<float>(), q.packed.data<uint8_t>(), w.absmax.data<float>(), qt,
                                             opt.blocksize, with_bias ? b.data<float>() : nullptr, y0.data<float>(), M,
                                             s.N, s.K);
            nf4_linear_backward_input_scalar<float>(g.data<float>(), q.packed.data<uint8_t>(), w.absmax.data<float>(), qt,
                                                    opt.blocksize, dx0.data<float>(), M, s.N, s.K);
            CHECK(rel_diff(y0, y_ref) < 2e-6f);
            CHECK(rel_diff(dx0, x2.grad()) < 2e-6f);
          });
        }
      }
    }
  }
}

TEST_CASE("the f32 4-bit kernels on empty shapes: no work, empty sums are the bias or zero", "[quant][nf4][kernel]") {
  for_each_cpu_capability([](CpuCapability) {
    std::vector<float> dx(6, 7.0f);  // dx (2, 3) = dy (2, 0) · W (0, 3)
    nf4_linear_backward_input_f32(nullptr, nullptr, nullptr, QuantType::nf4, 64, dx.data(), 2, 0, 3);
    CHECK(dx == std::vector<float>(6, 0.0f));
    std::vector<float> y(4, 7.0f), bias{1, 2};  // y (2, 2) = x (2, 0) · Wᵀ + bias
    nf4_linear_forward_f32(nullptr, nullptr, nullptr, QuantType::nf4, 64, bias.data(), y.data(), 2, 2, 0);
    CHECK(y == std::vector<float>{1, 2, 1, 2});
    // No rows, or no outputs: nothing is read or written (the pointers are null).
    nf4_linear_forward_f32(nullptr, nullptr, nullptr, QuantType::nf4, 64, nullptr, nullptr, 0, 5, 64);
    nf4_linear_forward_f32(nullptr, nullptr, nullptr, QuantType::nf4, 64, nullptr, nullptr, 3, 0, 64);
    nf4_linear_backward_input_f32(nullptr, nullptr, nullptr, QuantType::nf4, 64, nullptr, 0, 5, 64);
  });
}

TEST_CASE("nf4_linear in f64 (the scalar path) matches the dense f64 product", "[quant][nf4][kernel]") {
  Generator gen(9);
  Quantized4bit q = quantize_4bit(rand_normal({21, 100}, 0, 1, gen), Quantize4bitOptions{});
  const Tensor W = dequantize_4bit(q.packed, q.state, DType::f32).to(DType::f64);
  Weight4bit w{q.packed, Tensor::from_vector(q.state.absmax_f32(), {q.state.nblocks()}), QuantType::nf4, 64, 21, 100};
  for (int64_t M : {1, 11}) {
    Tensor x = rand_normal({M, 100}, 0, 1, gen).to(DType::f64);
    const Tensor y = nf4_linear(x, w), y_ref = linear(x, W);
    double m = 0;
    for (int64_t i = 0; i < y.numel(); ++i) m = std::max(m, std::fabs(y.data<double>()[i] - y_ref.data<double>()[i]));
    CHECK(m < 1e-12);
  }
}
