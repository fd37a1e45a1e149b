// tokenizer/normalizers.hpp — the first stage: rewrite the text before it is split.
//
// Normalizers run on each stretch of text between added tokens (HF applies them after
// pulling out the added tokens that are not "normalized"). Each one rewrites a
// NormalizedText character by character so that every output byte keeps the origin of
// the input character it came from. Supported "type"s: NFC, NFD, NFKC, NFKD, Lowercase,
// Strip, StripAccents, Prepend, Replace (string patterns), Sequence.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <galvani/tokenizer/json_reader.hpp>
#include <galvani/tokenizer/normalized_text.hpp>
#include <galvani/tokenizer/unicode.hpp>

namespace galvani {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual void normalize(NormalizedText& t) const = 0;
};

namespace detail {

// Rebuilds t by mapping each character (code point, bytes, origin) to new bytes.
template <class F>
void map_chars(NormalizedText& t, F&& f) {
  NormalizedText out;
  out.track = t.track;
  out.orig_start = t.orig_start;
  out.text.reserve(t.text.size());
  if (t.track) out.orig.reserve(t.text.size());
  for (size_t i = 0; i < t.text.size();) {
    size_t b = i;
    char32_t cp = unicode::next_cp(t.text, i);
    f(out, cp, std::string_view(t.text).substr(b, i - b), t.track ? t.orig[b] : 0u);
  }
  t = std::move(out);
}

}  // namespace detail

// Unicode normalization forms. The text is normalized in one go (so the result is always
// exactly utf8proc's); origins come from normalizing chunk by chunk, a chunk starting at
// each starter, and are used when the chunks agree with the whole (they nearly always do).
class UnicodeNormalizer : public Normalizer {
 public:
  explicit UnicodeNormalizer(unicode::NormForm f) : form_(f) {}
  void normalize(NormalizedText& t) const override {
    std::string whole = unicode::normalize(t.text, form_);
    if (whole == t.text) return;
    if (!t.track) { t.text = std::move(whole); return; }
    NormalizedText out;
    out.orig_start = t.orig_start;
    size_t chunk_begin = 0;
    // A chunk is a starter and its combining marks. When its normalization is just each
    // character's own (NFD of "é" + "ç", or "e\u0301" left as it is), each character's
    // output keeps that character's origin, as tokenizers' alignments do; otherwise (marks
    // composed or reordered) the whole output points at the chunk's first character.
    std::vector<std::pair<std::string, uint32_t>> pieces;
    auto flush = [&](size_t end) {
      if (end == chunk_begin) return;
      std::string_view chunk = std::string_view(t.text).substr(chunk_begin, end - chunk_begin);
      std::string norm = unicode::normalize(chunk, form_);
      pieces.clear();
      std::string joined;
      size_t second = chunk_begin;
      unicode::next_cp(t.text, second);
      const bool one_char = second >= end;  // nothing to split: skip normalizing it twice
      for (size_t i = chunk_begin; !one_char && i < end && joined.size() <= norm.size();) {
        size_t b = i;
        unicode::next_cp(t.text, i);
        pieces.push_back({unicode::normalize(std::string_view(t.text).substr(b, i - b), form_), t.orig[b]});
        joined += pieces.back().first;
      }
      if (pieces.size() > 1 && joined == norm)
        for (const auto& [text, origin] : pieces) out.append(text, origin);
      else
        out.append(norm, t.orig[chunk_begin]);
      chunk_begin = end;
    };
    for (size_t i = 0; i < t.text.size();) {
      size_t b = i;
      char32_t cp = unicode::next_cp(t.text, i);
      bool jamo_vt = (cp >= 0x1161 && cp <= 0x1175) || (cp >= 0x11A8 && cp <= 0x11C2);
      if (b > 0 && unicode::combining_class(cp) == 0 && !jamo_vt) flush(b);
    }
    flush(t.text.size());
    if (out.text != whole) {  // chunks disagree: keep the exact text, coarse origins
      out.text = whole;
      out.orig.assign(whole.size(), t.orig.empty() ? t.orig_start : t.orig[0]);
    }
    t = std::move(out);
  }

 private:
  unicode::NormForm form_;
};

class LowercaseNormalizer : public Normalizer {
 public:
  void normalize(NormalizedText& t) const override {
    detail::map_chars(t, [](NormalizedText& out, char32_t cp, std::string_view, uint32_t o) {
      size_t before = out.text.size();
      unicode::append_lowercase(out.text, cp);
      if (out.track) out.orig.insert(out.orig.end(), out.text.size() - before, o);
    });
  }
};

class StripAccentsNormalizer : public Normalizer {
 public:
  void normalize(NormalizedText& t) const override {
    detail::map_chars(t, [](NormalizedText& out, char32_t cp, std::string_view bytes, uint32_t o) {
      if (unicode::category(cp) != UTF8PROC_CATEGORY_MN) out.append(bytes, o);
    });
  }
};

class StripNormalizer : public Normalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  void normalize(NormalizedText& t) const override {
    size_t b = 0, e = t.text.size();
    if (left_) {
      while (b < e) {
        size_t i = b;
        if (!unicode::is_whitespace(unicode::next_cp(t.text, i))) break;
        b = i;
      }
    }
    if (right_) {
      while (e > b) {
        size_t j = e - 1;
        while (j > b && ((unsigned char)t.text[j] & 0xC0) == 0x80) --j;
        size_t i = j;
        if (!unicode::is_whitespace(unicode::next_cp(t.text, i))) break;
        e = j;
      }
    }
    t.text = t.text.substr(b, e - b);
    if (t.track) t.orig = std::vector<uint32_t>(t.orig.begin() + b, t.orig.begin() + e);
  }

 private:
  bool left_, right_;
};

// Adds a string in front of non-empty text (the legacy Llama/Mistral "▁" prefix).
class PrependNormalizer : public Normalizer {
 public:
  explicit PrependNormalizer(std::string s) : s_(std::move(s)) {}
  void normalize(NormalizedText& t) const override {
    if (t.text.empty()) return;
    t.text.insert(0, s_);
    if (t.track) t.orig.insert(t.orig.begin(), s_.size(), t.orig.front());
  }

 private:
  std::string s_;
};

// Replaces every (non-overlapping, left to right) occurrence of a literal string.
class ReplaceNormalizer : public Normalizer {
 public:
  ReplaceNormalizer(std::string pattern, std::string content) : pat_(std::move(pattern)), content_(std::move(content)) {}
  void normalize(NormalizedText& t) const override {
    if (pat_.empty() || t.text.find(pat_) == std::string::npos) return;
    NormalizedText out;
    out.track = t.track;
    out.orig_start = t.orig_start;
    for (size_t i = 0; i < t.text.size();) {
      if (t.text.compare(i, pat_.size(), pat_) == 0) {
        out.append(content_, t.track ? t.orig[i] : 0);
        i += pat_.size();
      } else {
        out.text += t.text[i];
        if (t.track) out.orig.push_back(t.orig[i]);
        ++i;
      }
    }
    t = std::move(out);
  }

 private:
  std::string pat_, content_;
};

class SequenceNormalizer : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> v) : v_(std::move(v)) {}
  void normalize(NormalizedText& t) const override {
    for (const auto& n : v_) n->normalize(t);
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> v_;
};

// The literal string of a {"String": "..."} pattern; a {"Regex": ...} is refused by name.
inline std::string string_pattern(const JsonNode& pattern, const char* who) {
  if (pattern.present("String")) return pattern["String"].str();
  if (pattern.present("Regex"))
    pattern.fail(std::string("unsupported ") + who + " pattern: Regex \"" + pattern["Regex"].str() +
                 "\" (only String patterns are supported here)");
  pattern.fail(std::string("expected {\"String\": ...} or {\"Regex\": ...}"));
}

// Builds a normalizer from its JSON; null gives nullptr (no normalization).
inline std::unique_ptr<Normalizer> make_normalizer(const JsonNode& j) {
  if (j.is_null()) return nullptr;
  std::string type = j["type"].str();
  if (type == "NFC") return std::make_unique<UnicodeNormalizer>(unicode::NormForm::NFC);
  if (type == "NFD") return std::make_unique<UnicodeNormalizer>(unicode::NormForm::NFD);
  if (type == "NFKC") return std::make_unique<UnicodeNormalizer>(unicode::NormForm::NFKC);
  if (type == "NFKD") return std::make_unique<UnicodeNormalizer>(unicode::NormForm::NFKD);
  if (type == "Lowercase") return std::make_unique<LowercaseNormalizer>();
  if (type == "StripAccents") return std::make_unique<StripAccentsNormalizer>();
  if (type == "Strip") return std::make_unique<StripNormalizer>(j.bool_or("strip_left", true), j.bool_or("strip_right", true));
  if (type == "Prepend") return std::make_unique<PrependNormalizer>(j["prepend"].str());
  if (type == "Replace") return std::make_unique<ReplaceNormalizer>(string_pattern(j["pattern"], "Replace"), j["content"].str());
  if (type == "Sequence") {
    std::vector<std::unique_ptr<Normalizer>> v;
    JsonNode list = j["normalizers"];
    for (size_t i = 0; i < list.size(); ++i)
      if (auto n = make_normalizer(list[i])) v.push_back(std::move(n));
    return std::make_unique<SequenceNormalizer>(std::move(v));
  }
  j["type"].fail("unsupported normalizer type \"" + type + "\"");
}

}  // namespace galvani
