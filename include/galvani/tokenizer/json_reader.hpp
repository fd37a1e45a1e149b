// tokenizer/json_reader.hpp — reading tokenizer.json with errors that say where.
//
// A JsonNode is a json value plus the file it came from and its JSON path
// ("$.model.merges[12]"), so every "expected a string" names the exact spot. A file
// that does not even parse (truncated, a stray comma) is re-read with a SAX pass that
// only tracks the path, so that error names the path at fault too. The file must be
// one JSON value and nothing more (io/json.hpp's parse_json_whole), as for `tokenizers`.
#pragma once
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <galvani/core/error.hpp>
#include <galvani/core/paths.hpp>
#include <galvani/io/json.hpp>

namespace galvani {

using json = nlohmann::json;

class JsonNode {
 public:
  JsonNode(const json& j, std::shared_ptr<const std::string> file, std::string path)
      : j_(&j), file_(std::move(file)), path_(std::move(path)) {}

  const json& value() const { return *j_; }
  const std::string& path() const { return path_; }
  const std::string& file() const { return *file_; }
  bool is_null() const { return j_->is_null(); }
  bool is_object() const { return j_->is_object(); }
  bool is_array() const { return j_->is_array(); }
  bool is_string() const { return j_->is_string(); }

  [[noreturn]] void fail(const std::string& what) const {
    throw Error(*file_ + ": " + path_ + ": " + what);
  }

  bool has(const std::string& key) const { return j_->is_object() && j_->contains(key); }
  // has(key) and not null
  bool present(const std::string& key) const { return has(key) && !(*j_)[key].is_null(); }

  JsonNode operator[](const std::string& key) const {
    if (!j_->is_object()) fail("expected an object, got " + std::string(j_->type_name()));
    auto it = j_->find(key);
    if (it == j_->end()) fail("missing key \"" + key + "\"");
    return JsonNode(*it, file_, path_ + "." + key);
  }
  JsonNode operator[](size_t i) const {
    if (!j_->is_array()) fail("expected an array, got " + std::string(j_->type_name()));
    if (i >= j_->size()) fail("index " + std::to_string(i) + " out of range");
    return JsonNode((*j_)[i], file_, path_ + "[" + std::to_string(i) + "]");
  }
  size_t size() const {
    if (!j_->is_array() && !j_->is_object()) fail("expected an array, got " + std::string(j_->type_name()));
    return j_->size();
  }

  std::string str() const {
    if (!j_->is_string()) fail("expected a string, got " + std::string(j_->type_name()));
    return j_->get<std::string>();
  }
  bool boolean() const {
    if (!j_->is_boolean()) fail("expected true/false, got " + std::string(j_->type_name()));
    return j_->get<bool>();
  }
  int64_t integer() const {
    if (!j_->is_number_integer()) fail("expected an integer, got " + std::string(j_->type_name()));
    return j_->get<int64_t>();
  }
  double number() const {
    if (!j_->is_number()) fail("expected a number, got " + std::string(j_->type_name()));
    return j_->get<double>();
  }

  // Optional fields with defaults: absent or null gives the default.
  std::string str_or(const std::string& key, const std::string& def) const {
    return present(key) ? (*this)[key].str() : def;
  }
  bool bool_or(const std::string& key, bool def) const { return present(key) ? (*this)[key].boolean() : def; }
  int64_t int_or(const std::string& key, int64_t def) const { return present(key) ? (*this)[key].integer() : def; }

 private:
  const json* j_;
  std::shared_ptr<const std::string> file_;
  std::string path_;
};

namespace detail {

// A SAX handler that keeps only the current JSON path; used to say where a parse failed.
struct JsonPathTracker : nlohmann::json_sax<json> {
  struct Level { bool array; size_t index; std::string key; };
  std::vector<Level> stack;
  std::string error_path;
  std::string error_msg;

  std::string path() const {
    std::string p = "$";
    for (const auto& l : stack) p += l.array ? "[" + std::to_string(l.index) + "]" : (l.key.empty() ? "" : "." + l.key);
    return p;
  }
  void value_done() { if (!stack.empty() && stack.back().array) ++stack.back().index; }
  bool null() override { value_done(); return true; }
  bool boolean(bool) override { value_done(); return true; }
  bool number_integer(number_integer_t) override { value_done(); return true; }
  bool number_unsigned(number_unsigned_t) override { value_done(); return true; }
  bool number_float(number_float_t, const string_t&) override { value_done(); return true; }
  bool string(string_t&) override { value_done(); return true; }
  bool binary(binary_t&) override { value_done(); return true; }
  bool start_object(std::size_t) override { stack.push_back({false, 0, ""}); return true; }
  bool key(string_t& k) override { stack.back().key = k; return true; }
  bool end_object() override { stack.pop_back(); value_done(); return true; }
  bool start_array(std::size_t) override { stack.push_back({true, 0, ""}); return true; }
  bool end_array() override { stack.pop_back(); value_done(); return true; }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& ex) override {
    error_path = path();
    error_msg = ex.what();
    return false;
  }
};

}  // namespace detail

// Parses JSON text; a syntax error becomes "FILE: JSON parse error at $.model.vocab.xyz: ...",
// bytes after the value "FILE: invalid JSON: trailing characters ... at byte offset N".
inline json parse_json_text(const std::string& text, const std::string& file) {
  return io::parse_json_whole(text, file, 0, [&](std::string_view value) -> json {
    try {
      return json::parse(value.begin(), value.end());
    } catch (const json::exception& e) {
      // parse_error, and out_of_range for a number no type can hold ("1e999999").
      detail::JsonPathTracker tracker;
      json::sax_parse(value.begin(), value.end(), &tracker);
      throw Error(file + ": JSON parse error at " + (tracker.error_path.empty() ? "$" : tracker.error_path) + ": " +
                  e.what());
    }
  });
}

}  // namespace galvani
