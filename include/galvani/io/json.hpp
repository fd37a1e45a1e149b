// io/json.hpp — reading JSON from checkpoint files strictly, and writing it as Python does.
//
// nlohmann::json is lenient where a file format must not be: it keeps the last of
// two equal keys silently, and nests as deep as memory allows. Checkpoint headers
// come from untrusted downloads, so parse_json_strict() adds what the reference
// (Rust serde_json, as used by safetensors) enforces:
//   - the text is valid UTF-8 (checked first, so the error names the byte offset),
//   - no object has the same key twice,
//   - nesting is at most 128 deep (serde_json's recursion limit),
//   - the text is one value and nothing else (see parse_json_whole below).
// Every error names `where` (a file, or "file: tensor").
#pragma once
#include <nlohmann/json.hpp>

#include <cctype>
#include <cstdint>
#include <cstdio>
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


// ------------------------------------------------------------------ one value, whole
//
// nlohmann's lexer takes a NUL byte for the end of the input (so that C string
// literals parse), which means `{...}\0anything` parses as `{...}`. Every JSON file
// galvani reads must instead be consumed whole, as serde_json (safetensors,
// tokenizers) and Python's json.loads (transformers: config.json, tokenizer_config.json,
// generation_config.json, model.safetensors.index.json) consume it: after the value
// only JSON whitespace (space, tab, LF, CR) may follow, and nothing but whitespace may
// precede it (a UTF-8 byte-order mark included: all three references refuse it).

inline bool is_json_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// The offset just past the first JSON value in `s`. Only the structure is followed
// (brackets, strings and their escapes, the bytes of a bare number or literal); the
// parser judges the value itself. Text that is not a value gives s.size(), so the
// parser sees all of it and says what is wrong.
inline size_t json_value_end(std::string_view s) {
  const size_t n = s.size();
  size_t i = 0;
  while (i < n && is_json_space(s[i])) ++i;
  int64_t depth = 0;
  while (i < n) {
    const char c = s[i];
    if (c == '"') {
      for (++i; i < n && s[i] != '"'; ++i)
        if (s[i] == '\\') ++i;  // the escaped byte cannot close the string
      if (i >= n) return n;
      ++i;
      if (depth == 0) return i;
    } else if (c == '{' || c == '[') {
      ++depth, ++i;
    } else if (c == '}' || c == ']') {
      ++i;
      if (--depth <= 0) return i;
    } else if (depth == 0) {  // a number or literal at the top level
      size_t from = i;
      while (i < n && (std::isalnum(static_cast<unsigned char>(s[i])) || s[i] == '-' || s[i] == '+' || s[i] == '.')) ++i;
      return i == from ? n : i;
    } else {
      ++i;
    }
  }
  return n;
}

namespace detail {
// "0x00", or "'x'" for a printable ASCII byte: how an error shows the byte at fault.
inline std::string json_byte_name(char c) {
  auto u = static_cast<unsigned char>(c);
  if (u >= 0x21 && u < 0x7F) return std::string("'") + c + "'";
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02X", u);
  return buf;
}
}  // namespace detail

// Parses `text`, which must hold exactly one JSON value: `parse(value_text)` parses
// the value's own bytes (and throws on bad syntax); whatever follows it other than
// whitespace is an error naming `where` and the byte offset, counted from the start
// of `text` plus `base` (a safetensors header starts at byte 8 of its file).
template <class Parse>
json parse_json_whole(std::string_view text, const std::string& where, size_t base, Parse&& parse) {
  using galvani::detail::cat;
  if (text.substr(0, 3) == "\xEF\xBB\xBF")
    throw Error(cat(where, ": invalid JSON: starts with a UTF-8 byte-order mark (byte offset ", base,
                    "); JSON allows none, save the file without it"));
  // Nothing but whitespace (an empty or truncated-to-nothing file): say so, not nlohmann's
  // "syntax error while parsing value".
  if (text.find_first_not_of(" \t\n\r") == std::string_view::npos)
    throw Error(text.empty() ? cat(where, ": invalid JSON: the text is empty (0 bytes)")
                             : cat(where, ": invalid JSON: no value, only ", text.size(), " bytes of whitespace"));
  const size_t end = json_value_end(text);
  // A NUL inside the value would end nlohmann's input early; say what it is instead.
  if (size_t nul = text.find('\0'); nul < end)
    throw Error(cat(where, ": invalid JSON: a NUL byte (0x00) at byte offset ", base + nul));
  json j = parse(text.substr(0, end));
  size_t k = end;
  while (k < text.size() && is_json_space(text[k])) ++k;
  if (k < text.size())
    throw Error(cat(where, ": invalid JSON: trailing characters after the value: ", detail::json_byte_name(text[k]),
                    " at byte offset ", base + k, " (", text.size() - k,
                    " bytes follow the value; only whitespace may)"));
  return j;
}

// `base`: where `text` starts in its file, so that offsets in errors are file offsets.
inline json parse_json_strict(std::string_view text, const std::string& where, size_t base = 0) {
  if (size_t bad = utf8_error_offset(text); bad != std::string_view::npos)
    throw Error(galvani::detail::cat(where, ": JSON is not valid UTF-8 (bad byte 0x", std::hex, int(uint8_t(text[bad])),
                            std::dec, " at byte offset ", base + bad, ")"));
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
  return parse_json_whole(text, where, base, [&](std::string_view value) -> json {
    try {
      return json::parse(value.begin(), value.end(), cb, /*allow_exceptions=*/true, /*ignore_comments=*/false);
    } catch (const Error&) {
      if (problem.empty()) throw;
      throw Error(galvani::detail::cat(where, ": invalid JSON: ", problem));
    } catch (const json::exception& e) {
      // parse_error, but also out_of_range: a number too large for any type ("1e999999")
      // is well-formed JSON that nlohmann refuses with a different exception.
      throw Error(galvani::detail::cat(where, ": invalid JSON: ", e.what()));
    }
  });
}

inline json read_json_file(const std::filesystem::path& path) {
  return parse_json_strict(read_text_file(path), path.string());
}

// Python's json.dumps(obj, indent=2, sort_keys=True) + "\n", which is how transformers
// writes config.json and friends. nlohmann's objects are sorted maps already. Two
// differences remain for floats (Python writes 1e-05, nlohmann 1e-05 too; Python
// writes 10000.0, nlohmann 10000.0): both agree on the values configs hold. indent -1 writes
// one line (what tokenizers' tokenizer.json writer does).
inline void write_json_file(const std::filesystem::path& path, const json& j, int indent = 2) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw Error(galvani::detail::cat(path.string(), ": cannot open for writing"));
  out << j.dump(indent, ' ', /*ensure_ascii=*/false) << "\n";
  if (!out) throw Error(galvani::detail::cat(path.string(), ": write failed"));
}

}  // namespace galvani::io
