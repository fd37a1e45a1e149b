// core/tensor_base.hpp — the Tensor handle: shared storage seen through a shape.
//
// A Tensor is cheap to copy: it is a shared pointer to a TensorImpl, which holds
//   storage  — the bytes (shared between views), on one device,
//   shape    — sizes, outermost first,
//   strides  — how many *elements* to step in storage for +1 along each dim,
//   offset   — where element [0, 0, …] sits in storage, in elements,
//   dtype, and the autograd slot (requires_grad, grad, grad_fn).
// Element [i, j, k] lives at storage[offset + i*strides[0] + j*strides[1] + k*strides[2]],
// so transpose, narrow and expand only change shape/strides/offset: no copy.
//
// This header holds the handle and what needs no op: metadata, empty(), from_blob(),
// raw views (as_strided) and the autograd slot. The other methods are declared here and
// defined where their machinery lives:
//   zeros/full/arange/from_vector, item, to_vector   core/tensor_data.hpp
//   view, reshape, transpose, …, to(dtype), to(device) ops/shape.hpp
//   backward                                          autograd/engine.hpp
// core/tensor.hpp includes all of them; include it (or galvani.hpp) to use Tensor.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "device.hpp"
#include "dtype.hpp"
#include "error.hpp"
#include "storage.hpp"

namespace galvani {

struct Node;  // autograd/node.hpp
struct TensorImpl;

// The number of elements of a shape (1 for a scalar, 0 when any size is 0). Throws
// galvani::Error when it exceeds int64 (a corrupt file's sizes).
inline int64_t numel_of(const Shape& s) {
  if (std::find(s.begin(), s.end(), int64_t(0)) != s.end()) return 0;
  int64_t n = 1;
  for (int64_t d : s)
    if (__builtin_mul_overflow(n, d, &n))
      throw Error("shape " + shape_str(s) + " has more than 2^63 elements (is a size wrong?)");
  return n;
}

// Row-major strides in elements: stride[i] = product of max(size[j], 1) for j > i.
// Throws galvani::Error when a stride would not fit in int64 (only a tensor with no elements
// can get there: one with elements fails Tensor::empty's byte count first).
inline Strides contiguous_strides(const Shape& s) {
  Strides st(s.size());
  int64_t acc = 1;
  for (size_t i = s.size(); i-- > 0;) {
    st[i] = acc;
    if (i > 0 && __builtin_mul_overflow(acc, std::max<int64_t>(s[i], 1), &acc))
      throw Error("the strides of shape " + shape_str(s) + " overflow int64 (is a size wrong?)");
  }
  return st;
}

// What Tensor::register_post_accumulate_grad_hook returns (torch.utils.hooks.RemovableHandle):
// remove() unregisters the hook (idempotent; harmless once the tensor is gone).
class RemovableHandle {
 public:
  RemovableHandle() = default;
  RemovableHandle(std::weak_ptr<TensorImpl> impl, uint64_t id) : impl_(std::move(impl)), id_(id) {}
  void remove();

 private:
  std::weak_ptr<TensorImpl> impl_;
  uint64_t id_ = 0;
};

class Tensor {
 public:
  Tensor() = default;  // an undefined tensor (no storage): `defined()` is false
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ------------------------------------------------------------ factories
  // Each makes a contiguous tensor on `device` (memory from allocator_for(device); a
  // device without an allocator, or an op without a kernel there, throws galvani::Error).
  static Tensor empty(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor zeros(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor ones(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu()) {
    return full(shape, 1.0, dtype, device);
  }
  static Tensor full(const Shape& shape, double value, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor arange(int64_t n, DType dtype = DType::i64, Device device = Device::cpu());
  static Tensor scalar(double value, DType dtype = DType::f32, Device device = Device::cpu()) {
    return full({}, value, dtype, device);
  }
  // Copies `values` (host memory) into a new CPU tensor of `shape` (numel must match), dtype from T.
  template <class T>
  static Tensor from_vector(const std::vector<T>& values, const Shape& shape);
  template <class T>
  static Tensor from_vector(const std::vector<T>& values) {
    return from_vector(values, {int64_t(values.size())});
  }
  // A tensor over memory owned elsewhere (no copy) on `device`; `owner` keeps it alive.
  static Tensor from_blob(void* data, const Shape& shape, DType dtype, std::shared_ptr<void> owner,
                          Device device = Device::cpu());

  // ------------------------------------------------------------ metadata
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  const Strides& strides() const;
  int64_t offset() const;
  DType dtype() const;
  Device device() const;
  int64_t dim() const { return int64_t(shape().size()); }
  int64_t size(int64_t d) const { return shape()[wrap_dim(d)]; }
  int64_t numel() const { return numel_of(shape()); }
  size_t nbytes() const { return size_t(numel()) * itemsize(dtype()); }
  bool is_contiguous() const;
  const std::shared_ptr<Storage>& storage() const;
  int64_t wrap_dim(int64_t d) const;  // -1 → last dim; throws when out of range
  bool is_same(const Tensor& o) const { return impl_ == o.impl_; }
  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }

  // ------------------------------------------------------------ data access
  // Pointer to element [0, …] (storage + offset) in the tensor's device memory: for
  // kernels. Checks T matches dtype. Host code reads values with host_values() instead.
  template <class T> T* data() const;
  void* raw_data() const;
  // The value of a one-element tensor, converted to T (read on the host).
  template <class T = double> T item() const;
  // All elements in row-major order, converted to T (a host copy; host_values(*this)).
  template <class T> std::vector<T> to_vector() const;

  // A view with explicit shape/strides/offset over the same storage. No autograd:
  // the differentiable views below are built on it.
  Tensor as_strided(const Shape& shape, const Strides& strides, int64_t offset) const;

  // ------------------------------------------------------------ views and copies (ops/shape.hpp)
  Tensor view(const Shape& shape) const;       // needs compatible strides; one -1 is inferred
  Tensor reshape(const Shape& shape) const;    // a view when possible, else a copy
  Tensor transpose(int64_t d0, int64_t d1) const;
  Tensor t() const { return transpose(0, 1); }
  Tensor permute(const std::vector<int64_t>& dims) const;
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  Tensor select(int64_t dim, int64_t index) const;  // drops `dim`
  Tensor expand(const Shape& shape) const;          // broadcast size-1 dims (stride 0)
  Tensor unsqueeze(int64_t dim) const;
  Tensor squeeze(int64_t dim) const;
  Tensor flatten() const { return reshape({numel()}); }
  Tensor contiguous() const;                   // itself if already contiguous
  Tensor clone() const;                        // always a fresh contiguous copy
  Tensor to(DType dtype) const;                // converts (itself when dtype matches)
  Tensor to(Device device) const;              // copies to `device` (itself when already there)

  // ------------------------------------------------------------ autograd
  bool requires_grad() const;
  Tensor& requires_grad_(bool value = true);
  bool is_leaf() const;              // made by the user, not by a recorded op
  const Tensor& grad() const;        // accumulated gradient; undefined until backward
  void set_grad(Tensor g) const;
  void zero_grad() const;            // drops the gradient (set_to_none semantics)
  const std::shared_ptr<Node>& grad_fn() const;
  void set_grad_fn(std::shared_ptr<Node> fn) const;
  // torch's Tensor.register_post_accumulate_grad_hook(hook): on a leaf that requires grad,
  // hook(leaf) runs once per backward() pass, after the pass has added its last gradient into
  // leaf.grad — every path from the output to the leaf has been backpropagated (a nested pass,
  // e.g. a checkpointed layer's recompute, is a pass of its own). A pass that brings the leaf no
  // gradient does not call it. Hooks run on backward()'s thread, in the order registered; what a
  // hook throws leaves backward(). DDP's gradient buckets start their all-reduce from here
  // (train/distributed.hpp). Throws galvani::Error for a non-leaf or one not requiring grad.
  RemovableHandle register_post_accumulate_grad_hook(std::function<void(const Tensor&)> hook) const;
  Tensor detach() const;             // same storage, cut from the graph
  // torch's `t.data = src`: this tensor — every handle on it, e.g. a tied lm_head's — now
  // reads src's memory, shape and dtype; requires_grad, grad_fn and the name stay. How a
  // parameter changes dtype in place (peft's prepare_model_for_kbit_training casts bf16 → f32).
  // A .grad that no longer fits (another dtype or shape) is dropped.
  void set_data(const Tensor& src) const;
  // Backpropagate from this tensor. Without `grad` it must be a scalar (grad = 1).
  void backward(const Tensor& grad = Tensor()) const;

  // A short name used in error messages (parameters get their Hugging Face names).
  const std::string& name() const;
  Tensor& set_name(std::string n);

 private:
  void check_defined(const char* what) const;
  std::shared_ptr<TensorImpl> impl_;
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape;
  Strides strides;
  int64_t offset = 0;
  DType dtype = DType::f32;     // the device is the storage's
  bool requires_grad = false;
  Tensor grad;                    // accumulated by backward() on leaves
  std::shared_ptr<Node> grad_fn;  // the op that produced this tensor (non-leaf)
  std::string name;
  // Tensor::register_post_accumulate_grad_hook's hooks, with their handles' ids (leaves only).
  std::vector<std::pair<uint64_t, std::function<void(const Tensor&)>>> post_accumulate_grad_hooks;
};

inline void RemovableHandle::remove() {
  if (std::shared_ptr<TensorImpl> impl = impl_.lock()) {
    auto& hooks = impl->post_accumulate_grad_hooks;
    hooks.erase(std::remove_if(hooks.begin(), hooks.end(), [&](const auto& h) { return h.first == id_; }),
                hooks.end());
  }
  impl_.reset();
}

// ------------------------------------------------------------------ inline definitions

inline void Tensor::check_defined(const char* what) const {
  if (!impl_) throw Error(detail::cat(what, ": the tensor is undefined (default-constructed)"));
}
inline const Shape& Tensor::shape() const { check_defined("shape"); return impl_->shape; }
inline const Strides& Tensor::strides() const { check_defined("strides"); return impl_->strides; }
inline int64_t Tensor::offset() const { check_defined("offset"); return impl_->offset; }
inline DType Tensor::dtype() const { check_defined("dtype"); return impl_->dtype; }
inline Device Tensor::device() const { check_defined("device"); return impl_->storage->device(); }
inline const std::shared_ptr<Storage>& Tensor::storage() const { check_defined("storage"); return impl_->storage; }

inline int64_t Tensor::wrap_dim(int64_t d) const {
  int64_t n = dim();
  int64_t w = d < 0 ? d + n : d;
  if (w < 0 || w >= std::max<int64_t>(n, 1) || (n == 0))
    throw Error(detail::cat("dimension ", d, " is out of range for a tensor of shape ", shape_str(shape())));
  return w;
}

inline bool Tensor::is_contiguous() const {
  int64_t expected = 1;
  for (size_t i = impl_->shape.size(); i-- > 0;) {
    if (impl_->shape[i] == 1) continue;
    if (impl_->strides[i] != expected) return false;
    expected *= impl_->shape[i];
  }
  return true;
}

inline Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  // Checked: an absurd shape (a corrupt config's sizes) must not wrap around to a small
  // allocation that every later write would overrun.
  for (int64_t d : shape)
    GALVANI_CHECK(d >= 0, "Tensor::empty: negative size in shape ", shape_str(shape));
  int64_t bytes = int64_t(itemsize(dtype));
  if (std::find(shape.begin(), shape.end(), int64_t(0)) == shape.end())  // a zero size: empty, whatever the others
    for (int64_t d : shape)
      GALVANI_CHECK(!__builtin_mul_overflow(bytes, d, &bytes), "Tensor::empty: shape ", shape_str(shape), " of ",
                    dtype_name(dtype), " needs more than 2^63 bytes (an overflow; is a size wrong?)");
  else
    bytes = 0;
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = Storage::allocate(size_t(bytes), device);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

inline Tensor Tensor::from_blob(void* data, const Shape& shape, DType dtype, std::shared_ptr<void> owner,
                                 Device device) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = Storage::borrow(data, size_t(numel_of(shape)) * itemsize(dtype), std::move(owner), device);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

template <class T>
inline T* Tensor::data() const {
  check_defined("data");
  if (dtype_v<T> != impl_->dtype)
    throw Error(detail::cat("data<", dtype_name(dtype_v<T>), ">: the tensor", (name().empty() ? "" : " '" + name() + "'"),
                            " holds ", dtype_name(impl_->dtype)));
  return static_cast<T*>(impl_->storage->data()) + impl_->offset;
}

inline void* Tensor::raw_data() const {
  check_defined("raw_data");
  return static_cast<char*>(impl_->storage->data()) + impl_->offset * int64_t(itemsize(impl_->dtype));
}

inline Tensor Tensor::as_strided(const Shape& shape, const Strides& strides, int64_t offset) const {
  check_defined("as_strided");
  GALVANI_CHECK(shape.size() == strides.size(), "as_strided: shape ", shape_str(shape), " and strides ",
                shape_str(strides), " differ in length");
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = impl_->storage;
  impl->shape = shape;
  impl->strides = strides;
  impl->offset = offset;
  impl->dtype = impl_->dtype;
  return Tensor(std::move(impl));
}

inline bool Tensor::requires_grad() const { return impl_ && impl_->requires_grad; }
inline Tensor& Tensor::requires_grad_(bool value) {
  check_defined("requires_grad_");
  if (value && !is_floating(impl_->dtype))
    throw Error(detail::cat("requires_grad_: only floating-point tensors can require gradients, got ",
                            dtype_name(impl_->dtype)));
  GALVANI_CHECK(impl_->grad_fn == nullptr || value,
                "requires_grad_(false): only leaf tensors can stop requiring grad; use detach()");
  impl_->requires_grad = value;
  return *this;
}
inline bool Tensor::is_leaf() const { return !impl_ || impl_->grad_fn == nullptr; }
inline const Tensor& Tensor::grad() const { check_defined("grad"); return impl_->grad; }
inline void Tensor::set_grad(Tensor g) const { check_defined("set_grad"); impl_->grad = std::move(g); }
inline void Tensor::zero_grad() const { if (impl_) impl_->grad = Tensor(); }
inline const std::shared_ptr<Node>& Tensor::grad_fn() const { check_defined("grad_fn"); return impl_->grad_fn; }
inline void Tensor::set_grad_fn(std::shared_ptr<Node> fn) const {
  check_defined("set_grad_fn");
  impl_->grad_fn = std::move(fn);
  impl_->requires_grad = impl_->grad_fn != nullptr;
}
inline RemovableHandle Tensor::register_post_accumulate_grad_hook(std::function<void(const Tensor&)> hook) const {
  check_defined("register_post_accumulate_grad_hook");
  GALVANI_CHECK(impl_->grad_fn == nullptr && impl_->requires_grad, "register_post_accumulate_grad_hook: '",
                impl_->name.empty() ? shape_str(impl_->shape) : impl_->name,
                "' is not a leaf that requires grad (only such tensors accumulate a .grad)");
  GALVANI_CHECK(static_cast<bool>(hook), "register_post_accumulate_grad_hook: the hook is empty");
  static std::atomic<uint64_t> next_id{1};
  const uint64_t id = next_id.fetch_add(1, std::memory_order_relaxed);
  impl_->post_accumulate_grad_hooks.emplace_back(id, std::move(hook));
  return RemovableHandle(impl_, id);
}
inline Tensor Tensor::detach() const {
  Tensor d = as_strided(shape(), strides(), offset());
  d.impl_->name = impl_->name;
  return d;
}
inline void Tensor::set_data(const Tensor& src) const {
  check_defined("set_data");
  src.check_defined("set_data (source)");
  TensorImpl& d = *impl_;
  const TensorImpl& from = *src.impl_;
  GALVANI_CHECK(!d.requires_grad || is_floating(from.dtype), "set_data: '", d.name, "' requires grad but the new data is ",
                dtype_name(from.dtype));
  d.storage = from.storage;
  d.shape = from.shape;
  d.strides = from.strides;
  d.offset = from.offset;
  d.dtype = from.dtype;
  if (d.grad.defined() && (d.grad.dtype() != d.dtype || d.grad.shape() != d.shape)) d.grad = Tensor();
}
inline const std::string& Tensor::name() const {
  static const std::string none;
  return impl_ ? impl_->name : none;
}
inline Tensor& Tensor::set_name(std::string n) { check_defined("set_name"); impl_->name = std::move(n); return *this; }

}  // namespace galvani
