// core/paths.hpp — where galvani finds the shared data (novel, tokenizers, configs),
// and reading a whole file.
//
// Looked up in order: $GALVANI_DATA, then ../shared/data (the default beside a
// checkout), then data/ (where tools/fetch_data.sh puts downloaded copies).
// Tests that need a file skip with a clear line when none of these has it.
#pragma once
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <optional>
#include <string>
#include <vector>

#include "error.hpp"

namespace galvani {

inline std::vector<std::filesystem::path> data_roots() {
  std::vector<std::filesystem::path> roots;
  if (const char* env = std::getenv("GALVANI_DATA"); env && *env) roots.emplace_back(env);
  roots.emplace_back("../shared/data");
  roots.emplace_back("data");
  return roots;
}

// The first existing `root / relative`, e.g. find_data_file("tokenizers/gpt2/tokenizer.json").
inline std::optional<std::filesystem::path> find_data_file(const std::string& relative) {
  for (const auto& root : data_roots()) {
    auto p = root / relative;
    std::error_code ec;
    if (std::filesystem::exists(p, ec)) return p;
  }
  return std::nullopt;
}

// A one-line explanation for when find_data_file() found nothing.
inline std::string data_file_missing(const std::string& relative) {
  std::string where;
  for (const auto& root : data_roots()) where += (where.empty() ? "" : ", ") + (root / relative).string();
  return "not found: " + relative + " (looked in " + where +
         "); set GALVANI_DATA or run tools/fetch_data.sh";
}

// The whole file as bytes (no newline translation); an error names the file. A directory is
// refused by name: on Linux it opens as a stream that reads as empty, which would surface as a
// puzzling "empty input" from whichever parser came next.
inline std::string read_text_file(const std::filesystem::path& path) {
  std::error_code ec;
  GALVANI_CHECK(!std::filesystem::is_directory(path, ec), path.string(), ": cannot read: it is a directory, not a file");
  std::ifstream in(path, std::ios::binary);
  GALVANI_CHECK(in, path.string(), ": cannot open file (",
                std::filesystem::exists(path) ? "it exists but cannot be read" : "no such file", ")");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace galvani
