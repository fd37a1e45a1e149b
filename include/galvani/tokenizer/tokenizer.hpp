// tokenizer/tokenizer.hpp — a model's own tokenizer.json, with Hugging Face's ids.
//
//   auto tok = galvani::Tokenizer::from_file("../shared/data/tokenizers/gpt2/tokenizer.json");
//   galvani::Encoding e = tok.encode("I'm afraid I've created a ");  // e.ids, e.offsets
//   std::string back = tok.decode(e.ids);
//
// Encoding a text runs five stages, each in its own header:
//   1. added_vocabulary.hpp  cut out added tokens ("<s>", "<|endoftext|>") by literal match
//   2. normalizers.hpp       rewrite the text in between (NFKC, lowercase, ...), if any
//   3. pre_tokenizers.hpp    cut it into words (GPT-2's split pattern; Metaspace "▁")
//   4. bpe.hpp               byte-pair encode each word into ids (with a word cache)
//   5. post_processors.hpp   add the model's special tokens (Mistral's "<s>")
// and decoders.hpp runs the way back. The goal is exact parity with `tokenizers`: the
// fixtures in tests/fixtures/tokenizer were made with it (tools/gen_tokenizer_fixtures.py).
//
// Input that is not valid UTF-8 is first decoded the way Python's
// bytes.decode("utf-8", errors="replace") does (each bad sequence -> one U+FFFD), so the
// ids are those a Python user gets after that decode, and offsets count characters of
// that decoded string. Offsets are (begin, end) in characters (code points), as in the
// Python `tokenizers` Encoding.offsets.
#pragma once
#include <algorithm>
#include <exception>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <galvani/core/error.hpp>
#include <galvani/tokenizer/added_vocabulary.hpp>
#include <galvani/tokenizer/bpe.hpp>
#include <galvani/tokenizer/decoders.hpp>
#include <galvani/tokenizer/json_reader.hpp>
#include <galvani/tokenizer/normalized_text.hpp>
#include <galvani/tokenizer/normalizers.hpp>
#include <galvani/tokenizer/post_processors.hpp>
#include <galvani/tokenizer/pre_tokenizers.hpp>
#include <galvani/tokenizer/unicode.hpp>

namespace galvani {

struct Encoding {
  std::vector<int32_t> ids;
  std::vector<int32_t> attention_mask;               // 1 for tokens, 0 for padding
  std::vector<std::pair<size_t, size_t>> offsets;    // character span of each token in the input
};

enum class Padding { None, Longest, MaxLength };
enum class Side { Right, Left };

// encode_batch's options, named after transformers' tokenizer(texts, padding=...,
// truncation=..., max_length=...).
struct EncodeOptions {
  bool add_special_tokens = true;
  Padding padding = Padding::None;
  bool truncation = false;
  std::optional<size_t> max_length;     // default: model_max_length from tokenizer_config.json
  Side padding_side = Side::Right;
  Side truncation_side = Side::Right;
  std::optional<int32_t> pad_id;        // default: the tokenizer's pad_id()
  size_t pad_to_multiple_of = 0;        // 0: off
};

class Tokenizer {
 public:
  // Loads tokenizer.json; bos/eos/pad/unk and model_max_length come from
  // tokenizer_config.json (then special_tokens_map.json) in the same folder when present.
  static Tokenizer from_file(const std::string& path) {
    std::string text = read_text_file(path);
    Tokenizer t = from_json(parse_json_text(text, path), path);
    t.impl_->read_configs(std::filesystem::path(path).parent_path());
    return t;
  }

  // From parsed JSON; `source` names it in error messages.
  static Tokenizer from_json(const json& j, const std::string& source = "tokenizer.json") {
    Tokenizer t;
    t.impl_ = std::make_shared<Impl>();
    t.impl_->load(j, source);
    return t;
  }

  Encoding encode(std::string_view text, bool add_special_tokens = true) const {
    return impl_->encode(text, add_special_tokens, true, impl_->file_truncation, Side::Right);
  }

  // The ids alone: no offsets are tracked, so memory stays at about the size of the
  // input plus the ids (what the tokenize tool uses for very large inputs).
  std::vector<int32_t> encode_ids(std::string_view text, bool add_special_tokens = true) const {
    return impl_->encode(text, add_special_tokens, false, impl_->file_truncation, Side::Right).ids;
  }

  // Encodes texts in parallel (OpenMP), then truncates and pads like transformers.
  std::vector<Encoding> encode_batch(const std::vector<std::string>& texts, const EncodeOptions& opt = {}) const {
    std::optional<size_t> max_len = opt.max_length ? opt.max_length : impl_->model_max_length;
    GALVANI_CHECK(!opt.truncation || max_len, "encode_batch: truncation needs max_length (none given and no model_max_length)");
    GALVANI_CHECK(opt.padding != Padding::MaxLength || max_len, "encode_batch: padding=max_length needs max_length");
    std::optional<size_t> trunc = opt.truncation ? max_len : impl_->file_truncation;
    std::vector<Encoding> out(texts.size());
    std::exception_ptr error;
#pragma omp parallel for schedule(dynamic, 1)
    for (long i = 0; i < long(texts.size()); ++i) {
      try {
        out[size_t(i)] = impl_->encode(texts[size_t(i)], opt.add_special_tokens, true, trunc, opt.truncation_side);
      } catch (...) {
#pragma omp critical
        if (!error) error = std::current_exception();
      }
    }
    if (error) std::rethrow_exception(error);
    if (opt.padding == Padding::None) return out;

    size_t target = 0;
    if (opt.padding == Padding::MaxLength) target = *max_len;
    else for (auto& e : out) target = std::max(target, e.ids.size());
    if (opt.pad_to_multiple_of > 0 && target % opt.pad_to_multiple_of)
      target += opt.pad_to_multiple_of - target % opt.pad_to_multiple_of;
    std::optional<int32_t> pad = opt.pad_id ? opt.pad_id : pad_id();
    GALVANI_CHECK(pad, "encode_batch: asked to pad but the tokenizer has no pad token ",
                  "(set EncodeOptions::pad_id, e.g. to eos_id(), as transformers users set pad_token = eos_token)");
    for (auto& e : out) {
      if (e.ids.size() >= target) continue;
      size_t n = target - e.ids.size();
      auto at = [&](auto& v) { return opt.padding_side == Side::Right ? v.end() : v.begin(); };
      e.ids.insert(at(e.ids), n, *pad);
      e.attention_mask.insert(at(e.attention_mask), n, 0);
      e.offsets.insert(at(e.offsets), n, {0, 0});
    }
    return out;
  }

  // Ids back to text through the decoder; unknown ids are skipped (as in tokenizers).
  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens = false) const {
    Tokens toks;
    toks.reserve(ids.size());
    for (int32_t id : ids) {
      if (const AddedToken* a = impl_->added.by_id(id)) {
        // Skipped when its text names a special token: a normalized special token whose
        // normalized text differs ("<MASK>" -> "<mask>") is kept, as in tokenizers.
        const AddedToken* named = skip_special_tokens ? impl_->added.by_content(a->text) : nullptr;
        if (!(named && named->special)) toks.push_back(a->text);
      } else if (impl_->model.has_id(id)) {
        const std::string& t = impl_->model.id_to_token(id);
        const AddedToken* a2 = skip_special_tokens ? impl_->added.by_content(t) : nullptr;
        if (!(a2 && a2->special)) toks.push_back(t);
      }
    }
    if (!impl_->decoder) {
      std::string s;
      for (size_t i = 0; i < toks.size(); ++i) s += (i ? " " : "") + toks[i];
      return s;
    }
    impl_->decoder->decode_chain(toks);
    std::string s;
    for (auto& t : toks) s += t;
    return s;
  }

  std::optional<int32_t> token_to_id(std::string_view token) const {
    if (const AddedToken* a = impl_->added.by_content(token)) return a->id;
    return impl_->model.token_to_id(token);
  }
  // The token's string ("" for an unknown id).
  std::string id_to_token(int32_t id) const {
    if (const AddedToken* a = impl_->added.by_id(id)) return a->text;
    return impl_->model.id_to_token(id);
  }
  // The vocab with added tokens, as tokenizers' get_vocab_size(with_added_tokens=True).
  int64_t vocab_size() const {
    int64_t n = int64_t(impl_->model.vocab_size());
    for (const auto& a : impl_->added.tokens())
      if (!impl_->model.token_to_id(a.content)) ++n;
    return n;
  }
  std::optional<int32_t> bos_id() const { return impl_->bos; }
  std::optional<int32_t> eos_id() const { return impl_->eos; }
  std::optional<int32_t> pad_id() const { return impl_->pad; }
  std::optional<int32_t> unk_id() const { return impl_->unk; }
  std::optional<size_t> model_max_length() const { return impl_->model_max_length; }

  // The word cache: at most `words` words (default 65536) of under 256 bytes each.
  void set_cache_capacity(size_t words) const { impl_->model.cache().set_capacity(words); }
  size_t cache_size() const { return impl_->model.cache().size(); }

 private:
  struct Impl {
    std::string source;
    std::unique_ptr<Normalizer> normalizer;
    std::unique_ptr<PreTokenizer> pre_tokenizer;
    BPE model;
    AddedVocabulary added;
    std::unique_ptr<PostProcessor> post;
    std::unique_ptr<Decoder> decoder;
    std::optional<int32_t> bos, eos, pad, unk;
    std::optional<size_t> model_max_length;
    std::optional<size_t> file_truncation;  // tokenizer.json's own "truncation", if set

    void load(const json& j, const std::string& file) {
      source = file;
      JsonNode root(j, std::make_shared<const std::string>(file), "$");
      if (!root.is_object()) root.fail("expected a JSON object (a tokenizer.json)");
      model = BPE::from_json(root["model"]);
      normalizer = root.has("normalizer") ? make_normalizer(root["normalizer"]) : nullptr;
      pre_tokenizer = root.has("pre_tokenizer") ? make_pre_tokenizer(root["pre_tokenizer"]) : nullptr;
      post = root.has("post_processor") ? make_post_processor(root["post_processor"]) : nullptr;
      decoder = root.has("decoder") ? make_decoder(root["decoder"]) : nullptr;
      if (root.present("truncation")) file_truncation = size_t(root["truncation"]["max_length"].integer());
      if (root.present("added_tokens")) {
        JsonNode list = root["added_tokens"];
        for (size_t i = 0; i < list.size(); ++i) {
          JsonNode a = list[i];
          AddedToken t;
          int64_t id = a["id"].integer();
          // tokenizers reads the id as a u32 and then ignores it (see added_token_id).
          if (id < 0 || id > int64_t(UINT32_MAX)) a["id"].fail("id out of range (0 to 2^32-1)");
          t.content = a["content"].str();
          t.id = added_token_id(t.content);
          t.special = a.bool_or("special", false);
          t.single_word = a.bool_or("single_word", false);
          t.lstrip = a.bool_or("lstrip", false);
          t.rstrip = a.bool_or("rstrip", false);
          t.normalized = a.bool_or("normalized", !t.special);
          added.add(std::move(t));
        }
      }
      added.build(normalizer.get());
      // SentencePiece-style vocabs: long "▁"-joined words can be cut safely (see bpe.hpp).
      model.enable_boundary_split("\xE2\x96\x81");
      unk = model.unk_id();
      // Without a tokenizer_config.json (GPT-2's has none of these), use the usual names.
      for (const char* b : {"<s>", "<|begin_of_text|>", "<|endoftext|>"})
        if (!bos) bos = find_token(b);
      for (const char* e : {"</s>", "<|end_of_text|>", "<|endoftext|>"})
        if (!eos) eos = find_token(e);
    }

    // tokenizers ignores the "id" written in added_tokens and numbers them as it adds
    // them: the model's id if the vocab has the content, else one past the largest added
    // id (or the vocab size for the first). For real files both agree.
    int32_t added_token_id(const std::string& content) const {
      if (auto id = find_token(content)) return *id;
      int32_t vocab = int32_t(model.vocab_size()), max_added = -1;
      for (const auto& t : added.tokens()) max_added = std::max(max_added, t.id);
      return max_added >= vocab ? max_added + 1 : vocab;
    }

    std::optional<int32_t> find_token(std::string_view s) const {
      if (const AddedToken* a = added.by_content(s)) return a->id;
      return model.token_to_id(s);
    }

    // tokenizer_config.json, then special_tokens_map.json: "bos_token": "<s>" or
    // {"content": "<s>", ...}; null means none.
    void read_configs(const std::filesystem::path& dir) {
      bool seen[4] = {false, false, false, false};
      const char* keys[4] = {"bos_token", "eos_token", "pad_token", "unk_token"};
      std::optional<int32_t>* slots[4] = {&bos, &eos, &pad, &unk};
      for (const char* name : {"tokenizer_config.json", "special_tokens_map.json"}) {
        auto p = dir / name;
        std::error_code ec;
        if (!std::filesystem::exists(p, ec)) continue;
        json cfg = parse_json_text(read_text_file(p.string()), p.string());
        JsonNode root(cfg, std::make_shared<const std::string>(p.string()), "$");
        if (!root.is_object()) continue;
        for (int k = 0; k < 4; ++k) {
          if (seen[k] || !root.has(keys[k])) continue;
          seen[k] = true;
          JsonNode v = root[keys[k]];
          if (v.is_null()) { *slots[k] = std::nullopt; continue; }
          std::string content = v.is_object() ? v["content"].str() : v.str();
          auto id = find_token(content);
          if (!id) v.fail("token \"" + content + "\" is not in the vocabulary of " + source);
          *slots[k] = id;
        }
        if (!model_max_length && root.present("model_max_length")) {
          double m = root["model_max_length"].number();
          if (m > 0 && m < 1e15) model_max_length = size_t(m);  // transformers writes 1e30 for "no limit"
        }
      }
    }

    Encoding encode(std::string_view input, bool add_special, bool track, std::optional<size_t> truncate, Side side) const {
      std::string fixed;
      if (!unicode::is_valid_utf8(input)) {
        fixed = unicode::to_valid_utf8(input);
        input = fixed;
      }
      GALVANI_CHECK(input.size() < UINT32_MAX, "tokenizer: input of ", input.size(), " bytes is over the 4 GiB limit");
      RawEncoding raw = encode_raw(input, track);
      if (truncate) {
        size_t room = *truncate > post_added(add_special) ? *truncate - post_added(add_special) : 0;
        if (raw.ids.size() > room) {
          size_t cut = raw.ids.size() - room;
          if (side == Side::Right) {
            raw.ids.resize(room);
            if (track) raw.offsets.resize(room);
          } else {
            raw.ids.erase(raw.ids.begin(), raw.ids.begin() + long(cut));
            if (track) raw.offsets.erase(raw.offsets.begin(), raw.offsets.begin() + long(cut));
          }
        }
      }
      if (post) post->process(raw, add_special, [this](int32_t id) -> const std::string& { return token_text(id); });
      Encoding e;
      e.ids = std::move(raw.ids);
      e.attention_mask.assign(e.ids.size(), 1);
      if (track) e.offsets = char_offsets(input, raw.offsets);
      return e;
    }

    size_t post_added(bool add) const { return post ? post->added_tokens(add) : 0; }
    const std::string& token_text(int32_t id) const {
      if (const AddedToken* a = added.by_id(id)) return a->content;
      return model.id_to_token(id);
    }

    // Stages 1-4 on valid UTF-8; offsets in bytes of `text`.
    RawEncoding encode_raw(std::string_view text, bool track) const {
      RawEncoding enc;
      // English runs at about one token per 4 bytes; reserving for one per 3 avoids the
      // doubling (and the brief 3x peak) of a vector that outgrows its guess.
      enc.ids.reserve(text.size() / 3 + 16);
      if (track) enc.offsets.reserve(text.size() / 3 + 16);
      std::vector<BpeToken> toks;
      auto char_end = [&](uint32_t origin) { return origin + uint32_t(unicode::utf8_len((unsigned char)text[origin])); };
      auto emit_added = [&](int32_t id, uint32_t b, uint32_t e) {
        enc.ids.push_back(id);
        if (track) enc.offsets.push_back({b, e});
      };
      // One word through the model; token spans map back through the word's origins.
      auto model_word = [&](const Piece& w) {
        toks.clear();
        model.tokenize(w.text, toks);
        size_t off = 0;
        for (const BpeToken& t : toks) {
          enc.ids.push_back(t.id);
          if (track) enc.offsets.push_back({w.at(off), char_end(w.at(off + t.len - 1))});
          off += t.len;
        }
      };
      auto run_text = [&](const Piece& p) {
        if (pre_tokenizer) pre_tokenizer->split(p, model_word);
        else model_word(p);
      };
      added.split(text, false, [&](const AddedVocabulary::Segment& s) {
        if (s.id >= 0) { emit_added(s.id, uint32_t(s.b), uint32_t(s.e)); return; }
        Piece raw;
        raw.text = text.substr(s.b, s.e - s.b);
        raw.base = raw.orig_start = uint32_t(s.b);
        raw.track = track;
        if (!normalizer) {
          added.split(raw.text, true, [&](const AddedVocabulary::Segment& t) {
            if (t.id >= 0) emit_added(t.id, uint32_t(s.b + t.b), uint32_t(s.b + t.e));
            else run_text(raw.sub(t.b, t.e));
          });
          return;
        }
        NormalizedText n = NormalizedText::from(raw);
        normalizer->normalize(n);
        Piece np = n.piece();
        added.split(np.text, true, [&](const AddedVocabulary::Segment& t) {
          if (t.id >= 0) emit_added(t.id, np.at(t.b), char_end(np.at(t.e - 1)));
          else run_text(np.sub(t.b, t.e));
        });
      });
      return enc;
    }

    // Byte offsets -> character offsets. Offsets arrive nearly in order, so a cursor that
    // walks forward (or back) from the previous answer does it in linear time overall.
    static std::vector<std::pair<size_t, size_t>> char_offsets(std::string_view s, const std::vector<std::pair<uint32_t, uint32_t>>& bytes) {
      std::vector<std::pair<size_t, size_t>> out(bytes.size());
      size_t cb = 0, cc = 0;  // cursor: byte cb is character cc
      auto to_char = [&](size_t b) {
        while (cb < b) { cc += ((unsigned char)s[cb] & 0xC0) != 0x80; ++cb; }
        while (cb > b) { --cb; cc -= ((unsigned char)s[cb] & 0xC0) != 0x80; }
        return cc;
      };
      for (size_t i = 0; i < bytes.size(); ++i) {
        size_t b = to_char(bytes[i].first);
        out[i] = {b, to_char(bytes[i].second)};
      }
      return out;
    }
  };

  std::shared_ptr<Impl> impl_;
};

}  // namespace galvani
