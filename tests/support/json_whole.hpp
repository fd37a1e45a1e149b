// tests/support/json_whole.hpp — the cases of tests/fixtures/json_whole/expected.json
// (tools/gen_json_fixtures.py): a valid file of each JSON kind galvani reads, with
// bytes added after (or before) its value, and what the reference made of it.
// Each test file runs the cases of the kinds it reads with check_json_whole().
#pragma once
#include <catch2/catch.hpp>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include <galvani/core/error.hpp>

namespace galvani::testing {

inline std::filesystem::path json_whole_dir() {
  return std::filesystem::path(GALVANI_SOURCE_DIR) / "tests" / "fixtures" / "json_whole";
}

inline std::string read_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  REQUIRE(in);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Latin-1 code points (as the generator stores bytes) back to bytes.
inline std::string latin1_bytes(const std::string& utf8) {
  std::string out;
  for (size_t i = 0; i < utf8.size(); ++i) {
    auto c = static_cast<unsigned char>(utf8[i]);
    if (c < 0x80) out += char(c);
    else out += char(((c & 0x1F) << 6) | (static_cast<unsigned char>(utf8[++i]) & 0x3F));  // U+0080..U+00FF
  }
  return out;
}

// For every case of `kind`: writes the file into a scratch folder `dir` (under the
// name the kind has there, next to the other base files, so that a loader that reads
// a folder finds it) and calls load(path). Where the reference accepted the file,
// load must not throw; where it refused it, load must throw an Error naming the file
// and the byte offset the generator recorded. (load must not call the loader inside a
// CHECK: Catch would report its Error there instead of letting it reach us.)
inline void check_json_whole(const std::string& kind, const std::function<void(const std::filesystem::path&)>& load) {
  const std::filesystem::path src = json_whole_dir();
  nlohmann::json all = nlohmann::json::parse(read_bytes(src / "expected.json"));
  REQUIRE(all.contains(kind));
  const nlohmann::json& k = all[kind];
  const std::string name = k["file"].get<std::string>();
  const size_t starts_at = k["json_starts_at"].get<size_t>();
  const std::string base = read_bytes(src / name);
  for (const auto& [cname, c] : k["cases"].items()) {
    INFO(kind << " / " << cname << " (reference: " << c["reference"].get<std::string>() << ")");
    std::filesystem::path dir = std::filesystem::temp_directory_path() / "galvani_json_whole" / (kind + "." + cname);
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    for (const auto& e : std::filesystem::directory_iterator(src))  // the other kinds' clean files alongside
      if (e.path().filename() != "expected.json") std::filesystem::copy_file(e.path(), dir / e.path().filename());
    const std::string prefix = c.contains("prefix") ? latin1_bytes(c["prefix"].get<std::string>()) : "";
    const std::string suffix = c.contains("suffix") ? latin1_bytes(c["suffix"].get<std::string>()) : "";
    std::string bytes;
    if (starts_at == 8) {  // safetensors: the header grows, and its length with it
      uint64_t n = 0;
      for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(base[size_t(i)]);
      std::string header = prefix + base.substr(8, size_t(n)) + suffix;
      for (int i = 0; i < 8; ++i) bytes += char((uint64_t(header.size()) >> (8 * i)) & 0xFF);
      bytes += header + base.substr(8 + size_t(n));
    } else {
      bytes = prefix + base + suffix;
    }
    const std::filesystem::path path = dir / name;
    std::filesystem::remove(path);
    std::ofstream(path, std::ios::binary) << bytes;
    if (c["offset"].is_null()) {
      CHECK_NOTHROW(load(path));
    } else {
      std::string what;
      try {
        load(path);
      } catch (const Error& e) {
        what = e.what();
      }
      INFO("galvani: " << what);
      CHECK_THAT(what, Catch::Contains(path.string()));
      CHECK_THAT(what, Catch::Contains("byte offset " + std::to_string(c["offset"].get<size_t>())));
    }
  }
}

}  // namespace galvani::testing
