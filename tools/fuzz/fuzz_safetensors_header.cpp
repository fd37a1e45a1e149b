// fuzz_safetensors_header — libFuzzer target for the safetensors reader.
//
// Each input is a whole file: parse_header() validates it (length, UTF-8, JSON,
// dtypes, shapes, offsets), then every tensor's bytes are read and floating tensors
// are converted to f32, so a validation gap shows up as an out-of-bounds read under
// AddressSanitizer. A galvani::Error is the expected answer to a bad file; any other
// exception, crash or sanitizer report is a bug.
//
// Build and run: tools/fuzz/run_fuzz.sh [seconds]   (see tools/fuzz/CMakeLists.txt)
#include <galvani/io/safetensors.hpp>

#include <cstdint>
#include <vector>

#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace galvani;
  using namespace galvani::io;
  try {
    auto f = SafetensorsFile::from_bytes(std::vector<uint8_t>(data, data + size), "fuzz-input");
    volatile uint8_t sink = 0;
    for (const auto& v : f.views()) {
      const uint8_t* p = v.data();
      for (size_t i = 0; i < v.nbytes(); ++i) sink = sink ^ p[i];
      if (v.dtype() && is_floating(*v.dtype()) && v.nbytes() <= (1u << 20)) (void)v.to_tensor(DType::f32);
    }
    (void)sink;
  } catch (const galvani::Error&) {
  }
  // The strict JSON reader on its own, for index and config files.
  fuzz::expect_error_or_value([&] { (void)parse_json_strict(fuzz::as_text(data, size), "fuzz-json"); });
  return 0;
}
