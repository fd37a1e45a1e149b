// make_chunks — course step 0: the novel as frankenstein_chunks.csv, one
// column "text", one snippet of about --target-chars characters per row,
// always cut at the end of a sentence (see include/galvani/data/chunking.hpp).
//
//   build/make_chunks                       # ../shared/data/frankenstein/pg84.txt -> runs/frankenstein_chunks.csv
//   build/make_chunks --input book.txt --output chunks.csv --target-chars 900
//   build/make_chunks --download            # fetch Project Gutenberg #84 first (needs curl and a network)
#include <CLI/CLI.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include <galvani/core/error.hpp>
#include <galvani/core/paths.hpp>
#include <galvani/data/chunking.hpp>
#include <galvani/data/csv.hpp>
#include <galvani/data/eda.hpp>

#include "../examples/cli_checks.hpp"

namespace fs = std::filesystem;

int main(int argc, char** argv) {
  CLI::App app{"Cut the Frankenstein novel into snippets of about N characters (sentence ends) -> CSV"};
  std::string input, output = galvani::kDefaultChunksCsv;
  int64_t target = 900;
  bool download = false;
  app.add_option("--input", input, "plain-text book (default: frankenstein/pg84.txt from the shared data)");
  app.add_option("--output", output, "CSV to write, one column 'text' (its folder is created)")->capture_default_str();
  app.add_option("--target-chars", target, "aim for snippets of about this many characters")->capture_default_str()
      ->check(cli::kPositive);
  app.add_flag("--download", download,
               "download Project Gutenberg #84 to data/frankenstein/pg84.txt with curl, then use it");
  CLI11_PARSE(app, argc, argv);

  try {
    const std::string rel = "frankenstein/pg84.txt";
    if (download) {
      fs::create_directories("data/frankenstein");
      const std::string cmd =
          "curl -fsSL --retry 2 -o data/frankenstein/pg84.txt https://www.gutenberg.org/cache/epub/84/pg84.txt";
      std::cerr << "downloading: " << cmd << "\n";
      GALVANI_CHECK(std::system(cmd.c_str()) == 0, "make_chunks: the download failed; without a network, use ",
                    "the shared copy (omit --download) or pass --input");
      input = "data/frankenstein/pg84.txt";
    }
    if (input.empty()) {
      auto found = galvani::find_data_file(rel);
      GALVANI_CHECK(found, "make_chunks: ", galvani::data_file_missing(rel), ", or pass --input");
      input = found->string();
    }
    std::ifstream in(input, std::ios::binary);
    GALVANI_CHECK(in, "make_chunks: cannot open '", input, "'; check the path given to --input");
    std::stringstream ss;
    ss << in.rdbuf();

    std::vector<std::string> chunks = galvani::chunk_book(ss.str(), {target});
    GALVANI_CHECK(!chunks.empty(), "make_chunks: '", input, "' holds no text to cut");
    galvani::Table table = galvani::Table::from_column("text", chunks);
    galvani::write_csv(output, table);

    galvani::Describe d = galvani::describe(galvani::char_lengths(table.column("text")));
    std::printf("%s -> %s: %lld rows, characters per row mean %.1f, min %.0f, median %.0f, max %.0f\n",
                input.c_str(), output.c_str(), static_cast<long long>(d.count), d.mean, d.min, d.q50, d.max);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
