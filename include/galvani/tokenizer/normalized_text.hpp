// tokenizer/normalized_text.hpp — text that remembers where it came from.
//
// Normalizers and pre-tokenizers change the text (NFKC, "▁" for spaces, GPT-2's byte
// characters), yet every token must report its character span in the *original* input.
// So each byte of the working text carries `orig`: the byte offset, in the original
// input, of the character it came from. A token's span is then the span from the first
// of its bytes' origins to the end of the last one's original character.
//
// A Piece is a cheap view (text + origins) handed from stage to stage; a NormalizedText
// owns its bytes. Pieces whose origins are simply base, base+1, ... (nothing changed
// yet) carry no array at all.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace galvani {

// A non-owning reference to a callable, so the pipeline's callbacks cost no allocation.
template <class Sig> class FunctionRef;
template <class R, class... A>
class FunctionRef<R(A...)> {
 public:
  template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, FunctionRef>>>
  FunctionRef(F&& f) : obj_((void*)&f), call_([](void* o, A... a) -> R { return (*(std::remove_reference_t<F>*)o)(std::forward<A>(a)...); }) {}
  R operator()(A... a) const { return call_(obj_, std::forward<A>(a)...); }

 private:
  void* obj_;
  R (*call_)(void*, A...);
};

struct Piece {
  std::string_view text;
  const uint32_t* orig = nullptr;  // (text.size()) origin of each byte; null: base + i
  uint32_t base = 0;
  uint32_t orig_start = 0;         // where this split starts in the original input
  bool track = true;               // false: nobody will ask for offsets (encode_ids)

  uint32_t at(size_t i) const { return orig ? orig[i] : base + uint32_t(i); }
  bool empty() const { return text.empty(); }
  Piece sub(size_t b, size_t e) const {
    Piece p;
    p.text = text.substr(b, e - b);
    p.orig = orig ? orig + b : nullptr;
    p.base = base + uint32_t(b);
    p.orig_start = b == 0 ? orig_start : (b < text.size() ? at(b) : at(text.size() - 1));
    p.track = track;
    return p;
  }
};

using PieceSink = FunctionRef<void(const Piece&)>;

// Owned text with one origin per byte; built by appending characters.
struct NormalizedText {
  std::string text;
  std::vector<uint32_t> orig;
  uint32_t orig_start = 0;
  bool track = true;

  void clear() { text.clear(); orig.clear(); }
  // Appends bytes that all came from the original character starting at `origin`.
  void append(std::string_view bytes, uint32_t origin) {
    text.append(bytes);
    if (track) orig.insert(orig.end(), bytes.size(), origin);
  }
  Piece piece() const {
    Piece p;
    p.text = text;
    p.orig = track ? orig.data() : nullptr;
    p.base = orig_start;
    p.orig_start = orig_start;
    p.track = track;
    return p;
  }
  static NormalizedText from(const Piece& p) {
    NormalizedText n;
    n.text.assign(p.text);
    n.track = p.track;
    n.orig_start = p.orig_start;
    if (p.track) {
      n.orig.resize(p.text.size());
      for (size_t i = 0; i < p.text.size(); ++i) n.orig[i] = p.at(i);
    }
    return n;
  }
};

}  // namespace galvani
