// core/tensor_data.hpp — writing, copying and reading tensor data:
//   the factories that fill (zeros, full, arange, from_vector),
//   copy_into (same device, any layouts and dtypes), copy_between_devices (the one path
//   for every cross-device copy), and host_values (THE way host code reads values).
//
// Host code — an op's argument checks, a model reading token ids, generation reading
// logits, printing — never dereferences data<T>() of a tensor it did not just make on
// the CPU: data<T>() points into device memory, which on a GPU the host cannot read.
// It calls host_values<T>(t), which copies to the host when needed (and, until galvani
// has CUDA copies, refuses a CUDA tensor with an error that says so).
#pragma once
#include <algorithm>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "dispatch.hpp"
#include "strided.hpp"
#include "tensor_base.hpp"

namespace galvani {

// dst[...] = convert(src[...]) elementwise, on one device; shapes must match, layouts
// and dtypes may differ. Throws galvani::Error on a shape mismatch, mixed devices, or a
// device without a copy kernel.
inline void copy_into(const Tensor& dst, const Tensor& src) {
  GALVANI_CHECK(dst.shape() == src.shape(), "copy: shape ", shape_str(src.shape()),
                " does not match destination shape ", shape_str(dst.shape()));
  dispatch("copy", {{"destination", dst}, {"source", src}}, AllTypes{dst.dtype()}, [&]<class D>() {
    visit_dtype(src.dtype(), "copy", [&]<class S>() {
      D* d = static_cast<D*>(dst.storage()->data());
      const S* s = static_cast<const S*>(src.storage()->data());
      for_each_row<2>(dst.shape(), {dst.strides(), src.strides()}, {dst.offset(), src.offset()},
                      [&](auto off, int64_t n, auto step) {
                        D* dp = d + off[0];
                        const S* sp = s + off[1];
                        for (int64_t j = 0; j < n; ++j) dp[j * step[0]] = convert<D>(sp[j * step[1]]);
                      });
    });
  });
}

// ------------------------------------------------------------------ cross-device copies

// A function that copies between two devices (at least one not the CPU); shapes and
// dtypes already match. A CUDA build registers one (cudaMemcpy for contiguous tensors).
using DeviceCopyFn = void (*)(const Tensor& dst, const Tensor& src);

namespace detail {
inline DeviceCopyFn& device_copy_fn() {
  static DeviceCopyFn fn = nullptr;
  return fn;
}
}  // namespace detail

// Installs the cross-device copy (once, at start-up; nullptr removes it).
inline void register_device_copy(DeviceCopyFn fn) { detail::device_copy_fn() = fn; }

// dst = src where the two may live on different devices: the one function every
// cross-device copy goes through. Shapes and dtypes must match; CPU → CPU is copy_into.
// Throws galvani::Error when no copy between the two devices exists in this build.
inline void copy_between_devices(const Tensor& dst, const Tensor& src) {
  GALVANI_CHECK(dst.shape() == src.shape() && dst.dtype() == src.dtype(), "copy_between_devices: source ",
                dtype_name(src.dtype()), " ", shape_str(src.shape()), " does not match destination ",
                dtype_name(dst.dtype()), " ", shape_str(dst.shape()));
  if (dst.device().is_cpu() && src.device().is_cpu()) return copy_into(dst, src);
  DeviceCopyFn fn = detail::device_copy_fn();
  if (!fn) {
    const Device gpu = src.device().is_cpu() ? dst.device() : src.device();
    throw Error(detail::cat("copy from ", src.device().str(), " to ", dst.device().str(),
                            ": galvani was built without CUDA; ", gpu.str(),
                            " tensors need a build with -DGALVANI_CUDA=ON and a GPU"));
  }
  fn(dst, src);
}

// ------------------------------------------------------------------ reading on the host

// All elements of `t` in row-major order, converted to T, in host memory. A CPU tensor
// is read in place (one pass, any layout); another device's tensor is first copied to
// the host through copy_between_devices. `op` names the caller in errors
// ("rope (positions): …"). Throws galvani::Error for an undefined tensor, or a device
// the host cannot read in this build.
template <class T>
std::vector<T> host_values(const Tensor& t, const char* op = "host_values") {
  GALVANI_CHECK(t.defined(), op, ": the tensor is undefined");
  Tensor src = t;
  if (!t.device().is_cpu()) {  // stage a host copy in the tensor's own dtype, then convert below
    src = Tensor::empty(t.shape(), t.dtype());
    try {
      copy_between_devices(src, t);
    } catch (const Error& e) {
      throw Error(detail::cat(op, ": cannot read a ", t.device().str(), " tensor on the host: ", e.what()));
    }
  }
  Tensor host = Tensor::empty(t.shape(), dtype_v<T>);
  copy_into(host, src);
  const T* p = host.data<T>();
  return std::vector<T>(p, p + host.numel());
}

template <class T>
inline std::vector<T> Tensor::to_vector() const {
  return host_values<T>(*this, "to_vector");
}

template <class T>
inline T Tensor::item() const {
  GALVANI_CHECK(numel() == 1, "item(): the tensor has ", numel(), " elements (shape ",
                shape_str(shape()), "), expected exactly one");
  return host_values<T>(*this, "item")[0];
}

// ------------------------------------------------------------------ factories that fill

inline Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  dispatch("Tensor::zeros", {{"output", t}}, AllTypes{dtype}, [&]<class T>() { std::memset(t.raw_data(), 0, t.nbytes()); });
  return t;
}

inline Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  dispatch("Tensor::full", {{"output", t}}, AllTypes{dtype}, [&]<class T>() {
    T v = convert<T>(value);
    std::fill_n(t.data<T>(), t.numel(), v);
  });
  return t;
}

inline Tensor Tensor::arange(int64_t n, DType dtype, Device device) {
  Tensor t = empty({n}, dtype, device);
  dispatch("Tensor::arange", {{"output", t}}, AllTypes{dtype}, [&]<class T>() {
    T* p = t.data<T>();
    for (int64_t i = 0; i < n; ++i) p[i] = convert<T>(double(i));
  });
  return t;
}

template <class T>
inline Tensor Tensor::from_vector(const std::vector<T>& values, const Shape& shape) {
  GALVANI_CHECK(int64_t(values.size()) == numel_of(shape), "Tensor::from_vector: ", values.size(),
                " values do not fill shape ", shape_str(shape));
  Tensor t = empty(shape, dtype_v<T>);
  std::copy(values.begin(), values.end(), t.data<T>());
  return t;
}

}  // namespace galvani
