// io/json.hpp — reading JSON from checkpoint files strictly, and writing it as Python does.
//
// nlohmann::json is lenient where a file format must not be: it keeps the last of
// two equal keys silently, and nests as deep as memory allows. Checkpoint headers
// come from untrusted downloads, so parse_json_strict() adds what the reference
// (Rust serde_json, as used by safetensors) enforces:
//   - the text is valid UTF-8 (checked first, so the error names the byte offset),
//   - no object has the same key twice,
//   - nesting is at most 128 deep (serde_json's recursion limit).
// Every error names `where` (a file, or "file: tensor").
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "../core/error.hpp"
#include "../core/paths.hpp"

namespace galvani::io {

using json = nlohmann::json;

// The offset of the first byte that breaks UTF-8 (overlong forms, surrogates and
// code points past U+10FFFF included), or npos when the text is valid.
inline size_t utf8_error_offset(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size(), i = 0;
  while (i < n) {
    unsigned c = p[i];
    if (c < 0x80) { ++i; continue; }
    size_t len;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) { len = 2; cp = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { len = 3; cp = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; cp = c & 0x07; }
    else return i;
    if (i + len > n) return i;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
      return i;
    i += len;
  }
  return std::string_view::npos;
}

inline json parse_json_strict(std::string_view text, const std::string& where) {
  if (size_t bad = utf8_error_offset(text); bad != std::string_view::npos)
    throw Error(galvani::detail::cat(where, ": JSON is not valid UTF-8 (bad byte 0x", std::hex, int(uint8_t(text[bad])),
                            std::dec, " at offset ", bad, ")"));
  constexpr int kMaxDepth = 128;
  std::vector<std::set<std::string>> keys;  // one set per open object
  std::string problem;
  auto cb = [&](int depth, json::parse_event_t ev, json& parsed) -> bool {
    switch (ev) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        if (depth >= kMaxDepth) {
          problem = galvani::detail::cat("JSON nested deeper than ", kMaxDepth, " levels");
          throw Error(problem);
        }
        if (ev == json::parse_event_t::object_start) keys.emplace_back();
        break;
      case json::parse_event_t::object_end:
        if (!keys.empty()) keys.pop_back();
        break;
      case json::parse_event_t::key:
        if (!keys.empty() && !keys.back().insert(parsed.get<std::string>()).second) {
          problem = galvani::detail::cat("duplicate key \"", parsed.get<std::string>(), "\"");
          throw Error(problem);
        }
        break;
      default:
        break;
    }
    return true;
  };
  try {
    return json::parse(text.begin(), text.end(), cb, /*allow_exceptions=*/true, /*ignore_comments=*/false);
  } catch (const Error&) {
    if (problem.empty()) throw;
    throw Error(galvani::detail::cat(where, ": invalid JSON: ", problem));
  } catch (const json::exception& e) {
    // parse_error, but also out_of_range: a number too large for any type ("1e999999")
    // is well-formed JSON that nlohmann refuses with a different exception.
    throw Error(galvani::detail::cat(where, ": invalid JSON: ", e.what()));
  }
}

inline json read_json_file(const std::filesystem::path& path) {
  return parse_json_strict(read_text_file(path), path.string());
}

// Python's json.dumps(obj, indent=2, sort_keys=True) + "\n", which is how transformers
// writes config.json and friends. nlohmann's objects are sorted maps already. Two
// differences remain for floats (Python writes 1e-05, nlohmann 1e-05 too; Python
// writes 10000.0, nlohmann 10000.0): both agree on the values configs hold.
inline void write_json_file(const std::filesystem::path& path, const json& j) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw Error(galvani::detail::cat(path.string(), ": cannot open for writing"));
  out << j.dump(2, ' ', /*ensure_ascii=*/false) << "\n";
  if (!out) throw Error(galvani::detail::cat(path.string(), ": write failed"));
}

}  // namespace galvani::io
