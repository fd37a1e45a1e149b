// tests/support/sha256.hpp — SHA-256 digests of strings and token-id lists, so tests can
// compare long token-id lists with a fixture's digest instead of storing every id.
#pragma once
#include <galvani/io/sha256.hpp>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace galvani::testing {

// The library's SHA-256 (io/sha256.hpp) over the bytes of a string.
inline std::string sha256_hex(const std::string& msg) {
  return io::sha256_hex(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(msg.data()), msg.size()));
}

// The fixture's digest is over json.dumps(ids, separators=(",", ":")).
inline std::string ids_digest(const std::vector<int32_t>& ids) {
  std::string s = "[";
  for (size_t i = 0; i < ids.size(); ++i) s += (i ? "," : "") + std::to_string(ids[i]);
  return sha256_hex(s + "]");
}

}  // namespace galvani::testing
