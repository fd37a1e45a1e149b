// fuzz_quant_state — libFuzzer target for bitsandbytes' 4-bit quant-state JSON, the
// `*.weight.quant_state.bitsandbytes__nf4` tensor of a 4-bit checkpoint
// (quant::QuantState4bit::from_json, quant/quantize_4bit.hpp).
//
// Each input is the JSON text as the u8 tensor holds it. An accepted state's sizes are computed
// as Linear4bit's loader computes them (numel, number of blocks and of nested blocks) and the
// state is written back (to_json), so an overflow the reader let through shows up under UBSan.
// A galvani::Error is the expected answer to a bad state; anything else is a bug.
//
// Build and run: tools/fuzz/run_fuzz.sh [seconds]   (see tools/fuzz/CMakeLists.txt)
#include <galvani/quant/quantize_4bit.hpp>

#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace galvani;
  fuzz::expect_error_or_value([&] {
    const quant::QuantState4bit st =
        quant::QuantState4bit::from_json(std::string(fuzz::as_text(data, size)), "fuzz.weight");
    const int64_t nb = st.nblocks();
    if (st.nested) (void)quant::num_blocks(nb, st.nested_blocksize);
    (void)st.to_json();
  });
  return 0;
}
