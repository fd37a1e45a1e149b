// Whole models in 4-bit, against transformers + bitsandbytes (tools/gen_nf4_model_fixtures.py):
// a tiny GPT-2 and a tiny Mistral, each saved in f32 and as transformers' 4-bit checkpoint.
//   - galvani loads the 4-bit directory: the same packed tensors, logits within 1e-5;
//   - galvani quantizes the f32 checkpoint on load: byte-identical to transformers' file;
//   - galvani saves the loaded model: byte-identical tensors, the same quantization_config;
//   - get_memory_footprint() is transformers' number;
//   - a malformed 4-bit directory fails with an error naming the tensor and the file.
#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>

#include <galvani/autograd/grad_mode.hpp>
#include <galvani/io/safetensors.hpp>
#include <galvani/models/auto.hpp>
#include <galvani/models/quantize.hpp>

#include "io_test_util.hpp"

using namespace galvani;
namespace fs = std::filesystem;
using galvani::io::testing::same_bytes;

namespace {
const fs::path kDir = fs::path(GALVANI_SOURCE_DIR) / "tests/fixtures/nf4";

float max_abs_diff(const Tensor& a, const Tensor& b) {
  const Tensor x = a.contiguous(), y = b.contiguous();
  REQUIRE(x.numel() == y.numel());
  float m = 0;
  for (int64_t i = 0; i < x.numel(); ++i) m = std::max(m, std::fabs(x.data<float>()[i] - y.data<float>()[i]));
  return m;
}
// Every tensor of transformers' file is in `sd` with the same dtype, shape and bytes; and
// `sd` has nothing else (but a tied lm_head.weight, which save_pretrained leaves out).
void check_same_tensors(const io::StateDict& file, const io::StateDict& sd) {
  size_t matched = 0;
  for (const auto& e : file) {
    INFO(e.name);
    const io::StateEntry* m = sd.find(e.name);
    REQUIRE(m);
    CHECK(m->tensor.shape() == e.tensor.shape());
    CHECK(same_bytes(m->tensor, e.tensor));
    ++matched;
  }
  for (const auto& e : sd)
    if (!file.find(e.name)) CHECK(e.name == "lm_head.weight");
  CHECK(matched == file.size());
}
io::json quantization_config(const fs::path& dir) { return io::read_json_file(dir / "config.json")["quantization_config"]; }
Tensor logits_of(CausalLM& m, const Tensor& ids) {
  NoGradGuard ng;
  m.eval();
  return m.forward(ids);
}
}  // namespace

TEST_CASE("BitsAndBytesConfig reads and writes transformers' quantization_config", "[nf4][models]") {
  const io::json j = quantization_config(kDir / "gpt2/bnb4");
  const BitsAndBytesConfig c = BitsAndBytesConfig::from_json(j);
  CHECK(c.load_in_4bit);
  CHECK(c.bnb_4bit_quant_type == "nf4");
  CHECK(c.bnb_4bit_use_double_quant);
  CHECK(c.bnb_4bit_compute_dtype == "float32");
  CHECK(!c.llm_int8_skip_modules);
  CHECK(c.to_json() == j);
  // transformers' defaults: fp4, no double quantization, float32 compute.
  BitsAndBytesConfig d;
  d.load_in_4bit = true;
  CHECK(d.quantize_options().quant_type == quant::QuantType::fp4);
  CHECK_THROWS_WITH(BitsAndBytesConfig::from_json(io::json{{"quant_method", "gptq"}}), Catch::Contains("bitsandbytes"));
  io::json eight = j;
  eight["load_in_4bit"] = false;
  eight["load_in_8bit"] = true;
  CHECK_THROWS_WITH(BitsAndBytesConfig::from_json(eight), Catch::Contains("only load_in_4bit"));
}

TEST_CASE("which modules become 4-bit: transformers' rules", "[nf4][models]") {
  // should_convert_module: regex from the start up to a module boundary, or a plain suffix.
  CHECK(!should_convert_module("model.layers.1.mlp", {"model.layers.1"}));
  CHECK(should_convert_module("model.layers.11.mlp", {"model.layers.1"}));
  CHECK(!should_convert_module("model.layers.11.mlp", {"model.layers.*"}));
  CHECK(should_convert_module("model.layers.0.mlp.gate_proj", {"mlp.gate"}));
  CHECK(!should_convert_module("model.layers.0.mlp.gate_proj", {"gate_proj"}));
  CHECK(!should_convert_module("model.layers.0.self_attn.q_proj", {"proj"}));  // suffix, no boundary
  CHECK(!should_convert_module("lm_head", {"lm_head"}));

  io::ModelConfig cfg = io::load_model_config(kDir / "mistral/f32/config.json");
  BitsAndBytesConfig c = BitsAndBytesConfig::qlora();
  auto m = make_causal_lm(cfg, BuildOptions{0, ModuleInit::Mode::empty});
  CHECK(bnb_targets(*m, c).size() == 14);  // 7 per layer, not lm_head
  // A skip list replaces transformers' defaults: lm_head is then quantized unless listed
  // (checked with transformers 5.24: llm_int8_skip_modules=["gate_proj"] converts 12 + lm_head).
  c.llm_int8_skip_modules = std::vector<std::string>{"gate_proj"};
  auto t = bnb_targets(*m, c);
  CHECK(t.size() == 13);
  CHECK(std::find(t.begin(), t.end(), "lm_head") != t.end());
  // "layers.1" matches from the start only: it skips nothing in "model.layers.1...".
  c.llm_int8_skip_modules = std::vector<std::string>{"layers.1"};
  CHECK(bnb_targets(*m, c).size() == 15);
  c.llm_int8_skip_modules = std::vector<std::string>{"model.layers.1", "lm_head"};
  t = bnb_targets(*m, c);
  CHECK(t.size() == 7);
  CHECK(std::find(t.begin(), t.end(), "model.layers.1.mlp.up_proj") == t.end());

  auto g = make_causal_lm(io::load_model_config(kDir / "gpt2/f32/config.json"), BuildOptions{0, ModuleInit::Mode::empty});
  CHECK(bnb_targets(*g, BitsAndBytesConfig::qlora()).size() == 8);  // c_attn, c_proj, c_fc, c_proj × 2; lm_head tied
  // transformers quantizes even GPT-2's tied lm_head when a skip list leaves it out; galvani refuses.
  c.llm_int8_skip_modules = std::vector<std::string>{"c_fc"};
  CHECK_THROWS_WITH(bnb_targets(*g, c), Catch::Contains("'lm_head' shares its weight") && Catch::Contains("llm_int8_skip_modules"));
}

TEST_CASE("4-bit models load, quantize on load and save as transformers does", "[nf4][models]") {
  for (const char* name : {"gpt2", "mistral"}) {
    INFO(name);
    const fs::path dir = kDir / name;
    const io::StateDict file = io::load_safetensors(dir / "bnb4/model.safetensors");
    const io::StateDict ref = io::load_safetensors(dir / "reference.safetensors");
    const io::json refj = io::read_json_file(dir / "reference.json");

    // transformers' 4-bit directory: found by its quantization_config, no flag needed.
    auto m = load_causal_lm(dir / "bnb4");
    REQUIRE(m->quantization_config);
    check_same_tensors(file, m->state_dict());
    const Tensor logits = logits_of(*m, ref.at("input_ids"));
    CHECK(max_abs_diff(logits, ref.at("logits")) < 1e-5f);
    CHECK(get_memory_footprint(*m) == refj["memory_footprint"].get<int64_t>());
    CHECK(get_memory_footprint(*load_causal_lm(dir / "f32")) == refj["f32_memory_footprint"].get<int64_t>());
    const fs::path resaved = io::testing::scratch_dir(std::string("galvani_nf4_resave_") + name);
    save_causal_lm(*m, resaved);  // the loaded 4-bit model, saved again: transformers' file, tensor for tensor
    check_same_tensors(file, io::load_safetensors(resaved / "model.safetensors"));
    CHECK(quantization_config(resaved) == quantization_config(dir / "bnb4"));

    // The f32 checkpoint, quantized tensor by tensor as it streams in.
    LoadCausalLMOptions lo;
    lo.quantization_config = BitsAndBytesConfig::from_json(quantization_config(dir / "bnb4"));
    auto q = load_causal_lm(dir / "f32", lo);
    check_same_tensors(file, q->state_dict());
    CHECK(max_abs_diff(logits_of(*q, ref.at("input_ids")), ref.at("logits")) < 1e-5f);

    // And saved: the same tensors, the same quantization_config (after a forward: nothing
    // in galvani's forward changes what is saved).
    const fs::path out = io::testing::scratch_dir(std::string("galvani_nf4_save_") + name);
    save_causal_lm(*q, out);
    check_same_tensors(file, io::load_safetensors(out / "model.safetensors"));
    CHECK(quantization_config(out) == quantization_config(dir / "bnb4"));
    auto back = load_causal_lm(out);
    CHECK(same_bytes(logits_of(*back, ref.at("input_ids")), logits));
  }
}

TEST_CASE("a bf16 checkpoint is quantized in the model's dtype, as transformers does", "[nf4][models]") {
  // transformers 5.24: from_pretrained(bf16 dir, quantization_config=…, dtype=torch.float32)
  // casts each weight to float32 before quantizing (quant state "dtype": "float32");
  // without dtype the model stays bf16 and the quant state says "bfloat16".
  const fs::path src = kDir / "mistral/f32", d = io::testing::scratch_dir("galvani_nf4_bf16");
  for (const char* f : {"config.json", "generation_config.json"}) fs::copy_file(src / f, d / f);
  io::StateDict sd;
  for (const auto& e : io::load_safetensors(src / "model.safetensors")) sd.insert(e.name, e.tensor.to(DType::bf16));
  io::save_safetensors(d / "model.safetensors", sd);
  const std::string js = "model.layers.0.self_attn.q_proj.weight.quant_state.bitsandbytes__nf4";
  for (DType dt : {DType::f32, DType::bf16}) {
    LoadCausalLMOptions lo;
    lo.dtype = dt;
    lo.quantization_config = BitsAndBytesConfig::from_json(quantization_config(kDir / "mistral/bnb4"));
    const io::StateDict q = load_causal_lm(d, lo)->state_dict();
    const Tensor b = q.at(js).contiguous();
    const std::string text(reinterpret_cast<const char*>(b.raw_data()), size_t(b.numel()));
    CHECK_THAT(text, Catch::Contains(dt == DType::f32 ? "\"dtype\": \"float32\"" : "\"dtype\": \"bfloat16\""));
  }
}

TEST_CASE("a 4-bit model quantized in memory is the one quantized on load", "[nf4][models]") {
  const fs::path dir = kDir / "gpt2";
  auto m = load_causal_lm(dir / "f32");
  const int64_t before = get_memory_footprint(*m);
  const BitsAndBytesConfig c = BitsAndBytesConfig::from_json(quantization_config(dir / "bnb4"));
  CHECK(quantize_model(*m, c).size() == 8);
  m->quantization_config = c;
  check_same_tensors(io::load_safetensors(dir / "bnb4/model.safetensors"), m->state_dict());
  CHECK(get_memory_footprint(*m) < before / 3);
}

TEST_CASE("a malformed 4-bit directory names the tensor and the file", "[nf4][models]") {
  const fs::path src = kDir / "mistral/bnb4";
  const std::string P = "model.layers.0.self_attn.q_proj.weight";
  auto broken = [&](const std::string& tag, const std::function<void(io::StateDict&)>& edit) {
    const fs::path d = io::testing::scratch_dir("galvani_nf4_bad_" + tag);
    for (const char* f : {"config.json", "generation_config.json"}) fs::copy_file(src / f, d / f);
    io::StateDict sd = io::load_safetensors(src / "model.safetensors");
    edit(sd);
    io::save_safetensors(d / "model.safetensors", sd);
    try {
      load_causal_lm(d);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  auto json_tensor = [](const std::string& s) {
    Tensor t = Tensor::empty({int64_t(s.size())}, DType::u8);
    std::memcpy(t.raw_data(), s.data(), s.size());
    return t;
  };
  const std::string file = "model.safetensors";
  CHECK(broken("ok", [](io::StateDict&) {}) == "no error");
  CHECK_THAT(broken("json", [&](io::StateDict& sd) {
               sd.set(P + ".quant_state.bitsandbytes__nf4",
                      json_tensor(R"({"quant_type": "nf4", "dtype": "float32", "shape": [64, 64], "nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": 0.1})"));
             }),
             Catch::Contains(P) && Catch::Contains("blocksize") && Catch::Contains(file));
  CHECK_THAT(broken("absmax", [&](io::StateDict& sd) { sd.set(P + ".absmax", sd.at(P + ".absmax").narrow(0, 0, 10).clone()); }),
             Catch::Contains(P + ".absmax has 10 entries") && Catch::Contains(file));
  CHECK_THAT(broken("packed", [&](io::StateDict& sd) { sd.set(P, sd.at(P).narrow(0, 0, 100).clone()); }),
             Catch::Contains("packed weight has 100 bytes") && Catch::Contains(P) && Catch::Contains(file));
}
