// fuzz_tokenizer_json — libFuzzer target for loading a Hugging Face tokenizer.json
// (Tokenizer::from_json: the BPE model, added tokens, normalizers, pre-tokenizers,
// post-processors and decoders, tokenizer/*.hpp), after the strict JSON reader.
//
// Each input is one JSON text. A tokenizer that loads is then used: a few fixed strings are
// encoded (with and without special tokens), the first ids are decoded, and ids are mapped to
// tokens. A galvani::Error is the expected answer to a bad file; any other exception, crash,
// hang or sanitizer report is a bug.
//
// Build and run: tools/fuzz/run_fuzz.sh [seconds]   (see tools/fuzz/CMakeLists.txt)
#include <galvani/tokenizer/tokenizer.hpp>

#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace galvani;
  static const char* const kTexts[] = {"I'm afraid I've created a ", "  Hello\tworld\n\n", "é漢字 🙂 <|endoftext|> <s>",
                                       ""};
  fuzz::expect_error_or_value([&] {
    const io::json j = io::parse_json_strict(fuzz::as_text(data, size), "fuzz-input");
    const Tokenizer tok = Tokenizer::from_json(j, "fuzz/tokenizer.json");
    for (const char* text : kTexts)
      for (bool special : {false, true}) {
        const Encoding e = tok.encode(text, special);
        if (e.ids.size() != e.offsets.size() || e.ids.size() != e.attention_mask.size()) __builtin_trap();
        (void)tok.decode(e.ids, false);
        (void)tok.decode(e.ids, true);
      }
    std::vector<int32_t> ids;
    for (int32_t id = -1; id < 64; ++id) ids.push_back(id);
    (void)tok.decode(ids);
    for (int32_t id = 0; id < 8 && id < tok.vocab_size(); ++id) (void)tok.id_to_token(id);
  });
  return 0;
}
