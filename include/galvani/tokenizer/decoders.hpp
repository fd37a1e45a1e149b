// tokenizer/decoders.hpp — turning token strings back into text.
//
// Decoders work on the list of token strings, each stage rewriting the list (tokenizers'
// decode_chain); the result is the concatenation. GPT-2: ByteLevel maps every character
// back to its byte ("Ġworld" -> " world"). Mistral: Replace "▁" -> " ", ByteFallback
// turns runs of "<0xNN>" back into UTF-8, Fuse joins, Strip drops the first space.
// Supported "type"s: ByteLevel, Metaspace, Replace (string patterns), ByteFallback, Fuse,
// Strip, BPEDecoder, Sequence.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <galvani/tokenizer/json_reader.hpp>
#include <galvani/tokenizer/normalizers.hpp>
#include <galvani/tokenizer/unicode.hpp>

namespace galvani {

using Tokens = std::vector<std::string>;

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual void decode_chain(Tokens& tokens) const = 0;
};

// Each character back to the byte it stands for; a token with any other character keeps
// its own UTF-8 bytes. Bytes that do not form UTF-8 become U+FFFD (from_utf8_lossy).
class ByteLevelDecoder : public Decoder {
 public:
  void decode_chain(Tokens& tokens) const override {
    const auto& table = unicode::byte_level_table();
    std::string bytes;
    for (const auto& t : tokens) {
      size_t mark = bytes.size();
      bool ok = true;
      for (size_t i = 0; i < t.size() && ok;) {
        int b = table.cp_to_byte(unicode::next_cp(t, i));
        if (b < 0) ok = false;
        else bytes += char(b);
      }
      if (!ok) { bytes.resize(mark); bytes += t; }
    }
    tokens.assign(1, unicode::to_valid_utf8(bytes));
  }
};

class ReplaceDecoder : public Decoder {
 public:
  ReplaceDecoder(std::string pat, std::string content) : pat_(std::move(pat)), content_(std::move(content)) {}
  void decode_chain(Tokens& tokens) const override {
    if (pat_.empty()) return;
    for (auto& t : tokens) {
      std::string out;
      for (size_t i = 0; i < t.size();) {
        if (t.compare(i, pat_.size(), pat_) == 0) { out += content_; i += pat_.size(); }
        else out += t[i++];
      }
      t = std::move(out);
    }
  }

 private:
  std::string pat_, content_;
};

// Runs of "<0xNN>" tokens become the string they encode, or one U+FFFD per byte when
// the run is not valid UTF-8.
class ByteFallbackDecoder : public Decoder {
 public:
  void decode_chain(Tokens& tokens) const override {
    Tokens out;
    std::string run;
    size_t run_len = 0;
    auto flush = [&] {
      if (run_len == 0) return;
      if (unicode::is_valid_utf8(run)) out.push_back(run);
      else for (size_t k = 0; k < run_len; ++k) out.push_back("\xEF\xBF\xBD");
      run.clear();
      run_len = 0;
    };
    for (auto& t : tokens) {
      int byte = -1;
      if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>') byte = hex_byte(t[3], t[4]);
      if (byte >= 0) { run += char(byte); ++run_len; continue; }
      flush();
      out.push_back(std::move(t));
    }
    flush();
    tokens = std::move(out);
  }

 private:
  static int hex_byte(char a, char b) {
    auto h = [](char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1; };
    int x = h(a), y = h(b);
    return x < 0 || y < 0 ? -1 : x * 16 + y;
  }
};

class FuseDecoder : public Decoder {
 public:
  void decode_chain(Tokens& tokens) const override {
    std::string all;
    for (auto& t : tokens) all += t;
    tokens.assign(1, std::move(all));
  }
};

// Removes up to `start` leading and `stop` trailing copies of one character per token.
class StripDecoder : public Decoder {
 public:
  StripDecoder(char32_t c, size_t start, size_t stop) : c_(c), start_(start), stop_(stop) {}
  void decode_chain(Tokens& tokens) const override {
    for (auto& t : tokens) {
      std::vector<std::pair<size_t, char32_t>> cps;  // (byte offset, code point)
      for (size_t i = 0; i < t.size();) { size_t b = i; cps.push_back({b, unicode::next_cp(t, i)}); }
      size_t s = 0, e = cps.size();
      while (s < start_ && s < cps.size() && cps[s].second == c_) ++s;
      for (size_t k = 0; k < stop_ && e > s && cps[e - 1].second == c_; ++k) --e;
      size_t bb = s < cps.size() ? cps[s].first : t.size(), be = e < cps.size() ? cps[e].first : t.size();
      t = t.substr(bb, be - bb);
    }
  }

 private:
  char32_t c_;
  size_t start_, stop_;
};

// Metaspace: "▁" -> " ", and the first token loses its "▁"s when a prefix was added.
class MetaspaceDecoder : public Decoder {
 public:
  MetaspaceDecoder(std::string repl, bool strip_first) : repl_(std::move(repl)), strip_first_(strip_first) {}
  void decode_chain(Tokens& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string out;
      const std::string& t = tokens[i];
      for (size_t k = 0; k < t.size();) {
        if (t.compare(k, repl_.size(), repl_) == 0) {
          if (!(i == 0 && strip_first_)) out += ' ';
          k += repl_.size();
        } else {
          out += t[k++];
        }
      }
      tokens[i] = std::move(out);
    }
  }

 private:
  std::string repl_;
  bool strip_first_;
};

// BPEDecoder: the end-of-word suffix becomes a space (none after the last token).
class BpeSuffixDecoder : public Decoder {
 public:
  explicit BpeSuffixDecoder(std::string suffix) : suffix_(std::move(suffix)) {}
  void decode_chain(Tokens& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i)
      replace_in(tokens[i], i + 1 == tokens.size() ? "" : " ");
  }

 private:
  void replace_in(std::string& t, const std::string& with) const {
    Tokens one{t};
    ReplaceDecoder(suffix_, with).decode_chain(one);
    t = one[0];
  }
  std::string suffix_;
};

class SequenceDecoder : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> v) : v_(std::move(v)) {}
  void decode_chain(Tokens& tokens) const override {
    for (auto& d : v_) d->decode_chain(tokens);
  }

 private:
  std::vector<std::unique_ptr<Decoder>> v_;
};

inline std::unique_ptr<Decoder> make_decoder(const JsonNode& j) {
  if (j.is_null()) return nullptr;
  std::string type = j["type"].str();
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "Replace") return std::make_unique<ReplaceDecoder>(string_pattern(j["pattern"], "Replace"), j["content"].str());
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Strip") {
    std::string c = j["content"].str();
    size_t i = 0;
    char32_t cp = c.empty() ? 0 : unicode::next_cp(c, i);
    return std::make_unique<StripDecoder>(cp, size_t(j.int_or("start", 0)), size_t(j.int_or("stop", 0)));
  }
  if (type == "Metaspace") {
    bool strip = true;
    if (j.present("prepend_scheme")) strip = j["prepend_scheme"].str() != "never";
    else if (j.present("add_prefix_space")) strip = j["add_prefix_space"].boolean();
    return std::make_unique<MetaspaceDecoder>(j.str_or("replacement", "\xE2\x96\x81"), strip);
  }
  if (type == "BPEDecoder") return std::make_unique<BpeSuffixDecoder>(j.str_or("suffix", "</w>"));
  if (type == "Sequence") {
    std::vector<std::unique_ptr<Decoder>> v;
    JsonNode list = j["decoders"];
    for (size_t i = 0; i < list.size(); ++i)
      if (auto d = make_decoder(list[i])) v.push_back(std::move(d));
    return std::make_unique<SequenceDecoder>(std::move(v));
  }
  j["type"].fail("unsupported decoder type \"" + type + "\"");
}

}  // namespace galvani
