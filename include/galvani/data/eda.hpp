// data/eda.hpp — the exploratory data analysis of course step 1, as a pandas
// user knows it: info(), describe(), nunique(), isnull().sum(), sample(), and
// the numbers behind a length histogram.
//
//   pandas                                   galvani
//   df.info()                                info(t)
//   df["text"].str.len().describe()          describe(char_lengths(t.column("text")))
//   df.describe()   (a text column)          describe_text(t.column("text"))
//   df.nunique() / df.isnull().sum()         nunique(t) / isnull_sum(t)
//   df.sample(1, random_state=s)             sample(t, 1, s)   (other rows: rng.hpp)
//   np.histogram(lengths, bins=20)           make_histogram(lengths, 20)
//
// The statistics are xtensor expressions, so they read like the numpy they
// replace. describe() follows pandas' definitions: std with ddof = 1 (the
// sample standard deviation) and quantiles by linear interpolation between
// the two nearest ranks (numpy's default "linear" method). String lengths are
// counted in characters (UTF-8 code points), as Python's len() counts them.
#pragma once
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <xtensor/xadapt.hpp>
#include <xtensor/xbuilder.hpp>
#include <xtensor/xhistogram.hpp>
#include <xtensor/xmath.hpp>
#include <xtensor/xsort.hpp>
#include <xtensor/xtensor.hpp>

#include <galvani/core/error.hpp>
#include <galvani/data/rng.hpp>
#include <galvani/data/table.hpp>

namespace galvani {

// ------------------------------------------------------------------ lengths

// Characters in UTF-8 text: every byte that does not continue a character.
inline int64_t utf8_length(std::string_view s) {
  int64_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

// df[col].str.len() without the NaNs: one length per present value, in row order.
inline xt::xtensor<double, 1> char_lengths(const Column& col) {
  std::vector<double> out;
  for (const Cell& c : col)
    if (c) out.push_back(double(utf8_length(*c)));
  return xt::adapt(out, {out.size()});
}

// ------------------------------------------------------------------ describe

struct Describe {
  int64_t count = 0;
  double mean = NAN, std = NAN, min = NAN, q25 = NAN, q50 = NAN, q75 = NAN, max = NAN;
};

// The q-quantile of sorted values, linearly interpolated (numpy's default):
// position q*(n-1), between the values at its floor and ceiling.
inline double quantile_sorted(const xt::xtensor<double, 1>& sorted, double q) {
  const auto n = sorted.size();
  if (n == 0) return NAN;
  const double pos = q * double(n - 1);
  const auto lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, n - 1);
  return sorted(lo) + (sorted(hi) - sorted(lo)) * (pos - double(lo));
}

// Series.describe() of numbers: count, mean, std (ddof = 1), min, 25%, 50%, 75%, max.
inline Describe describe(const xt::xtensor<double, 1>& x) {
  Describe d;
  d.count = int64_t(x.size());
  if (x.size() == 0) return d;
  const xt::xtensor<double, 1> s = xt::sort(x);
  d.mean = xt::mean(x)();
  d.std = x.size() > 1 ? std::sqrt(xt::variance(x, 1)()) : NAN;  // ddof = 1, NaN for one value as in pandas
  d.min = s(0);
  d.q25 = quantile_sorted(s, 0.25);
  d.q50 = quantile_sorted(s, 0.50);
  d.q75 = quantile_sorted(s, 0.75);
  d.max = s(s.size() - 1);
  return d;
}

// As pandas prints a described Series (6 decimals, then the name line).
inline std::string format_describe(const Describe& d, const std::string& name) {
  const std::pair<const char*, double> rows[] = {{"count", double(d.count)}, {"mean", d.mean}, {"std", d.std},
                                                 {"min", d.min}, {"25%", d.q25}, {"50%", d.q50},
                                                 {"75%", d.q75}, {"max", d.max}};
  std::vector<std::string> values;
  size_t width = 0;
  for (const auto& [label, v] : rows) {
    char buf[64];
    if (std::isnan(v)) std::snprintf(buf, sizeof buf, "NaN");
    else std::snprintf(buf, sizeof buf, "%.6f", v);
    values.emplace_back(buf);
    width = std::max(width, values.back().size());
  }
  std::string out;
  for (size_t i = 0; i < values.size(); ++i) {
    std::string label = rows[i].first;
    out += label + std::string(9 - label.size() + width - values[i].size(), ' ') + values[i] + "\n";
  }
  return out + "Name: " + name + ", dtype: float64\n";
}

// df.describe() of a text column: count, unique, top (most frequent; the first
// seen wins a tie), freq (how often top occurs).
struct TextDescribe {
  int64_t count = 0, unique = 0, freq = 0;
  std::string top;
};

inline TextDescribe describe_text(const Column& col) {
  TextDescribe d;
  std::unordered_map<std::string_view, int64_t> freq;
  std::vector<std::string_view> order;
  for (const Cell& c : col) {
    if (!c) continue;
    ++d.count;
    if (freq[*c]++ == 0) order.push_back(*c);
  }
  d.unique = int64_t(order.size());
  for (std::string_view v : order)
    if (freq[v] > d.freq) d.freq = freq[v], d.top = std::string(v);
  return d;
}

// ------------------------------------------------------------------ info

// The dtype pandas' read_csv would give a column: int64 if every present value
// is an integer, float64 if every one is a number, else object (text).
// An all-missing column is float64, as in pandas.
inline std::string dtype(const Column& col) {
  bool all_int = true, all_num = true;
  for (const Cell& c : col) {
    if (!c) continue;
    const char* b = c->c_str();
    char* e = nullptr;
    errno = 0;
    (void)std::strtoll(b, &e, 10);
    if (c->empty() || *e != '\0' || errno) all_int = false;
    (void)std::strtod(b, &e);
    if (c->empty() || *e != '\0' || std::isspace(static_cast<unsigned char>(*b))) all_num = false;
  }
  return all_int && all_num ? "int64" : all_num ? "float64" : "object";
}

// Bytes the table holds in memory here (not pandas' figure): the cells
// themselves plus the heap blocks of strings too long for std::string's
// built-in buffer.
inline int64_t memory_bytes(const Table& t) {
  int64_t bytes = 0;
  for (int64_t c = 0; c < t.cols(); ++c)
    for (const Cell& cell : t.column(c)) {
      bytes += int64_t(sizeof(Cell));
      if (cell && cell->capacity() > std::string().capacity()) bytes += int64_t(cell->capacity()) + 1;
    }
  return bytes;
}

inline int64_t non_null(const Column& col) {
  return int64_t(std::count_if(col.begin(), col.end(), [](const Cell& c) { return c.has_value(); }));
}

// df.info(): rows, columns, non-null counts, dtypes, memory.
inline std::string info(const Table& t) {
  std::string out = "<class 'galvani::Table'>\n";
  out += detail::cat("RangeIndex: ", t.rows(), " entries", t.rows() ? detail::cat(", 0 to ", t.rows() - 1) : "", "\n");
  out += detail::cat("Data columns (total ", t.cols(), " columns):\n");
  size_t wname = std::string("Column").size();
  for (const auto& n : t.names()) wname = std::max(wname, n.size());
  auto pad = [](std::string s, size_t w) { return s + std::string(w > s.size() ? w - s.size() : 0, ' '); };
  std::vector<std::string> counts, types;
  size_t wcount = std::string("Non-Null Count").size();
  for (int64_t c = 0; c < t.cols(); ++c) {
    counts.push_back(detail::cat(non_null(t.column(c)), " non-null"));
    types.push_back(dtype(t.column(c)));
    wcount = std::max(wcount, counts.back().size());
  }
  out += " #   " + pad("Column", wname) + "  " + pad("Non-Null Count", wcount) + "  Dtype\n";
  out += "---  " + pad(std::string(wname, '-'), wname) + "  " + std::string(wcount, '-') + "  -----\n";
  std::map<std::string, int> type_counts;
  for (int64_t c = 0; c < t.cols(); ++c) {
    out += " " + pad(std::to_string(c), 3) + " " + pad(t.names()[size_t(c)], wname) + "  " +
           pad(counts[size_t(c)], wcount) + "  " + types[size_t(c)] + "\n";
    ++type_counts[types[size_t(c)]];
  }
  std::string dt;
  for (const auto& [name, k] : type_counts) dt += (dt.empty() ? "" : ", ") + name + "(" + std::to_string(k) + ")";
  char mem[64];
  std::snprintf(mem, sizeof mem, "%.1f KB", double(memory_bytes(t)) / 1024.0);
  return out + "dtypes: " + dt + "\nmemory usage: " + mem + "\n";
}

// ------------------------------------------------------------------ per-column counts

// One number per column, in column order (a pandas Series indexed by name).
using ColumnCounts = std::vector<std::pair<std::string, int64_t>>;

// df.nunique(): distinct present values per column.
inline ColumnCounts nunique(const Table& t) {
  ColumnCounts out;
  for (int64_t c = 0; c < t.cols(); ++c) {
    std::unordered_map<std::string_view, int> seen;
    for (const Cell& cell : t.column(c))
      if (cell) seen.emplace(*cell, 0);
    out.emplace_back(t.names()[size_t(c)], int64_t(seen.size()));
  }
  return out;
}

// df.isnull().sum(): missing values per column.
inline ColumnCounts isnull_sum(const Table& t) {
  ColumnCounts out;
  for (int64_t c = 0; c < t.cols(); ++c) out.emplace_back(t.names()[size_t(c)], t.rows() - non_null(t.column(c)));
  return out;
}

// As pandas prints such a Series.
inline std::string format_counts(const ColumnCounts& counts) {
  size_t wname = 0, wval = 0;
  for (const auto& [n, v] : counts) wname = std::max(wname, n.size()), wval = std::max(wval, std::to_string(v).size());
  std::string out;
  for (const auto& [n, v] : counts) {
    std::string s = std::to_string(v);
    out += n + std::string(wname - n.size() + 4 + wval - s.size(), ' ') + s + "\n";
  }
  return out + "dtype: int64\n";
}

// ------------------------------------------------------------------ sample

// n distinct rows chosen at random (seeded; see rng.hpp), like df.sample(n).
// Returns their indices, in the order drawn.
inline std::vector<int64_t> sample_indices(int64_t rows, int64_t n, uint64_t seed) {
  GALVANI_CHECK(n >= 0 && n <= rows, "sample: cannot take ", n, " distinct rows from ", rows);
  std::vector<int64_t> perm = permutation(rows, seed);
  perm.resize(size_t(n));
  return perm;
}

inline Table sample(const Table& t, int64_t n, uint64_t seed) { return t.take(sample_indices(t.rows(), n, seed)); }

// ------------------------------------------------------------------ histogram

struct Histogram {
  std::vector<double> edges;   // bins + 1 edges, increasing
  std::vector<double> counts;  // values in [edges[i], edges[i+1]); the last bin includes its right edge
};

// np.histogram(x, bins): equal-width bins from min to max (min-0.5 .. max+0.5
// when they are equal, as numpy does).
inline Histogram make_histogram(const xt::xtensor<double, 1>& x, size_t bins = 20) {
  GALVANI_CHECK(bins >= 1, "histogram: bins must be at least 1");
  GALVANI_CHECK(x.size() > 0, "histogram: no values to count");
  double lo = xt::amin(x)(), hi = xt::amax(x)();
  if (lo == hi) lo -= 0.5, hi += 0.5;
  const xt::xtensor<double, 1> edges = xt::linspace(lo, hi, bins + 1);
  const xt::xtensor<double, 1> counts = xt::histogram(x, edges);
  return {std::vector<double>(edges.begin(), edges.end()), std::vector<double>(counts.begin(), counts.end())};
}

}  // namespace galvani
