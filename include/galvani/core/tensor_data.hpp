// core/tensor_data.hpp — copying and converting tensor data, item(), to_vector().
#include "tensor.hpp"  // first: tensor.hpp includes this file at its end, see there
#ifndef GALVANI_CORE_TENSOR_DATA_HPP
#define GALVANI_CORE_TENSOR_DATA_HPP
#include "strided.hpp"

namespace galvani {

// dst[...] = convert(src[...]) elementwise; shapes must match, layouts and dtypes may differ.
inline void copy_into(const Tensor& dst, const Tensor& src) {
  GALVANI_CHECK(dst.shape() == src.shape(), "copy: shape ", shape_str(src.shape()),
                " does not match destination shape ", shape_str(dst.shape()));
  visit_dtype(dst.dtype(), "copy", [&]<class D>() {
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

template <class T>
inline T Tensor::item() const {
  GALVANI_CHECK(numel() == 1, "item(): the tensor has ", numel(), " elements (shape ",
                shape_str(shape()), "), expected exactly one");
  return visit_dtype(dtype(), "item", [&]<class S>() { return convert<T>(*static_cast<const S*>(raw_data())); });
}

template <class T>
inline std::vector<T> Tensor::to_vector() const {
  Tensor c = Tensor::empty(shape(), dtype_v<T>);
  copy_into(c, *this);
  const T* p = c.data<T>();
  return std::vector<T>(p, p + c.numel());
}

}  // namespace galvani

#endif  // GALVANI_CORE_TENSOR_DATA_HPP
