// fuzz_tokenizer_encode — libFuzzer target for encoding arbitrary bytes and decoding arbitrary
// ids with the real GPT-2 (byte-level BPE) and Mistral-7B (SentencePiece BPE with byte
// fallback) tokenizers from the shared data folder ($GALVANI_DATA, else ../shared/data).
//
// The first input byte picks the tokenizer (bit 0), encode or decode (bit 1) and whether
// special tokens are added / skipped (bit 2); the rest is the text (any bytes: invalid UTF-8
// is read as Python's bytes.decode(errors="replace") reads it, each bad run one U+FFFD) or
// little-endian int32 ids (any value). Checked besides the sanitizers: ids, offsets and
// attention mask have one entry per token, every offset span is ordered and inside the text,
// and GPT-2 decodes what it encoded back to the very (repaired) text, as tokenizers does. A galvani::Error is the expected answer to bad input; anything else is a bug.
//
// Build and run: tools/fuzz/run_fuzz.sh [seconds]   (see tools/fuzz/CMakeLists.txt)
#include <galvani/tokenizer/tokenizer.hpp>

#include <cstdio>
#include <cstring>

#include "fuzz_common.hpp"

namespace {

galvani::Tokenizer* g_tokenizers[2];

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const auto dir = galvani::fuzz::data_dir() / "tokenizers";
  try {
    g_tokenizers[0] = new galvani::Tokenizer(galvani::Tokenizer::from_file((dir / "gpt2" / "tokenizer.json").string()));
    g_tokenizers[1] = new galvani::Tokenizer(galvani::Tokenizer::from_file((dir / "mistral" / "tokenizer.json").string()));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz_tokenizer_encode: %s (set GALVANI_DATA to the shared data folder)\n", e.what());
    std::exit(2);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace galvani;
  if (size == 0) return 0;
  const Tokenizer& tok = *g_tokenizers[data[0] & 1];
  const bool gpt2 = (data[0] & 1) == 0;
  const bool decode = data[0] & 2;
  const bool special = data[0] & 4;
  ++data, --size;
  fuzz::expect_error_or_value([&] {
    if (!decode) {
      const std::string_view text = fuzz::as_text(data, size);
      const Encoding e = tok.encode(text, special);
      if (e.ids.size() != e.offsets.size() || e.ids.size() != e.attention_mask.size()) __builtin_trap();
      const std::string valid = unicode::to_valid_utf8(text);
      const size_t chars = unicode::count_chars(valid);
      for (const auto& [begin, end] : e.offsets)
        if (begin > end || end > chars) __builtin_trap();
      const std::string back = tok.decode(e.ids, false);
      if (gpt2 && back != valid) __builtin_trap();  // byte-level BPE loses nothing
      if (tok.encode_ids(text, special) != e.ids) __builtin_trap();
    } else {
      std::vector<int32_t> ids(size / 4);
      if (!ids.empty()) std::memcpy(ids.data(), data, ids.size() * 4);
      (void)tok.decode(ids, special);
      for (int32_t id : ids) (void)tok.id_to_token(id);
    }
  });
  return 0;
}
