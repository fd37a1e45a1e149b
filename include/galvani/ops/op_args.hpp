// ops/op_args.hpp — checking and preparing an op's tensor arguments, shared by the
// row-wise ops (softmax, norms, embedding, cross-entropy, dropout, rope, attention):
// get a tensor's data as one dense row-major block, check a dtype, and describe a
// tensor (or a position in it) in an error message.
//
// The row-wise kernels are written for contiguous memory, which keeps their inner
// loops plain and vectorizable. Inputs that arrive as views (a transpose, a narrow,
// the stride-0 gradient of a sum) are copied once, outside the hot loop; contiguous
// inputs are used in place.
#pragma once
#include <string>

#include "../core/tensor_base.hpp"
#include "../core/tensor_data.hpp"

namespace galvani::detail {

// `t` itself when contiguous, else a contiguous copy on its device. Records no autograd
// node: callers use it only to read data inside a kernel.
inline Tensor dense(const Tensor& t) {
  if (t.is_contiguous()) return t;
  Tensor c = Tensor::empty(t.shape(), t.dtype(), t.device());
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
