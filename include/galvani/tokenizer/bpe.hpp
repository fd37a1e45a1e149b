// tokenizer/bpe.hpp — the model: byte-pair encoding of one word into token ids.
//
// A word starts as one symbol per character (its vocab id). Then, again and again, the
// adjacent pair whose merge comes first in the `merges` list (lowest rank) is merged
// into one symbol, the leftmost such pair first, until no adjacent pair is a merge.
// Example with GPT-2 on the word "Ġthe": Ġ t h e -> Ġt h e (rank 0) -> Ġt he -> Ġthe.
//
// This is tokenizers' `Word::merge_all` step for step (a heap keyed on (rank, position)
// whose stale entries are skipped by re-checking the pair), because exact parity with
// its ids depends on the same order of merges.
//
// Characters missing from the vocab: with byte_fallback, one token per UTF-8 byte,
// "<0xE2>" style; otherwise the unk token (runs fused into one with fuse_unk), or
// nothing at all when the model has no unk token.
#pragma once
#include <array>
#include <memory>
#include <cstdio>
#include <mutex>
#include <optional>
#include <algorithm>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <galvani/tokenizer/json_reader.hpp>
#include <galvani/tokenizer/unicode.hpp>

namespace galvani {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using Vocab = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

// One token of a word: its id and how many bytes of the word it covers.
struct BpeToken {
  int32_t id;
  uint32_t len;
};

// word -> tokens, shared by all threads, bounded: once a shard is full, new words are
// simply not remembered (like tokenizers' own cache). Only words shorter than
// kMaxWordBytes are cached, so the cache never holds more than shards * capacity words
// of bounded size.
class WordCache {
 public:
  static constexpr size_t kShards = 64;
  static constexpr size_t kMaxWordBytes = 256;
  explicit WordCache(size_t capacity = 65536) { set_capacity(capacity); }

  void set_capacity(size_t capacity) {
    per_shard_ = (capacity + kShards - 1) / kShards;
    clear();
  }
  void clear() {
    for (auto& s : shards_) {
      std::unique_lock lock(s.mu);
      s.map.clear();
    }
  }
  size_t size() const {
    size_t n = 0;
    for (auto& s : shards_) {
      std::shared_lock lock(s.mu);
      n += s.map.size();
    }
    return n;
  }
  // Appends the cached tokens of `word` to out; false if not cached.
  bool get(std::string_view word, size_t hash, std::vector<BpeToken>& out) const {
    const Shard& s = shards_[hash % kShards];
    std::shared_lock lock(s.mu);
    auto it = s.map.find(word);
    if (it == s.map.end()) return false;
    out.insert(out.end(), it->second.begin(), it->second.end());
    return true;
  }
  void put(std::string_view word, size_t hash, const BpeToken* toks, size_t n) {
    if (per_shard_ == 0) return;
    Shard& s = shards_[hash % kShards];
    std::unique_lock lock(s.mu);
    if (s.map.size() >= per_shard_) return;
    s.map.emplace(std::string(word), std::vector<BpeToken>(toks, toks + n));
  }

 private:
  struct Shard {
    mutable std::shared_mutex mu;
    std::unordered_map<std::string, std::vector<BpeToken>, StringHash, std::equal_to<>> map;
  };
  size_t per_shard_ = 0;
  std::array<Shard, kShards> shards_;
};

class BPE {
 public:
  // Reads tokenizer.json's "model" (with or without "type": "BPE").
  static BPE from_json(const JsonNode& m) {
    BPE bpe;
    if (m.present("type") && m["type"].str() != "BPE")
      m["type"].fail("unsupported model type \"" + m["type"].str() + "\" (galvani implements BPE)");
    if (!m.present("type") && !m.has("merges"))
      m.fail("model has no \"type\" and no \"merges\": only BPE models are supported");
    if (m.present("dropout") && m["dropout"].number() > 0)
      m["dropout"].fail("unsupported: BPE dropout (randomized merges) is for training only");
    bpe.byte_fallback_ = m.bool_or("byte_fallback", false);
    bpe.fuse_unk_ = m.bool_or("fuse_unk", false);
    bpe.ignore_merges_ = m.bool_or("ignore_merges", false);
    bpe.prefix_ = m.str_or("continuing_subword_prefix", "");
    bpe.suffix_ = m.str_or("end_of_word_suffix", "");

    JsonNode vocab = m["vocab"];
    if (!vocab.is_object()) vocab.fail("expected an object {token: id}");
    int32_t max_id = -1;
    for (auto it = vocab.value().begin(); it != vocab.value().end(); ++it) {
      if (!it->is_number_integer() || it->get<int64_t>() < 0 || it->get<int64_t>() > INT32_MAX)
        vocab[it.key()].fail("expected a non-negative integer id");
      int32_t id = int32_t(it->get<int64_t>());
      bpe.vocab_[it.key()] = id;
      max_id = std::max(max_id, id);
    }
    // id_to_token_ is indexed by id, so an id far past the vocabulary's size (a corrupt file:
    // 2e9 would ask for 64 GB of empty strings) is refused. Gaps are allowed, up to a million.
    if (int64_t(max_id) >= int64_t(bpe.vocab_.size()) + (int64_t(1) << 20))
      for (auto it = vocab.value().begin(); it != vocab.value().end(); ++it)
        if (it->get<int64_t>() == max_id)
          vocab[it.key()].fail("id " + std::to_string(max_id) + " is far past the vocabulary's " +
                               std::to_string(bpe.vocab_.size()) + " tokens (ids may leave gaps, of up to 2^20)");
    bpe.id_to_token_.assign(size_t(max_id + 1), std::string());
    for (auto& [tok, id] : bpe.vocab_) bpe.id_to_token_[size_t(id)] = tok;

    if (m.present("unk_token")) {
      std::string unk = m["unk_token"].str();
      auto it = bpe.vocab_.find(unk);
      // Like tokenizers, a missing unk token is an error only once a text needs it.
      if (it == bpe.vocab_.end()) bpe.missing_unk_ = unk;
      else bpe.unk_id_ = it->second;
    }
    for (int b = 0; b < 256; ++b) {
      char name[8];
      std::snprintf(name, sizeof name, "<0x%02X>", b);
      auto it = bpe.vocab_.find(std::string_view(name));
      bpe.byte_ids_[b] = it == bpe.vocab_.end() ? -1 : it->second;
    }

    // merges: ["a b", ...] (the legacy form; "#version" lines skipped) or [["a", "b"], ...]
    if (!m.present("merges")) return bpe;
    JsonNode merges = m["merges"];
    if (!merges.is_array()) merges.fail("expected an array of merges");
    bpe.merges_.reserve(merges.size());
    int32_t rank = 0;
    for (size_t i = 0; i < merges.size(); ++i) {
      JsonNode e = merges[i];
      std::string a, b;
      if (e.is_string()) {
        std::string line = e.str();
        if (line.rfind("#version", 0) == 0) continue;
        size_t sp = line.find(' ');
        if (sp == std::string::npos || line.find(' ', sp + 1) != std::string::npos)
          e.fail("a merge must be two tokens separated by one space, got \"" + line + "\"");
        a = line.substr(0, sp);
        b = line.substr(sp + 1);
      } else if (e.is_array() && e.size() == 2) {
        a = e[0].str();
        b = e[1].str();
      } else {
        e.fail("a merge must be \"a b\" or [\"a\", \"b\"]");
      }
      auto ia = bpe.vocab_.find(a), ib = bpe.vocab_.find(b);
      if (ia == bpe.vocab_.end()) e.fail("merge token \"" + a + "\" is not in the vocab");
      if (ib == bpe.vocab_.end()) e.fail("merge token \"" + b + "\" is not in the vocab");
      std::string merged = a + b.substr(std::min(bpe.prefix_.size(), b.size()));
      auto im = bpe.vocab_.find(merged);
      if (im == bpe.vocab_.end()) e.fail("merged token \"" + merged + "\" is not in the vocab");
      bpe.merges_[pair_key(ia->second, ib->second)] = Merge{rank, im->second};  // later wins, as in HF
      ++rank;
    }
    return bpe;
  }

  // Lets long words be cut before every `boundary` that follows another character, which
  // is exact when no vocab token contains such a spot (true of SentencePiece vocabs with
  // "▁"): no merge can then cross it. Metaspace with split=false makes the whole input
  // one word; this keeps that linear-time, cacheable and parallel. Returns whether on.
  bool enable_boundary_split(const std::string& boundary) {
    boundary_.clear();
    if (boundary.empty() || !prefix_.empty() || !suffix_.empty() || ignore_merges_) return false;
    if (!vocab_.count(boundary)) return false;
    for (const auto& [tok, id] : vocab_) {
      for (size_t p = tok.find(boundary, 1); p != std::string::npos; p = tok.find(boundary, p + 1))
        if (p < boundary.size() || tok.compare(p - boundary.size(), boundary.size(), boundary) != 0) return false;
    }
    boundary_ = boundary;
    return true;
  }

  // Appends the tokens of `word` (non-empty, valid UTF-8) to out.
  void tokenize(std::string_view word, std::vector<BpeToken>& out) const {
    if (ignore_merges_) {
      if (auto it = vocab_.find(word); it != vocab_.end()) { out.push_back({it->second, uint32_t(word.size())}); return; }
    }
    if (boundary_.empty()) { tokenize_cached(word, out); return; }
    size_t start = 0;
    for (size_t p = word.find(boundary_, 1); p != std::string_view::npos; p = word.find(boundary_, p + 1)) {
      if (p >= boundary_.size() && word.compare(p - boundary_.size(), boundary_.size(), boundary_) == 0) continue;
      tokenize_cached(word.substr(start, p - start), out);
      start = p;
    }
    tokenize_cached(word.substr(start), out);
  }

  std::optional<int32_t> token_to_id(std::string_view t) const {
    auto it = vocab_.find(t);
    return it == vocab_.end() ? std::nullopt : std::optional<int32_t>(it->second);
  }
  // "" for ids outside the vocab (or holes in it).
  const std::string& id_to_token(int32_t id) const {
    static const std::string none;
    return id >= 0 && size_t(id) < id_to_token_.size() ? id_to_token_[size_t(id)] : none;
  }
  bool has_id(int32_t id) const { return id >= 0 && size_t(id) < id_to_token_.size() && !id_to_token_[size_t(id)].empty(); }
  size_t vocab_size() const { return vocab_.size(); }
  std::optional<int32_t> unk_id() const { return unk_id_; }
  WordCache& cache() const { return *cache_; }

 private:
  struct Merge {
    int32_t rank;
    int32_t new_id;
  };
  static uint64_t pair_key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }
  const Merge* find_merge(int32_t a, int32_t b) const {
    auto it = merges_.find(pair_key(a, b));
    return it == merges_.end() ? nullptr : &it->second;
  }

  void tokenize_cached(std::string_view w, std::vector<BpeToken>& out) const {
    if (w.empty()) return;
    if (w.size() >= WordCache::kMaxWordBytes) { merge_word(w, out); return; }
    size_t h = StringHash{}(w);
    if (cache_->get(w, h, out)) return;
    size_t before = out.size();
    merge_word(w, out);
    cache_->put(w, h, out.data() + before, out.size() - before);
  }

  struct Symbol {
    int32_t id;
    int32_t prev, next;  // neighbours in the linked list, -1 at the ends
    uint32_t len;        // bytes of the word; 0 once merged into its left neighbour
  };
  struct HeapEntry {
    int32_t rank, pos, new_id;
    // std::priority_queue pops the largest: make that the lowest rank, then leftmost.
    bool operator<(const HeapEntry& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };

  // tokenizers' BPE::merge_word + Word::merge_all.
  void merge_word(std::string_view w, std::vector<BpeToken>& out) const {
    thread_local std::vector<Symbol> sym;
    thread_local std::vector<HeapEntry> heap;  // a binary heap (std::push_heap / pop_heap)
    sym.clear();
    auto add = [&](int32_t id, uint32_t len) {
      int32_t n = int32_t(sym.size());
      sym.push_back({id, n - 1, -1, len});
      if (n > 0) sym[size_t(n - 1)].next = n;
    };
    bool unk = false;  // a pending unk token of unk_len bytes (fused runs grow it)
    uint32_t unk_len = 0;
    std::string s;
    for (size_t i = 0; i < w.size();) {
      size_t b = i;
      i += unicode::utf8_len((unsigned char)w[i]);
      bool first = b == 0, last = i >= w.size();
      uint32_t byte_len = uint32_t(i - b);
      std::string_view ch = w.substr(b, i - b);
      const int32_t* id = nullptr;
      Vocab::const_iterator it;
      if ((!first && !prefix_.empty()) || (last && !suffix_.empty())) {
        s.assign(first ? "" : prefix_);
        s.append(ch);
        if (last) s.append(suffix_);
        it = vocab_.find(s);
        ch = s;
      } else {
        it = vocab_.find(ch);
      }
      if (it != vocab_.end()) id = &it->second;
      if (id) {
        if (unk) { add(*unk_id_, unk_len); unk = false; }
        add(*id, byte_len);
        continue;
      }
      if (byte_fallback_) {
        bool all = true;
        for (unsigned char c : ch) all = all && byte_ids_[c] >= 0;
        if (all) {  // note: like tokenizers, a pending unk is not flushed first
          for (unsigned char c : ch) add(byte_ids_[c], 1);
          continue;
        }
      }
      GALVANI_CHECK(missing_unk_.empty(), "BPE: unk_token \"", missing_unk_, "\" is not in the vocabulary");
      if (unk_id_) {
        if (unk && fuse_unk_) unk_len += byte_len;
        else {
          if (unk) add(*unk_id_, unk_len);
          unk = true;
          unk_len = byte_len;
        }
      }
    }
    if (unk) add(*unk_id_, unk_len);

    // merge_all
    heap.clear();
    auto push = [&](HeapEntry e) { heap.push_back(e); std::push_heap(heap.begin(), heap.end()); };
    for (size_t k = 0; k + 1 < sym.size(); ++k)
      if (const Merge* m = find_merge(sym[k].id, sym[k + 1].id)) push({m->rank, int32_t(k), m->new_id});
    while (!heap.empty()) {
      std::pop_heap(heap.begin(), heap.end());
      HeapEntry top = heap.back();
      heap.pop_back();
      Symbol& cur = sym[size_t(top.pos)];
      if (cur.len == 0 || cur.next == -1) continue;  // merged away, or now the last symbol
      int32_t right_pos = cur.next;
      Symbol right = sym[size_t(right_pos)];
      const Merge* m = find_merge(cur.id, right.id);
      if (!m || m->new_id != top.new_id) continue;  // stale: the pair has changed since
      cur.id = top.new_id;
      cur.len += right.len;
      cur.next = right.next;
      sym[size_t(right_pos)].len = 0;
      if (right.next != -1) sym[size_t(right.next)].prev = top.pos;
      if (cur.prev >= 0)
        if (const Merge* mp = find_merge(sym[size_t(cur.prev)].id, cur.id)) push({mp->rank, cur.prev, mp->new_id});
      if (cur.next >= 0)
        if (const Merge* mn = find_merge(cur.id, sym[size_t(cur.next)].id)) push({mn->rank, top.pos, mn->new_id});
    }
    for (int32_t k = sym.empty() ? -1 : 0; k != -1; k = sym[size_t(k)].next) out.push_back({sym[size_t(k)].id, sym[size_t(k)].len});
  }

  Vocab vocab_;
  std::vector<std::string> id_to_token_;
  std::unordered_map<uint64_t, Merge> merges_;
  std::optional<int32_t> unk_id_;
  std::string missing_unk_;
  std::array<int32_t, 256> byte_ids_{};
  bool byte_fallback_ = false, fuse_unk_ = false, ignore_merges_ = false;
  std::string prefix_, suffix_;
  std::string boundary_;
  std::unique_ptr<WordCache> cache_ = std::make_unique<WordCache>();
};

}  // namespace galvani
