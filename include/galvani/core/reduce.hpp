// core/reduce.hpp — summing a tensor over some of its dims (no autograd).
//
// This is the one reduction kernel: sum/mean ops, the gradient of broadcasting
// (sum_to) and bias gradients all call it. Two loop orders, chosen by layout:
//   A. the innermost (stride-1) dim is summed: each output is a dot-product-like
//      run over contiguous memory;
//   B. the innermost dim is kept (e.g. a bias gradient: sum over rows of (N, C)):
//      each thread adds whole rows into an accumulator row, so memory is read
//      in order rather than striding down columns.
// Accumulation is in double, so f32 sums over millions of elements stay exact
// enough for gradient checks and do not depend on the thread count.
#pragma once
#include <algorithm>
#include <vector>

#include "dispatch.hpp"
#include "strided.hpp"
#include "tensor_base.hpp"

namespace galvani {

// Wrap, sort and de-duplicate dims; empty `dims` means all dims.
inline std::vector<int64_t> normalize_dims(const Tensor& x, std::vector<int64_t> dims, const char* op) {
  if (dims.empty())
    for (int64_t d = 0; d < x.dim(); ++d) dims.push_back(d);
  for (auto& d : dims) {
    int64_t w = d < 0 ? d + x.dim() : d;
    GALVANI_CHECK(w >= 0 && w < x.dim(), op, ": dim ", d, " is out of range for shape ", shape_str(x.shape()));
    d = w;
  }
  std::sort(dims.begin(), dims.end());
  dims.erase(std::unique(dims.begin(), dims.end()), dims.end());
  return dims;
}

inline Shape reduced_shape(const Shape& s, const std::vector<int64_t>& dims, bool keepdim) {
  Shape out;
  for (int64_t d = 0; d < int64_t(s.size()); ++d) {
    bool reduced = std::binary_search(dims.begin(), dims.end(), d);
    if (!reduced) out.push_back(s[d]);
    else if (keepdim) out.push_back(1);
  }
  return out;
}

// sum of x over `dims` (already normalized). Output is contiguous, same dtype.
inline Tensor sum_kernel(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  Shape out_shape = reduced_shape(x.shape(), dims, keepdim);
  Tensor out = Tensor::empty(out_shape, x.dtype(), x.device());
  Shape kept, red;
  Strides kept_st, red_st;
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (std::binary_search(dims.begin(), dims.end(), d)) {
      red.push_back(x.shape()[d]);
      red_st.push_back(x.strides()[d]);
    } else {
      kept.push_back(x.shape()[d]);
      kept_st.push_back(x.strides()[d]);
    }
  }
  const int64_t n_out = numel_of(kept), n_red = numel_of(red);
  dispatch("sum", {{"input", x}}, FloatTypes{x.dtype()}, [&]<class T>() {
    const T* px = static_cast<const T*>(x.storage()->data());
    T* po = out.data<T>();
    if (n_out == 0) return;
    if (n_red == 0) { std::fill_n(po, n_out, T(0)); return; }
    // Offset of multi-index `i` (row-major over `sh`) with strides `st`.
    auto offset_of = [](int64_t i, const Shape& sh, const Strides& st) {
      int64_t off = 0;
      for (int64_t d = int64_t(sh.size()) - 1; d >= 0; --d) {
        off += (i % sh[d]) * st[d];
        i /= sh[d];
      }
      return off;
    };
    bool inner_kept = !kept.empty() && kept_st.back() == 1 && kept.back() > 1 &&
                      (red.empty() || red_st.back() != 1);
    if (!inner_kept) {
      // A: per output element, walk the reduced elements (innermost run contiguous when possible).
      auto loop = coalesce<1>(red, {red_st});
      const int64_t run = loop.shape.back(), step = loop.strides[0].back();
      Shape outer_sh(loop.shape.begin(), loop.shape.end() - 1);
      Strides outer_st(loop.strides[0].begin(), loop.strides[0].end() - 1);
      const int64_t runs = numel_of(outer_sh);
#pragma omp parallel for schedule(static) if (n_out * n_red > 32768)
      for (int64_t o = 0; o < n_out; ++o) {
        const T* base = px + x.offset() + offset_of(o, kept, kept_st);
        double acc = 0;
        for (int64_t r = 0; r < runs; ++r) {
          const T* p = base + offset_of(r, outer_sh, outer_st);
          for (int64_t j = 0; j < run; ++j) acc += double(p[j * step]);
        }
        po[o] = T(acc);
      }
    } else {
      // B: the innermost kept dim is contiguous; accumulate whole rows.
      const int64_t inner = kept.back();
      Shape outer_sh(kept.begin(), kept.end() - 1);
      Strides outer_st(kept_st.begin(), kept_st.end() - 1);
      const int64_t n_outer = numel_of(outer_sh);
#pragma omp parallel
      {
        std::vector<double> acc(size_t(inner), 0.0);
#pragma omp for schedule(static)
        for (int64_t o = 0; o < n_outer; ++o) {
          std::fill(acc.begin(), acc.end(), 0.0);
          const T* base = px + x.offset() + offset_of(o, outer_sh, outer_st);
          for (int64_t r = 0; r < n_red; ++r) {
            const T* p = base + offset_of(r, red, red_st);
            for (int64_t j = 0; j < inner; ++j) acc[j] += double(p[j]);
          }
          for (int64_t j = 0; j < inner; ++j) po[o * inner + j] = T(acc[j]);
        }
      }
    }
  });
  return out;
}

// The gradient of broadcasting: sum g (shape of an op's output) down to `shape`
// (an input's shape, right-aligned, with size-1 or missing leading dims).
inline Tensor sum_to(const Tensor& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  const int64_t lead = g.dim() - int64_t(shape.size());
  GALVANI_CHECK(lead >= 0, "sum_to: cannot reduce shape ", shape_str(g.shape()), " to ", shape_str(shape));
  std::vector<int64_t> dims;
  for (int64_t d = 0; d < g.dim(); ++d) {
    if (d < lead) { dims.push_back(d); continue; }
    int64_t want = shape[d - lead];
    if (want == 1 && g.shape()[d] != 1) dims.push_back(d);
    else GALVANI_CHECK(want == g.shape()[d], "sum_to: cannot reduce shape ", shape_str(g.shape()), " to ", shape_str(shape));
  }
  Tensor s = sum_kernel(g, dims, /*keepdim=*/true);
  // Drop the leading dims that `shape` does not have.
  return s.as_strided(shape, contiguous_strides(shape), s.offset());
}

}  // namespace galvani
