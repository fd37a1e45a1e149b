// quant/torch_sum.hpp — torch's float32 sum and mean, reproduced to the last bit.
//
// Double quantization subtracts offset = absmax.mean() before quantizing the absmax, and
// stores the offset in the quant-state JSON ("nested_offset"). To write the same bytes as
// bitsandbytes, galvani must add the floats in the order torch's CPU sum does (ATen's
// cascade_sum in native/cpu/SumKernel.cpp): 8-lane vectors (its AVX2 kernel, which torch uses
// on AVX-512 machines too), 4 interleaved vector accumulators, each a 4-level cascade of partial
// sums, then the scalar tail, then the 8 lanes left to right. A plain double-precision sum
// differs in the last bit about half the time (tools/gen_nf4_fixtures.py records torch's means).
//
// Limit: above 32,768 values (torch's grain size) torch splits the sum across threads, and its
// result then depends on the thread count; galvani keeps the single-thread order.
#pragma once
#include <algorithm>
#include <array>
#include <cstdint>

namespace galvani::quant {

namespace detail {

inline int64_t ceil_log2(int64_t x) {
  int64_t r = 0;
  while ((int64_t(1) << r) < x) ++r;
  return r;
}

// ATen's multi_row_sum: `size` rows of NROWS columns of LANES floats (row r, column k, lane l at
// x[(r * NROWS + k) * LANES + l]); column sums through a 4-level cascade.
template <int NROWS, int LANES>
std::array<std::array<float, LANES>, NROWS> multi_row_sum(const float* x, int64_t size) {
  constexpr int kLevels = 4;
  const int64_t level_power = std::max<int64_t>(4, ceil_log2(size) / kLevels);
  const int64_t level_step = int64_t(1) << level_power;
  const int64_t level_mask = level_step - 1;
  std::array<std::array<std::array<float, LANES>, NROWS>, kLevels> acc{};
  auto add_row = [&](int64_t i) {
    for (int k = 0; k < NROWS; ++k)
      for (int l = 0; l < LANES; ++l) acc[0][k][l] += x[(i * NROWS + k) * LANES + l];
  };
  int64_t i = 0;
  while (i + level_step <= size) {
    for (int64_t j = 0; j < level_step; ++j, ++i) add_row(i);
    for (int j = 1; j < kLevels; ++j) {
      for (int k = 0; k < NROWS; ++k)
        for (int l = 0; l < LANES; ++l) {
          acc[j][k][l] += acc[j - 1][k][l];
          acc[j - 1][k][l] = 0.0f;
        }
      if ((i & (level_mask << (j * level_power))) != 0) break;
    }
  }
  for (; i < size; ++i) add_row(i);
  for (int j = 1; j < kLevels; ++j)
    for (int k = 0; k < NROWS; ++k)
      for (int l = 0; l < LANES; ++l) acc[0][k][l] += acc[j][k][l];
  return acc[0];
}

// ATen's row_sum: `size` items of LANES floats, 4 accumulators interleaved.
template <int LANES>
std::array<float, LANES> row_sum(const float* x, int64_t size) {
  const int64_t size_ilp = size / 4;
  auto ps = multi_row_sum<4, LANES>(x, size_ilp);
  for (int64_t i = size_ilp * 4; i < size; ++i)
    for (int l = 0; l < LANES; ++l) ps[0][l] += x[i * LANES + l];
  for (int k = 1; k < 4; ++k)
    for (int l = 0; l < LANES; ++l) ps[0][l] += ps[k][l];
  return ps[0];
}

}  // namespace detail

// torch.sum of float32 x[0 .. n) on the CPU, bit for bit (single-threaded order, see above).
inline float torch_sum_f32(const float* x, int64_t n) {
  constexpr int kLanes = 8;
  if (n < kLanes) return detail::row_sum<1>(x, n)[0];
  const int64_t vectors = n / kLanes;
  const auto lanes = detail::row_sum<kLanes>(x, vectors);
  float acc = 0.0f;
  for (int64_t k = vectors * kLanes; k < n; ++k) acc += x[k];
  for (int l = 0; l < kLanes; ++l) acc += lanes[l];
  return acc;
}

// torch.mean: the sum, then one float32 division by n (ATen's CPU mean is sum(...).div_(n)).
inline float torch_mean_f32(const float* x, int64_t n) { return torch_sum_f32(x, n) / float(n); }

}  // namespace galvani::quant
