// Every chunk of the course CSV, tokenized by galvani, against Hugging Face `tokenizers`
// (fixtures: tools/gen_tokenizer_fixtures.py --chunks frankenstein_chunks.csv). The chunks
// come from the same deterministic chunker tools/make_chunks uses, through a CSV round trip.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include <galvani/core/paths.hpp>
#include <galvani/data/chunking.hpp>
#include <galvani/data/csv.hpp>
#include <galvani/data/dataset.hpp>
#include <galvani/tokenizer/tokenizer.hpp>

#include "support/sha256.hpp"

using namespace galvani;
namespace fs = std::filesystem;

TEST_CASE("every chunk of the course CSV tokenizes exactly as Hugging Face does", "[tokenizer][chunks]") {
  auto novel = find_data_file("frankenstein/pg84.txt");
  if (!novel) {
    WARN("skipped: " << data_file_missing("frankenstein/pg84.txt"));
    return;
  }
  Table t = Table::from_column("text", {});
  for (auto& c : chunk_book(read_text_file(*novel))) t.add_row({Cell(c)});
  const fs::path csv = fs::temp_directory_path() / "galvani_test_chunks.csv";
  write_csv(csv, t);
  Table df = read_text_csv(csv);
  fs::remove(csv);
  const Column& text = df.column("text");

  for (std::string name : {"gpt2", "mistral"}) {
    const std::string rel = "tokenizers/" + name + "/tokenizer.json";
    auto path = find_data_file(rel);
    if (!path) {
      WARN("skipped: " << data_file_missing(rel));
      continue;
    }
    Tokenizer tok = Tokenizer::from_file(path->string());
    std::ifstream f(std::string(GALVANI_SOURCE_DIR) + "/tests/fixtures/tokenizer/chunks_" + name + ".json");
    auto fx = nlohmann::json::parse(f);
    const auto& rows = fx["rows"];
    REQUIRE(rows.size() == text.size());
    int mismatches = 0;
    for (size_t i = 0; i < text.size(); ++i) {
      auto ids = tok.encode(*text[i], /*add_special_tokens=*/true).ids;
      bool same = int64_t(ids.size()) == rows[i]["count"].get<int64_t>() &&
                  testing::ids_digest(ids) == rows[i]["sha256"].get<std::string>();
      if (!same && ++mismatches <= 3) FAIL_CHECK(name << " row " << i << ": ids differ from Hugging Face's");
    }
    INFO(name);
    CHECK(mismatches == 0);
  }
}
