// galvani's f32 ops against PyTorch: forward outputs and every input gradient.
//
// tests/fixtures/ops/*.json come from tools/gen_op_fixtures.py (torch on the CPU).
// Each case holds the inputs, the upstream gradient torch used, torch's output
// and torch's input gradients. Here the same op runs in galvani, backward() is
// called with that upstream gradient, and each result must satisfy
//   max |galvani − torch| ≤ 1e-5 · max(1, max |torch|).
#include <catch2/catch.hpp>

#include <cstdio>
#include <fstream>
#include <functional>
#include <map>

#include <nlohmann/json.hpp>

#include "support/gradcheck.hpp"
#include <galvani/ops/attention.hpp>
#include <galvani/ops/rope.hpp>

using namespace galvani;
using json = nlohmann::json;

namespace {

json load_fixture(const std::string& family) {
  const std::string path = std::string(GALVANI_SOURCE_DIR) + "/tests/fixtures/ops/" + family + ".json";
  std::ifstream f(path);
  if (!f) FAIL("cannot open " << path << " (run tools/gen_op_fixtures.py)");
  return json::parse(f);
}

Tensor tensor_of(const json& j) {
  Shape shape = j.at("shape").get<Shape>();
  if (j.value("dtype", std::string("f32")) == "i64") return Tensor::from_vector(j.at("data").get<std::vector<int64_t>>(), shape);
  return Tensor::from_vector(j.at("data").get<std::vector<float>>(), shape);
}

// Inputs by name; "" when absent (an undefined Tensor).
struct Inputs {
  std::map<std::string, Tensor> by_name;
  Tensor operator[](const std::string& n) const {
    auto it = by_name.find(n);
    return it == by_name.end() ? Tensor() : it->second;
  }
};

using OpFn = std::function<Tensor(const Inputs&, const json& params)>;

const std::map<std::string, OpFn>& ops() {
  static const std::map<std::string, OpFn> table = {
      {"add", [](const Inputs& in, const json&) { return add(in["a"], in["b"]); }},
      {"sub", [](const Inputs& in, const json&) { return sub(in["a"], in["b"]); }},
      {"mul", [](const Inputs& in, const json&) { return mul(in["a"], in["b"]); }},
      {"div", [](const Inputs& in, const json&) { return div(in["a"], in["b"]); }},
      {"neg", [](const Inputs& in, const json&) { return neg(in["x"]); }},
      {"exp", [](const Inputs& in, const json&) { return exp(in["x"]); }},
      {"log", [](const Inputs& in, const json&) { return log(in["x"]); }},
      {"sqrt", [](const Inputs& in, const json&) { return sqrt(in["x"]); }},
      {"pow", [](const Inputs& in, const json& p) { return pow(in["x"], p.at("p").get<double>()); }},
      {"sum", [](const Inputs& in, const json& p) {
         return sum(in["x"], p.at("dims").get<std::vector<int64_t>>(), p.at("keepdim").get<bool>());
       }},
      {"mean", [](const Inputs& in, const json& p) {
         return mean(in["x"], p.at("dims").get<std::vector<int64_t>>(), p.at("keepdim").get<bool>());
       }},
      {"matmul", [](const Inputs& in, const json& p) {
         Tensor a = in["a"], b = in["b"];
         if (p.at("transpose_a").get<bool>()) a = a.transpose(-1, -2);
         if (p.at("transpose_b").get<bool>()) b = b.transpose(-1, -2);
         return matmul(a, b);
       }},
      {"linear", [](const Inputs& in, const json&) { return linear(in["x"], in["w"], in["b"]); }},
      {"conv1d_linear", [](const Inputs& in, const json&) { return conv1d_linear(in["x"], in["w"], in["b"]); }},
      {"softmax", [](const Inputs& in, const json& p) { return softmax(in["x"], p.at("dim").get<int64_t>()); }},
      {"log_softmax", [](const Inputs& in, const json& p) { return log_softmax(in["x"], p.at("dim").get<int64_t>()); }},
      {"layer_norm", [](const Inputs& in, const json& p) {
         return layer_norm(in["x"], in["w"], in["b"], p.at("eps").get<double>());
       }},
      {"rms_norm", [](const Inputs& in, const json& p) { return rms_norm(in["x"], in["w"], p.at("eps").get<double>()); }},
      {"gelu_tanh", [](const Inputs& in, const json&) { return gelu_tanh(in["x"]); }},
      {"silu", [](const Inputs& in, const json&) { return silu(in["x"]); }},
      {"silu_mul", [](const Inputs& in, const json&) { return silu_mul(in["gate"], in["up"]); }},
      {"embedding", [](const Inputs& in, const json&) { return embedding(in["weight"], in["ids"]); }},
      {"cross_entropy", [](const Inputs& in, const json& p) {
         const std::string r = p.at("reduction").get<std::string>();
         Reduction red = r == "mean" ? Reduction::mean : r == "sum" ? Reduction::sum : Reduction::none;
         return cross_entropy(in["logits"], in["targets"], p.at("ignore_index").get<int64_t>(), red);
       }},
      {"sdpa", [](const Inputs& in, const json& p) {
         AttentionOptions opt;
         opt.causal = p.at("causal").get<bool>();
         opt.sliding_window = p.value("sliding_window", int64_t(0));
         opt.key_padding_mask = in["key_padding_mask"];
         return scaled_dot_product_attention(in["q"], in["k"], in["v"], opt);
       }},
      {"rope", [](const Inputs& in, const json& p) { return rope(in["x"], in["positions"], p.at("theta").get<double>()); }},
  };
  return table;
}

// max |got − want| / max(1, max |want|).
double scaled_error(const Tensor& got, const json& want_j, const std::string& what) {
  INFO(what);
  REQUIRE(got.defined());
  return galvani::testing::max_rel_diff(got, tensor_of(want_j));
}

// Runs every case in tests/fixtures/ops/<family>.json; returns the worst scaled error.
double run_family(const std::string& family) {
  json doc = load_fixture(family);
  double worst = 0;
  std::string worst_where;
  for (const json& c : doc.at("cases")) {
    const std::string name = c.at("name"), op = c.at("op");
    INFO("case " << name << " (op " << op << ")");
    auto it = ops().find(op);
    if (it == ops().end()) {
      WARN("skipped: no galvani op '" << op << "' in this build (case " << name << ")");
      continue;
    }
    Inputs in;
    for (const json& t : c.at("inputs")) {
      Tensor x = tensor_of(t);
      if (c.at("grads").contains(t.at("name").get<std::string>())) x.requires_grad_();
      in.by_name[t.at("name")] = x;
    }
    Tensor out = it->second(in, c.at("params"));
    double e = scaled_error(out, c.at("output"), name + ": output");
    CHECK(e <= 1e-5);
    if (e > worst) { worst = e; worst_where = name + " output"; }
    out.backward(tensor_of(c.at("grad_out")));
    for (auto& [input, ref] : c.at("grads").items()) {
      Tensor g = in[input].grad();
      if (!g.defined()) g = Tensor::zeros(in[input].shape());
      double eg = scaled_error(g, ref, name + ": gradient of " + input);
      CHECK(eg <= 1e-5);
      if (eg > worst) { worst = eg; worst_where = name + " d" + input; }
    }
  }
  std::printf("  %-14s worst scaled error %.3g (%s)\n", family.c_str(), worst, worst_where.c_str());
  return worst;
}

}  // namespace

TEST_CASE("elementwise ops match torch", "[torch][ops]") { run_family("elementwise"); }
TEST_CASE("sum and mean match torch", "[torch][ops]") { run_family("reduction"); }
TEST_CASE("matmul, linear, conv1d_linear match torch", "[torch][ops]") { run_family("matmul"); }
TEST_CASE("softmax and log_softmax match torch", "[torch][ops]") { run_family("softmax"); }
TEST_CASE("layer_norm and rms_norm (HF MistralRMSNorm) match torch", "[torch][ops]") { run_family("norms"); }
TEST_CASE("gelu_new, silu, silu_mul match torch", "[torch][ops]") { run_family("activation"); }
TEST_CASE("embedding matches torch", "[torch][ops]") { run_family("embedding"); }
TEST_CASE("cross_entropy matches torch", "[torch][ops]") { run_family("cross_entropy"); }
TEST_CASE("scaled_dot_product_attention matches torch", "[torch][ops][attention]") { run_family("attention"); }
TEST_CASE("rope (HF rotate_half) matches torch", "[torch][ops][rope]") { run_family("rope"); }
