// tests/io_test_util.hpp — helpers shared by the test_io_*.cpp files (not a test itself).
#pragma once
#include <galvani/io/safetensors.hpp>

#include "support/fnv1a.hpp"

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>

namespace galvani::io::testing {

inline std::filesystem::path fixtures() {
  return std::filesystem::path(GALVANI_SOURCE_DIR) / "tests" / "fixtures" / "checkpoints";
}

// FNV-1a 64 of raw bytes (support/fnv1a.hpp) and of a tensor's bytes in row-major order.
using galvani::testing::fnv1a64;

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
