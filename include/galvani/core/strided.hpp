// core/strided.hpp — walking N tensors of one shape, each through its own strides.
//
// Elementwise kernels (copy, add with broadcasting, exp, …) are written as a 1-D
// loop over one "row" of elements with a fixed stride per operand. for_each_row
// finds those rows: it first merges dims that are laid out back to back in every
// operand (a contiguous tensor becomes one long row), then splits long rows into
// chunks so OpenMP threads share the work. The chunking never changes which
// element gets which value, so results do not depend on the thread count.
#pragma once
#include <array>
#include <cstdint>
#include <vector>

#include <omp.h>

#include "error.hpp"

namespace galvani {

template <size_t N>
struct RowLoop {
  Shape shape;                               // after merging dims
  std::array<Strides, N> strides;            // per operand, after merging
};

// Merge dim i into dim i+1 when every operand steps over dim i exactly as if the
// two were one dim. Size-1 dims are dropped.
template <size_t N>
RowLoop<N> coalesce(const Shape& shape, const std::array<Strides, N>& strides) {
  RowLoop<N> out;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    bool merge = !out.shape.empty();
    for (size_t k = 0; merge && k < N; ++k)
      merge = out.strides[k].back() == strides[k][d] * shape[d];
    if (merge) {
      out.shape.back() *= shape[d];
      for (size_t k = 0; k < N; ++k) out.strides[k].back() = strides[k][d];
    } else {
      out.shape.push_back(shape[d]);
      for (size_t k = 0; k < N; ++k) out.strides[k].push_back(strides[k][d]);
    }
  }
  if (out.shape.empty()) {  // a scalar, or all dims of size 1
    out.shape.push_back(1);
    for (size_t k = 0; k < N; ++k) out.strides[k].push_back(0);
  }
  return out;
}

// f(std::array<int64_t, N> offsets, int64_t n, std::array<int64_t, N> steps) is called
// once per row: element j of the row is operand k's element offsets[k] + j*steps[k].
template <size_t N, class F>
void for_each_row(const Shape& shape, const std::array<Strides, N>& strides,
                  const std::array<int64_t, N>& base, F&& f) {
  for (int64_t d : shape)
    if (d == 0) return;
  RowLoop<N> loop = coalesce<N>(shape, strides);
  const int64_t nd = int64_t(loop.shape.size());
  const int64_t inner = loop.shape.back();
  int64_t rows = 1;
  for (int64_t d = 0; d + 1 < nd; ++d) rows *= loop.shape[d];

  constexpr int64_t kChunk = 16384;  // elements per work item
  const int64_t chunks = (inner + kChunk - 1) / kChunk;
  const int64_t items = rows * chunks;
  std::array<int64_t, N> steps;
  for (size_t k = 0; k < N; ++k) steps[k] = loop.strides[k].back();

#pragma omp parallel for schedule(static) if (items > 1 && rows * inner > 32768)
  for (int64_t item = 0; item < items; ++item) {
    int64_t row = item / chunks, chunk = item % chunks;
    std::array<int64_t, N> off = base;
    for (int64_t d = nd - 2, r = row; d >= 0; --d) {
      int64_t i = r % loop.shape[d];
      r /= loop.shape[d];
      for (size_t k = 0; k < N; ++k) off[k] += i * loop.strides[k][d];
    }
    int64_t start = chunk * kChunk;
    int64_t n = std::min(kChunk, inner - start);
    for (size_t k = 0; k < N; ++k) off[k] += start * steps[k];
    f(off, n, steps);
  }
}

}  // namespace galvani
