// LoRA (nn/lora.hpp) and peft's adapter files (models/peft.hpp) against peft 0.21.2
// (fixtures from tools/gen_lora_fixtures.py): the module tree, logits, loss and LoRA gradients
// over a GPT-2 (Conv1D, fan_in_fan_out) and a Mistral ("all-linear", rsLoRA) base, adapters
// switched off, merge/unmerge and the merged export, adapter files both ways, bad adapters;
// and over a bitsandbytes 4-bit base (fixtures from tools/gen_qlora_fixtures.py): the quantized
// bytes, logits, loss and LoRA gradients, with gradient checkpointing on as peft sets it up.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fstream>
#include <galvani/galvani.hpp>
#include <galvani/io/sha256.hpp>
#include <galvani/models/auto.hpp>
#include <galvani/models/kbit.hpp>
#include <galvani/models/peft.hpp>

#include "support/gradcheck.hpp"

using namespace galvani;
using galvani::testing::max_rel_diff;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {
const fs::path kLora = fs::path(GALVANI_SOURCE_DIR) / "tests/fixtures/lora";

json ref_json(const std::string& arch) {
  std::ifstream in(kLora / arch / "ref.json");
  return json::parse(in);
}

std::unique_ptr<CausalLM> base_model(const std::string& arch) {
  auto m = load_causal_lm(kLora / arch / "base");
  m->eval();  // the fixtures were made without dropout
  return m;
}

fs::path temp_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("galvani_test_lora_" + std::to_string(::getpid()) + "_" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// A copy of the peft fixture adapter of `arch` whose adapter_config.json is edited by `edit`.
fs::path edited_adapter(const std::string& arch, const std::string& name, const std::function<void(json&)>& edit) {
  fs::path d = temp_dir(name);
  fs::copy_file(kLora / arch / "adapter/adapter_model.safetensors", d / "adapter_model.safetensors");
  json cfg = io::read_json_file(kLora / arch / "adapter/adapter_config.json");
  edit(cfg);
  io::write_json_file(d / "adapter_config.json", cfg);
  return d;
}

std::vector<float> logits_of(CausalLM& m, const Tensor& ids) {
  NoGradGuard ng;
  return m.forward(ids).to_vector<float>();
}

// Every module peft lists under layer 0 (less its three empty containers) with its class, and
// galvani's modules under layer 0 with theirs: the two trees must be the same list.
std::vector<std::pair<std::string, std::string>> peft_layer0_modules(const json& ref) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& e : ref["named_modules"]) {
    std::string name = e[0].get<std::string>().substr(std::string("base_model.model.").size());
    if (name.find("lora_embedding_") != std::string::npos || name.find("lora_magnitude_vector") != std::string::npos)
      continue;
    out.emplace_back(name, e[1].get<std::string>());
  }
  return out;
}
std::vector<std::pair<std::string, std::string>> layer0_modules(const Module& model) {
  std::vector<std::pair<std::string, std::string>> out;
  for (auto& [name, m] : model.named_modules())
    if (name.find(".0.") != std::string::npos) out.emplace_back(name, m->type_name());
  return out;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, double(std::abs(a[i] - b[i])));
  return d;
}
}  // namespace

TEST_CASE("a LoRA layer's tree is peft's: base_layer, lora_dropout, lora_A, lora_B keyed \"default\"", "[lora]") {
  for (const std::string arch : {"gpt2", "mistral"}) {
    INFO(arch);
    auto model = base_model(arch);
    LoraConfig cfg = read_adapter_config(kLora / arch / "adapter");
    cfg.inference_mode = false;  // peft's saved config says true (load frozen); here we train
    std::vector<std::string> wrapped = get_peft_model(*model, cfg);
    CHECK(wrapped == ref_json(arch)["wrapped"].get<std::vector<std::string>>());
    CHECK(cfg.fan_in_fan_out == (arch == "gpt2"));
    // Every module peft lists under layer 0 (less its three empty containers) is here, with
    // its class, and nothing else.
    CHECK(layer0_modules(*model) == peft_layer0_modules(ref_json(arch)));
    // Only A and B train.
    for (auto& [name, p] : model->named_parameters()) {
      INFO(name);
      CHECK(p.requires_grad() == (name.find(".lora_") != std::string::npos));
    }
    CHECK(trainable_parameters_line(*model) == ref_json(arch)["print_trainable_parameters"].get<std::string>());
  }
}

TEST_CASE("a fresh LoRA starts as the base model: B = 0, A ~ U(-1/sqrt(in), 1/sqrt(in))", "[lora]") {
  auto model = base_model("mistral");
  io::StateDict ref = io::load_safetensors(kLora / "mistral/ref_base.safetensors");
  Tensor ids = io::load_safetensors(kLora / "mistral/ref.safetensors").at("input_ids");
  const std::vector<float> before = logits_of(*model, ids);
  LoraConfig cfg;  // peft's defaults: r 8, alpha 8, q_proj and v_proj for mistral
  CHECK(get_peft_model(*model, cfg).size() == 4);
  CHECK(logits_of(*model, ids) == before);
  for (const auto& [name, l] : lora_layers(*model)) {
    CHECK(l->A().shape() == (Shape{8, l->in_features()}));
    const double bound = 1.0 / std::sqrt(double(l->in_features()));
    for (float a : l->A().to_vector<float>()) CHECK(std::abs(a) <= bound);
    for (float b : l->B().to_vector<float>()) CHECK(b == 0.0f);
    CHECK(l->scaling() == 1.0);
  }
  CHECK(max_abs_diff(before, ref.at("logits").to_vector<float>()) < 1e-5);
}

TEST_CASE("LoRA forward and backward match peft (GPT-2 Conv1D base, Mistral all-linear rsLoRA)", "[lora]") {
  for (const std::string arch : {"gpt2", "mistral"}) {
    INFO(arch);
    auto model = base_model(arch);
    load_adapter(*model, kLora / arch / "adapter", /*is_trainable=*/true);
    model->eval();
    io::StateDict ref = io::load_safetensors(kLora / arch / "ref.safetensors");
    Tensor ids = ref.at("input_ids");
    Tensor logits = model->forward(ids);
    CHECK(max_rel_diff(logits, ref.at("logits")) < 1e-5);
    Tensor loss = causal_lm_loss(logits, ids);
    CHECK(loss.item() == Approx(ref.at("loss").item()).epsilon(1e-6));
    loss.backward();
    int checked = 0;
    for (const auto& [name, l] : lora_layers(*model)) {
      INFO(name);
      for (const auto& [which, t] : {std::pair<std::string, Tensor>{"lora_A", l->A()}, {"lora_B", l->B()}}) {
        REQUIRE(t.grad().defined());
        CHECK(max_rel_diff(t.grad(), ref.at("base_model.model." + name + "." + which + ".weight.grad")) < 1e-4);
        ++checked;
      }
    }
    CHECK(checked == int(ref.size()) - 3);
    for (auto& [name, p] : model->named_parameters())
      if (name.find(".lora_") == std::string::npos) CHECK_FALSE(p.grad().defined());

    // Adapters off: the base model's logits (peft's disable_adapter()).
    {
      DisabledAdapters off(*model);
      CHECK(max_rel_diff(model->forward(ids), io::load_safetensors(kLora / arch / "ref_base.safetensors").at("logits")) <
            1e-5);
    }
    CHECK(max_rel_diff(model->forward(ids), ref.at("logits")) < 1e-5);
  }
}

TEST_CASE("merge and unmerge: the same logits, the base weights back; merged export loads as a plain model",
          "[lora]") {
  for (const std::string arch : {"gpt2", "mistral"}) {
    INFO(arch);
    auto model = base_model(arch);
    load_adapter(*model, kLora / arch / "adapter");
    io::StateDict ref = io::load_safetensors(kLora / arch / "ref.safetensors");
    Tensor ids = ref.at("input_ids");
    const std::vector<float> expected = ref.at("logits").to_vector<float>();
    const auto [first, layer] = lora_layers(*model).front();
    const std::vector<float> w0 = layer->base_layer->named_parameters().front().second.to_vector<float>();

    merge_adapters(*model);
    CHECK(layer->merged());
    CHECK(max_abs_diff(logits_of(*model, ids), expected) < 1e-4);
    unmerge_adapters(*model);
    CHECK(max_abs_diff(layer->base_layer->named_parameters().front().second.to_vector<float>(), w0) < 1e-6);
    CHECK(max_abs_diff(logits_of(*model, ids), expected) < 1e-5);

    // merge_and_unload + save_causal_lm: a plain Hugging Face directory.
    merge_and_unload(*model);
    CHECK(lora_layers(*model).empty());
    CHECK(model->get_submodule(first).type_name() == (arch == "gpt2" ? "Conv1D" : "Linear"));
    fs::path dir = temp_dir("merged_" + arch);
    save_causal_lm(*model, dir);
    auto merged = load_causal_lm(dir);
    merged->eval();
    CHECK(max_abs_diff(logits_of(*merged, ids), expected) < 1e-4);
    fs::remove_all(dir);
  }
}

TEST_CASE("galvani's adapter files are peft's: same config fields, keys and shapes; they load back", "[lora]") {
  for (const std::string arch : {"gpt2", "mistral"}) {
    INFO(arch);
    auto model = base_model(arch);
    LoraConfig cfg = load_adapter(*model, kLora / arch / "adapter");
    fs::path dir = temp_dir("save_" + arch);
    save_adapter(*model, cfg, dir);
    // Same field names and values as peft's file (target_modules compared as a set).
    json ours = io::read_json_file(dir / "adapter_config.json");
    json theirs = io::read_json_file(kLora / arch / "adapter/adapter_config.json");
    for (json* j : {&ours, &theirs}) {
      auto t = (*j)["target_modules"].get<std::vector<std::string>>();
      std::sort(t.begin(), t.end());
      (*j)["target_modules"] = t;
    }
    CHECK(ours == theirs);
    io::StateDict a = io::load_safetensors(dir / "adapter_model.safetensors");
    io::StateDict b = io::load_safetensors(kLora / arch / "adapter/adapter_model.safetensors");
    CHECK(a.names() == b.names());
    for (const auto& e : b) CHECK(a.at(e.name).to_vector<float>() == e.tensor.to_vector<float>());
    auto again = base_model(arch);
    load_adapter(*again, dir);
    Tensor ids = io::load_safetensors(kLora / arch / "ref.safetensors").at("input_ids");
    CHECK(logits_of(*again, ids) == logits_of(*model, ids));
    // A loaded adapter is frozen unless is_trainable.
    for (const auto& [n, l] : lora_layers(*again)) CHECK_FALSE(l->A().requires_grad());
    fs::remove_all(dir);
  }
}

TEST_CASE("bad adapters: clear errors naming the module", "[lora]") {
  SECTION("target modules that match nothing") {
    fs::path d = edited_adapter("mistral", "nomatch", [](json& j) { j["target_modules"] = {"c_attn"}; });
    auto model = base_model("mistral");
    CHECK_THROWS_WITH(load_adapter(*model, d), Catch::Contains("[\"c_attn\"] match no module") &&
                                                   Catch::Contains("adapter_config.json"));
    fs::remove_all(d);
  }
  SECTION("r disagrees with the weights") {
    fs::path d = edited_adapter("mistral", "badr", [](json& j) { j["r"] = 8; });
    auto model = base_model("mistral");
    CHECK_THROWS_WITH(load_adapter(*model, d), Catch::Contains("module 'model.layers.0.mlp.down_proj'") &&
                                                   Catch::Contains("[4, 32] in the adapter") &&
                                                   Catch::Contains("r = 8"));
    fs::remove_all(d);
  }
  SECTION("an adapter for another base model") {
    // GPT-2's c_attn adapter over a Mistral: its modules are not there.
    fs::path d = edited_adapter("gpt2", "othermodel", [](json& j) { j["target_modules"] = {"q_proj"}; });
    auto model = base_model("mistral");
    CHECK_THROWS_WITH(load_adapter(*model, d), Catch::Contains("transformer.h.0.attn.c_attn") &&
                                                   Catch::Contains("another base model"));
    fs::remove_all(d);
    // Same module names, other sizes: a shape mismatch names the module.
    auto cfg = io::parse_model_config(base_model("mistral")->config_json());
    std::get<MistralConfig>(cfg).hidden_size = 32;
    std::get<MistralConfig>(cfg).head_dim_override = 16;
    auto bigger = make_causal_lm(cfg, 0);
    CHECK_THROWS_WITH(load_adapter(*bigger, kLora / "mistral/adapter"),
                      Catch::Contains("module 'model.layers.0.mlp.down_proj'") &&
                          Catch::Contains("another base model"));
  }
  SECTION("unsupported options are refused by name") {
    fs::path d = edited_adapter("mistral", "dora", [](json& j) { j["use_dora"] = true; });
    auto model = base_model("mistral");
    CHECK_THROWS_WITH(load_adapter(*model, d), Catch::Contains("\"use_dora\""));
    fs::remove_all(d);
  }
}

TEST_CASE("wrap_submodule: the wrapper owns the old module; a failing wrapper leaves the tree as it was", "[lora]") {
  auto model = base_model("mistral");
  const std::string name = "model.layers.0.self_attn.q_proj";
  Module* before = &model->get_submodule(name);
  CHECK_THROWS_WITH(model->wrap_submodule(name, [](std::unique_ptr<Module>&) -> std::unique_ptr<Module> {
    throw Error("no");
  }),
                    "no");
  CHECK(&model->get_submodule(name) == before);
  CHECK_THROWS_WITH(model->wrap_submodule(name, [](std::unique_ptr<Module>&) -> std::unique_ptr<Module> {
    return std::make_unique<Identity>();
  }),
                    Catch::Contains("LinearLayer slot") && Catch::Contains("Identity"));
  CHECK(&model->get_submodule(name) == before);
}

// CPU kernels are f32/f64 (bf16 models run on the GPU), so the mixed-dtype path is checked
// with an f64 base: the LoRA branch stays f32, the sum is cast back to the base's dtype.
TEST_CASE("LoRA over a base of another dtype: the LoRA branch runs in f32, the output keeps the base's dtype",
          "[lora]") {
  Generator gen(3);
  ModuleInit init{ModuleInit::Mode::random, &gen, DType::f64};
  LoraConfig cfg;
  cfg.r = 2;
  cfg.lora_alpha = 4;
  LoraLinear l(std::make_unique<Linear>(6, 5, true, init), cfg, gen);
  NoGradGuard ng;
  copy_into(l.B(), rand_normal({5, 2}, 0, 1, gen));
  CHECK(l.A().dtype() == DType::f32);
  Tensor x = rand_normal({3, 6}, 0, 1, gen, DType::f64);
  Tensor y = l.forward(x);
  CHECK(y.dtype() == DType::f64);
  const auto& base = static_cast<const Linear&>(*l.base_layer);
  Tensor expect = linear(x, base.weight, base.bias).to(DType::f32) +
                  mul(matmul(matmul(x.to(DType::f32), l.A().t()), l.B().t()), 2.0);
  CHECK(max_abs_diff(y.to(DType::f32).to_vector<float>(), expect.to_vector<float>()) < 1e-5);
}

// With GALVANI_LORA_EXPORT=DIR set, train each fixture adapter one step (so it is galvani's own,
// not peft's), and write under DIR/<arch>/: adapter/ (save_adapter), merged/ (merge_and_unload +
// save_causal_lm) and logits.safetensors (galvani's logits with the trained adapter).
// tools/check_lora_roundtrip.py then loads both with peft and transformers and compares.
TEST_CASE("export a galvani-trained adapter and its merged model for tools/check_lora_roundtrip.py", "[lora]") {
  const char* out = std::getenv("GALVANI_LORA_EXPORT");
  if (!out) return;
  for (const std::string arch : {"gpt2", "mistral"}) {
    auto model = base_model(arch);
    LoraConfig cfg = load_adapter(*model, kLora / arch / "adapter", /*is_trainable=*/true);
    Tensor ids = io::load_safetensors(kLora / arch / "ref.safetensors").at("input_ids");
    causal_lm_loss(model->forward(ids), ids).backward();
    AdamWOptions o;
    o.lr = 1e-2;
    AdamW opt(model->trainable_parameters(), o);
    opt.step();
    const fs::path dir = fs::path(out) / arch;
    fs::create_directories(dir);
    save_adapter(*model, cfg, dir / "adapter");
    io::StateDict logits;
    {
      NoGradGuard ng;
      logits.insert("input_ids", ids);
      logits.insert("logits", model->forward(ids));
    }
    io::save_safetensors(dir / "logits.safetensors", logits);
    merge_and_unload(*model);
    save_causal_lm(*model, dir / "merged");
  }
}

// ------------------------------------------------------------------ LoRA over a 4-bit base
// tools/gen_qlora_fixtures.py: the nf4 model fixtures' f32 checkpoints, quantized on load by
// transformers + bitsandbytes 0.50.2 (NF4, double quantization, compute f32) on the CPU, then
// prepare_model_for_kbit_training (gradient checkpointing on) and get_peft_model (r 4, alpha 8,
// lora_dropout 0; GPT-2: c_attn, Mistral: all-linear), B set to seeded random values; one
// forward/backward in train mode with labels (a few -100). galvani does the same steps.
namespace {
const fs::path kNf4 = fs::path(GALVANI_SOURCE_DIR) / "tests/fixtures/nf4";

// The f32 base of `arch`, quantized on load as transformers did, ready for training as peft
// made it: dropouts 0 (transformers' from_pretrained(..., resid_pdrop=0, ...) for GPT-2;
// Mistral has none), prepare_model_for_kbit_training (gradient checkpointing on), train mode.
std::unique_ptr<CausalLM> qlora_base(const std::string& arch, const json& ref) {
  LoadCausalLMOptions lo;
  lo.quantization_config = BitsAndBytesConfig::from_json(ref["quantization_config"]);
  auto m = load_causal_lm(kNf4 / arch / "f32", lo);
  for (auto& [name, mod] : m->named_modules())
    if (auto* d = dynamic_cast<Dropout*>(mod)) d->p = 0.0;
  prepare_model_for_kbit_training(*m);
  m->train();
  return m;
}
}  // namespace

TEST_CASE("QLoRA: the 4-bit base is transformers' byte for byte; the LoRA tree and count are peft's", "[lora][nf4]") {
  for (const std::string arch : {"gpt2", "mistral"}) {
    INFO(arch);
    const json ref = ref_json("qlora_" + arch);
    auto model = qlora_base(arch, ref);
    // Every 4-bit tensor (packed weight, absmax, nested absmax, both maps, the quant-state
    // JSON) has the SHA-256 of transformers' quantized state dict.
    const io::StateDict sd = model->state_dict();
    int hashed = 0;
    for (const auto& [key, digest] : ref["sha256"].items()) {
      INFO(key);
      const io::StateEntry* e = sd.find(key);
      REQUIRE(e);
      const Tensor t = e->tensor.contiguous();
      CHECK(io::sha256_hex({static_cast<const uint8_t*>(t.raw_data()), t.nbytes()}) == digest.get<std::string>());
      ++hashed;
    }
    CHECK(hashed == (arch == "gpt2" ? 8 : 14) * 6);
    load_adapter(*model, kLora / ("qlora_" + arch) / "adapter", /*is_trainable=*/true);
    std::vector<std::string> wrapped;
    for (const auto& [name, l] : lora_layers(*model)) {
      wrapped.push_back(name);
      CHECK(l->base_layer->type_name() == "Linear4bit");
    }
    CHECK(wrapped == ref["wrapped"].get<std::vector<std::string>>());
    CHECK(layer0_modules(*model) == peft_layer0_modules(ref));
    // peft counts a packed 4-bit weight twice (two values a byte).
    CHECK(trainable_parameters_line(*model) == ref["print_trainable_parameters"].get<std::string>());
  }
}

// Tolerances. The base's dequantized weights are bit-identical (the bytes above, and the nf4
// tests' dequantize parity); what differs is the summation order: bnb's training path is
// F.linear(x, dequant(W)) (torch's f32 GEMM) for Y and dY·dequant(W) for dX, galvani's is its
// fused NF4 GEMM (quant/nf4_matmul.hpp) — f32 accumulation in another order, ~1e-7 relative
// per dot product of length ≤ 256. Over two layers that stays near 1e-6 of the largest logit;
// 1e-5 (the f32 LoRA test's bound) keeps a 10x margin. Gradients are sums over all 24 tokens
// of products of such values (and the Mistral all-linear grads come back through every layer),
// so they get 1e-4 relative to each tensor's largest entry, as the f32 LoRA test.
TEST_CASE("QLoRA forward and backward match peft over a bitsandbytes 4-bit base (GPT-2 c_attn, Mistral all-linear)",
          "[lora][nf4]") {
  for (const std::string arch : {"gpt2", "mistral"}) {
    INFO(arch);
    const json refj = ref_json("qlora_" + arch);
    const io::StateDict ref = io::load_safetensors(kLora / ("qlora_" + arch) / "ref.safetensors");
    auto model = qlora_base(arch, refj);
    REQUIRE(model->is_gradient_checkpointing());
    load_adapter(*model, kLora / ("qlora_" + arch) / "adapter", /*is_trainable=*/true);
    const Tensor ids = ref.at("input_ids"), labels = ref.at("labels");
    Tensor logits = model->forward(ids);
    const double dlogits = max_rel_diff(logits, ref.at("logits"));
    CHECK(dlogits < 1e-5);
    Tensor loss = causal_lm_loss(logits, labels);
    CHECK(loss.item() == Approx(ref.at("loss").item()).epsilon(1e-6));
    loss.backward();
    int checked = 0;
    double worst = 0;
    for (const auto& [name, l] : lora_layers(*model)) {
      INFO(name);
      for (const auto& [which, t] : {std::pair<std::string, Tensor>{"lora_A", l->A()}, {"lora_B", l->B()}}) {
        REQUIRE(t.grad().defined());
        const double d = max_rel_diff(t.grad(), ref.at("base_model.model." + name + "." + which + ".weight.grad"));
        CHECK(d < 1e-4);
        worst = std::max(worst, d);
        ++checked;
      }
    }
    CHECK(checked == int(ref.size()) - 4);  // all but input_ids, labels, logits, loss
    for (auto& [name, p] : model->named_parameters())
      if (name.find(".lora_") == std::string::npos) CHECK_FALSE(p.grad().defined());
    WARN(arch << ": max rel diff logits " << dlogits << ", LoRA grads " << worst << " (" << checked << " tensors)");
  }
}

// With GALVANI_LORA_EXPORT=DIR set: as the export test above, over the 4-bit base — one
// training step of each QLoRA fixture adapter, then DIR/qlora_<arch>/adapter/, logits.safetensors
// (galvani's logits with it, in eval mode) and merged/ (merge_and_unload with the 4-bit layers
// dequantized, then dequantize_model for those without an adapter: a plain f32 model).
// tools/check_lora_roundtrip.py loads them in peft/transformers.
TEST_CASE("export a galvani-trained adapter over a 4-bit base for tools/check_lora_roundtrip.py", "[lora][nf4]") {
  const char* out = std::getenv("GALVANI_LORA_EXPORT");
  if (!out) return;
  for (const std::string arch : {"gpt2", "mistral"}) {
    const json refj = ref_json("qlora_" + arch);
    auto model = qlora_base(arch, refj);
    LoraConfig cfg = load_adapter(*model, kLora / ("qlora_" + arch) / "adapter", /*is_trainable=*/true);
    const io::StateDict ref = io::load_safetensors(kLora / ("qlora_" + arch) / "ref.safetensors");
    const Tensor ids = ref.at("input_ids");
    causal_lm_loss(model->forward(ids), ref.at("labels")).backward();
    AdamWOptions o;
    o.lr = 1e-2;
    AdamW opt(model->trainable_parameters(), o);
    opt.step();
    model->eval();
    const fs::path dir = fs::path(out) / ("qlora_" + arch);
    fs::create_directories(dir);
    save_adapter(*model, cfg, dir / "adapter");
    io::StateDict logits;
    {
      NoGradGuard ng;
      logits.insert("input_ids", ids);
      logits.insert("logits", model->forward(ids));
    }
    io::save_safetensors(dir / "logits.safetensors", logits);
    merge_and_unload(*model, dequantize_linear);  // the adapted layers, dequantized and merged
    dequantize_model(*model);                     // the rest (GPT-2's c_proj, c_fc) dequantized
    model->quantization_config.reset();
    save_causal_lm(*model, dir / "merged");
  }
}
