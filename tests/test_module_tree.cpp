// The module tree (nn/module.hpp), swapping layers by name, target_modules (peft's matching)
// and the one load path (models/load.hpp), against transformers and peft
// (fixtures from tools/gen_module_fixtures.py).
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fstream>
#include <galvani/galvani.hpp>
#include <galvani/models/auto.hpp>
#include <galvani/nn/target_modules.hpp>

#include "support/gradcheck.hpp"

using namespace galvani;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {
const fs::path kFixtures = fs::path(GALVANI_SOURCE_DIR) / "tests/fixtures";

const json& trees() {
  static const json j = [] {
    std::ifstream in(kFixtures / "modules/trees.json");
    return json::parse(in);
  }();
  return j;
}

std::unique_ptr<CausalLM> model_for(const std::string& key, uint64_t seed = 0) {
  return make_causal_lm(io::parse_model_config(trees()[key]["config"]), seed);
}

// A layer that forwards to the one it replaced, which it owns as its child "base_layer" —
// the shape of peft's LoraLayer, with no adapter: swapping it in must change nothing.
struct Wrapped : LinearLayer {
  ModuleRef<LinearLayer> base_layer;
  explicit Wrapped(std::unique_ptr<Module> base) {
    auto* lin = dynamic_cast<LinearLayer*>(base.get());
    REQUIRE(lin);
    base.release();
    base_layer = add_module<LinearLayer>("base_layer", std::unique_ptr<LinearLayer>(lin));
  }
  std::string type_name() const override { return "Wrapped"; }
  Tensor forward(const Tensor& x) const override { return base_layer->forward(x); }
  int64_t in_features() const override { return base_layer->in_features(); }
  int64_t out_features() const override { return base_layer->out_features(); }
};

void wrap(Module& root, const std::string& name) {
  auto old = root.replace_submodule(name, std::make_unique<Linear>(1, 1, false, ModuleInit{ModuleInit::Mode::empty}));
  root.replace_submodule(name, std::make_unique<Wrapped>(std::move(old)));
}

// logits and every parameter's gradient (by its name before wrapping) of one train step.
struct StepResult {
  std::vector<float> logits;
  std::vector<std::vector<float>> grads;
};
StepResult step(CausalLM& m, const Tensor& ids) {
  m.zero_grad();
  Tensor logits = m.forward(ids);
  causal_lm_loss(logits, ids).backward();
  StepResult r{logits.to_vector<float>(), {}};
  for (auto& [name, p] : m.named_parameters()) r.grads.push_back(p.grad().to_vector<float>());
  return r;
}
}  // namespace

TEST_CASE("named_modules() lists exactly transformers' module names and classes", "[module][fixture]") {
  for (const char* key : {"gpt2", "mistral", "llama_tied"}) {
    INFO(key);
    auto model = model_for(key);
    std::vector<std::pair<std::string, std::string>> got, want;
    for (auto& [name, m] : model->named_modules()) got.emplace_back(name, m->type_name());
    for (const auto& e : trees()[key]["named_modules"]) want.emplace_back(e[0], e[1]);
    CHECK(got == want);

    std::vector<std::string> params, state;
    for (auto& [name, t] : model->named_parameters()) params.push_back(name);
    for (const auto& e : model->state_dict()) state.push_back(e.name);
    CHECK(params == trees()[key]["named_parameters"].get<std::vector<std::string>>());
    CHECK(state == trees()[key]["state_dict"].get<std::vector<std::string>>());
  }
}

TEST_CASE("get_submodule and replace_submodule walk and edit the tree by name", "[module]") {
  auto model = model_for("mistral");
  Module& q = model->get_submodule("model.layers.1.self_attn.q_proj");
  CHECK(q.type_name() == "Linear");
  CHECK(&model->get_submodule("") == model.get());
  CHECK_THROWS_WITH(model->get_submodule("model.layers.7.self_attn"),
                    Catch::Contains("'model.layers'") && Catch::Contains("no child '7'") && Catch::Contains("0, 1"));
  CHECK_THROWS_WITH(model->get_submodule("model.layer.0"), Catch::Contains("no child 'layer'"));
  CHECK_THROWS_WITH(model->get_submodule_as<Conv1D>("lm_head"), Catch::Contains("lm_head") && Catch::Contains("Linear"));

  // A slot declared for a kind refuses a module of another kind, naming both.
  CHECK_THROWS_WITH(model->replace_submodule("model.norm", std::make_unique<NewGELUActivation>()),
                    Catch::Contains("model.norm") && Catch::Contains("RMSNorm") && Catch::Contains("NewGELUActivation"));
  CHECK_THROWS_WITH(model->replace_submodule("model.layers.0.self_attn.nope", std::make_unique<NewGELUActivation>()),
                    Catch::Contains("no child 'nope'"));
  // A LinearLayer slot takes any LinearLayer; the old module comes back to the caller.
  Linear& before = model->get_submodule_as<Linear>("model.layers.0.mlp.up_proj");
  auto old = model->replace_submodule("model.layers.0.mlp.up_proj",
                                      std::make_unique<Conv1D>(16, 32, ModuleInit{ModuleInit::Mode::empty}));
  CHECK(old.get() == &before);
  CHECK(model->get_submodule("model.layers.0.mlp.up_proj").type_name() == "Conv1D");
  // The new module inherits the slot's train/eval mode.
  model->eval();
  model->replace_submodule("model.layers.0.mlp.up_proj", std::move(old));
  CHECK(!model->get_submodule("model.layers.0.mlp.up_proj").is_training());
}

TEST_CASE("wrapping q_proj/v_proj (Mistral) or c_attn (GPT-2) by name keeps logits and gradients identical",
          "[module][swap]") {
  Tensor ids = Tensor::from_vector<int64_t>({5, 17, 42, 8, 3, 9, 1, 30, 12, 6, 2, 4}, {2, 6});
  for (const char* key : {"gpt2", "mistral"}) {
    INFO(key);
    auto plain = model_for(key, 3), wrapped = model_for(key, 3);
    plain->eval();
    wrapped->eval();
    const auto targets = std::string(key) == "gpt2" ? TargetModules::names({"c_attn"})
                                                    : TargetModules::names({"q_proj", "v_proj"});
    const auto names = targets.select(*wrapped);
    CHECK(names.size() == (std::string(key) == "gpt2" ? 2u : 4u));
    for (const auto& n : names) wrap(*wrapped, n);
    for (const auto& n : names) CHECK(wrapped->get_submodule(n).type_name() == "Wrapped");
    for (const auto& n : names) CHECK(wrapped->get_submodule(n + ".base_layer").type_name() != "Wrapped");

    const StepResult a = step(*plain, ids), b = step(*wrapped, ids);
    CHECK(a.logits == b.logits);
    REQUIRE(a.grads.size() == b.grads.size());
    for (size_t i = 0; i < a.grads.size(); ++i) CHECK(a.grads[i] == b.grads[i]);
    // The wrapped weights keep their tensors, now one level down (peft's base_layer).
    auto pn = wrapped->named_parameters();
    CHECK(std::any_of(pn.begin(), pn.end(), [&](auto& e) { return e.first == names[0] + ".base_layer.weight"; }));
  }
}

TEST_CASE("target_modules selects what peft's get_peft_model adapts", "[module][peft][fixture]") {
  for (const auto& c : trees()["peft_targets"]) {
    const std::string key = c["model"];
    INFO(key << " " << c["target_modules"].dump());
    auto model = model_for(key);
    const TargetModules t = c["target_modules"].is_string()
                                ? TargetModules::parse(c["target_modules"].get<std::string>())
                                : TargetModules::names(c["target_modules"].get<std::vector<std::string>>());
    CHECK(t.select(*model) == c["selected"].get<std::vector<std::string>>());
  }
  CHECK(default_lora_target_modules("gpt2").select(*model_for("gpt2")).size() == 2);
  CHECK(default_lora_target_modules("llama").str() == "[\"q_proj\", \"v_proj\"]");
  CHECK_THROWS_WITH(TargetModules::regex("(q_proj"), Catch::Contains("'(q_proj' is not a regular expression galvani can match"));
}

TEST_CASE("target_modules regexes from a file: Python's syntax, linear time, clear refusals", "[module][regex]") {
  // Python's re.fullmatch answers, written down by hand (re.fullmatch(p, n) is not None).
  const std::string q = "model.layers.0.self_attn.q_proj";
  CHECK(TargetModules::regex(R"(.*\.(q|v)_proj)").matches(q));
  CHECK_FALSE(TargetModules::regex(R"(.*\.(q|v)_proj)").matches("model.layers.0.self_attn.o_proj"));
  CHECK_FALSE(TargetModules::regex("q_proj").matches(q));  // a full match, not a search
  CHECK(TargetModules::regex(R"(.*(?P<which>q|k)_proj)").matches(q));  // Python's named group
  CHECK(TargetModules::regex(R"(model\.layers\.\d+\.self_attn\.[qv]_proj)").matches(q));
  // Patterns that backtrack exponentially in Python's re and std::regex (std::regex: over 20 s
  // on these names, found by fuzz_adapter_config) answer at once: RE2 is linear in the name.
  CHECK_FALSE(TargetModules::regex("(.*.*)*x").matches(q));
  CHECK_FALSE(TargetModules::regex("((a|b|c|.)*)*(x|y)*z").matches(q));
  // std::regex recursed once per pattern character (5,000 nested groups overflow its stack);
  // RE2 compiles and matches them.
  const TargetModules deep = TargetModules::regex(std::string(5000, '(') + "q" + std::string(5000, ')'));
  CHECK(deep.matches("q"));
  CHECK_FALSE(deep.matches(q));
  // What RE2 cannot do in linear time is refused by name, never matched differently.
  CHECK_THROWS_WITH(TargetModules::regex(R"((q)_\1)"), Catch::Contains("invalid escape sequence: \\1"));
  CHECK_THROWS_WITH(TargetModules::regex(R"(.*(?=q_proj).*)"), Catch::Contains("invalid perl operator: (?="));
  // bitsandbytes' llm_int8_skip_modules go through the same engine.
  CHECK_FALSE(should_convert_module("model.layers.1.mlp.down_proj", {R"(model\.layers\.1)"}));
  CHECK(should_convert_module("model.layers.11.mlp.down_proj", {R"(model\.layers\.1)"}));
  CHECK(should_convert_module(q, {"(.*.*)*x"}));
  CHECK(should_convert_module(q, {"(unclosed"}));  // no regex: the suffix rule alone
  CHECK_THROWS_WITH(should_convert_module(q, {"model(?=\\.layers)"}),
                    Catch::Contains("llm_int8_skip_modules: 'model(?=\\.layers)'"));
}

TEST_CASE("default_lora_target_modules: peft's per-architecture defaults", "[module]") {
  CHECK_THROWS_WITH(default_lora_target_modules("bert"), Catch::Contains("bert"));
}

TEST_CASE("the one load path: a file, a sharded directory and a stream give the checkpoint's values",
          "[module][load]") {
  // Before this path, each loader copied io's tensors into the parameters with copy_into;
  // the loaded parameters must equal the checkpoint's tensors converted to f32, bit for bit.
  for (const char* dir : {"gpt2", "mistral", "llama"}) {
    INFO(dir);
    const fs::path d = kFixtures / dir;
    io::Pretrained p = io::from_pretrained(d);
    auto via_dir = load_causal_lm(d);  // model.safetensors, or shards with their index
    size_t compared = 0;
    for (auto& [name, t] : via_dir->named_parameters()) {
      INFO(name);
      REQUIRE(p.weights.contains(name));
      CHECK(t.to_vector<float>() == p.weights.at(name).to_vector<float>());
      ++compared;
    }
    CHECK(compared == via_dir->named_parameters().size());
    // The same StateDict through load_state_dict, into a randomly initialised model.
    auto via_sd = make_causal_lm(p.config, 9);
    LoadReport r = via_sd->load_state_dict(p.weights);
    CHECK(r.missing_keys.empty());
    auto a = via_dir->named_parameters(), b = via_sd->named_parameters();
    for (size_t i = 0; i < a.size(); ++i) CHECK(a[i].second.to_vector<float>() == b[i].second.to_vector<float>());
  }
  // A sharded directory and one of its files streamed on their own.
  const fs::path sharded = kFixtures / "mistral";
  auto m = load_causal_lm(sharded);
  auto part = make_causal_lm(io::load_model_config(sharded / "config.json"), 5);
  LoadReport r = load_checkpoint(*part, sharded / "model-00002-of-00003.safetensors", "mistral", /*strict=*/false);
  CHECK(!r.loaded.empty());
  CHECK(!r.missing_keys.empty());
  for (const auto& name : r.loaded)
    CHECK(part->state_dict().at(name).to_vector<float>() ==
          m->state_dict().at(name).to_vector<float>());
  CHECK_THROWS_WITH(load_checkpoint(*part, sharded / "model-00002-of-00003.safetensors", "mistral"),
                    Catch::Contains("model-00002-of-00003.safetensors") && Catch::Contains("has no tensor for"));
}

TEST_CASE("models built without initialisation load to the same model", "[module][load]") {
  const fs::path d = kFixtures / "gpt2";
  const io::ModelConfig cfg = io::load_model_config(d / "config.json");
  BuildOptions empty;
  empty.init = ModuleInit::Mode::empty;
  auto uninit = make_causal_lm(cfg, empty), random = make_causal_lm(cfg, 0);
  load_checkpoint(*uninit, d, "gpt2");
  load_checkpoint(*random, d, "gpt2");
  Tensor ids = Tensor::from_vector<int64_t>({5, 17, 42, 8}, {1, 4});
  uninit->eval();
  random->eval();
  NoGradGuard ng;
  CHECK(uninit->forward(ids).to_vector<float>() == random->forward(ids).to_vector<float>());

  // In bf16: every parameter is allocated in its final dtype, and holds the checkpoint's values.
  empty.dtype = DType::bf16;
  auto half = make_causal_lm(cfg, empty);
  load_checkpoint(*half, d, "gpt2");
  for (auto& [name, t] : half->named_parameters()) {
    INFO(name);
    CHECK(t.dtype() == DType::bf16);
    CHECK(t.to_vector<float>() == random->state_dict().at(name).to(DType::bf16).to_vector<float>());
  }
  // Random initialisation is unchanged by the refactor: seed 0 still draws the same first weights.
  Generator g(0);
  CHECK(make_causal_lm(cfg, 0)->named_parameters()[0].second.to_vector<float>() ==
        rand_normal({std::get<GPT2Config>(cfg).vocab_size, std::get<GPT2Config>(cfg).n_embd}, 0,
                    std::get<GPT2Config>(cfg).initializer_range, g)
            .to_vector<float>());
}

namespace {
// A module that reads its own tensors: it records what it receives, untouched.
struct RawReader : Module {
  Tensor packed, absmax;
  std::vector<std::pair<std::string, std::string>> received;  // (local name, dtype as read)
  std::vector<uint8_t> packed_bytes;
  RawReader() {
    packed = Tensor::empty({8}, DType::u8);
    absmax = Tensor::empty({2}, DType::f32);
    register_buffer("weight", packed);
    register_buffer("weight.absmax", absmax);
  }
  std::string type_name() const override { return "RawReader"; }
  void read_own_tensor(const std::string& local, const io::StateEntry& src) override {
    received.emplace_back(local, src.is_raw() ? src.raw_dtype : dtype_name(src.tensor.dtype()));
    if (local == "weight") {
      const auto* p = static_cast<const uint8_t*>(src.tensor.raw_data());
      packed_bytes.assign(p, p + src.tensor.nbytes());
    }
  }
};
struct Holder : Module {
  ModuleRef<RawReader> proj;
  Holder() : proj(add_module<RawReader>("proj", std::make_unique<RawReader>())) {}
};
}  // namespace

TEST_CASE("a module that overrides its loading receives its tensors without conversion", "[module][load]") {
  const fs::path dir = fs::temp_directory_path() / "galvani_test_raw_reader";
  fs::create_directories(dir);
  io::StateDict sd;
  std::vector<uint8_t> bytes{1, 2, 3, 250, 5, 6, 7, 8};
  Tensor b = Tensor::from_vector(bytes, {8});
  sd.insert_raw("proj.weight", "I8", {8}, b);  // a dtype galvani's Tensor does not hold
  sd.insert("proj.weight.absmax", Tensor::from_vector<float>({0.5f, 2.0f}).to(DType::bf16));
  io::save_safetensors(dir / "model.safetensors", sd);

  Holder h;
  LoadReport r = load_checkpoint(h, dir / "model.safetensors", "");
  CHECK(r.missing_keys.empty());
  auto received = h.proj->received;  // in the file's order (safetensors sorts by dtype, then name)
  std::sort(received.begin(), received.end());
  CHECK(received == std::vector<std::pair<std::string, std::string>>{{"weight", "I8"}, {"weight.absmax", "bf16"}});
  CHECK(h.proj->packed_bytes == bytes);
  // The same from memory.
  Holder h2;
  h2.load_state_dict(sd);
  auto received2 = h2.proj->received;
  std::sort(received2.begin(), received2.end());
  CHECK(received2 == received);
  // The default loader refuses raw bytes it would have to convert, naming the tensor.
  struct Plain : Module {
    Tensor w = Tensor::zeros({8});
    Plain() { register_parameter("weight", w); }
  } plain;
  io::StateDict raw;
  raw.insert_raw("weight", "I8", {8}, b);
  CHECK_THROWS_WITH(plain.load_state_dict(raw), Catch::Contains("'weight'") && Catch::Contains("I8"));
  fs::remove_all(dir);
}

TEST_CASE("tied weights load from either name; strict still reports what is really missing", "[module][load][tied]") {
  const fs::path d = kFixtures / "gpt2";
  io::Pretrained p = io::from_pretrained(d);
  const Tensor wte = p.weights.at("transformer.wte.weight");

  // Only the head's name (safetensors' save_model keeps one name of a tied pair).
  io::StateDict head_only;
  for (const auto& e : p.weights)
    if (e.name != "transformer.wte.weight") head_only.insert(e.name, e.tensor);
  head_only.insert("lm_head.weight", wte);
  auto m = make_causal_lm(p.config, 4);
  LoadReport r = m->load_state_dict(head_only);
  CHECK(r.missing_keys.empty());
  CHECK(m->state_dict().at("transformer.wte.weight").to_vector<float>() == wte.to_vector<float>());

  // Both names, in either order: the embedding's values win, as when transformers re-ties.
  Tensor other = Tensor::zeros(wte.shape());
  for (bool head_first : {true, false}) {
    io::StateDict both;
    if (head_first) both.insert("lm_head.weight", other);
    for (const auto& e : p.weights) both.insert(e.name, e.tensor);
    if (!head_first) both.insert("lm_head.weight", other);
    auto mb = make_causal_lm(p.config, 4);
    mb->load_state_dict(both);
    CHECK(mb->state_dict().at("lm_head.weight").to_vector<float>() == wte.to_vector<float>());
  }

  // Neither name: strict names the embedding.
  io::StateDict none;
  for (const auto& e : p.weights)
    if (e.name != "transformer.wte.weight") none.insert(e.name, e.tensor);
  CHECK_THROWS_WITH(make_causal_lm(p.config, 4)->load_state_dict(none),
                    Catch::Contains("has no tensor for: transformer.wte.weight"));
  // A wrong shape names the tensor and both shapes.
  io::StateDict bad = p.weights;
  bad.set("transformer.h.0.ln_1.weight", Tensor::zeros({3}));
  CHECK_THROWS_WITH(make_causal_lm(p.config, 4)->load_state_dict(bad),
                    Catch::Contains("transformer.h.0.ln_1.weight") && Catch::Contains("[3]"));
}
