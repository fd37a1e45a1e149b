// fuzz_common.hpp — what every galvani libFuzzer target shares.
//
// The contract each target checks: a bad input ends in a galvani::Error. Any other exception
// escapes LLVMFuzzerTestOneInput and libFuzzer reports it as a crash ("uncaught exception"),
// as it reports a sanitizer finding, a timeout (-timeout) or a leak.
#pragma once
#include <galvani/core/error.hpp>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

namespace galvani::fuzz {

// Runs f; a galvani::Error is an accepted answer, anything else propagates.
template <class F> void expect_error_or_value(F&& f) {
  try {
    f();
  } catch (const galvani::Error&) {
  }
}

inline std::string_view as_text(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// The shared data folder as the tests find it: $GALVANI_DATA, else ../shared/data beside the
// checkout (targets run from build-fuzz/, so the checkout is its parent).
inline std::filesystem::path data_dir() {
  if (const char* d = std::getenv("GALVANI_DATA"); d && *d) return d;
  return std::filesystem::path(GALVANI_SOURCE_DIR) / ".." / "shared" / "data";
}

}  // namespace galvani::fuzz
