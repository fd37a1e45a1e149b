// tests/support/fnv1a.hpp — FNV-1a 64 of raw bytes, the checksum the fixture generators
// (tools/gen_checkpoint_fixtures.py, tools/gen_gguf_fixtures.py) record per tensor. Standalone, so
// a test that does not link the Tensor stack (test_gguf) can use it.
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>

namespace galvani::testing {

inline std::string fnv1a64(const void* data, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  const auto* p = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

}  // namespace galvani::testing
