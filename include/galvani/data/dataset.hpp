// data/dataset.hpp — a text column tokenized: dataset.map(tokenize, batched=True)
// of course step 2, without padding (the collator pads each batch).
//
// The encoder is any callable from text to ids, so this header does not need
// the tokenizer; with galvani's tokenizer it is
//   auto tok = Tokenizer::from_file(path);
//   Encoder enc = [&](std::string_view s) { return tok.encode(s, true).ids; };
//   TokenizedDataset train = tokenize(split.train.column("text"), enc);
// Missing values are an error here: drop them first (table.hpp's drop_blank).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <xtensor/xadapt.hpp>
#include <xtensor/xtensor.hpp>

#include <galvani/core/error.hpp>
#include <galvani/data/csv.hpp>
#include <galvani/data/table.hpp>

namespace galvani {

// The course's CSV as training text: read `path`, keep only `column`, and drop
// the rows that are missing, empty or whitespace only (df.dropna() and a bit
// more). What was dropped lands in *report, so the caller can warn about it;
// a file without that column is an error naming the columns it has.
inline Table read_text_csv(const std::filesystem::path& path, const std::string& column = "text",
                           DropReport* report = nullptr) {
  Table t = read_csv(path);
  if (!t.has_column(column)) {
    std::string have;
    for (const auto& n : t.names()) have += (have.empty() ? "'" : ", '") + n + "'";
    throw Error(detail::cat(path.string(), ": no column named '", column, "' (the header has ", have,
                            "); the course CSV has one column 'text' (tools/make_chunks writes it)"));
  }
  Table only = Table::from_column(column, {});
  for (const Cell& c : t.column(column)) only.add_row({c});
  return drop_blank(only, column, report);
}

using Encoder = std::function<std::vector<int32_t>(std::string_view)>;

struct TokenizedDataset {
  std::vector<std::vector<int32_t>> rows;  // rows[i] = token ids of text i, unpadded

  int64_t size() const { return int64_t(rows.size()); }

  // Tokens per row, for describe()/histogram() in eda.hpp.
  xt::xtensor<double, 1> lengths() const {
    std::vector<double> v;
    v.reserve(rows.size());
    for (const auto& r : rows) v.push_back(double(r.size()));
    return xt::adapt(v, {v.size()});
  }

  int64_t total_tokens() const {
    int64_t n = 0;
    for (const auto& r : rows) n += int64_t(r.size());
    return n;
  }

  // The rows at `indices`, ready for collate_causal_lm.
  std::vector<std::vector<int32_t>> gather(const std::vector<int64_t>& indices) const {
    std::vector<std::vector<int32_t>> out;
    out.reserve(indices.size());
    for (int64_t i : indices) {
      GALVANI_CHECK(i >= 0 && i < size(), "TokenizedDataset: row ", i, " is out of range (", size(), " rows)");
      out.push_back(rows[size_t(i)]);
    }
    return out;
  }
};

// Every value of `col` through `encode`, in row order.
inline TokenizedDataset tokenize(const Column& col, const Encoder& encode) {
  GALVANI_CHECK(static_cast<bool>(encode), "tokenize: no encoder given");
  TokenizedDataset ds;
  ds.rows.reserve(col.size());
  for (size_t i = 0; i < col.size(); ++i) {
    GALVANI_CHECK(col[i].has_value(), "tokenize: row ", i, " is missing (NaN); drop missing and blank rows ",
                  "first with drop_blank(table, column)");
    ds.rows.push_back(encode(*col[i]));
  }
  return ds;
}

}  // namespace galvani
