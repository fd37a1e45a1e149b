// Mistral and Llama against Hugging Face transformers (fixtures from tools/gen_mistral_fixtures.py):
// logits, loss, every parameter gradient, the sliding-window convention, greedy generation
// with the KV cache, the streaming loader, save/load round trips and error messages.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fstream>
#include <galvani/galvani.hpp>
#include <galvani/models/auto.hpp>
#include <galvani/models/mistral.hpp>

#include "support/gradcheck.hpp"

using namespace galvani;
using galvani::testing::max_rel_diff;
namespace fs = std::filesystem;

namespace {
const fs::path kMistral = fs::path(GALVANI_SOURCE_DIR) / "tests/fixtures/mistral";
const fs::path kLlama = fs::path(GALVANI_SOURCE_DIR) / "tests/fixtures/llama";


std::unique_ptr<MistralForCausalLM> load_fixture(const fs::path& dir) {
  auto m = MistralForCausalLM::from_pretrained(dir);
  m->eval();  // the fixtures were made without dropout
  return m;
}

// Logits, loss and every gradient; returns the worst relative difference seen.
double check_against_reference(MistralForCausalLM& model, const fs::path& dir, int expected_params) {
  io::StateDict ref = io::load_safetensors(dir / "reference.safetensors");
  Tensor ids = ref.at("input_ids"), mask = ref.at("attention_mask"), labels = ref.at("labels");
  Tensor logits = model.forward(ids, mask);
  double worst = max_rel_diff(logits, ref.at("logits"));
  CHECK(worst < 1e-5);
  Tensor loss = causal_lm_loss(logits, labels);
  CHECK(loss.item() == Approx(ref.at("loss").item()).epsilon(1e-6));
  loss.backward();
  int checked = 0;
  for (auto& [name, p] : model.named_parameters()) {
    INFO(name);
    REQUIRE(p.grad().defined());
    const double d = max_rel_diff(p.grad(), ref.at("grad." + name));
    CHECK(d < 1e-5);
    worst = std::max(worst, d);
    ++checked;
  }
  CHECK(checked == expected_params);
  return worst;
}

std::vector<int64_t> greedy_recompute(CausalLM& model, std::vector<int64_t> ctx, int n) {
  NoGradGuard ng;
  model.eval();
  const size_t start = ctx.size();
  for (int i = 0; i < n; ++i) {
    Tensor logits = model.forward(Tensor::from_vector(ctx, {1, int64_t(ctx.size())}));
    auto last = logits.select(1, int64_t(ctx.size()) - 1).select(0, 0).to_vector<float>();
    ctx.push_back(int64_t(std::max_element(last.begin(), last.end()) - last.begin()));
  }
  return {ctx.begin() + int64_t(start), ctx.end()};
}
}  // namespace

TEST_CASE("Mistral logits, loss and gradients match transformers", "[mistral][fixture]") {
  auto model = load_fixture(kMistral);
  CHECK(model->config.sliding_window == 8);
  CHECK(model->config.rope_theta == 1000.0);
  CHECK(&model->get_submodule_as<Linear>("lm_head").weight != &model->model->embed_tokens->weight);
  CHECK(!model->get_submodule_as<Linear>("lm_head").weight.is_same(model->model->embed_tokens->weight));
  const double worst = check_against_reference(*model, kMistral, 1 + 2 * 9 + 1 + 1);  // embed, 9 per layer, norm, lm_head
  WARN("Mistral: max relative difference to transformers (logits and gradients) " << worst);
}

TEST_CASE("Llama (tied embeddings, biases, head_dim, padding_idx) matches transformers", "[mistral][llama][fixture]") {
  auto model = load_fixture(kLlama);
  CHECK(model->config.is_llama());
  // tied: the head's weight is embed_tokens.weight, one parameter under its first name
  CHECK(model->get_submodule_as<Linear>("lm_head").weight.is_same(model->model->embed_tokens->weight));
  CHECK(model->padding_idx() == 0);
  for (auto& [name, t] : model->named_parameters()) CHECK(name != "lm_head.weight");
  // 9 weights + 4 attention biases + 3 MLP biases per layer, embed, norm.
  const double worst = check_against_reference(*model, kLlama, 1 + 2 * 16 + 1);
  WARN("Llama: max relative difference to transformers (logits and gradients) " << worst);
}

TEST_CASE("the sliding window is transformers' convention: query i sees keys i-w < j <= i", "[mistral][fixture]") {
  io::StateDict ref = io::load_safetensors(kMistral / "reference.safetensors");
  Tensor ids = ref.at("input_ids"), mask = ref.at("attention_mask");
  NoGradGuard ng;
  // The same weights with windows 7, 9 and none match HF run with those windows, and each
  // differs from window 8: an off-by-one would show here.
  for (std::optional<int64_t> w : {std::optional<int64_t>(7), std::optional<int64_t>(9), std::optional<int64_t>()}) {
    io::ModelConfig mc = io::load_model_config(kMistral / "config.json");
    auto cfg = std::get<MistralConfig>(mc);
    cfg.sliding_window = w;
    MistralForCausalLM m(cfg);
    m.load_weights_streaming(kMistral);
    m.eval();
    const std::string key = "logits.window" + (w ? std::to_string(*w) : std::string("none"));
    INFO(key);
    Tensor logits = m.forward(ids, mask);
    CHECK(max_rel_diff(logits, ref.at(key)) < 1e-5);
    CHECK(max_rel_diff(logits, ref.at("logits")) > 1e-3);
  }
}

TEST_CASE("Mistral and Llama: greedy generation with the KV cache matches transformers' generate", "[mistral][fixture][generate]") {
  for (const fs::path& dir : {kMistral, kLlama}) {
    INFO(dir.filename().string());
    auto model = load_fixture(dir);
    auto j = nlohmann::json::parse(std::ifstream(dir / "reference.json"));
    auto prompt = j["generate_prompt"].get<std::vector<int64_t>>();
    auto expected = j["generate_new_tokens"].get<std::vector<int64_t>>();
    REQUIRE(expected.size() == 20);
    GenerationOptions opt;
    opt.max_new_tokens = 20;
    opt.stop_at_eos = false;  // the reference ran with eos_token_id=None
    CHECK(generate(*model, prompt, opt) == expected);
    // 6 + 20 positions > window 8: the cached path and a full recompute agree.
    CHECK(greedy_recompute(*model, prompt, 20) == expected);
  }
}

TEST_CASE("KV cache steps give the logits of a full forward", "[mistral][generate]") {
  auto model = load_fixture(kMistral);
  NoGradGuard ng;
  io::StateDict ref = io::load_safetensors(kMistral / "reference.safetensors");
  Tensor ids = ref.at("input_ids").narrow(0, 0, 1).contiguous();  // (1, 24)
  Tensor full = model->forward(ids);
  KVCache cache = model->new_cache(1, 24);
  // A 5-token prefill, then chunks of 1, 3 and the rest: the window crosses chunk edges.
  int64_t t = 0;
  for (int64_t n : {5, 1, 3, 1, 1, 13}) {
    Tensor step = model->forward(ids.narrow(1, t, n).contiguous(), Tensor(), &cache);
    CHECK(max_rel_diff(step, full.narrow(1, t, n).contiguous()) < 1e-5);
    t += n;
  }
  CHECK(cache.length == 24);
  CHECK_THROWS_WITH(model->forward(ids.narrow(1, 0, 1).contiguous(), Tensor(), &cache), Catch::Contains("capacity"));
}

TEST_CASE("explicit position ids: arange by default, shifted ids shift RoPE", "[mistral]") {
  auto model = load_fixture(kMistral);
  NoGradGuard ng;
  Tensor ids = Tensor::from_vector(std::vector<int64_t>{5, 17, 42, 8, 61, 3}, {1, 6});
  Tensor a = model->forward(ids);
  Tensor b = model->forward_with_positions(ids, Tensor(), nullptr, Tensor::arange(6, DType::i64));
  CHECK(max_rel_diff(a, b) == 0);
  // RoPE is relative: shifting every position by the same amount changes nothing (up to rounding).
  Tensor c = model->forward_with_positions(ids, Tensor(), nullptr, position_range(6, 3));
  CHECK(max_rel_diff(a, c) < 1e-4);
}

TEST_CASE("the streaming loader visits each tensor once, shard by shard", "[mistral][io]") {
  std::vector<std::string> names;
  load_streaming(kMistral, [&](const std::string& name, const io::TensorView& v) {
    names.push_back(name);
    CHECK(v.dtype() == DType::f32);
  }, StreamOptions{"mistral", true});
  CHECK(names.size() == 21);
  CHECK(std::set<std::string>(names.begin(), names.end()).size() == 21);
  // Loading by stream and loading a StateDict give the same model.
  auto streamed = load_fixture(kMistral);
  auto via_auto = load_causal_lm(kMistral);
  auto a = streamed->named_parameters(), b = via_auto->named_parameters();
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].first == b[i].first);
    CHECK(a[i].second.to_vector<float>() == b[i].second.to_vector<float>());
  }
  // A tied model skips nothing it needs and reports nothing unexpected.
  MistralForCausalLM llama(std::get<MistralConfig>(io::load_model_config(kLlama / "config.json")));
  LoadReport r = llama.load_weights_streaming(kLlama);
  CHECK(r.unexpected_keys.empty());
  CHECK(r.missing_keys.empty());
  CHECK(r.loaded.size() == 34);
}

TEST_CASE("bf16 checkpoints stream into f32 parameters", "[mistral][io]") {
  auto model = load_fixture(kMistral);
  fs::path dir = fs::temp_directory_path() / "galvani_test_mistral_bf16";
  fs::remove_all(dir);
  io::StateDict sd;
  for (auto& [name, t] : model->named_parameters()) sd.insert(name, t.to(DType::bf16));
  io::SavePretrainedOptions so;
  so.max_shard_size = 50'000;  // several shards
  io::save_pretrained(dir, io::parse_model_config(model->config_json()), sd, so);
  CHECK(fs::exists(dir / "model.safetensors.index.json"));
  auto back = MistralForCausalLM::from_pretrained(dir);
  auto a = model->named_parameters(), b = back->named_parameters();
  for (size_t i = 0; i < a.size(); ++i) {
    INFO(a[i].first);
    CHECK(b[i].second.dtype() == DType::f32);
    CHECK(b[i].second.to_vector<float>() == a[i].second.to(DType::bf16).to_vector<float>());
  }
  fs::remove_all(dir);
}

TEST_CASE("a saved Mistral/Llama loads back identically, in galvani and by name", "[mistral][io]") {
  for (const fs::path& src : {kMistral, kLlama}) {
    INFO(src.filename().string());
    auto model = load_causal_lm(src);
    fs::path dir = fs::temp_directory_path() / ("galvani_test_roundtrip_" + src.filename().string());
    fs::remove_all(dir);
    save_causal_lm(*model, dir);
    auto cfg = nlohmann::json::parse(std::ifstream(dir / "config.json"));
    CHECK(cfg["model_type"] == src.filename().string());
    auto back = load_causal_lm(dir);
    auto a = model->named_parameters(), b = back->named_parameters();
    REQUIRE(a.size() == b.size());
    for (size_t i = 0; i < a.size(); ++i) CHECK(a[i].second.to_vector<float>() == b[i].second.to_vector<float>());
    io::StateDict saved = io::load_checkpoint(dir);
    CHECK(saved.contains("lm_head.weight") == (src == kMistral));  // a tied head is not written
    fs::remove_all(dir);
  }
}

TEST_CASE("attention_dropout is applied in training only, reproducibly for a seed", "[mistral][dropout]") {
  for (const fs::path& dir : {kMistral, kLlama}) {
    INFO(dir.filename().string());
    MistralConfig cfg = std::get<MistralConfig>(io::load_model_config(dir / "config.json"));
    cfg.attention_dropout = 0.2;
    MistralForCausalLM m(cfg, 11);
    m.load_weights_streaming(dir);
    Tensor ids = Tensor::from_vector<int64_t>({5, 17, 42, 8, 3, 9, 1, 30, 12, 6, 2, 4}, {2, 6});
    NoGradGuard ng;
    m.eval();
    const auto eval_logits = m.forward(ids).to_vector<float>();
    CHECK(m.forward(ids).to_vector<float>() == eval_logits);  // eval: no dropout
    m.train();
    const auto a = m.forward(ids).to_vector<float>(), b = m.forward(ids).to_vector<float>();
    CHECK(a != b);  // each forward draws a fresh mask
    CHECK(a != eval_logits);
    m.set_seed(123);
    const auto c = m.forward(ids).to_vector<float>();
    m.set_seed(123);
    CHECK(m.forward(ids).to_vector<float>() == c);
  }
}

TEST_CASE("load_causal_lm names the missing or mis-shaped tensor of a sharded checkpoint", "[mistral][io][errors]") {
  const io::Pretrained p = io::from_pretrained(kMistral);
  const fs::path dir = fs::temp_directory_path() / "galvani_test_mistral_bad_checkpoint";
  // Several shards and an index, `name` left out or replaced.
  auto write = [&](const std::string& name, std::optional<Tensor> replacement) {
    io::StateDict sd;
    for (const auto& e : p.weights)
      if (e.name != name) sd.insert(e.name, e.tensor);
      else if (replacement) sd.insert(e.name, *replacement);
    fs::remove_all(dir);
    io::SavePretrainedOptions so;
    so.max_shard_size = 50'000;
    io::save_pretrained(dir, p.config, sd, so);
    REQUIRE(fs::exists(dir / "model.safetensors.index.json"));
  };
  write("model.layers.0.mlp.up_proj.weight", std::nullopt);
  CHECK_THROWS_WITH(load_causal_lm(dir),
                    Catch::Contains("no tensor for") && Catch::Contains("model.layers.0.mlp.up_proj.weight"));
  const Shape head = p.weights.at("lm_head.weight").shape();
  write("lm_head.weight", Tensor::zeros({head[0] + 1, head[1]}));
  CHECK_THROWS_WITH(load_causal_lm(dir), Catch::Contains("lm_head.weight") &&
                                             Catch::Contains(shape_str({head[0] + 1, head[1]})) &&
                                             Catch::Contains(shape_str(head)));
  fs::remove_all(dir);
}

TEST_CASE("a random Mistral is initialised as transformers does", "[mistral]") {
  MistralConfig cfg = MistralConfig::defaults("mistral");
  cfg.vocab_size = 50;
  cfg.hidden_size = 32;
  cfg.intermediate_size = 48;
  cfg.num_hidden_layers = 1;
  cfg.num_attention_heads = 4;
  cfg.num_key_value_heads = 1;
  cfg.pad_token_id = 7;
  cfg.initializer_range = 0.05;
  MistralForCausalLM m(cfg, 3);
  auto w = m.model->embed_tokens->weight.select(0, 7).to_vector<float>();
  CHECK(std::all_of(w.begin(), w.end(), [](float x) { return x == 0; }));  // padding_idx row
  auto n = m.model->norm->weight.to_vector<float>();
  CHECK(std::all_of(n.begin(), n.end(), [](float x) { return x == 1; }));
  auto q = m.get_submodule_as<Linear>("model.layers.0.self_attn.q_proj").weight.to_vector<double>();
  double ss = 0;
  for (double x : q) ss += x * x;
  CHECK(std::sqrt(ss / double(q.size())) == Approx(0.05).epsilon(0.1));
  CHECK(m.get_submodule_as<Linear>("model.layers.0.self_attn.k_proj").weight.shape() == (Shape{8, 32}));  // 1 kv head of D = 8
  CHECK(m.num_parameters() == 50 * 32 * 2 + 32 + 32 * (32 + 8 + 8 + 32) + 3 * 32 * 48 + 2 * 32);
}

TEST_CASE("Mistral rejects bad input and unsupported configs with clear errors", "[mistral][errors]") {
  auto model = load_fixture(kMistral);
  CHECK_THROWS_WITH(model->forward(Tensor::zeros({5}, DType::i64)), Catch::Contains("(B, T)"));
  CHECK_THROWS_WITH(model->forward(Tensor::full({1, 3}, 500, DType::i64)), Catch::Contains("500"));
  CHECK_THROWS_WITH(model->forward(Tensor::zeros({1, 3}, DType::i64), Tensor::ones({1, 4}, DType::i64)),
                    Catch::Contains("attention_mask"));
  CHECK_THROWS_WITH(model->forward_with_positions(Tensor::zeros({1, 3}, DType::i64), Tensor(), nullptr,
                                                  Tensor::arange(4, DType::i64)),
                    Catch::Contains("position_ids"));

  MistralConfig cfg = model->config;
  cfg.hidden_act = "gelu";
  CHECK_THROWS_WITH(MistralForCausalLM(cfg), Catch::Contains("hidden_act"));
  cfg = model->config;
  cfg.rope_type = "yarn";
  CHECK_THROWS_WITH(MistralForCausalLM(cfg), Catch::Contains("yarn"));

  // A checkpoint for another shape names the tensor at fault; a GPT-2 dir is refused by type.
  cfg = model->config;
  cfg.intermediate_size = 64;
  MistralForCausalLM narrow(cfg);
  CHECK_THROWS_WITH(narrow.load_weights_streaming(kMistral), Catch::Contains("mlp.gate_proj.weight"));
  CHECK_THROWS_WITH(MistralForCausalLM::from_pretrained(fs::path(GALVANI_SOURCE_DIR) / "tests/fixtures/gpt2"),
                    Catch::Contains("gpt2"));
  // strict: a parameter with no tensor in the checkpoint is an error.
  cfg = model->config;
  cfg.num_hidden_layers = 3;
  MistralForCausalLM deeper(cfg);
  CHECK_THROWS_WITH(deeper.load_weights_streaming(kMistral), Catch::Contains("model.layers.2."));
}
