// core/print.hpp — a readable printer: `std::cout << t` shows values like torch.
//
//   tensor([[0.0000, 1.0000, 2.0000],
//           [3.0000, 4.0000, 5.0000]], shape=[2, 3], dtype=f32, requires_grad)
// Large tensors show the first and last 3 entries of each dim with "...".
#pragma once
#include <cstdio>
#include <ostream>
#include <string>
#include <vector>

#include "tensor.hpp"  // the whole Tensor: values and the autograd node's name

namespace galvani {

namespace detail {
inline void print_rec(std::ostream& os, const std::vector<double>& v, const Shape& shape, const Strides& st,
                      size_t d, int64_t off, bool summarize, int indent, bool is_int) {
  constexpr int64_t edge = 3;
  os << '[';
  const int64_t n = shape[d];
  for (int64_t i = 0; i < n; ++i) {
    if (summarize && n > 2 * edge && i == edge) {
      os << (d + 1 == shape.size() ? "..., " : "...,\n" + std::string(size_t(indent + 1), ' '));
      i = n - edge - 1;
      continue;
    }
    if (d + 1 == shape.size()) {
      char buf[32];
      if (is_int) std::snprintf(buf, sizeof buf, "%lld", (long long)v[size_t(off + i * st[d])]);
      else std::snprintf(buf, sizeof buf, "%.4f", v[size_t(off + i * st[d])]);
      os << buf;
    } else {
      print_rec(os, v, shape, st, d + 1, off + i * st[d], summarize, indent + 1, is_int);
    }
    if (i + 1 < n) os << (d + 1 == shape.size() ? ", " : ",\n" + std::string(size_t(indent + 1), ' '));
  }
  os << ']';
}
}  // namespace detail

inline std::ostream& operator<<(std::ostream& os, const Tensor& t) {
  if (!t.defined()) return os << "tensor(undefined)";
  std::vector<double> v = host_values<double>(t, "print");
  const bool is_int = !is_floating(t.dtype());
  os << "tensor(";
  if (t.dim() == 0) {
    char buf[32];
    std::snprintf(buf, sizeof buf, is_int ? "%.0f" : "%.4f", v[0]);
    os << buf;
  } else {
    detail::print_rec(os, v, t.shape(), contiguous_strides(t.shape()), 0, 0, t.numel() > 1000, 7, is_int);
  }
  os << ", shape=" << shape_str(t.shape()) << ", dtype=" << dtype_name(t.dtype());
  if (t.requires_grad()) os << (t.is_leaf() ? ", requires_grad" : ", grad_fn=" + t.grad_fn()->name);
  return os << ')';
}

}  // namespace galvani
