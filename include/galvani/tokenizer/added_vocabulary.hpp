// tokenizer/added_vocabulary.hpp — tokens matched literally before the model runs.
//
// "<|endoftext|>" or "<s>" inside a text must become their one id, not BPE pieces of
// "<", "|", ... So the text is first cut around every occurrence of an added token
// (leftmost, then longest match; tokenizers uses an Aho-Corasick automaton for this),
// and only the stretches between them go through normalizer, pre-tokenizer and model.
//
// Tokens with normalized=false are matched in the raw text; the stretches between them
// are normalized, then searched for the normalized=true tokens (whose own content is
// normalized the same way). Flags per token: single_word (only between non-word
// characters), lstrip / rstrip (swallow the whitespace on that side), special (dropped by
// decode(skip_special_tokens=true)).
#pragma once
#include <algorithm>
#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <galvani/tokenizer/normalizers.hpp>
#include <galvani/tokenizer/unicode.hpp>

namespace galvani {

struct AddedToken {
  int32_t id = 0;
  std::string content;
  // What decode and id_to_token give: the content, normalized when normalized=true, as
  // tokenizers (0.23) does ("<MASK>" under a Lowercase normalizer decodes as "<mask>").
  // Set by AddedVocabulary::build.
  std::string text;
  bool single_word = false, lstrip = false, rstrip = false, normalized = true, special = false;
};

class AddedVocabulary {
 public:
  // One segment of a split: an added token (id >= 0) or plain text (id == -1), bytes [b, e).
  struct Segment {
    int32_t id;
    size_t b, e;
  };

  void add(AddedToken t) {
    by_id_[t.id] = tokens_.size();
    by_content_[t.content] = tokens_.size();
    tokens_.push_back(std::move(t));
  }

  // Prepares both matchers; the normalized tokens are matched in their normalized form.
  void build(const Normalizer* normalizer) {
    raw_ = Matcher{};
    norm_ = Matcher{};
    for (size_t i = 0; i < tokens_.size(); ++i) {
      AddedToken& t = tokens_[i];
      t.text = t.content;
      if (t.content.empty()) continue;
      if (!t.normalized) { raw_.add(t.content, i); continue; }
      NormalizedText n;
      n.text = t.content;
      n.track = false;
      if (normalizer) normalizer->normalize(n);
      t.text = n.text;
      if (!n.text.empty()) norm_.add(n.text, i);
    }
    raw_.finish();
    norm_.finish();
  }

  // Cuts s into segments around the added tokens of one kind (normalized or not).
  template <class F>
  void split(std::string_view s, bool normalized_tokens, F&& emit) const {
    const Matcher& m = normalized_tokens ? norm_ : raw_;
    size_t start_offset = 0;
    if (!m.empty()) {
      for (size_t pos = 0; pos < s.size();) {
        auto [ti, len] = m.match_at(s, pos);
        if (len == 0) { ++pos; continue; }
        size_t start = pos, stop = pos + len;
        pos = stop;
        const AddedToken& t = tokens_[ti];
        if (t.single_word) {
          bool start_ok = start == 0 || !is_word_char(unicode::prev_cp(s, start));
          bool stop_ok = stop == s.size() || !starts_with_word(s.substr(stop));
          if (!start_ok || !stop_ok) continue;
        }
        if (t.lstrip) {
          size_t b = start;
          while (b > 0) {
            size_t j = b - 1;
            while (j > 0 && ((unsigned char)s[j] & 0xC0) == 0x80) --j;
            size_t k = j;
            if (!unicode::is_whitespace(unicode::next_cp(s, k))) break;
            b = j;
          }
          start = std::max(b, start_offset);
        }
        if (t.rstrip) {
          while (stop < s.size()) {
            size_t k = stop;
            if (!unicode::is_whitespace(unicode::next_cp(s, k))) break;
            stop = k;
          }
          pos = stop;
        }
        if (start > start_offset) emit(Segment{-1, start_offset, start});
        emit(Segment{t.id, start, stop});
        start_offset = stop;
      }
    }
    if (start_offset < s.size()) emit(Segment{-1, start_offset, s.size()});
  }

  const AddedToken* by_id(int32_t id) const {
    auto it = by_id_.find(id);
    return it == by_id_.end() ? nullptr : &tokens_[it->second];
  }
  const AddedToken* by_content(std::string_view c) const {
    auto it = by_content_.find(std::string(c));
    return it == by_content_.end() ? nullptr : &tokens_[it->second];
  }
  const std::vector<AddedToken>& tokens() const { return tokens_; }

 private:
  static bool is_word_char(char32_t c) { return unicode::is_alphanumeric(c) || c == '_'; }
  static bool starts_with_word(std::string_view s) {
    size_t i = 0;
    return !s.empty() && is_word_char(unicode::next_cp(s, i));
  }

  // Literal patterns grouped by first byte, longest first: the first hit at a position
  // is the leftmost-longest match.
  struct Matcher {
    std::array<std::vector<std::pair<std::string, size_t>>, 256> by_first;
    bool any = false;
    void add(const std::string& p, size_t token) {
      by_first[(unsigned char)p[0]].push_back({p, token});
      any = true;
    }
    void finish() {
      for (auto& v : by_first)
        std::stable_sort(v.begin(), v.end(), [](auto& a, auto& b) { return a.first.size() > b.first.size(); });
    }
    bool empty() const { return !any; }
    std::pair<size_t, size_t> match_at(std::string_view s, size_t pos) const {
      for (const auto& [p, t] : by_first[(unsigned char)s[pos]])
        if (s.compare(pos, p.size(), p) == 0) return {t, p.size()};
      return {0, 0};
    }
  };

  std::vector<AddedToken> tokens_;
  std::unordered_map<int32_t, size_t> by_id_;
  std::unordered_map<std::string, size_t> by_content_;
  Matcher raw_, norm_;
};

}  // namespace galvani
