// ops/reduction.hpp — sum and mean over dims, with backward.
//
// The backward of a sum hands every summed element the same gradient: the
// output gradient, re-expanded (stride 0, no copy) to the input's shape.
#pragma once
#include <vector>

#include "../autograd/node.hpp"
#include "../core/reduce.hpp"
#include "../core/tensor.hpp"  // the complete Tensor: views, to(), backward()
#include "elementwise.hpp"

namespace galvani {

// sum over `dims` (empty: all dims), like torch.sum(x, dims, keepdim).
inline Tensor sum(const Tensor& x, std::vector<int64_t> dims = {}, bool keepdim = false) {
  dims = normalize_dims(x, std::move(dims), "sum");
  Tensor out = sum_kernel(x, dims, keepdim);
  Shape keep_shape = reduced_shape(x.shape(), dims, true);
  return record("sum", out, {x}, [in_shape = x.shape(), keep_shape](const Tensor& g, const Needs&) -> Grads {
    return {g.reshape(keep_shape).expand(in_shape)};
  });
}

inline Tensor mean(const Tensor& x, std::vector<int64_t> dims = {}, bool keepdim = false) {
  dims = normalize_dims(x, std::move(dims), "mean");
  int64_t count = 1;
  for (int64_t d : dims) count *= x.shape()[d];
  GALVANI_CHECK(count > 0, "mean: reducing over an empty dim of shape ", shape_str(x.shape()));
  Tensor s = sum(x, dims, keepdim);
  Tensor out = detail::unary_kernel("mean", s, [count](auto v) { return v / decltype(v)(count); });
  return record("mean", out, {s}, [count](const Tensor& g, const Needs&) -> Grads {
    return {detail::unary_kernel("mean", g, [count](auto v) { return v / decltype(v)(count); })};
  });
}

}  // namespace galvani
