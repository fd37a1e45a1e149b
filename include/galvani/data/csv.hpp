// data/csv.hpp — RFC 4180 CSV: read a file into a Table, write a Table back.
//
// What the reader accepts (RFC 4180 plus what real files carry):
//   - fields separated by ',' (or another one-byte delimiter), records ended by
//     CRLF, LF or a lone CR; the last record may lack its line end;
//   - quoted fields: "..." may hold the delimiter, line breaks and doubled
//     quotes ("" stands for one "); line breaks inside are kept as they are;
//   - a UTF-8 byte-order mark at the start (dropped); the text must be UTF-8;
//   - blank lines are skipped, as pandas.read_csv does (skip_blank_lines=True), and
//     so are lines of only spaces and tabs (pandas' C parser counts them as blank).
// The first record is the header. An empty field, quoted or not, is a missing
// value, as in pandas (NaN), and so is a data field spelled as one of pandas'
// default NA values ("NA", "nan", "null", "None", "#N/A", ... kNaSpellings below),
// quoted or not, matched exactly (" NA" stays text); keep_default_na = false
// keeps those as text, as pandas' keep_default_na=False does. Values stay text
// otherwise; eda.hpp's dtype() says what pandas would have parsed them as. A record
// with fewer fields than the header is padded with missing values (pandas does the
// same); one with more is an error.
//
// Every error names the file, the line and the column (in characters, from 1)
// and says what to change, e.g.
//   data.csv:3:7: a quote (") inside an unquoted field; quote the whole field
//   and double the quotes inside it ("say ""hi""")
//
// The writer quotes minimally, like Python's csv.QUOTE_MINIMAL and pandas'
// to_csv: only fields holding the delimiter, a quote, CR or LF; a present but
// empty (or all-blank) value in a one-column table is quoted so that it is not a
// blank line.
#pragma once
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <galvani/core/error.hpp>
#include <galvani/data/table.hpp>

namespace galvani {

struct CsvOptions {
  char delimiter = ',';
  bool keep_default_na = true;  // the spellings below are missing values, as in pd.read_csv
};

// pandas' default na_values (pandas._libs.parsers.STR_NA_VALUES), besides "".
inline constexpr std::string_view kNaSpellings[] = {
    "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A",      "NA",  "NULL",    "NaN",      "None", "n/a",  "nan",    "null"};

inline bool is_na_spelling(std::string_view s) {
  for (std::string_view na : kNaSpellings)
    if (s == na) return true;
  return false;
}

namespace detail {

// Where a CSV error is: "name:line:column: ".
struct CsvCursor {
  std::string_view text;
  std::string source;   // file name for messages
  size_t pos = 0;       // byte offset
  int64_t line = 1;     // 1-based
  size_t line_start = 0;

  // Column in characters (UTF-8 code points), 1-based.
  int64_t column(size_t at) const {
    int64_t col = 1;
    for (size_t k = line_start; k < at && k < text.size(); ++k)
      if ((static_cast<unsigned char>(text[k]) & 0xC0) != 0x80) ++col;
    return col;
  }
  [[noreturn]] void fail(size_t at, const std::string& what) const { fail_at(line, column(at), what); }
  [[noreturn]] void fail_at(int64_t ln, int64_t col, const std::string& what) const {
    throw Error(cat(source, ":", ln, ":", col, ": ", what));
  }
  // Consumes one line end (CRLF, LF or CR) at pos and counts the line.
  void newline() {
    if (text[pos] == '\r' && pos + 1 < text.size() && text[pos + 1] == '\n') ++pos;
    ++pos;
    ++line;
    line_start = pos;
  }
};

// Checks that `text` is UTF-8; names the first bad byte's line and column.
inline void csv_check_utf8(std::string_view text, const std::string& source) {
  int64_t line = 1, col = 1;
  for (size_t i = 0; i < text.size();) {
    auto b = static_cast<unsigned char>(text[i]);
    size_t len = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xE ? 3 : (b >> 3) == 0x1E ? 4 : 0;
    bool ok = len != 0 && i + len <= text.size();
    for (size_t k = 1; ok && k < len; ++k) ok = (static_cast<unsigned char>(text[i + k]) & 0xC0) == 0x80;
    if (!ok)
      throw Error(cat(source, ":", line, ":", col, ": the file is not valid UTF-8 (byte 0x", std::hex,
                      int(b), std::dec, "); save it as UTF-8"));
    if (b == '\n') ++line, col = 1; else ++col;
    i += len;
  }
}

}  // namespace detail

// Parses CSV text into a Table. `source` names the text in error messages.
inline Table parse_csv(std::string_view text, const std::string& source = "<csv>",
                       const CsvOptions& opt = {}) {
  const char delim = opt.delimiter;
  GALVANI_CHECK(delim != '"' && delim != '\n' && delim != '\r', "parse_csv: the delimiter cannot be a quote or a line end");
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // UTF-8 byte-order mark
  detail::csv_check_utf8(text, source);

  detail::CsvCursor cur{text, source};
  std::vector<std::vector<Cell>> records;
  std::vector<int64_t> record_lines;
  const size_t n = text.size();

  while (cur.pos < n) {
    // A blank line is skipped, and so is one of only spaces and tabs, as pandas' C parser
    // does (skip_blank_lines): "   " alone on a line is no row, not a cell of spaces. A space
    // or tab that is the delimiter separates empty fields instead ("\t" is a row of NaNs with
    // sep="\t", as in pandas).
    const auto blank = [delim](char c) { return (c == ' ' || c == '\t') && c != delim; };
    size_t after_space = cur.pos;
    while (after_space < n && blank(text[after_space])) ++after_space;
    if (after_space == n) break;
    if (text[after_space] == '\n' || text[after_space] == '\r') {
      cur.pos = after_space;
      cur.newline();
      continue;
    }
    std::vector<Cell> record;
    record_lines.push_back(cur.line);
    while (true) {  // one field per turn
      std::string value;
      bool quoted = cur.pos < n && text[cur.pos] == '"';
      if (quoted) {
        const int64_t open_line = cur.line, open_col = cur.column(cur.pos);
        ++cur.pos;
        while (true) {
          if (cur.pos >= n)
            cur.fail_at(open_line, open_col,
                        "this quoted field is never closed (the file ends inside it); add the closing "
                        "quote, and double any quote that is part of the text (\"\")");
          char c = text[cur.pos];
          if (c == '"') {
            if (cur.pos + 1 < n && text[cur.pos + 1] == '"') {  // "" is one quote
              value += '"';
              cur.pos += 2;
              continue;
            }
            ++cur.pos;  // the closing quote
            break;
          }
          if (c == '\r' || c == '\n') {  // a line break inside the field: kept, and counted
            size_t from = cur.pos;
            cur.newline();
            value.append(text.substr(from, cur.pos - from));
            continue;
          }
          value += c;
          ++cur.pos;
        }
        if (cur.pos < n && text[cur.pos] != delim && text[cur.pos] != '\n' && text[cur.pos] != '\r')
          cur.fail(cur.pos, detail::cat("unexpected '", text[cur.pos],
                                "' after the closing quote of a quoted field; a quote inside a quoted "
                                "field must be doubled (\"\"), and the field must end at the quote"));
      } else {
        size_t start = cur.pos;
        while (cur.pos < n && text[cur.pos] != delim && text[cur.pos] != '\n' && text[cur.pos] != '\r') {
          if (text[cur.pos] == '"')
            cur.fail(cur.pos, "a quote (\") inside an unquoted field; quote the whole field and double "
                              "the quotes inside it (\"say \"\"hi\"\"\")");
          ++cur.pos;
        }
        value.assign(text.substr(start, cur.pos - start));
      }
      // Empty = missing, quoted or not (pandas' default na_filter).
      record.push_back(value.empty() ? Cell{} : Cell{std::move(value)});
      if (cur.pos < n && text[cur.pos] == delim) {
        ++cur.pos;
        if (cur.pos >= n) record.push_back(Cell{});  // "a,b," at the very end: one more empty field
        continue;
      }
      if (cur.pos < n) cur.newline();
      break;
    }
    records.push_back(std::move(record));
  }

  GALVANI_CHECK(!records.empty(), source, ": the file is empty (no header line); a CSV starts with a header "
                "such as 'text'");
  std::vector<std::string> names;
  for (size_t c = 0; c < records[0].size(); ++c)  // pandas names empty headers "Unnamed: <i>"
    names.push_back(records[0][c] ? *records[0][c] : "Unnamed: " + std::to_string(c));
  for (size_t c = 0; c < names.size(); ++c)
    for (size_t d = 0; d < c; ++d)
      GALVANI_CHECK(names[c] != names[d], source, ":", record_lines[0], ": the header names the column '",
                    names[c], "' twice (columns ", d + 1, " and ", c + 1, "); rename one of them");

  Table table(names);
  for (size_t r = 1; r < records.size(); ++r) {
    auto& rec = records[r];
    GALVANI_CHECK(rec.size() <= names.size(), source, ":", record_lines[r], ": ", rec.size(),
                  " fields, but the header has ", names.size(), "; quote any field that contains '", delim,
                  "' (\"like, this\")");
    rec.resize(names.size());  // missing trailing fields = missing values
    if (opt.keep_default_na)
      for (Cell& cell : rec)
        if (cell && is_na_spelling(*cell)) cell.reset();
    table.add_row(std::move(rec));
  }
  return table;
}

// Reads a CSV file (see the top of this header for what it accepts).
inline Table read_csv(const std::filesystem::path& path, const CsvOptions& opt = {}) {
  std::error_code ec;  // a directory would open, read as empty and be called "the file is empty"
  GALVANI_CHECK(!std::filesystem::is_directory(path, ec), "read_csv: cannot read '", path.string(),
                "' (it is a directory); pass the CSV file itself");
  std::ifstream in(path, std::ios::binary);
  GALVANI_CHECK(in, "read_csv: cannot open '", path.string(), "' (",
                std::filesystem::exists(path) ? "it exists but cannot be read" : "no such file",
                "); check the path", path.filename() == "frankenstein_chunks.csv"
                    ? ", or create it with build/make_chunks" : "");
  std::ostringstream ss;
  ss << in.rdbuf();
  return parse_csv(ss.str(), path.string(), opt);
}

// One field as CSV: quoted only when it must be (QUOTE_MINIMAL).
inline std::string csv_field(std::string_view value, char delim = ',') {
  // A value that starts with a byte-order mark is quoted too: written first in a file, the
  // reader would take the mark for the file's own and drop it (found by fuzz_csv's round trip).
  if (value.find_first_of(std::string{delim, '"', '\n', '\r'}) == std::string_view::npos &&
      value.substr(0, 3) != "\xEF\xBB\xBF")
    return std::string(value);
  std::string out = "\"";
  for (char c : value) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + '"';
}

// Writes `table` as CSV with a header line; records end with '\n' (pandas' default).
inline void write_csv(std::ostream& out, const Table& table, const CsvOptions& opt = {}) {
  auto write_record = [&](auto cell_at) {
    for (int64_t c = 0; c < table.cols(); ++c) {
      if (c) out << opt.delimiter;
      const Cell& cell = cell_at(c);
      if (!cell) continue;
      // An empty string (or one of spaces and tabs) alone on a line would read back as a
      // blank line (skipped): quote it.
      if (table.cols() == 1 && cell->find_first_not_of(" \t") == std::string::npos) out << '"' << *cell << '"';
      else out << csv_field(*cell, opt.delimiter);
    }
    out << '\n';
  };
  write_record([&](int64_t c) { return Cell{table.names()[size_t(c)]}; });
  for (int64_t r = 0; r < table.rows(); ++r)
    write_record([&](int64_t c) -> const Cell& { return table.column(c)[size_t(r)]; });
}

// Creates the file's folder if needed (a fresh clone has no runs/).
inline void write_csv(const std::filesystem::path& path, const Table& table, const CsvOptions& opt = {}) {
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  GALVANI_CHECK(out, "write_csv: cannot create '", path.string(), "'; check that its folder is writable");
  write_csv(out, table, opt);
  out.flush();
  GALVANI_CHECK(out, "write_csv: writing '", path.string(), "' failed (disk full?)");
}

}  // namespace galvani
