// fuzz_gguf — libFuzzer target for the GGUF reader (include/galvani/io/gguf.hpp).
//
// Each input is a whole file: parse_gguf() validates it (magic, version, counts, strings,
// value types, nested arrays, alignment, tensor infos, data ranges), then every tensor's
// bytes are read and every tensor galvani can dequantize (up to 2^20 elements) is, and
// every metadata value goes through its typed readers and to JSON — so a validation gap
// shows up as an out-of-bounds read under AddressSanitizer, or as undefined behaviour under
// UBSan (the heap copy is exact-size; blocks may sit at any alignment). A galvani::Error is
// the expected answer to a bad file; any other exception, crash or sanitizer report is a bug.
//
// Build and run: tools/fuzz/run_fuzz.sh [seconds]   (see tools/fuzz/CMakeLists.txt)
#include <galvani/io/gguf.hpp>

#include <cstdint>
#include <vector>

#include "fuzz_common.hpp"


extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace galvani::io;
  using galvani::fuzz::expect_error_or_value;
  try {
    auto g = GgufFile::from_bytes(std::vector<uint8_t>(data, data + size), "fuzz-input");
    volatile uint8_t sink = 0;
    for (const auto& t : g.tensors()) {
      for (uint8_t b : g.bytes(t)) sink = sink ^ b;
      if (ggml_can_dequantize(t.type) && t.numel <= (1 << 20)) {
        std::vector<float> out(static_cast<size_t>(t.numel));
        g.dequantize(t, out);
      }
    }
    (void)sink;
    const GgufMetadata& md = g.metadata();
    for (const auto& entry : md.entries()) {
      const std::string& key = entry.first;  // clang 14 cannot capture a structured binding
      expect_error_or_value([&] { (void)md.get_string(key); });
      expect_error_or_value([&] { (void)md.get_int(key); });
      expect_error_or_value([&] { (void)md.get_uint(key); });
      expect_error_or_value([&] { (void)md.get_float(key); });
      expect_error_or_value([&] { (void)md.get_bool(key); });
      expect_error_or_value([&] { (void)md.get_string_array(key); });
      expect_error_or_value([&] { (void)md.get_int_array(key); });
      expect_error_or_value([&] { (void)md.get_f32_array(key); });
      expect_error_or_value([&] { (void)md.get_float_array(key); });
      (void)gguf_to_json(entry.second).dump();
    }
  } catch (const galvani::Error&) {
  }
  // The block decoders on raw bytes: every bit pattern is a valid block.
  for (const auto& tr : kGgmlTypes) {
    if (!tr.dequantize) continue;
    const size_t blocks = size / tr.type_size;
    if (blocks == 0 || blocks > 64) continue;
    std::vector<float> out(blocks * tr.block_size);
    dequantize_ggml(tr.type, {data, blocks * tr.type_size}, out);
  }
  return 0;
}
