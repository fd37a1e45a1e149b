// fuzz_tokenizer_encode — libFuzzer target for encoding arbitrary bytes and decoding arbitrary
// ids with the real GPT-2 (byte-level BPE) and Mistral-7B (SentencePiece BPE with byte
// fallback) tokenizers from the shared data folder (core/paths.hpp's find_data_file:
// $GALVANI_DATA, ../shared/data, data/; run_fuzz.sh sets GALVANI_DATA, or skips this target
// when the data is missing).
//
// The first input byte picks the tokenizer (bit 0), encode or decode (bit 1) and whether
// special tokens are added / skipped (bit 2). The rest is the text or little-endian int32 ids
// (any value). Text may be any bytes: invalid UTF-8 is read as Python's
// bytes.decode(errors="replace") reads it, each maximal ill-formed subpart one U+FFFD.
// Checked besides the sanitizers: ids, offsets and attention mask have one entry per token,
// every offset span is ordered and inside the text, and GPT-2 decodes what it encoded back to
// the very (repaired) text, as tokenizers does. A galvani::Error is the expected answer to bad
// input; anything else is a bug.
//
// Build and run: tools/fuzz/run_fuzz.sh [seconds]   (see tools/fuzz/CMakeLists.txt)
#include <galvani/core/paths.hpp>
#include <galvani/tokenizer/tokenizer.hpp>

#include <cstdio>
#include <cstring>

#include "fuzz_common.hpp"

namespace {

galvani::Tokenizer* g_tokenizers[2];

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  int i = 0;
  for (const char* name : {"gpt2", "mistral"}) {
    const std::string relative = std::string("tokenizers/") + name + "/tokenizer.json";
    const auto path = galvani::find_data_file(relative);
    if (!path) {
      std::fprintf(stderr, "fuzz_tokenizer_encode: %s\n", galvani::data_file_missing(relative).c_str());
      std::exit(2);
    }
    g_tokenizers[i++] = new galvani::Tokenizer(galvani::Tokenizer::from_file(path->string()));
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
