// The causal-LM collator (data/collator.hpp) against Hugging Face's
// DataCollatorForLanguageModeling(mlm=False) on the same batches (fixture from
// tools/gen_data_fixtures.py, tokenized by transformers with pad = eos).
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include <galvani/data/batch_tensors.hpp>
#include <galvani/data/collator.hpp>

using namespace galvani;
namespace fs = std::filesystem;

static std::vector<int64_t> flatten(const nlohmann::json& rows) {
  std::vector<int64_t> out;
  for (const auto& r : rows)
    for (const auto& v : r) out.push_back(v.get<int64_t>());
  return out;
}

TEST_CASE("collate_causal_lm matches DataCollatorForLanguageModeling(mlm=False)", "[data][collator]") {
  std::ifstream in(fs::path(GALVANI_SOURCE_DIR) / "tests/fixtures/data/collator.json");
  REQUIRE(in);
  auto fx = nlohmann::json::parse(in);
  REQUIRE(fx["cases"].size() >= 5);
  for (const auto& c : fx["cases"]) {
    INFO(c["name"].get<std::string>());
    auto rows = c["features"].get<std::vector<std::vector<int32_t>>>();
    CollatorOptions opt;
    opt.pad_id = c["pad_id"].get<int64_t>();
    opt.padding_side = c["padding_side"] == "left" ? PaddingSide::left : PaddingSide::right;
    opt.pad_to_multiple_of = c["pad_to_multiple_of"].get<int64_t>();
    Batch b = collate_causal_lm(rows, opt);
    CHECK(b.batch == int64_t(c["input_ids"].size()));
    CHECK(b.seq == int64_t(c["input_ids"][0].size()));
    CHECK(b.input_ids == flatten(c["input_ids"]));
    CHECK(b.attention_mask == flatten(c["attention_mask"]));
    CHECK(b.labels == flatten(c["labels"]));
  }
}

TEST_CASE("with pad = eos, a real EOS token is masked in labels too (as in HF)", "[data][collator]") {
  const int64_t eos = 50256;
  Batch b = collate_causal_lm(std::vector<std::vector<int32_t>>{{464, 886, 13, int32_t(eos)}, {1, 2}}, {eos});
  CHECK(b.seq == 4);
  CHECK(b.input_ids == std::vector<int64_t>{464, 886, 13, eos, 1, 2, eos, eos});
  CHECK(b.attention_mask == std::vector<int64_t>{1, 1, 1, 1, 1, 1, 0, 0});  // the real EOS is attended to…
  CHECK(b.labels == std::vector<int64_t>{464, 886, 13, -100, 1, 2, -100, -100});  // …but never a target
}

TEST_CASE("collate_causal_lm rejects an empty batch and an unset pad id", "[data][collator]") {
  CHECK_THROWS_WITH(collate_causal_lm(std::vector<std::vector<int32_t>>{}, {50256}), Catch::Contains("no rows"));
  CHECK_THROWS_WITH(collate_causal_lm(std::vector<std::vector<int32_t>>{{1}}, {}), Catch::Contains("pad_id is not set"));
}

TEST_CASE("to_tensors gives (B, T) int64 tensors", "[data][collator]") {
  Batch b = collate_causal_lm(std::vector<std::vector<int32_t>>{{5, 6, 7}, {8}}, {0});
  BatchTensors t = to_tensors(b);
  CHECK(t.input_ids.shape() == Shape{2, 3});
  CHECK(t.labels.shape() == Shape{2, 3});
  CHECK(t.input_ids.dtype() == DType::i64);
  CHECK(t.attention_mask.data<int64_t>()[3] == 1);
  CHECK(t.attention_mask.data<int64_t>()[4] == 0);
  CHECK(t.labels.data<int64_t>()[5] == -100);
}
