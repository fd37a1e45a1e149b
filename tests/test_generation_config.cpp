// Generation defaults against transformers (fixtures from tools/gen_generation_fixtures.py):
// each case writes a model directory the way a user has one — config.json, and
// generation_config.json or none — and checks that generation_options(dir, overrides)
// + generate() stop where transformers' generate() stops (issue #11: an EOS list
// that only generation_config.json names).
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fstream>
#include <galvani/galvani.hpp>
#include <galvani/eval/generate.hpp>
#include <galvani/models/auto.hpp>

using namespace galvani;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {
const fs::path kFixtures = fs::path(GALVANI_SOURCE_DIR) / "tests/fixtures/generation";

json load_cases() {
  std::ifstream in(kFixtures / "cases.json");
  REQUIRE(in);
  return json::parse(in);
}

void write_json(const fs::path& p, const json& j) {
  std::ofstream out(p);
  out << j.dump(1);
}

// The case's model directory: the committed weights plus the case's config files.
fs::path case_dir(const json& c) {
  const fs::path d = fs::temp_directory_path() / ("galvani_generation_" + c["name"].get<std::string>());
  fs::remove_all(d);
  fs::create_directories(d);
  fs::copy_file(kFixtures / c["model"].get<std::string>() / "model.safetensors", d / "model.safetensors");
  write_json(d / "config.json", c["config"]);
  if (!c["generation_config"].is_null()) write_json(d / "generation_config.json", c["generation_config"]);
  return d;
}

// generate()'s keyword arguments in the case, as a caller's overrides.
GenerationOverrides overrides_of(const json& kw) {
  GenerationOverrides o;
  if (kw.contains("max_new_tokens")) o.max_new_tokens = kw["max_new_tokens"].get<int64_t>();
  if (kw.contains("max_length")) o.max_length = kw["max_length"].get<int64_t>();
  if (kw.contains("eos_token_id")) {
    const json& e = kw["eos_token_id"];
    o.eos_token_id = e.is_array() ? e.get<std::vector<int64_t>>() : std::vector<int64_t>{e.get<int64_t>()};
  }
  if (kw.contains("repetition_penalty")) o.repetition_penalty = kw["repetition_penalty"].get<double>();
  return o;
}
}  // namespace

TEST_CASE("generation_config.json + call arguments stop where transformers stops", "[generate][fixture]") {
  const json cases = load_cases();
  REQUIRE(cases["cases"].size() >= 10);
  for (const json& c : cases["cases"]) {
    DYNAMIC_SECTION(c["name"].get<std::string>() << ": " << c["what"].get<std::string>()) {
      const fs::path dir = case_dir(c);
      auto model = load_causal_lm(dir);
      const GenerationOptions opt = generation_options(dir, overrides_of(c["kwargs"]));
      const auto prompt = c["prompt"].get<std::vector<int64_t>>();
      CHECK(generate(*model, prompt, opt) == c["new_tokens"].get<std::vector<int64_t>>());
      fs::remove_all(dir);
    }
  }
}

TEST_CASE("issue #11: the EOS list of generation_config.json stops greedy decoding", "[generate][fixture]") {
  const json c = load_cases()["cases"][0];
  REQUIRE(c["name"] == "issue11_eos_list_only_in_generation_config");
  const fs::path dir = case_dir(c);
  const GenerationOptions opt = generation_options(dir, {.max_new_tokens = 20});
  REQUIRE(opt.eos_token_id);
  CHECK(*opt.eos_token_id == std::vector<int64_t>{2, 7655});
  auto model = load_causal_lm(dir);
  auto out = generate(*model, c["prompt"].get<std::vector<int64_t>>(), opt);
  CHECK(out.back() == 7655);
  CHECK(out.size() == 4);
  fs::remove_all(dir);
}

TEST_CASE("generation_options: the resolution rules", "[generate]") {
  SECTION("no length anywhere: 20 new tokens; max_length in the file counts the prompt") {
    auto none = generation_options(io::GenerationConfig::from_json(json::parse(R"({"eos_token_id": 2})")));
    CHECK(none.new_token_budget(5) == 20);
    auto len = generation_options(io::GenerationConfig::from_json(json::parse(R"({"max_length": 9})")));
    CHECK(len.new_token_budget(5) == 4);
    CHECK(len.new_token_budget(12) == 0);
  }
  SECTION("max_new_tokens beats max_length, in the file and from the caller") {
    auto g = io::GenerationConfig::from_json(json::parse(R"({"max_length": 9, "max_new_tokens": 11})"));
    CHECK(generation_options(g).new_token_budget(5) == 11);
    CHECK(generation_options(g, {.max_length = 30}).new_token_budget(5) == 25);
    CHECK(generation_options(g, {.max_new_tokens = 3, .max_length = 30}).new_token_budget(5) == 3);
  }
  SECTION("flags override the file, key by key") {
    auto g = io::GenerationConfig::from_json(
        json::parse(R"({"do_sample": true, "temperature": 0.6, "top_p": 0.9, "eos_token_id": [2, 7]})"));
    auto o = generation_options(g, {.top_k = 5, .do_sample = false});
    CHECK(!o.do_sample);
    CHECK(o.temperature == 0.6);
    CHECK(o.top_p == 0.9);
    CHECK(o.top_k == 5);
    CHECK(*o.eos_token_id == std::vector<int64_t>{2, 7});
  }
}

TEST_CASE("context_limit_note says where generation stops", "[generate]") {
  GPT2Config cfg;
  cfg.vocab_size = 50;
  cfg.n_positions = 16;
  cfg.n_embd = 8;
  cfg.n_layer = 1;
  cfg.n_head = 2;
  GPT2LMHeadModel model(cfg, 0);
  GenerationOptions opt;
  opt.max_new_tokens = 100000;
  const std::string note = context_limit_note(model, 4, opt);
  CHECK_THAT(note, Catch::Contains("100000") && Catch::Contains("16 positions") && Catch::Contains("after 13 new"));
  opt.max_new_tokens = 13;
  CHECK(context_limit_note(model, 4, opt).empty());
  GenerationOptions long_run;  // (not designated initializers: -Wextra warns of the fields left out)
  long_run.max_new_tokens = 100;
  long_run.stop_at_eos = false;
  CHECK(generate(model, std::vector<int64_t>{1, 2, 3, 4}, long_run).size() == 13);
}
