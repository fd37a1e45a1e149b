// data/table.hpp — a small column table of strings with missing values, the
// part of a pandas DataFrame the course uses.
//
// A Table is a list of named columns; every column holds one optional<string>
// per row, and an empty optional is a missing value (pandas' NaN). Values stay
// text: numeric columns are recognised only when asked (eda.hpp's dtype()),
// as pandas' read_csv would have parsed them.
//
//   Table t = read_csv("frankenstein_chunks.csv");   // csv.hpp
//   const Column& text = t.column("text");           // throws, naming the columns there are
//   Table first = t.take({0, 1, 2});                 // rows by index, in that order
#pragma once
#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <galvani/core/error.hpp>

namespace galvani {

using Cell = std::optional<std::string>;  // nullopt = missing (NaN in pandas)
using Column = std::vector<Cell>;         // one cell per row

class Table {
 public:
  Table() = default;

  // A table with these column names and no rows. Names must be distinct.
  explicit Table(std::vector<std::string> names) : names_(std::move(names)), columns_(names_.size()) {
    for (size_t i = 0; i < names_.size(); ++i)
      for (size_t j = 0; j < i; ++j)
        GALVANI_CHECK(names_[i] != names_[j], "Table: the column name '", names_[i],
                      "' appears twice (columns ", j, " and ", i, "); rename one of them");
  }

  // A one-column table, e.g. Table::from_column("text", chunks).
  static Table from_column(const std::string& name, const std::vector<std::string>& values) {
    Table t({name});
    t.columns_[0].assign(values.begin(), values.end());
    return t;
  }

  int64_t rows() const { return columns_.empty() ? 0 : int64_t(columns_[0].size()); }
  int64_t cols() const { return int64_t(names_.size()); }
  const std::vector<std::string>& names() const { return names_; }

  bool has_column(const std::string& name) const { return index_of(name) >= 0; }

  const Column& column(const std::string& name) const { return columns_[checked_index(name)]; }
  Column& column(const std::string& name) { return columns_[checked_index(name)]; }
  const Column& column(int64_t i) const {
    GALVANI_CHECK(i >= 0 && i < cols(), "Table: no column ", i, " (the table has ", cols(), ")");
    return columns_[size_t(i)];
  }
  // column(0) would otherwise be ambiguous (0 is also a null const char*).
  const Column& column(int i) const { return column(int64_t(i)); }
  Column& column(int64_t i) { return const_cast<Column&>(std::as_const(*this).column(i)); }
  Column& column(int i) { return column(int64_t(i)); }

  // Appends one row; `row` holds one cell per column, in column order.
  void add_row(std::vector<Cell> row) {
    GALVANI_CHECK(row.size() == names_.size(), "Table::add_row: got ", row.size(),
                  " values for ", names_.size(), " columns");
    for (size_t c = 0; c < row.size(); ++c) columns_[c].push_back(std::move(row[c]));
  }

  // The rows at `indices` (any order, repeats allowed), as a new table.
  Table take(const std::vector<int64_t>& indices) const {
    Table out(names_);
    for (size_t c = 0; c < columns_.size(); ++c) {
      out.columns_[c].reserve(indices.size());
      for (int64_t i : indices) {
        GALVANI_CHECK(i >= 0 && i < rows(), "Table::take: row ", i, " is out of range (the table has ",
                      rows(), " rows)");
        out.columns_[c].push_back(columns_[c][size_t(i)]);
      }
    }
    return out;
  }

  // The first n rows (all of them when n >= rows()), like df.head(n).
  Table head(int64_t n = 5) const {
    std::vector<int64_t> idx;
    for (int64_t i = 0; i < std::min(n, rows()); ++i) idx.push_back(i);
    return take(idx);
  }

 private:
  int64_t index_of(const std::string& name) const {
    for (size_t i = 0; i < names_.size(); ++i)
      if (names_[i] == name) return int64_t(i);
    return -1;
  }
  size_t checked_index(const std::string& name) const {
    int64_t i = index_of(name);
    if (i < 0) {
      std::string have;
      for (const auto& n : names_) have += (have.empty() ? "'" : ", '") + n + "'";
      throw Error("Table: no column named '" + name + "' (the columns are " +
                  (have.empty() ? std::string("none") : have) + ")");
    }
    return size_t(i);
  }

  std::vector<std::string> names_;
  std::vector<Column> columns_;  // columns_[c][row]
};

// What drop_blank() removed, so a caller can report it (pandas' dropna drops silently).
struct DropReport {
  int64_t missing = 0;               // rows whose value was missing (NaN)
  int64_t blank = 0;                 // rows whose value was empty or only whitespace
  std::vector<int64_t> dropped_rows; // their indices in the input table
  int64_t total() const { return missing + blank; }
};

// The rows whose `column` holds text with something besides whitespace:
// df.dropna(subset=[column]) plus the whitespace-only rows pandas would keep
// (they would train the model on nothing). ASCII whitespace only.
inline Table drop_blank(const Table& table, const std::string& column, DropReport* report = nullptr) {
  const Column& col = table.column(column);
  DropReport r;
  std::vector<int64_t> keep;
  for (size_t i = 0; i < col.size(); ++i) {
    if (!col[i]) {
      ++r.missing;
      r.dropped_rows.push_back(int64_t(i));
    } else if (col[i]->find_first_not_of(" \t\n\r\f\v") == std::string::npos) {
      ++r.blank;
      r.dropped_rows.push_back(int64_t(i));
    } else {
      keep.push_back(int64_t(i));
    }
  }
  if (report) *report = r;
  return table.take(keep);
}

}  // namespace galvani
