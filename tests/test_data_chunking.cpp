// The sentence-end chunker behind tools/make_chunks (data/chunking.hpp), on
// small texts and on the real novel from the shared data.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <galvani/core/paths.hpp>
#include <galvani/data/chunking.hpp>
#include <galvani/data/csv.hpp>
#include <galvani/data/eda.hpp>

using namespace galvani;
using Strings = std::vector<std::string>;

TEST_CASE("split_sentences ends sentences at . ! ? but not after titles or before lowercase", "[data][chunking]") {
  CHECK(split_sentences("It was cold. I walked on! Did you? Yes.") ==
        Strings{"It was cold.", "I walked on!", "Did you?", "Yes."});
  CHECK(split_sentences("Mr. Kirwin came. M. Waldman smiled. St. Petersburgh, Dec. 11th, 17—. You will rejoice.") ==
        Strings{"Mr. Kirwin came.", "M. Waldman smiled.", "St. Petersburgh, Dec. 11th, 17—.", "You will rejoice."});
  // Closing quotes stay with their sentence; an exclamation inside a sentence does not end it.
  CHECK(split_sentences("“Oh! no, not I,” he said. “Is it you?” “It is.” He left.") ==
        Strings{"“Oh! no, not I,” he said.", "“Is it you?”", "“It is.”", "He left."});
  CHECK(split_sentences("_To Mrs. Saville, England._ The end") == Strings{"_To Mrs. Saville, England._", "The end"});
  CHECK(split_sentences("").empty());
}

TEST_CASE("strip_gutenberg_boilerplate keeps only the book", "[data][chunking]") {
  std::string raw =
      "\xEF\xBB\xBFThe Project Gutenberg eBook of Frankenstein\r\nlicence...\r\n"
      "*** START OF THE PROJECT GUTENBERG EBOOK FRANKENSTEIN ***\r\nBody line.\r\n\r\nMore.\r\n"
      "*** END OF THE PROJECT GUTENBERG EBOOK FRANKENSTEIN ***\r\nfooter licence\r\n";
  CHECK(strip_gutenberg_boilerplate(raw) == "Body line.\n\nMore.\n");
  CHECK(strip_gutenberg_boilerplate("Plain text.\n") == "Plain text.\n");
}

TEST_CASE("book_paragraphs drops the title page and headings and unwraps lines", "[data][chunking]") {
  std::string text =
      "Frankenstein;\n\nor, the Modern Prometheus\n\n CONTENTS\n\n Letter 1\n Chapter 1\n\n\n"
      "Letter 1\n\n_To Mrs. Saville._\n\nYou will   rejoice\nto hear.\n\nChapter 1\n\nI am by birth\na Genevese.\n";
  CHECK(book_paragraphs(text) == Strings{"_To Mrs. Saville._", "You will rejoice to hear.", "I am by birth a Genevese."});
  CHECK(book_paragraphs("No headings here.\n\nSecond.") == Strings{"No headings here.", "Second."});
  CHECK(is_heading_line("Chapter 24"));
  CHECK(is_heading_line("CHAPTER XIV."));
  CHECK_FALSE(is_heading_line("Chapter and verse"));
}

TEST_CASE("chunk_sentences stops where the length is closest to the target", "[data][chunking]") {
  Strings s{std::string(40, 'a'), std::string(40, 'b'), std::string(40, 'c'), std::string(250, 'd'), "e."};
  auto chunks = chunk_sentences(s, {100});
  // 40+1+40 = 81; adding c gives 122 (22 over) vs stopping at 81 (19 under): stop.
  REQUIRE(chunks.size() == 4);
  CHECK(chunks[0] == std::string(40, 'a') + " " + std::string(40, 'b'));
  CHECK(chunks[1] == std::string(40, 'c'));
  CHECK(chunks[2] == std::string(250, 'd'));  // longer than the target: alone, never cut
  CHECK(chunks[3] == "e.");
  CHECK_THROWS_AS(chunk_sentences(s, {0}), Error);
}

TEST_CASE("the real novel gives about 480 snippets of about 900 characters", "[data][chunking]") {
  auto path = find_data_file("frankenstein/pg84.txt");
  if (!path) {
    WARN("skipped: " << data_file_missing("frankenstein/pg84.txt"));
    return;
  }
  std::ifstream in(*path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string novel = ss.str();
  Strings chunks = chunk_book(novel, {900});
  Describe d = describe(char_lengths(Table::from_column("text", chunks).column("text")));
  INFO("rows " << d.count << ", mean " << d.mean << ", min " << d.min << ", max " << d.max);
  CHECK((d.count >= 440 && d.count <= 520));
  CHECK((d.mean > 880 && d.mean < 920));
  CHECK(d.min > 450);
  CHECK(chunks == chunk_book(novel, {900}));  // deterministic

  // Nothing lost or invented: the snippets joined are the paragraphs joined.
  std::string joined_chunks, joined_paras;
  for (const auto& c : chunks) joined_chunks += (joined_chunks.empty() ? "" : " ") + c;
  for (const auto& p : book_paragraphs(strip_gutenberg_boilerplate(novel))) joined_paras += (joined_paras.empty() ? "" : " ") + p;
  CHECK(joined_chunks == joined_paras);
  CHECK(chunks.front().rfind("_To Mrs. Saville, England._ St. Petersburgh, Dec. 11th, 17—. You will rejoice", 0) == 0);
  CHECK(chunks.back().size() >= std::string("lost in darkness and distance.").size());
  CHECK(chunks.back().substr(chunks.back().size() - 30) == "lost in darkness and distance.");
  CHECK(joined_chunks.find("Chapter 1") == std::string::npos);

  // Written as CSV and read back: the same rows.
  std::ostringstream csv;
  write_csv(csv, Table::from_column("text", chunks));
  Table back = parse_csv(csv.str(), "frankenstein_chunks.csv");
  REQUIRE(back.rows() == int64_t(chunks.size()));
  for (size_t i = 0; i < chunks.size(); ++i) REQUIRE(*back.column("text")[i] == chunks[i]);
}
