// tokenizer/pre_tokenizers.hpp — the second stage: cut normalized text into "words".
//
// BPE never merges across a word boundary, so this stage decides what can become one
// token. Each pre-tokenizer takes a Piece and hands every word it makes to a callback
// (no vector of words is ever built: a 100 MB input flows through word by word).
// Supported "type"s: ByteLevel (GPT-2's split pattern + byte characters), Metaspace,
// Split (string patterns and the GPT-2 / whitespace regexes), Whitespace,
// WhitespaceSplit, Punctuation, Digits, CharDelimiterSplit, Sequence.
#pragma once
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include <galvani/tokenizer/json_reader.hpp>
#include <galvani/tokenizer/normalized_text.hpp>
#include <galvani/tokenizer/unicode.hpp>

namespace galvani {

// GPT-2's pre-tokenization regex, as written in tokenizers/src/pre_tokenizers/byte_level.rs:
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
inline constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// The end of the GPT-2 pattern's match that starts at `pos` (< s.size()). Every character
// belongs to one of the classes, so matches tile the text and the next starts here.
inline size_t gpt2_match_end(std::string_view s, size_t pos) {
  using namespace unicode;
  size_t i = pos;
  char32_t c = next_cp(s, i);
  // 's 't 're 've 'm 'll 'd — case-sensitive, ASCII apostrophe only.
  if (c == '\'' && i < s.size()) {
    char a = s[i];
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 1;
    if (i + 1 < s.size()) {
      char b = s[i + 1];
      if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 2;
    }
  }
  // " ?X+" for X = letters, numbers, other: an optional leading space, then a run.
  char32_t first = c;
  size_t after = i;
  if (c == ' ' && i < s.size()) {
    size_t k = i;
    first = next_cp(s, k);
    after = k;
  }
  auto run = [&](size_t k, auto pred) {
    while (k < s.size()) {
      size_t k2 = k;
      if (!pred(next_cp(s, k2))) break;
      k = k2;
    }
    return k;
  };
  if (is_letter(first)) return run(after, is_letter);
  if (is_number(first)) return run(after, is_number);
  if (!is_whitespace(first))
    return run(after, [](char32_t x) { return !is_whitespace(x) && !is_letter(x) && !is_number(x); });
  // A whitespace run. "\s+(?!\S)" backs off one character so that a space stays to
  // prefix the next word ("a   b" -> "a", "  ", " b"); a single whitespace character
  // before a word falls through to plain "\s+".
  size_t e = pos, last = pos, n = 0;
  while (e < s.size()) {
    size_t k = e;
    if (!is_whitespace(next_cp(s, k))) break;
    last = e;
    e = k;
    ++n;
  }
  if (e == s.size() || n < 2) return e;
  return last;
}

// "\w+|[^\w\s]+" (HF's Whitespace pre-tokenizer keeps these matches, drops the rest).
inline size_t word_or_symbols_match_end(std::string_view s, size_t pos) {
  using namespace unicode;
  size_t i = pos;
  char32_t c = next_cp(s, i);
  if (is_whitespace(c)) return pos;  // no match here
  bool word = is_word_char(c);
  while (i < s.size()) {
    size_t k = i;
    char32_t x = next_cp(s, k);
    if (is_whitespace(x) || is_word_char(x) != word) break;
    i = k;
  }
  return i;
}

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  virtual void split(const Piece& in, PieceSink out) const = 0;
};

// How a split keeps the matched delimiters (tokenizers' SplitDelimiterBehavior).
enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

struct Span {
  size_t b, e;
  bool match;
};

// Applies a behavior to a tiling of the text into match / non-match spans, then emits
// the non-empty pieces (the fold is tokenizers' NormalizedString::split).
inline void emit_split(const Piece& in, std::vector<Span>& spans, SplitBehavior behavior, bool invert, PieceSink out) {
  if (invert)
    for (auto& s : spans) s.match = !s.match;
  std::vector<Span> parts;
  switch (behavior) {
    case SplitBehavior::Removed:
      for (auto& s : spans) if (!s.match) parts.push_back(s);
      break;
    case SplitBehavior::Isolated:
      parts = spans;
      break;
    case SplitBehavior::MergedWithPrevious: {
      bool prev = false;
      for (auto& s : spans) {
        if (s.match && !prev && !parts.empty()) parts.back().e = s.e;
        else parts.push_back(s);
        prev = s.match;
      }
      break;
    }
    case SplitBehavior::MergedWithNext: {
      bool prev = false;
      for (size_t k = spans.size(); k-- > 0;) {
        const auto& s = spans[k];
        if (s.match && !prev && !parts.empty()) parts.back().b = s.b;
        else parts.push_back(s);
        prev = s.match;
      }
      std::reverse(parts.begin(), parts.end());
      break;
    }
    case SplitBehavior::Contiguous: {
      bool prev = false;
      for (auto& s : spans) {
        if (s.match == prev && !parts.empty()) parts.back().e = s.e;
        else parts.push_back(s);
        prev = s.match;
      }
      break;
    }
  }
  for (auto& p : parts)
    if (p.e > p.b) out(in.sub(p.b, p.e));
}

// Tiles text into spans from a "match end at pos" function (pos = no match there).
template <class MatchEnd>
void regex_like_spans(std::string_view s, MatchEnd match_end, std::vector<Span>& spans) {
  size_t gap = 0;
  for (size_t pos = 0; pos < s.size();) {
    size_t e = match_end(s, pos);
    if (e == pos) { pos += unicode::utf8_len((unsigned char)s[pos]); continue; }
    if (gap < pos) spans.push_back({gap, pos, false});
    spans.push_back({pos, e, true});
    pos = gap = e;
  }
  if (gap < s.size()) spans.push_back({gap, s.size(), false});
}

// Each character for which pred holds is its own match (tokenizers' Fn(char) pattern).
template <class Pred>
void char_spans(std::string_view s, Pred pred, std::vector<Span>& spans) {
  size_t gap = 0;
  for (size_t i = 0; i < s.size();) {
    size_t b = i;
    char32_t c = unicode::next_cp(s, i);
    if (!pred(c)) continue;
    if (gap < b) spans.push_back({gap, b, false});
    spans.push_back({b, i, true});
    gap = i;
  }
  if (gap < s.size()) spans.push_back({gap, s.size(), false});
}

// ByteLevel: optionally a leading space, the GPT-2 split, then every byte becomes its
// GPT-2 character so BPE sees only printable characters (and never an unknown one).
class ByteLevelPreTokenizer : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex) : prefix_(add_prefix_space), regex_(use_regex) {}
  void split(const Piece& in, PieceSink out) const override {
    // add_prefix_space: " " in front unless there is one, so the first word looks like
    // every other ("Hello" -> "ĠHello"); it takes the origin of the first character.
    NormalizedText prefixed;
    Piece src = in;
    if (prefix_ && in.text[0] != ' ') {
      prefixed = NormalizedText::from(in);
      prefixed.text.insert(0, " ");
      if (in.track) prefixed.orig.insert(prefixed.orig.begin(), in.at(0));
      src = prefixed.piece();
    }
    NormalizedText word;
    word.track = in.track;
    const auto& table = unicode::byte_level_table();
    auto emit = [&](size_t b, size_t e) {
      word.clear();
      for (size_t i = b; i < e;) {
        size_t n = unicode::utf8_len((unsigned char)src.text[i]);
        uint32_t origin = in.track ? src.at(i) : 0;
        for (size_t k = 0; k < n; ++k) word.append(table.byte_to_utf8[(unsigned char)src.text[i + k]], origin);
        i += n;
      }
      word.orig_start = src.at(b);
      out(word.piece());
    };
    if (!regex_) { emit(0, src.text.size()); return; }
    for (size_t pos = 0; pos < src.text.size();) {
      size_t e = gpt2_match_end(src.text, pos);
      emit(pos, e);
      pos = e;
    }
  }

 private:
  bool prefix_, regex_;
};

// Metaspace (SentencePiece style): spaces become "▁" and a "▁" is prepended
// ("always"; "first": only to the split that starts the input; "never"). With
// split=true every "▁" starts a new word; with split=false the whole piece is one word.
class MetaspacePreTokenizer : public PreTokenizer {
 public:
  enum class Scheme { Always, First, Never };
  MetaspacePreTokenizer(std::string replacement, Scheme scheme, bool split)
      : repl_(std::move(replacement)), scheme_(scheme), split_(split) {}
  const std::string& replacement() const { return repl_; }
  bool splits() const { return split_; }

  void split(const Piece& in, PieceSink out) const override {
    NormalizedText buf;
    buf.track = in.track;
    buf.orig_start = in.orig_start;
    buf.text.reserve(in.text.size() + in.text.size() / 4 + 4);
    if (in.track) buf.orig.reserve(buf.text.capacity());
    bool starts_with_repl = in.text[0] == ' ' || in.text.substr(0, repl_.size()) == repl_;
    bool prepend = !starts_with_repl &&
                   (scheme_ == Scheme::Always || (scheme_ == Scheme::First && in.orig_start == 0));
    if (prepend) buf.append(repl_, in.at(0));
    for (size_t i = 0; i < in.text.size();) {
      size_t n = unicode::utf8_len((unsigned char)in.text[i]);
      uint32_t origin = in.track ? in.at(i) : 0;
      if (in.text[i] == ' ') buf.append(repl_, origin);
      else buf.append(in.text.substr(i, n), origin);
      i += n;
    }
    Piece p = buf.piece();
    if (!split_) { out(p); return; }
    size_t start = 0;
    for (size_t i = repl_.size(); i + repl_.size() <= buf.text.size();) {
      if (buf.text.compare(i, repl_.size(), repl_) == 0) {
        out(p.sub(start, i));
        start = i;
        i += repl_.size();
      } else {
        ++i;
      }
    }
    out(p.sub(start, buf.text.size()));
  }

 private:
  std::string repl_;
  Scheme scheme_;
  bool split_;
};

// Split on a pattern: a literal string, or one of the few regexes written by hand here.
class SplitPreTokenizer : public PreTokenizer {
 public:
  enum class Kind { String, Gpt2, WordOrSymbols, Whitespace };
  SplitPreTokenizer(Kind kind, std::string pattern, SplitBehavior b, bool invert)
      : kind_(kind), pat_(std::move(pattern)), behavior_(b), invert_(invert) {}
  void split(const Piece& in, PieceSink out) const override {
    std::vector<Span> spans;
    std::string_view s = in.text;
    switch (kind_) {
      case Kind::String:
        if (pat_.empty()) { spans.push_back({0, s.size(), false}); break; }
        regex_like_spans(s, [&](std::string_view t, size_t pos) {
          return t.compare(pos, pat_.size(), pat_) == 0 ? pos + pat_.size() : pos;
        }, spans);
        break;
      case Kind::Gpt2: regex_like_spans(s, gpt2_match_end, spans); break;
      case Kind::WordOrSymbols: regex_like_spans(s, word_or_symbols_match_end, spans); break;
      case Kind::Whitespace:
        regex_like_spans(s, [](std::string_view t, size_t pos) {
          size_t e = pos;
          while (e < t.size()) {
            size_t k = e;
            if (!unicode::is_whitespace(unicode::next_cp(t, k))) break;
            e = k;
          }
          return e;
        }, spans);
        break;
    }
    emit_split(in, spans, behavior_, invert_, out);
  }

 private:
  Kind kind_;
  std::string pat_;
  SplitBehavior behavior_;
  bool invert_;
};

// Splits where a character predicate holds (WhitespaceSplit, Punctuation, Digits, ...).
template <class Pred>
class CharSplitPreTokenizer : public PreTokenizer {
 public:
  CharSplitPreTokenizer(Pred pred, SplitBehavior b) : pred_(pred), behavior_(b) {}
  void split(const Piece& in, PieceSink out) const override {
    std::vector<Span> spans;
    char_spans(in.text, pred_, spans);
    emit_split(in, spans, behavior_, false, out);
  }

 private:
  Pred pred_;
  SplitBehavior behavior_;
};
template <class Pred>
std::unique_ptr<PreTokenizer> make_char_split(Pred p, SplitBehavior b) {
  return std::make_unique<CharSplitPreTokenizer<Pred>>(p, b);
}

class SequencePreTokenizer : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> v) : v_(std::move(v)) {}
  void split(const Piece& in, PieceSink out) const override { run(0, in, out); }

 private:
  void run(size_t k, const Piece& p, PieceSink out) const {
    if (k == v_.size()) { out(p); return; }
    v_[k]->split(p, [&](const Piece& q) { run(k + 1, q, out); });
  }
  std::vector<std::unique_ptr<PreTokenizer>> v_;
};

inline SplitBehavior parse_split_behavior(const JsonNode& j) {
  std::string s = j.str();
  if (s == "Removed") return SplitBehavior::Removed;
  if (s == "Isolated") return SplitBehavior::Isolated;
  if (s == "MergedWithPrevious") return SplitBehavior::MergedWithPrevious;
  if (s == "MergedWithNext") return SplitBehavior::MergedWithNext;
  if (s == "Contiguous") return SplitBehavior::Contiguous;
  j.fail("unknown split behavior \"" + s + "\"");
}

inline std::unique_ptr<PreTokenizer> make_pre_tokenizer(const JsonNode& j) {
  if (j.is_null()) return nullptr;
  std::string type = j["type"].str();
  if (type == "ByteLevel")  // tokenizer.json files written before use_regex existed mean true
    return std::make_unique<ByteLevelPreTokenizer>(j.bool_or("add_prefix_space", true), j.bool_or("use_regex", true));
  if (type == "Metaspace") {
    std::string repl = j.str_or("replacement", "\xE2\x96\x81");
    auto scheme = MetaspacePreTokenizer::Scheme::Always;
    if (j.present("prepend_scheme")) {
      std::string s = j["prepend_scheme"].str();
      if (s == "first") scheme = MetaspacePreTokenizer::Scheme::First;
      else if (s == "never") scheme = MetaspacePreTokenizer::Scheme::Never;
      else if (s != "always") j["prepend_scheme"].fail("unknown prepend_scheme \"" + s + "\"");
    } else if (j.present("add_prefix_space")) {  // the older spelling
      scheme = j["add_prefix_space"].boolean() ? MetaspacePreTokenizer::Scheme::Always : MetaspacePreTokenizer::Scheme::Never;
    }
    return std::make_unique<MetaspacePreTokenizer>(repl, scheme, j.bool_or("split", true));
  }
  if (type == "Split") {
    JsonNode pat = j["pattern"];
    auto behavior = parse_split_behavior(j["behavior"]);
    bool invert = j.bool_or("invert", false);
    if (pat.present("String"))
      return std::make_unique<SplitPreTokenizer>(SplitPreTokenizer::Kind::String, pat["String"].str(), behavior, invert);
    std::string re = pat["Regex"].str();
    SplitPreTokenizer::Kind kind;
    if (re == kGpt2Pattern) kind = SplitPreTokenizer::Kind::Gpt2;
    else if (re == R"(\w+|[^\w\s]+)") kind = SplitPreTokenizer::Kind::WordOrSymbols;
    else if (re == R"(\s+)") kind = SplitPreTokenizer::Kind::Whitespace;
    else pat["Regex"].fail("unsupported Split regex \"" + re + "\" (tokenizers runs Oniguruma regexes, with Unicode classes and lookahead; galvani hand-writes the ones real tokenizers use: the GPT-2 pattern, \\w+|[^\\w\\s]+, \\s+, and String patterns)");
    return std::make_unique<SplitPreTokenizer>(kind, re, behavior, invert);
  }
  if (type == "Whitespace")
    return std::make_unique<SplitPreTokenizer>(SplitPreTokenizer::Kind::WordOrSymbols, "", SplitBehavior::Removed, true);
  if (type == "WhitespaceSplit") return make_char_split(unicode::is_whitespace, SplitBehavior::Removed);
  if (type == "Punctuation")
    return make_char_split(unicode::is_punctuation, j.present("behavior") ? parse_split_behavior(j["behavior"]) : SplitBehavior::Isolated);
  if (type == "Digits")
    return make_char_split(unicode::is_number, j.bool_or("individual_digits", false) ? SplitBehavior::Isolated : SplitBehavior::Contiguous);
  if (type == "CharDelimiterSplit") {
    std::string d = j["delimiter"].str();
    size_t i = 0;
    char32_t cp = d.empty() ? 0 : unicode::next_cp(d, i);
    return make_char_split([cp](char32_t c) { return c == cp; }, SplitBehavior::Removed);
  }
  if (type == "Sequence") {
    std::vector<std::unique_ptr<PreTokenizer>> v;
    JsonNode list = j["pretokenizers"];
    for (size_t i = 0; i < list.size(); ++i)
      if (auto p = make_pre_tokenizer(list[i])) v.push_back(std::move(p));
    return std::make_unique<SequencePreTokenizer>(std::move(v));
  }
  j["type"].fail("unsupported pre_tokenizer type \"" + type + "\"");
}

}  // namespace galvani
