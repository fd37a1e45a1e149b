// The CSV reader and writer (data/csv.hpp): pandas.read_csv on the hard cases
// of RFC 4180 (fixture from tools/gen_data_fixtures.py), clear errors on bad
// files, and write -> read round trips.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include <galvani/data/csv.hpp>
#include <galvani/data/dataset.hpp>
#include <galvani/data/rng.hpp>

using namespace galvani;
namespace fs = std::filesystem;

static const fs::path kFixtures = fs::path(GALVANI_SOURCE_DIR) / "tests/fixtures/data";

static nlohmann::json load_json(const fs::path& p) {
  std::ifstream in(p);
  REQUIRE(in);
  return nlohmann::json::parse(in);
}

// The message of the galvani::Error that f() throws ("" when none is thrown).
template <class F>
static std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

static fs::path temp_file(const std::string& name, const std::string& bytes) {
  fs::path dir = fs::temp_directory_path() / "galvani_test_data_csv";
  fs::create_directories(dir);
  fs::path p = dir / name;
  std::ofstream(p, std::ios::binary) << bytes;
  return p;
}

TEST_CASE("read_csv matches pandas.read_csv on RFC 4180 edge cases", "[data][csv]") {
  auto ref = load_json(kFixtures / "pandas.json")["csv"];
  for (auto& [name, want] : ref.items()) {
    INFO(name);
    Table t = read_csv(kFixtures / name);
    REQUIRE(t.names() == want["columns"].get<std::vector<std::string>>());
    REQUIRE(t.rows() == int64_t(want["rows"].size()));
    for (int64_t r = 0; r < t.rows(); ++r)
      for (int64_t c = 0; c < t.cols(); ++c) {
        const auto& w = want["rows"][size_t(r)][size_t(c)];
        const Cell& got = t.column(c)[size_t(r)];
        INFO("row " << r << " column " << c);
        if (w.is_null()) CHECK_FALSE(got.has_value());
        else {
          REQUIRE(got.has_value());
          CHECK(*got == w.get<std::string>());
        }
      }
  }
}

TEST_CASE("parse_csv: BOM, CRLF, lone CR and a missing final line end", "[data][csv]") {
  Table t = parse_csv("\xEF\xBB\xBFtext\r\n\"a\r\nb\"\rplain\r\nlast");
  REQUIRE(t.names() == std::vector<std::string>{"text"});
  REQUIRE(t.rows() == 3);
  CHECK(*t.column("text")[0] == "a\r\nb");  // line breaks inside quotes are kept as written
  CHECK(*t.column("text")[1] == "plain");
  CHECK(*t.column("text")[2] == "last");
  Table u = parse_csv("a,b\n1,\n");  // a trailing delimiter: one more empty field
  CHECK(u.rows() == 1);
  CHECK_FALSE(u.column("b")[0].has_value());
}

TEST_CASE("parse_csv: a line of spaces and tabs is skipped unless one of them is the delimiter",
          "[data][csv]") {
  // pandas (C parser, skip_blank_lines): read_csv(StringIO("a,b\n1,2\n \t \n3,4\n")) has 2 rows;
  // with sep="\t", a line "\t" is a row of two NaNs (checked with pandas 3.1.1).
  CHECK(parse_csv("a,b\n1,2\n \t \n3,4\n").rows() == 2);
  CsvOptions tab;
  tab.delimiter = '\t';
  const Table t = parse_csv("a\tb\n1\t2\n\t\n3\t4\n", "<tsv>", tab);
  REQUIRE(t.rows() == 3);
  CHECK_FALSE(t.column("a")[1].has_value());
  CHECK_FALSE(t.column("b")[1].has_value());
  CsvOptions space;
  space.delimiter = ' ';
  CHECK(parse_csv("a b\n1 2\n \n3 4\n", "<ssv>", space).rows() == 3);
  // A column name that starts with a byte-order mark is quoted, so the reader keeps it.
  Table b({"\xEF\xBB\xBFname"});
  b.add_row({Cell{"x"}});
  std::ostringstream ob;
  write_csv(ob, b);
  CHECK(parse_csv(ob.str()).names() == b.names());
  // And write_csv's all-empty TSV row reads back as a row.
  Table e({"a", "b"});
  e.add_row({Cell{}, Cell{}});
  std::ostringstream os;
  write_csv(os, e, tab);
  CHECK(parse_csv(os.str(), "<tsv>", tab).rows() == 1);
}

TEST_CASE("parse_csv: bad quoting is an error naming file, line and column", "[data][csv]") {
  // A bare quote inside an unquoted field.
  std::string e = error_of([] { parse_csv("text\nok\nsay \"hi\" now\n", "bad.csv"); });
  CHECK_THAT(e, Catch::Contains("bad.csv:3:5:"));
  CHECK_THAT(e, Catch::Contains("quote the whole field"));
  // Text after a closing quote; the column counts characters, not bytes.
  e = error_of([] { parse_csv("text\n\"é\"x\n", "bad.csv"); });
  CHECK_THAT(e, Catch::Contains("bad.csv:2:4:"));
  CHECK_THAT(e, Catch::Contains("after the closing quote"));
  // A quote never closed: the error points at where it opened.
  e = error_of([] { parse_csv("text\nfine\n\"never\nclosed,\n\n", "bad.csv"); });
  CHECK_THAT(e, Catch::Contains("bad.csv:3:1:"));
  CHECK_THAT(e, Catch::Contains("never closed"));
  // More fields than the header.
  e = error_of([] { parse_csv("text\nHello, world\n", "bad.csv"); });
  CHECK_THAT(e, Catch::Contains("bad.csv:2:"));
  CHECK_THAT(e, Catch::Contains("2 fields, but the header has 1"));
}

TEST_CASE("parse_csv: empty files, invalid UTF-8 and duplicate headers are errors", "[data][csv]") {
  CHECK_THAT(error_of([] { parse_csv("", "e.csv"); }), Catch::Contains("e.csv: the file is empty"));
  CHECK_THAT(error_of([] { parse_csv("\n\r\n", "e.csv"); }), Catch::Contains("empty"));
  CHECK_THAT(error_of([] { parse_csv("text\nab\xFF\n", "u.csv"); }), Catch::Contains("u.csv:2:3: the file is not valid UTF-8"));
  CHECK_THAT(error_of([] { parse_csv("a,b,a\n1,2,3\n", "d.csv"); }), Catch::Contains("'a' twice"));
  Table t = parse_csv(",x\n1,2\n");  // an empty header name, as pandas names it
  CHECK(t.names()[0] == "Unnamed: 0");
}

TEST_CASE("read_csv: a missing file is a clear error", "[data][csv]") {
  std::string e = error_of([] { read_csv("no/such/dir/frankenstein_chunks.csv"); });
  CHECK_THAT(e, Catch::Contains("cannot open 'no/such/dir/frankenstein_chunks.csv'"));
  CHECK_THAT(e, Catch::Contains("no such file"));
  CHECK_THAT(e, Catch::Contains("build/make_chunks"));
}

TEST_CASE("read_text_csv: no 'text' column is an error; blank rows are dropped and counted", "[data][csv]") {
  fs::path wrong = temp_file("wrong.csv", "content\nhello\n");
  std::string e = error_of([&] { read_text_csv(wrong); });
  CHECK_THAT(e, Catch::Contains("no column named 'text'"));
  CHECK_THAT(e, Catch::Contains("'content'"));

  fs::path blanks = temp_file("blanks.csv", "id,text\n1,Hello\n2,\n3,\"   \"\n4,\" \t\r\n \"\n5,\"\"\n6,World\n");
  DropReport rep;
  Table t = read_text_csv(blanks, "text", &rep);
  CHECK(t.names() == std::vector<std::string>{"text"});
  REQUIRE(t.rows() == 2);
  CHECK(*t.column("text")[0] == "Hello");
  CHECK(*t.column("text")[1] == "World");
  CHECK(rep.missing == 2);  // "2," and "5,\"\"" are NaN, as in pandas
  CHECK(rep.blank == 2);    // whitespace-only rows pandas would keep
  CHECK(rep.dropped_rows == std::vector<int64_t>{1, 2, 3, 4});
}

TEST_CASE("write_csv quotes minimally and reads back unchanged", "[data][csv]") {
  Table t({"text", "note"});
  t.add_row({Cell{"plain"}, Cell{"a, b"}});
  t.add_row({Cell{"She said \"hi\""}, Cell{}});
  t.add_row({Cell{"two\nlines"}, Cell{"crlf\r\nkept"}});
  t.add_row({Cell{"“Café”"}, Cell{" lead and trail "}});
  std::ostringstream os;
  write_csv(os, t);
  CHECK(os.str() ==
        "text,note\nplain,\"a, b\"\n\"She said \"\"hi\"\"\",\n\"two\nlines\",\"crlf\r\nkept\"\n“Café”, lead and trail \n");
  Table back = parse_csv(os.str());
  REQUIRE(back.rows() == t.rows());
  for (int64_t c = 0; c < t.cols(); ++c) CHECK(back.column(c) == t.column(c));

  // A present empty string in a one-column table is written "" (not a blank line).
  Table one = Table::from_column("text", {"a", "", "b"});
  std::ostringstream o1;
  write_csv(o1, one);
  CHECK(o1.str() == "text\na\n\"\"\nb\n");
  CHECK(parse_csv(o1.str()).rows() == 3);  // and reads back as a row (missing, as pandas reads it)
}

TEST_CASE("write_csv creates a missing folder (a fresh clone has no runs/)", "[data][csv]") {
  Table t = Table::from_column("text", {"a"});
  const fs::path root = fs::temp_directory_path() / "galvani_write_csv_mkdir";
  fs::remove_all(root);
  write_csv(root / "runs" / "deep" / "out.csv", t);
  CHECK(read_csv(root / "runs" / "deep" / "out.csv").rows() == 1);
  fs::remove_all(root);
}

TEST_CASE("random CSV-ish text parses or fails with an Error, and what parses round-trips", "[data][csv]") {
  const std::string alphabet[] = {"a", "b", ",", "\"", "\n", "\r", " ", "é"};
  SplitMix64 rng(2024);
  int parsed = 0;
  for (int k = 0; k < 3000; ++k) {
    std::string text;
    for (uint64_t n = rng.below(40), i = 0; i < n; ++i) text += alphabet[rng.below(8)];
    Table t;
    try {
      t = parse_csv(text, "fuzz.csv");
    } catch (const Error& e) {
      CHECK_THAT(e.what(), Catch::StartsWith("fuzz.csv"));
      continue;
    }
    ++parsed;
    bool every_row_has_a_value = true;  // a row of missing values alone would write as a blank line
    for (int64_t r = 0; r < t.rows(); ++r) {
      bool any = false;
      for (int64_t c = 0; c < t.cols(); ++c) any = any || t.column(c)[size_t(r)].has_value();
      every_row_has_a_value = every_row_has_a_value && any;
    }
    if (!every_row_has_a_value) continue;
    std::ostringstream os;
    write_csv(os, t);
    Table back = parse_csv(os.str(), "back.csv");
    INFO("input: " << text << "\nwritten: " << os.str());
    REQUIRE(back.names() == t.names());
    REQUIRE(back.rows() == t.rows());
    for (int64_t c = 0; c < t.cols(); ++c) REQUIRE(back.column(c) == t.column(c));
  }
  CHECK(parsed > 100);
}
