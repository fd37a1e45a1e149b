// Tokenized datasets (data/dataset.hpp) with a byte-level stand-in encoder,
// and the whole data path of course steps 1–2: CSV -> clean -> split ->
// tokenize -> collate.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include <galvani/data/collator.hpp>
#include <galvani/data/dataset.hpp>
#include <galvani/data/eda.hpp>
#include <galvani/data/split.hpp>

using namespace galvani;
namespace fs = std::filesystem;

// One id per byte, then an EOS (id 256) — enough to exercise the plumbing.
static std::vector<int32_t> byte_encode(std::string_view s) {
  std::vector<int32_t> ids;
  for (unsigned char c : s) ids.push_back(int32_t(c));
  ids.push_back(256);
  return ids;
}

TEST_CASE("tokenize maps every row; lengths and token counts add up", "[data][dataset]") {
  Table t = Table::from_column("text", {"ab", "hello", "é"});
  TokenizedDataset ds = tokenize(t.column("text"), byte_encode);
  REQUIRE(ds.size() == 3);
  CHECK(ds.rows[0] == std::vector<int32_t>{'a', 'b', 256});
  CHECK(ds.total_tokens() == 3 + 6 + 3);
  auto len = ds.lengths();
  CHECK(std::vector<double>(len.begin(), len.end()) == std::vector<double>{3, 6, 3});
  CHECK(describe(ds.lengths()).max == 6);
  CHECK(ds.gather({2, 0}) == std::vector<std::vector<int32_t>>{ds.rows[2], ds.rows[0]});
  CHECK_THROWS_WITH(ds.gather({3}), Catch::Contains("row 3 is out of range"));
}

TEST_CASE("tokenize refuses missing values and says how to drop them", "[data][dataset]") {
  Column c{Cell{"a"}, Cell{}};
  CHECK_THROWS_WITH(tokenize(c, byte_encode), Catch::Contains("row 1 is missing") && Catch::Contains("drop_blank"));
  CHECK_THROWS_WITH(tokenize(c, Encoder{}), Catch::Contains("no encoder"));
}

TEST_CASE("steps 1-2 end to end: CSV, clean, split, tokenize, collate", "[data][dataset]") {
  fs::path dir = fs::temp_directory_path() / "galvani_test_data_dataset";
  fs::create_directories(dir);
  fs::path csv = dir / "chunks.csv";
  {
    std::ofstream out(csv, std::ios::binary);
    out << "text\n";
    for (int i = 0; i < 48; ++i) out << "\"Snippet " << i << ", with a comma and \"\"quotes\"\".\"\n";
    out << "\"  \"\n\"\"\n";  // one blank and one missing row: dropped, counted
  }
  DropReport rep;
  Table t = read_text_csv(csv, "text", &rep);
  CHECK(t.rows() == 48);
  CHECK(rep.total() == 2);
  TableSplit s = train_test_split(t, 0.2, 42);
  CHECK(s.train.rows() == 38);
  CHECK(s.test.rows() == 10);
  TokenizedDataset train = tokenize(s.train.column("text"), byte_encode);
  Batch b = collate_causal_lm(train.gather({0, 1}), {256});
  CHECK(b.batch == 2);
  CHECK(b.seq == int64_t(std::max(train.rows[0].size(), train.rows[1].size())));
  // The byte encoder ends every row with the EOS (256) = pad: masked in labels, as HF would.
  for (int64_t i = 0; i < b.batch; ++i)
    for (int64_t j = 0; j < b.seq; ++j)
      if (b.at(b.input_ids, i, j) == 256) CHECK(b.at(b.labels, i, j) == -100);
}
