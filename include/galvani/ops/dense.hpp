// ops/dense.hpp — small helpers shared by the row-wise ops (softmax, norms,
// embedding, cross-entropy, dropout): get a tensor's data as one dense
// row-major block, and describe a tensor in an error message.
//
// The row-wise kernels below are written for contiguous memory, which keeps
// their inner loops plain and vectorizable. Inputs that arrive as views
// (a transpose, a narrow, the stride-0 gradient of a sum) are copied once,
// outside the hot loop; contiguous inputs are used in place.
#pragma once
// core/tensor.hpp first: it pulls in the autograd engine in the order that compiles
// (including autograd/node.hpp first does not; see the note in the report).
#include "../core/tensor.hpp"
#include "../autograd/node.hpp"

namespace galvani::detail {

// `t` itself when contiguous, else a contiguous copy. Records no autograd node:
// callers use it only to read data inside a kernel.
inline Tensor dense(const Tensor& t) {
  if (t.is_contiguous()) return t;
  Tensor c = Tensor::empty(t.shape(), t.dtype());
  copy_into(c, t);
  return c;
}

// "f32 [2, 3]" — how errors name a tensor.
inline std::string describe(const Tensor& t) {
  if (!t.defined()) return "undefined";
  return cat(dtype_name(t.dtype()), " ", shape_str(t.shape()));
}

// Throws unless `t` is defined and f32/f64 (the dtypes CPU kernels are written for).
inline void check_float(const char* op, const char* what, const Tensor& t) {
  GALVANI_CHECK(t.defined(), op, ": ", what, " is undefined");
  GALVANI_CHECK(t.dtype() == DType::f32 || t.dtype() == DType::f64, op, ": ", what,
                " must be f32 or f64, got ", describe(t));
}

// Throws unless `t` holds integer indices (i32 or i64).
inline void check_index(const char* op, const char* what, const Tensor& t) {
  GALVANI_CHECK(t.defined(), op, ": ", what, " is undefined");
  GALVANI_CHECK(t.dtype() == DType::i32 || t.dtype() == DType::i64, op, ": ", what,
                " must be an i32 or i64 tensor, got ", describe(t));
}

// The multi-index of flat (row-major) position `i` in `shape`, as "[1, 3]".
inline std::string index_str(int64_t i, const Shape& shape) {
  Shape idx(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    idx[d] = shape[d] ? i % shape[d] : 0;
    i = shape[d] ? i / shape[d] : 0;
  }
  return shape_str(idx);
}

}  // namespace galvani::detail
