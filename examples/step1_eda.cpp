// Course step 1 — exploratory data analysis of frankenstein_chunks.csv.
//
// The notebook did:
//   df = pd.read_csv("frankenstein_chunks.csv")
//   df.info(); df.describe(); df.nunique(); df.sample(); df.isnull().sum()
// and looked at how long the snippets are. This program prints the same, plus
// describe() of the characters per snippet, and draws their histogram as SVG.
//
//   build/make_chunks                     # writes runs/frankenstein_chunks.csv
//   build/step1_eda --out runs/step1      # then open runs/step1/char_lengths.svg
#include <CLI/CLI.hpp>

#include <cstdio>
#include <filesystem>
#include <iostream>

#include <galvani/data/chunking.hpp>
#include <galvani/data/csv.hpp>
#include <galvani/data/eda.hpp>
#include <galvani/data/svg_plot.hpp>

using namespace galvani;

static void section(const char* pandas_call) { std::printf("\n>>> %s\n", pandas_call); }

int main(int argc, char** argv) {
  CLI::App app{"Course step 1: EDA of the Frankenstein snippets (info, describe, nunique, sample, isnull)"};
  std::string csv_path = kDefaultChunksCsv, out_dir = "runs/step1", column = "text";
  uint64_t seed = 42;
  size_t bins = 20;
  app.add_option("--csv", csv_path, "CSV made by tools/make_chunks")->capture_default_str();
  app.add_option("--out", out_dir, "folder for the histogram SVG")->capture_default_str();
  app.add_option("--column", column, "the text column")->capture_default_str();
  app.add_option("--seed", seed, "seed of the random row")->capture_default_str();
  app.add_option("--bins", bins, "histogram bins (1 to 1000)")->capture_default_str()->check(CLI::Range(size_t(1), size_t(1000)));
  CLI11_PARSE(app, argc, argv);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // lines reach a pipe or a log file in order with stderr's

  try {
    // df = pd.read_csv(...): read as it is; cleaning comes later (step 2).
    Table df = read_csv(csv_path);
    if (!df.has_column(column)) {
      std::string names;
      for (const auto& n : df.names()) names += (names.empty() ? "'" : ", '") + n + "'";
      throw Error(csv_path + " has no column '" + column + "' (its columns: " + names +
                  "); pass the text column with --column NAME");
    }
    GALVANI_CHECK(df.rows() > 0, csv_path, " has a header but no rows: nothing to analyse; ",
                  "make the CSV with build/make_chunks");
    const Column& text = df.column(column);

    section("df.info()");
    std::cout << info(df);

    section("df.describe()");
    TextDescribe td = describe_text(text);
    std::string top = td.top.size() > 60 ? td.top.substr(0, 57) + "..." : td.top;
    std::printf("        %s\ncount   %lld\nunique  %lld\ntop     %s\nfreq    %lld\n", column.c_str(),
                static_cast<long long>(td.count), static_cast<long long>(td.unique), top.c_str(),
                static_cast<long long>(td.freq));

    section("df[\"text\"].str.len().describe()   # characters per snippet");
    const xt::xtensor<double, 1> lengths = char_lengths(text);
    std::cout << format_describe(describe(lengths), column);

    section("df.nunique()");
    std::cout << format_counts(nunique(df));

    section("df.sample()   # one random row (seeded; not numpy's choice of row)");
    if (df.rows() > 0) {
      const int64_t row = sample_indices(df.rows(), 1, seed)[0];
      const Cell& c = text[size_t(row)];
      std::printf("row %lld:\n%s\n", static_cast<long long>(row), c ? c->c_str() : "NaN");
    }

    section("df.isnull().sum()");
    std::cout << format_counts(isnull_sum(df));

    DropReport rep;
    drop_blank(df, column, &rep);
    if (rep.total() > 0)
      std::printf("\nwarning: %lld missing and %lld blank (whitespace-only) rows; step 2 drops them\n",
                  static_cast<long long>(rep.missing), static_cast<long long>(rep.blank));

    if (lengths.size() > 0) {
      const std::filesystem::path svg = std::filesystem::path(out_dir) / "char_lengths.svg";
      HistogramChart chart{"Characters per snippet (" + std::to_string(lengths.size()) + " rows)",
                           "characters", "rows", make_histogram(lengths, bins)};
      save_svg(svg, to_svg(chart));
      std::printf("\nhistogram: %s\n", svg.string().c_str());
    }
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
