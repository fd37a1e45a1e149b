// fuzz_csv — libFuzzer target for the CSV reader and step 1's EDA (data/csv.hpp, data/eda.hpp).
//
// Each input is a whole CSV file. parse_csv() reads it as pandas.read_csv would (quotes,
// doubled quotes, CRLF, a BOM, missing values, ragged rows, UTF-8 checked); an accepted table
// then goes through everything step1_eda does with it: info(), dtypes, describe() of numeric
// columns, describe_text() and character lengths of the text columns, the histogram and its
// SVG, nunique/isnull, a seeded sample, step 2's drop_blank; and write_csv, whose output must
// read back as the same table (one-column tables with a missing cell aside: pandas, too,
// writes that cell as a blank line, which reads back as no row). A galvani::Error is the
// expected answer to a bad file; any other exception, crash or sanitizer report is a bug.
//
// Build and run: tools/fuzz/run_fuzz.sh [seconds]   (see tools/fuzz/CMakeLists.txt)
#include <galvani/data/csv.hpp>
#include <galvani/data/eda.hpp>
#include <galvani/data/svg_plot.hpp>
#include <galvani/data/table.hpp>

#include <algorithm>
#include <sstream>

#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace galvani;
  fuzz::expect_error_or_value([&] {
    const Table t = parse_csv(fuzz::as_text(data, size), "fuzz.csv");
    (void)info(t);
    (void)format_counts(nunique(t));
    (void)format_counts(isnull_sum(t));
    (void)sample(t, std::min<int64_t>(3, t.rows()), 42);
    for (int64_t c = 0; c < t.cols(); ++c) {
      const Column& col = t.column(c);
      const std::string dt = dtype(col);
      fuzz::expect_error_or_value([&] {
        if (is_numeric_dtype(dt)) {
          (void)format_describe(describe(col, t.names()[size_t(c)]), t.names()[size_t(c)]);
        } else {
          (void)describe_text(col);
          const auto lengths = char_lengths(col);
          (void)format_describe(describe(lengths), "length");
          if (lengths.size() > 0) (void)to_svg(HistogramChart{"title", "characters", "rows", make_histogram(lengths, 20)});
          (void)drop_blank(t, t.names()[size_t(c)]);
        }
      });
    }
    std::ostringstream out;
    write_csv(out, t);
    bool lossy = false;
    if (t.cols() == 1)
      for (const Cell& cell : t.column(0)) lossy = lossy || !cell;
    if (!lossy) {
      const Table back = parse_csv(out.str(), "fuzz-roundtrip.csv");
      if (back.names() != t.names() || back.rows() != t.rows()) __builtin_trap();
      for (int64_t c = 0; c < t.cols(); ++c)
        if (back.column(c) != t.column(c)) __builtin_trap();
    }
  });
  return 0;
}
