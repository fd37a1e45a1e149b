// GPT-2 against Hugging Face transformers (fixtures from tools/gen_gpt2_fixtures.py):
// logits, loss, every parameter gradient, one AdamW step, the LR schedule, greedy generation.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fstream>
#include <galvani/galvani.hpp>
#include <galvani/models/auto.hpp>

#include "support/gradcheck.hpp"

using namespace galvani;
using galvani::testing::max_rel_diff;
namespace fs = std::filesystem;

namespace {
const fs::path kDir = fs::path(GALVANI_SOURCE_DIR) / "tests/fixtures/gpt2";

}  // namespace

TEST_CASE("GPT-2 logits, loss and gradients match transformers", "[gpt2][fixture]") {
  auto model = load_causal_lm(kDir);
  model->eval();  // the fixture was made without dropout
  io::StateDict ref = io::load_safetensors(kDir / "reference.safetensors");
  Tensor ids = ref.at("input_ids"), mask = ref.at("attention_mask"), labels = ref.at("labels");

  Tensor logits = model->forward(ids, mask);
  CHECK(max_rel_diff(logits, ref.at("logits")) < 1e-5);
  Tensor loss = causal_lm_loss(logits, labels);
  CHECK(loss.item() == Approx(ref.at("loss").item()).epsilon(1e-6));
  loss.backward();
  int checked = 0;
  for (auto& [name, p] : model->named_parameters()) {
    INFO(name);
    REQUIRE(p.grad().defined());
    CHECK(max_rel_diff(p.grad(), ref.at("grad." + name)) < 1e-5);
    ++checked;
  }
  CHECK(checked == 2 + 2 * 12 + 2);  // wte, wpe, 12 per block, ln_f

  SECTION("one AdamW step matches torch.optim.AdamW") {
    const double lr = 1e-3;
    AdamW opt(model->parameters(), AdamWOptions{lr, 0.9, 0.999, 1e-8, 0.01});
    opt.step();
    for (auto& [name, p] : model->named_parameters()) {
      INFO(name);
      // Adam's first step moves each weight by ≈ lr·sign(g). Where the true gradient
      // is zero (the key bias: softmax ignores a constant shift of the scores) the
      // sign is float noise in both frameworks, so there only |Δ| ≤ 2·lr is meaningful.
      auto got = p.to_vector<double>(), want = ref.at("adamw." + name).to_vector<double>();
      auto g = ref.at("grad." + name).to_vector<double>();
      double gmax = 0;
      for (double x : g) gmax = std::max(gmax, std::abs(x));
      // Elsewhere the step is lr·g/(|g| + ε) (+ decay), whose slope in g is lr·ε/g²: the
      // gradient's own tolerance above (1e-5·gmax; the summation order differs between
      // frameworks and between instruction-set levels) moves it by up to lr·ε·1e-5·gmax/g².
      const double eps = 1e-8;
      double worst = 0;  // excess over that allowance, plus 1e-6
      for (size_t i = 0; i < got.size(); ++i) {
        const double d = std::abs(got[i] - want[i]);
        if (std::abs(g[i]) > 1e-6 * gmax) worst = std::max(worst, d - lr * eps * 1e-5 * gmax / (g[i] * g[i]));
        else CHECK(d <= 2.01 * lr);
      }
      CHECK(worst < 1e-6);
    }
  }
}

TEST_CASE("the linear warmup schedule matches get_linear_schedule_with_warmup", "[gpt2][fixture][optim]") {
  auto j = nlohmann::json::parse(std::ifstream(kDir / "reference.json"));
  LRSchedule s{LRSchedule::Kind::linear, 3, 10};
  auto expected = j["linear_schedule_warmup3_total10"].get<std::vector<double>>();
  for (size_t i = 0; i < expected.size(); ++i) {
    INFO("step " << i);
    CHECK(s.factor(int64_t(i)) == Approx(expected[i]).margin(1e-12));
  }
}

TEST_CASE("GPT-2: greedy generation with the KV cache matches transformers' generate", "[gpt2][fixture][generate]") {
  auto model = load_causal_lm(kDir);
  auto j = nlohmann::json::parse(std::ifstream(kDir / "reference.json"));
  auto prompt = j["generate_prompt"].get<std::vector<int64_t>>();
  auto expected = j["generate_new_tokens"].get<std::vector<int64_t>>();
  GenerationOptions opt;
  opt.max_new_tokens = 20;
  CHECK(generate(*model, prompt, opt) == expected);
  // The cache changes nothing: recomputing the whole prefix each step gives the same tokens.
  std::vector<int64_t> ctx = prompt;
  NoGradGuard ng;
  model->eval();
  for (int i = 0; i < 20; ++i) {
    Tensor logits = model->forward(Tensor::from_vector(ctx, {1, int64_t(ctx.size())}));
    auto last = logits.select(1, int64_t(ctx.size()) - 1).select(0, 0).to_vector<float>();
    ctx.push_back(int64_t(std::max_element(last.begin(), last.end()) - last.begin()));
  }
  CHECK(std::vector<int64_t>(ctx.begin() + 4, ctx.end()) == expected);
}

TEST_CASE("a saved GPT-2 loads back identically", "[gpt2][io]") {
  auto model = load_causal_lm(kDir);
  fs::path dir = fs::temp_directory_path() / "galvani_test_gpt2_roundtrip";
  fs::remove_all(dir);
  save_causal_lm(*model, dir);
  CHECK(fs::exists(dir / "config.json"));
  CHECK(fs::exists(dir / "model.safetensors"));
  auto back = load_causal_lm(dir);
  auto a = model->named_parameters(), b = back->named_parameters();
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) CHECK(a[i].second.to_vector<float>() == b[i].second.to_vector<float>());
  fs::remove_all(dir);
}

TEST_CASE("load_causal_lm streams a checkpoint and names the tensor at fault", "[gpt2][io][errors]") {
  const io::StateDict good = io::from_pretrained(kDir).weights;  // canonical names
  const fs::path dir = fs::temp_directory_path() / "galvani_test_gpt2_bad_checkpoint";
  // A model directory: the fixture's config.json and `sd` as model.safetensors.
  auto write = [&](const io::StateDict& sd) {
    fs::remove_all(dir);
    fs::create_directories(dir);
    fs::copy_file(kDir / "config.json", dir / "config.json");
    io::save_safetensors(dir / "model.safetensors", sd);
  };
  // `good` with one tensor left out, or replaced.
  auto edited = [&](const std::string& name, std::optional<Tensor> replacement) {
    io::StateDict sd;
    for (const auto& e : good)
      if (e.name != name) sd.insert(e.name, e.tensor);
      else if (replacement) sd.insert(e.name, *replacement);
    return sd;
  };

  SECTION("a missing tensor") {
    write(edited("transformer.h.1.mlp.c_fc.weight", std::nullopt));
    CHECK_THROWS_WITH(load_causal_lm(dir),
                      Catch::Contains("no tensor for") && Catch::Contains("transformer.h.1.mlp.c_fc.weight"));
  }
  SECTION("a tensor of the wrong shape") {
    write(edited("transformer.h.0.attn.c_proj.weight", Tensor::zeros({32, 16})));
    CHECK_THROWS_WITH(load_causal_lm(dir), Catch::Contains("transformer.h.0.attn.c_proj.weight") &&
                                               Catch::Contains("[32, 16]") && Catch::Contains("[32, 32]"));
  }
  SECTION("bare GPT2Model names, mask buffers and a tied lm_head.weight load as the fixture") {
    io::StateDict sd;
    for (const auto& e : good) sd.insert(e.name.substr(std::string("transformer.").size()), e.tensor);
    sd.insert("h.0.attn.bias", Tensor::ones({1, 1, 32, 32}));  // the causal-mask buffer of old checkpoints
    sd.insert("lm_head.weight", good.at("transformer.wte.weight"));
    write(sd);
    auto a = load_causal_lm(dir), b = load_causal_lm(kDir);
    auto pa = a->named_parameters(), pb = b->named_parameters();
    REQUIRE(pa.size() == pb.size());
    for (size_t i = 0; i < pa.size(); ++i) CHECK(pa[i].second.to_vector<float>() == pb[i].second.to_vector<float>());
  }
  fs::remove_all(dir);
}

TEST_CASE("sampling options are deterministic for a seed", "[gpt2][generate]") {
  auto model = load_causal_lm(kDir);
  GenerationOptions opt;
  opt.do_sample = true;
  opt.temperature = 0.8;
  opt.top_k = 20;
  opt.top_p = 0.9;
  opt.repetition_penalty = 1.3;
  opt.seed = 7;
  opt.max_new_tokens = 15;
  std::vector<int64_t> prompt{5, 17, 42, 8};
  auto a = generate(*model, prompt, opt), b = generate(*model, prompt, opt);
  CHECK(a == b);
  CHECK(a.size() == 15);
  opt.seed = 8;
  CHECK(generate(*model, prompt, opt) != a);
}

TEST_CASE("attn_pdrop drops attention probabilities in train mode, reproducibly for a seed", "[gpt2][dropout]") {
  GPT2LMHeadModel model(std::get<GPT2Config>(io::load_model_config(kDir / "config.json")), 42);
  load_checkpoint(model, kDir, "gpt2");
  // Silence the embedding and residual dropouts so that attention dropout is the only
  // randomness left (the fixture has attn_pdrop = embd_pdrop = resid_pdrop = 0.1).
  model.transformer->drop->p = 0;
  for (size_t i = 0; i < model.transformer->h->size(); ++i) {
    GPT2Block& block = (*model.transformer->h)[i];
    block.attn->resid_dropout->p = block.mlp->dropout->p = 0;
  }
  Tensor ids = Tensor::from_vector<int64_t>({5, 17, 42, 8, 3, 9, 1, 30, 12, 6, 2, 4}, {2, 6});
  NoGradGuard ng;
  model.eval();
  const auto eval_logits = model.forward(ids).to_vector<float>();

  model.train();
  const auto a = model.forward(ids).to_vector<float>(), b = model.forward(ids).to_vector<float>();
  CHECK(a != b);  // dropout is active and each forward draws a fresh mask
  CHECK(a != eval_logits);
  model.set_seed(7);
  const auto c = model.forward(ids).to_vector<float>();
  model.set_seed(7);
  CHECK(model.forward(ids).to_vector<float>() == c);  // reseeding replays the masks
  model.set_seed(8);
  CHECK(model.forward(ids).to_vector<float>() != c);

  // With attn_pdrop = 0 a train-mode forward is the eval forward: the randomness above was
  // the attention dropout's.
  for (size_t i = 0; i < model.transformer->h->size(); ++i) (*model.transformer->h)[i].attn->attn_dropout->p = 0;
  CHECK(model.forward(ids).to_vector<float>() == eval_logits);
}

TEST_CASE("GPT-2 rejects bad input with clear errors", "[gpt2][errors]") {
  auto model = load_causal_lm(kDir);
  CHECK_THROWS_WITH(model->forward(Tensor::zeros({5}, DType::i64)), Catch::Contains("(B, T)"));
  CHECK_THROWS_WITH(model->forward(Tensor::zeros({1, 40}, DType::i64)), Catch::Contains("context length 32"));
  CHECK_THROWS_WITH(model->forward(Tensor::full({1, 3}, 500, DType::i64)), Catch::Contains("500"));
  CHECK_THROWS_WITH(model->forward(Tensor::zeros({1, 3}, DType::i64), Tensor::ones({1, 4}, DType::i64)),
                    Catch::Contains("attention_mask"));
}
