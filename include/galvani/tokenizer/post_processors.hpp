// tokenizer/post_processors.hpp — the last encode stage: add the model's special tokens.
//
// Mistral wants "<s>" in front of every sequence; BERT wants [CLS] ... [SEP]. That is
// TemplateProcessing ("single": [<s>, $A]). GPT-2's ByteLevel post-processor adds
// nothing; with trim_offsets it only pulls the leading "Ġ" out of token offsets.
// Supported "type"s: TemplateProcessing, ByteLevel, BertProcessing, RobertaProcessing,
// Sequence. Only single sequences are encoded here (the "pair" template is not used).
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <galvani/tokenizer/json_reader.hpp>
#include <galvani/tokenizer/unicode.hpp>

namespace galvani {

// A single encoding while it is being built: ids and byte offsets into the input.
struct RawEncoding {
  std::vector<int32_t> ids;
  std::vector<std::pair<uint32_t, uint32_t>> offsets;  // empty when not tracked
};

using TokenText = std::function<const std::string&(int32_t)>;

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  // How many tokens process() adds to a single sequence (truncation leaves room for them).
  virtual size_t added_tokens(bool add_special_tokens) const = 0;
  virtual void process(RawEncoding& e, bool add_special_tokens, const TokenText& text) const = 0;
};

// Wraps the sequence in special ids: before, A, after (offsets (0, 0) for the specials).
class TemplateProcessor : public PostProcessor {
 public:
  TemplateProcessor(std::vector<int32_t> before, std::vector<int32_t> after) : before_(std::move(before)), after_(std::move(after)) {}
  size_t added_tokens(bool add) const override { return add ? before_.size() + after_.size() : 0; }
  void process(RawEncoding& e, bool add, const TokenText&) const override {
    if (!add) return;
    bool track = !e.offsets.empty() || e.ids.empty();
    e.ids.insert(e.ids.begin(), before_.begin(), before_.end());
    e.ids.insert(e.ids.end(), after_.begin(), after_.end());
    if (track) {
      e.offsets.insert(e.offsets.begin(), before_.size(), {0, 0});
      e.offsets.insert(e.offsets.end(), after_.size(), {0, 0});
    }
  }

 private:
  std::vector<int32_t> before_, after_;
};

// ByteLevel: with trim_offsets, offsets skip the spaces ("Ġ") a token starts or ends with
// (tokenizers' process_offsets).
class ByteLevelProcessor : public PostProcessor {
 public:
  ByteLevelProcessor(bool trim_offsets, bool add_prefix_space) : trim_(trim_offsets), prefix_(add_prefix_space) {}
  size_t added_tokens(bool) const override { return 0; }
  void process(RawEncoding& e, bool, const TokenText& text) const override {
    if (!trim_ || e.offsets.empty()) return;
    for (size_t i = 0; i < e.ids.size(); ++i) {
      const std::string& tok = text(e.ids[i]);
      auto is_space = [](char32_t c) { return c == 0x120 || unicode::is_whitespace(c); };
      std::vector<char32_t> cps;
      for (size_t k = 0; k < tok.size();) cps.push_back(unicode::next_cp(tok, k));
      size_t lead = 0, trail = 0;
      while (lead < cps.size() && is_space(cps[lead])) ++lead;
      while (trail < cps.size() && is_space(cps[cps.size() - 1 - trail])) ++trail;
      auto& [b, en] = e.offsets[i];
      if (lead > 0) {
        bool is_first = i == 0 || b == 0;
        if (is_first && prefix_ && lead == 1) lead = 0;
        b = std::min<uint32_t>(b + uint32_t(lead), en);
      }
      if (trail > 0 && en >= trail) en = std::max<uint32_t>(en - uint32_t(trail), b);
    }
  }

 private:
  bool trim_, prefix_;
};

class SequenceProcessor : public PostProcessor {
 public:
  explicit SequenceProcessor(std::vector<std::unique_ptr<PostProcessor>> v) : v_(std::move(v)) {}
  size_t added_tokens(bool add) const override {
    size_t n = 0;
    for (auto& p : v_) n += p->added_tokens(add);
    return n;
  }
  void process(RawEncoding& e, bool add, const TokenText& t) const override {
    for (auto& p : v_) p->process(e, add, t);
  }

 private:
  std::vector<std::unique_ptr<PostProcessor>> v_;
};

inline std::unique_ptr<PostProcessor> make_post_processor(const JsonNode& j) {
  if (j.is_null()) return nullptr;
  std::string type = j["type"].str();
  if (type == "ByteLevel") return std::make_unique<ByteLevelProcessor>(j.bool_or("trim_offsets", true), j.bool_or("add_prefix_space", true));
  if (type == "TemplateProcessing") {
    // "single": [{"SpecialToken": {"id": "<s>"}}, {"Sequence": {"id": "A"}}, ...]; a special
    // token's ids come from "special_tokens"[name]["ids"].
    JsonNode single = j["single"];
    std::vector<int32_t> before, after;
    bool seen_a = false;
    for (size_t i = 0; i < single.size(); ++i) {
      JsonNode piece = single[i];
      if (piece.present("Sequence")) { seen_a = true; continue; }
      std::string name = piece["SpecialToken"]["id"].str();
      JsonNode spec = j["special_tokens"];
      if (!spec.has(name)) piece["SpecialToken"]["id"].fail("special token \"" + name + "\" is not in special_tokens");
      JsonNode ids = spec[name]["ids"];
      for (size_t k = 0; k < ids.size(); ++k) (seen_a ? after : before).push_back(int32_t(ids[k].integer()));
    }
    return std::make_unique<TemplateProcessor>(before, after);
  }
  if (type == "BertProcessing" || type == "RobertaProcessing") {  // [CLS] A [SEP]: {"cls": ["[CLS]", 101], ...}
    int32_t cls = int32_t(j["cls"][1].integer()), sep = int32_t(j["sep"][1].integer());
    std::vector<std::unique_ptr<PostProcessor>> v;
    if (type == "RobertaProcessing")
      v.push_back(std::make_unique<ByteLevelProcessor>(j.bool_or("trim_offsets", true), j.bool_or("add_prefix_space", true)));
    v.push_back(std::make_unique<TemplateProcessor>(std::vector<int32_t>{cls}, std::vector<int32_t>{sep}));
    return std::make_unique<SequenceProcessor>(std::move(v));
  }
  if (type == "Sequence") {
    std::vector<std::unique_ptr<PostProcessor>> v;
    JsonNode list = j["processors"];
    for (size_t i = 0; i < list.size(); ++i)
      if (auto p = make_post_processor(list[i])) v.push_back(std::move(p));
    return std::make_unique<SequenceProcessor>(std::move(v));
  }
  j["type"].fail("unsupported post_processor type \"" + type + "\"");
}

}  // namespace galvani
