// fuzz_common.hpp — what every galvani libFuzzer target shares.
//
// The contract each target checks: a bad input ends in a galvani::Error. Any other exception
// escapes LLVMFuzzerTestOneInput and libFuzzer reports it as a crash ("uncaught exception"),
// as it reports a sanitizer finding, a timeout (-timeout) or a leak.
#pragma once
#include <galvani/core/error.hpp>

#include <cstdint>
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

}  // namespace galvani::fuzz
