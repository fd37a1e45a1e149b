// The course pipeline end to end, small enough for CI: the real novel → CSV → split →
// GPT-2 tokenizer → a tiny GPT-2 trained for a few dozen steps → perplexity and text.
#include <catch2/catch.hpp>

#include "../examples/course.hpp"

using namespace course;

namespace {
struct Fixture {
  bool ok = false;
  fs::path dir = fs::temp_directory_path() / "galvani_test_pipeline";
  std::optional<Tokenizer> tok;
  Dataset data;
  Fixture() {
    auto novel = find_data_file("frankenstein/pg84.txt");
    auto tj = find_data_file("tokenizers/gpt2/tokenizer.json");
    if (!novel || !tj) return;
    fs::remove_all(dir);
    make_chunks_csv(dir / "frankenstein_chunks.csv");
    tok = Tokenizer::from_file(tj->string());
    data = load_dataset(dir / "frankenstein_chunks.csv", *tok);
    ok = true;
  }
};
Fixture& fixture() {
  static Fixture f;
  return f;
}
}  // namespace

TEST_CASE("the pipeline trains a tiny GPT-2 on the novel: loss and test perplexity fall", "[pipeline][e2e]") {
  Fixture& f = fixture();
  if (!f.ok) {
    WARN("skipped: needs frankenstein/pg84.txt and tokenizers/gpt2/tokenizer.json (set GALVANI_DATA)");
    return;
  }
  CHECK(f.data.train.size() + f.data.test.size() == f.data.df.rows());
  CHECK(f.data.test.size() == (f.data.df.rows() + 4) / 5);  // ceil(20%)
  // A CI-sized slice: 48 training rows, 12 test rows (cut to 128 tokens like the training rows;
  // to 32 under the sanitizers, where the GEMM kernels run ~12x slower: ASan checks each load).
#ifdef GALVANI_SANITIZED
  constexpr int64_t kRowTokens = 32;
#else
  constexpr int64_t kRowTokens = 128;
#endif
  Trainer::Rows train(f.data.train.rows.begin(), f.data.train.rows.begin() + 48);
  Trainer::Rows test(f.data.test.rows.begin(), f.data.test.rows.begin() + 12);
  for (auto& row : test) row.resize(std::min<size_t>(row.size(), size_t(kRowTokens)));

  GPT2LMHeadModel model(tiny_config(), /*seed=*/1);
  const PerplexityResult before = perplexity(model, test);
  CHECK(before.corpus_ppl > 10000);  // an untrained model: roughly uniform over 50,257 tokens

  TrainingArguments args = training_defaults("tiny");
  args.output_dir = (f.dir / "train").string();
  args.max_steps = 30;
  args.max_length = kRowTokens;  // rows cut to 128 tokens: half the work of full rows
  args.per_device_train_batch_size = 2;
  args.warmup_steps = 5;
  args.progress_bar = false;
  Trainer trainer(model, args, train, f.data.eos, test);
  TrainResult r = trainer.train();
  REQUIRE(r.global_step == 30);
  REQUIRE(r.log.size() == 30);
  double first = 0, last = 0;
  for (int i = 0; i < 5; ++i) {
    first += r.log[size_t(i)].loss / 5;
    last += r.log[size_t(25 + i)].loss / 5;
  }
  INFO("mean loss of the first 5 updates " << first << ", of the last 5 " << last);
  CHECK(last < first - 2.0);
  CHECK(r.log[0].learning_rate == 0.0);  // warmup: the first update runs at lr 0, as in HF
  CHECK(fs::exists(f.dir / "train" / "log.jsonl"));
  CHECK(fs::exists(f.dir / "train" / "loss.svg"));
  // eval_on_start: the test loss before the first update, then after each epoch
  // (30 updates of 24 batches per epoch: one full epoch and a partial one).
  REQUIRE(r.eval_loss.size() == 3);
  CHECK(r.eval_loss[0].first == 0);
  CHECK(r.eval_loss.back().first == 30);
  CHECK(r.eval_loss.back().second < r.eval_loss[0].second - 2.0);

  const PerplexityResult after = perplexity(model, test);
  INFO("test perplexity " << before.corpus_ppl << " -> " << after.corpus_ppl);
  CHECK(after.corpus_ppl < before.corpus_ppl / 10);
  CHECK(after.row_mean_ppl >= after.corpus_ppl);  // Jensen: the course's per-row mean is never smaller

  // Generation: deterministic for a seed, and decodable text.
  GenerationOptions g;
  g.max_new_tokens = 20;
  g.do_sample = true;
  g.seed = 3;
  auto prompt = f.tok->encode(kPrompt, true).ids;
  auto a = generate(model, prompt, g), b = generate(model, prompt, g);
  CHECK(a == b);
  g.do_sample = false;
  CHECK(generate(model, prompt, g) == generate(model, prompt, g));
  std::vector<int32_t> ids(a.begin(), a.end());
  CHECK_FALSE(f.tok->decode(ids, true).empty());
}

TEST_CASE("a saved checkpoint reloads, and bad models give clear errors", "[pipeline][errors]") {
  fs::path dir = fs::temp_directory_path() / "galvani_test_pipeline_ckpt";
  fs::remove_all(dir);
  GPT2LMHeadModel model(tiny_config(), 5);
  save_causal_lm(model, dir / "m");
  auto back = load_causal_lm(dir / "m");
  CHECK(back->num_parameters() == model.num_parameters());

  // Missing weights for --model distilgpt2: say how to get them.
  if (!fs::exists("weights/distilgpt2/config.json"))
    CHECK_THROWS_WITH(load_model("distilgpt2"), Catch::Contains("tools/fetch_weights.sh distilgpt2"));
  CHECK_THROWS_WITH(load_model((dir / "nowhere").string()), Catch::Contains("no such folder"));
  fs::create_directories(dir / "empty");
  CHECK_THROWS_WITH(load_model((dir / "empty").string()), Catch::Contains("has no config.json"));

  // A checkpoint whose config does not match its weights.
  fs::copy(dir / "m", dir / "bad", fs::copy_options::recursive);
  auto cfg = nlohmann::json::parse(std::ifstream(dir / "bad" / "config.json"));
  cfg["n_embd"] = 64;
  std::ofstream(dir / "bad" / "config.json") << cfg.dump();
  // The first tensor whose shape disagrees is named, with both shapes.
  CHECK_THROWS_WITH(load_causal_lm(dir / "bad"), Catch::Contains("transformer.") && Catch::Contains("in the checkpoint but") &&
                                                      Catch::Contains("config the weights were saved with"));
  fs::remove_all(dir);
}

TEST_CASE("the comparison report warns when base and finetuned are identical", "[pipeline][report]") {
  Evaluation e;
  e.ppl.corpus_ppl = e.ppl.row_mean_ppl = 42;
  e.generated = {1, 2, 3};
  e.text = "the same";
  std::string md = comparison_report(e, e, 100);
  CHECK_THAT(md, Catch::Contains("identical numbers"));
  Evaluation t = e;
  t.ppl.corpus_ppl = 20;
  CHECK_THAT(comparison_report(e, t, 100), !Catch::Contains("identical numbers"));
}
