// ops/shape.hpp — views and copies: view, reshape, transpose, permute, narrow,
// select, expand, (un)squeeze, contiguous, clone, to(dtype), to(device).
//
// A view shares storage and only rewrites shape/strides/offset. Its backward
// puts the gradient back into the input's shape: transpose → transpose back,
// narrow → a zero tensor with the gradient written into the slice, expand →
// sum over the broadcast dims.
#pragma once
#include <utility>

#include "../autograd/node.hpp"
#include "../core/reduce.hpp"
#include "../core/tensor_base.hpp"
#include "../core/tensor_data.hpp"

namespace galvani {

namespace detail {
inline Shape infer_view_shape(Shape shape, int64_t numel, const Shape& from) {
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      GALVANI_CHECK(infer < 0, "view: only one dimension can be -1 in ", shape_str(shape));
      infer = int64_t(i);
    } else {
      GALVANI_CHECK(shape[i] >= 0, "view: invalid size in ", shape_str(shape));
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    GALVANI_CHECK(known != 0 && numel % known == 0, "view: shape ", shape_str(shape), " is invalid for input of shape ",
                  shape_str(from));
    shape[infer] = numel / known;
  }
  GALVANI_CHECK(numel_of(shape) == numel, "view: shape ", shape_str(shape), " is invalid for input of shape ",
                shape_str(from), " (", numel, " elements)");
  return shape;
}
}  // namespace detail

inline Tensor Tensor::view(const Shape& shape_in) const {
  Shape s = detail::infer_view_shape(shape_in, numel(), shape());
  GALVANI_CHECK(is_contiguous(), "view: the tensor of shape ", shape_str(shape()),
                " is not contiguous; use reshape(), which copies when it must");
  Tensor out = as_strided(s, contiguous_strides(s), offset());
  Shape in_shape = shape();
  return record("view", out, {*this}, [in_shape](const Tensor& g, const Needs&) -> Grads {
    return {g.reshape(in_shape)};
  });
}

inline Tensor Tensor::reshape(const Shape& shape_in) const {
  return is_contiguous() ? view(shape_in) : contiguous().view(shape_in);
}

inline Tensor Tensor::transpose(int64_t d0, int64_t d1) const {
  d0 = wrap_dim(d0);
  d1 = wrap_dim(d1);
  Shape s = shape();
  Strides st = strides();
  std::swap(s[d0], s[d1]);
  std::swap(st[d0], st[d1]);
  return record("transpose", as_strided(s, st, offset()), {*this},
                [d0, d1](const Tensor& g, const Needs&) -> Grads { return {g.transpose(d0, d1)}; });
}

inline Tensor Tensor::permute(const std::vector<int64_t>& dims) const {
  GALVANI_CHECK(int64_t(dims.size()) == dim(), "permute: ", dims.size(), " dims given for a tensor of shape ",
                shape_str(shape()));
  Shape s(dims.size());
  Strides st(dims.size());
  std::vector<int64_t> inverse(dims.size(), -1);
  for (size_t i = 0; i < dims.size(); ++i) {
    int64_t d = wrap_dim(dims[i]);
    GALVANI_CHECK(inverse[d] < 0, "permute: dim ", d, " repeated");
    inverse[d] = int64_t(i);
    s[i] = shape()[d];
    st[i] = strides()[d];
  }
  return record("permute", as_strided(s, st, offset()), {*this},
                [inverse](const Tensor& g, const Needs&) -> Grads { return {g.permute(inverse)}; });
}

inline Tensor Tensor::narrow(int64_t d, int64_t start, int64_t length) const {
  d = wrap_dim(d);
  GALVANI_CHECK(start >= 0 && length >= 0 && start + length <= shape()[d], "narrow: [", start, ", ",
                start + length, ") is out of range for dim ", d, " of shape ", shape_str(shape()));
  Shape s = shape();
  s[d] = length;
  Tensor out = as_strided(s, strides(), offset() + start * strides()[d]);
  Shape in_shape = shape();
  return record("narrow", out, {*this}, [in_shape, d, start, length](const Tensor& g, const Needs&) -> Grads {
    Tensor full = Tensor::zeros(in_shape, g.dtype(), g.device());
    copy_into(full.narrow(d, start, length), g);
    return {full};
  });
}

inline Tensor Tensor::select(int64_t d, int64_t index) const {
  d = wrap_dim(d);
  int64_t n = shape()[d];
  GALVANI_CHECK(index >= -n && index < n, "select: index ", index, " is out of range for dim ", d, " of shape ",
                shape_str(shape()));
  if (index < 0) index += n;
  return narrow(d, index, 1).squeeze(d);
}

inline Tensor Tensor::expand(const Shape& target) const {
  GALVANI_CHECK(int64_t(target.size()) >= dim(), "expand: cannot expand shape ", shape_str(shape()), " to ",
                shape_str(target));
  const int64_t lead = int64_t(target.size()) - dim();
  Shape s(target.size());
  Strides st(target.size(), 0);
  for (int64_t i = 0; i < int64_t(target.size()); ++i) {
    if (i < lead) {
      GALVANI_CHECK(target[i] >= 0, "expand: size -1 not allowed in a new leading dim of ", shape_str(target));
      s[i] = target[i];
      continue;
    }
    int64_t have = shape()[i - lead], want = target[i] == -1 ? have : target[i];
    GALVANI_CHECK(have == want || have == 1, "expand: the size ", have, " at dim ", i - lead,
                  " cannot be expanded to ", want, " (shape ", shape_str(shape()), " → ", shape_str(target), ")");
    s[i] = want;
    st[i] = (have == want) ? strides()[i - lead] : 0;
  }
  Shape in_shape = shape();
  return record("expand", as_strided(s, st, offset()), {*this},
                [in_shape](const Tensor& g, const Needs&) -> Grads { return {sum_to(g, in_shape)}; });
}

inline Tensor Tensor::unsqueeze(int64_t d) const {
  int64_t w = d < 0 ? d + dim() + 1 : d;
  GALVANI_CHECK(w >= 0 && w <= dim(), "unsqueeze: dim ", d, " is out of range for shape ", shape_str(shape()));
  Shape s = shape();
  Strides st = strides();
  s.insert(s.begin() + w, 1);
  st.insert(st.begin() + w, w < dim() ? shape()[w] * strides()[w] : 1);
  return record("unsqueeze", as_strided(s, st, offset()), {*this},
                [w](const Tensor& g, const Needs&) -> Grads { return {g.squeeze(w)}; });
}

inline Tensor Tensor::squeeze(int64_t d) const {
  d = wrap_dim(d);
  GALVANI_CHECK(shape()[d] == 1, "squeeze: dim ", d, " of shape ", shape_str(shape()), " is not of size 1");
  Shape s = shape();
  Strides st = strides();
  s.erase(s.begin() + d);
  st.erase(st.begin() + d);
  return record("squeeze", as_strided(s, st, offset()), {*this},
                [d](const Tensor& g, const Needs&) -> Grads { return {g.unsqueeze(d)}; });
}

inline Tensor Tensor::clone() const {
  Tensor out = Tensor::empty(shape(), dtype(), device());
  copy_into(out, *this);
  return record("clone", out, {*this}, [](const Tensor& g, const Needs&) -> Grads { return {g}; });
}

inline Tensor Tensor::contiguous() const { return is_contiguous() ? *this : clone(); }

inline Tensor Tensor::to(DType target) const {
  if (target == dtype()) return *this;
  Tensor out = Tensor::empty(shape(), target, device());
  copy_into(out, *this);
  if (!is_floating(target)) return out;  // integer results carry no gradient
  DType from = dtype();
  return record("to", out, {*this}, [from](const Tensor& g, const Needs&) -> Grads { return {g.to(from)}; });
}

// A copy on `device` (contiguous, same dtype), or the tensor itself when it is already
// there — torch's .to(device) semantics: no copy when nothing moves. The copy goes
// through copy_between_devices, and its gradient goes back to the source device.
// Throws galvani::Error when the build has no allocator or copy for `device`.
inline Tensor Tensor::to(Device target) const {
  check_defined("to");
  if (target == device()) return *this;
  Tensor out = Tensor::empty(shape(), dtype(), target);
  copy_between_devices(out, *this);
  Device from = device();
  return record("to", out, {*this}, [from](const Tensor& g, const Needs&) -> Grads { return {g.to(from)}; });
}

}  // namespace galvani
