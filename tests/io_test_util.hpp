// tests/io_test_util.hpp — helpers shared by the test_io_*.cpp files (not a test itself).
#pragma once
#include <galvani/io/safetensors.hpp>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>

namespace galvani::io::testing {

inline std::filesystem::path fixtures() {
  return std::filesystem::path(GALVANI_SOURCE_DIR) / "tests" / "fixtures" / "checkpoints";
}

// FNV-1a 64 of raw bytes, the checksum tools/gen_checkpoint_fixtures.py records per tensor.
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

inline std::string fnv1a64(const Tensor& t) {
  Tensor c = t;
  if (!c.is_contiguous()) {
    c = Tensor::empty(t.shape(), t.dtype());
    copy_into(c, t);
  }
  return fnv1a64(c.raw_data(), c.nbytes());
}

// Same dtype, same element count and the same bytes (any layout): bit-exact parity checks.
inline bool same_bytes(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || a.numel() != b.numel()) return false;
  const Tensor x = a.contiguous(), y = b.contiguous();
  return std::memcmp(x.raw_data(), y.raw_data(), x.nbytes()) == 0;
}

inline std::filesystem::path scratch_dir(const std::string& name) {
  auto d = std::filesystem::temp_directory_path() / name;
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

}  // namespace galvani::io::testing
