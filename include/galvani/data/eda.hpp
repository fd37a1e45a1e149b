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
#include <optional>
#include <type_traits>
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
  // numpy's _lerp, to the bit: from the nearer end (so with -inf at one end the
  // result can still be -inf, and with inf at both ends it is NaN, as in numpy).
  const double a = sorted(lo), b = sorted(hi), t = pos - double(lo), diff = b - a;
  return t >= 0.5 ? b - diff * (1 - t) : a + diff * t;
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

// ------------------------------------------------------------------ dtypes
//
// The dtype pandas.read_csv (default C parser, default options) gives a column, and
// the numbers it reads from it. Locked to pandas by tests/fixtures/data/pandas.json
// ("dtypes", from tools/gen_data_fixtures.py: one column per cell pattern).
//
// Missing values are the Table's empty cells: read_csv turns pandas' NA spellings
// ("", "NA", "nan", "null", "None", ... see csv.hpp) into those. What is left:
//   int     ws* [+-]? digits ws*                     ("007", " 42", "+5", "-0")
//   float   ws* [+-]? (digits [. digits*] | . digits) ([eE] [+-]? digits)? ws*
//           or exactly one of inf, infinity, each with an optional sign, in any case
//           ("1e3", ".5", "5.", "-Infinity", "1e400" = inf); no hex ("0x1F"), no "1_000",
//           no "1,000", no "1d3"; whitespace is spaces and tabs (and \f, \v, \r, \n)
//   bool    exactly true or false, in any case ("TRUE", "tRuE"; not " True", "yes", "1")
// and pandas tries the types in this order:
//   int64    every value an int that fits int64 (and none missing: else float64,
//            as NaN is a float);
//   uint64   when an int does not fit int64: every value a non-negative int that fits
//            uint64, none missing;
//   float64  every value an int or float;
//   bool     every value a bool, none missing;
//   object   anything else (pandas 3 prints text columns as "str"; galvani says object,
//            as pandas 2 and the course do).
// pandas walks the cells in order and the first failure picks the next try, which
// is why "9223372036854775808, 1.5" is float64 but "99999999999999999999999, 1.5" is
// not: the second overflows uint64 before 1.5 is seen. That order is kept here.
//
// Where galvani differs from pandas, on purpose: a column whose ints overflow int64
// and that has missing cells is object in both, but pandas (a quirk of its uint64 path)
// puts the missing cells back as text ("" or "NA") and counts them non-null; galvani
// keeps them missing.

namespace detail {

inline bool pd_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

inline std::string_view pd_trim(std::string_view s) {
  while (!s.empty() && pd_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && pd_space(s.back())) s.remove_suffix(1);
  return s;
}

inline bool pd_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// pandas' integer syntax; the sign and the digits, or false.
inline bool pd_int_syntax(std::string_view s, bool& negative, std::string_view& digits) {
  s = pd_trim(s);
  negative = !s.empty() && s[0] == '-';
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) s.remove_prefix(1);
  digits = s;
  return pd_digits(s);
}

// An integer's value if it fits int64 (or uint64, when unsigned_ is set).
template <class T>
inline std::optional<T> pd_fit(bool negative, std::string_view digits) {
  unsigned __int128 v = 0;
  const unsigned __int128 limit = negative ? (unsigned __int128)(std::numeric_limits<int64_t>::max()) + 1
                                           : (unsigned __int128)(std::numeric_limits<T>::max());
  for (char c : digits) {
    v = v * 10 + unsigned(c - '0');
    if (v > limit) return std::nullopt;
  }
  if (negative) {
    if (std::is_unsigned_v<T> && v != 0) return std::nullopt;
    return T(-(__int128)v);
  }
  return T(v);
}

// pandas' float syntax (see above); the value, or nullopt.
inline std::optional<double> pd_float(std::string_view raw) {
  static constexpr std::string_view kInf[] = {"inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"};
  for (std::string_view w : kInf)  // exact, without whitespace, any case
    if (raw.size() == w.size() &&
        std::equal(raw.begin(), raw.end(), w.begin(), [](char a, char b) { return std::tolower((unsigned char)a) == b; }))
      return w[0] == '-' ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
  std::string_view s = pd_trim(raw);
  size_t i = 0, n = s.size(), mant = 0;
  if (i < n && (s[i] == '+' || s[i] == '-')) ++i;
  for (; i < n && s[i] >= '0' && s[i] <= '9'; ++i) ++mant;
  if (i < n && s[i] == '.')
    for (++i; i < n && s[i] >= '0' && s[i] <= '9'; ++i) ++mant;
  if (mant == 0) return std::nullopt;
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < n && (s[i] == '+' || s[i] == '-')) ++i;
    size_t e = 0;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; ++i) ++e;
    if (e == 0) return std::nullopt;
  }
  if (i != n) return std::nullopt;
  // The syntax is checked; strtod only reads it (it would also take hex, "nan", ...).
  // Past the range it gives ±inf or 0 with ERANGE, as pandas does.
  return std::strtod(std::string(s).c_str(), nullptr);
}

// true/false in any case, without whitespace.
inline std::optional<bool> pd_bool(std::string_view s) {
  auto is = [&](std::string_view w) {
    return s.size() == w.size() &&
           std::equal(s.begin(), s.end(), w.begin(), [](char a, char b) { return std::tolower((unsigned char)a) == b; });
  };
  if (is("true")) return true;
  if (is("false")) return false;
  return std::nullopt;
}

}  // namespace detail

// df[col].dtype after pd.read_csv: "int64", "uint64", "float64", "bool" or "object".
// An all-missing column is float64, as in pandas; a column without rows (a header-only
// file) is object, as in pandas.
inline std::string dtype(const Column& col) {
  if (col.empty()) return "object";
  bool missing = false, negative = false;
  std::string_view digits;
  // int64, in order; the first cell that fails says what to try next.
  enum class Next { none, float64, uint64 } next = Next::none;
  for (const Cell& c : col) {
    if (!c) { missing = true; continue; }
    if (!detail::pd_int_syntax(*c, negative, digits)) { next = Next::float64; break; }
    if (!detail::pd_fit<int64_t>(negative, digits)) { next = Next::uint64; break; }
  }
  if (next == Next::none) {
    for (const Cell& c : col) missing = missing || !c;
    bool any = std::any_of(col.begin(), col.end(), [](const Cell& c) { return c.has_value(); });
    return !any || missing ? "float64" : "int64";
  }
  if (next == Next::uint64) {
    for (const Cell& c : col) {
      if (!c) return "object";  // pandas: object, the missing cells put back as text
      if (!detail::pd_int_syntax(*c, negative, digits)) { next = Next::float64; break; }
      if (!detail::pd_fit<uint64_t>(negative, digits)) return "object";  // past uint64, or a negative
    }
    if (next == Next::uint64) return "uint64";
  }
  bool all_float = true, all_bool = true;
  missing = false;
  for (const Cell& c : col) {
    if (!c) { missing = true; continue; }
    all_float = all_float && detail::pd_float(*c).has_value();
    all_bool = all_bool && detail::pd_bool(*c).has_value();
  }
  if (all_float) return "float64";
  if (all_bool && !missing) return "bool";
  return "object";
}

inline bool is_numeric_dtype(const std::string& dt) { return dt == "int64" || dt == "uint64" || dt == "float64"; }

// The numbers of a numeric column (int64, uint64 or float64) as float64, missing
// cells left out: what df[col].describe() works on. Any other dtype is an error.
inline xt::xtensor<double, 1> numbers(const Column& col, const std::string& name = "column") {
  const std::string dt = dtype(col);
  GALVANI_CHECK(is_numeric_dtype(dt), "numbers: '", name, "' is not numeric (its dtype is ", dt,
                "); describe() it as text with describe_text()");
  std::vector<double> out;
  for (const Cell& c : col) {
    if (!c) continue;
    bool negative;
    std::string_view digits;
    if (dt != "float64" && detail::pd_int_syntax(*c, negative, digits)) {
      if (auto u = detail::pd_fit<uint64_t>(negative, digits)) out.push_back(double(*u));
      else out.push_back(double(*detail::pd_fit<int64_t>(negative, digits)));
    } else {
      out.push_back(*detail::pd_float(*c));
    }
  }
  return xt::adapt(out, {out.size()});
}

// df[col].describe() of a numeric column.
inline Describe describe(const Column& col, const std::string& name = "column") { return describe(numbers(col, name)); }

// ------------------------------------------------------------------ info

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

// df.nunique(): distinct present values per column. Values, not spellings: in a
// float64 column "1", "1.0" and "1e0" are one value, in a bool column "True" and "TRUE".
inline ColumnCounts nunique(const Table& t) {
  ColumnCounts out;
  for (int64_t c = 0; c < t.cols(); ++c) {
    const Column& col = t.column(c);
    const std::string dt = dtype(col);
    std::unordered_map<std::string, int> seen;
    if (dt == "float64") {
      for (double x : numbers(col)) {
        char key[32];
        std::snprintf(key, sizeof key, "%.17g", x == 0 ? 0.0 : x);  // -0 is 0
        seen.emplace(key, 0);
      }
    } else if (is_numeric_dtype(dt)) {  // exact: ints past 2^53 differ where their doubles do not
      for (const Cell& cell : col) {
        if (!cell) continue;
        bool negative;
        std::string_view digits;
        detail::pd_int_syntax(*cell, negative, digits);
        auto u = detail::pd_fit<uint64_t>(negative, digits);
        seen.emplace(u ? std::to_string(*u) : std::to_string(*detail::pd_fit<int64_t>(negative, digits)), 0);
      }
    } else {
      for (const Cell& cell : col)
        if (cell) seen.emplace(dt == "bool" ? std::string(*detail::pd_bool(*cell) ? "True" : "False") : *cell, 0);
    }
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
