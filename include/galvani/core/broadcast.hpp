// core/broadcast.hpp — numpy/torch broadcasting of shapes.
//
// Shapes are right-aligned and a dim of size 1 (or a missing leading dim) stretches to
// match: (2, 3) and (3) broadcast to (2, 3); (4, 1, 5) and (3, 1) to (4, 3, 5). A kernel
// reads the stretched operand through stride 0 (broadcast_strides), so nothing is copied;
// an op's backward sums the gradient back over the stretched dims (sum_to, core/reduce.hpp).
#pragma once
#include <algorithm>

#include "error.hpp"
#include "tensor_base.hpp"

namespace galvani {

// The broadcast shape of `a` and `b`. Throws galvani::Error naming `op`, both shapes and
// the first dim that does not fit.
inline Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  const size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    GALVANI_CHECK(da == db || da == 1 || db == 1, op, ": shapes ", shape_str(a), " and ", shape_str(b),
                  " cannot be broadcast together (dim ", i, ": ", da, " vs ", db, ")");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

// Strides that read `t` as if expanded to `shape` (stride 0 on stretched dims);
// `shape` must be a broadcast of t's shape.
inline Strides broadcast_strides(const Tensor& t, const Shape& shape) {
  Strides st(shape.size(), 0);
  const size_t lead = shape.size() - t.shape().size();
  for (size_t i = 0; i < t.shape().size(); ++i)
    st[lead + i] = t.shape()[i] == 1 ? 0 : t.strides()[i];
  return st;
}

}  // namespace galvani
