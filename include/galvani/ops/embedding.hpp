// ops/embedding.hpp — token embedding lookup: out[p, :] = weight[ids[p], :].
//
// forward:  weight (V, C), ids (any shape, i32 or i64) → out (ids.shape..., C)
// backward: dweight (V, C) = scatter-add of the output gradient rows into the rows
//   their ids picked. A token that appears many times (" the", padding) gets the
//   sum of all its gradients.
// The scatter-add is parallel without atomics: positions are grouped by id
// (a stable sort), and each thread owns whole vocab rows, adding that row's
// positions in increasing order — so the sum is also thread-count independent.
// Rows never looked up get a zero gradient (dweight is dense, as in torch).
#pragma once
#include <algorithm>
#include <numeric>
#include <vector>

#include "../autograd/node.hpp"
#include "../core/dispatch.hpp"
#include "../core/tensor.hpp"  // the complete Tensor: views, to(), backward()
#include "autocast.hpp"  // cast_raw
#include "op_args.hpp"

namespace galvani {

// out: (N, C) contiguous; weight read through strides (ws0, ws1); ids: (N), all in [0, V).
template <class T, class I>
void embedding_forward(const T* weight, int64_t ws0, int64_t ws1, const I* ids, T* out, int64_t N, int64_t C) {
#pragma omp parallel for schedule(static) if (N * C > 16384)
  for (int64_t p = 0; p < N; ++p) {
    const T* w = weight + int64_t(ids[p]) * ws0;
    T* o = out + p * C;
    if (ws1 == 1) std::copy(w, w + C, o);
    else for (int64_t c = 0; c < C; ++c) o[c] = w[c * ws1];
  }
}

// dweight: (V, C) contiguous, zeroed here; dout: (N, C) contiguous; ids: (N).
template <class T, class I>
void embedding_backward(const T* dout, const I* ids, T* dweight, int64_t N, int64_t V, int64_t C) {
  // Zeroed in parallel: for GPT-2's (50257, 768) table this is 154 MB of fresh
  // pages, and the page faults, not the adds, are most of the backward's time.
#pragma omp parallel for schedule(static) if (V * C > 65536)
  for (int64_t v = 0; v < V; ++v) std::fill_n(dweight + v * C, C, T(0));
  // Positions sorted by id (stable: within an id, in increasing position order).
  std::vector<int64_t> order(static_cast<size_t>(N));
  std::iota(order.begin(), order.end(), int64_t(0));
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return ids[a] < ids[b]; });
  // starts[k] .. starts[k+1]: the run of positions holding the k-th distinct id.
  std::vector<int64_t> starts;
  for (int64_t k = 0; k < N; ++k)
    if (k == 0 || ids[order[size_t(k)]] != ids[order[size_t(k - 1)]]) starts.push_back(k);
  starts.push_back(N);
  const int64_t runs = int64_t(starts.size()) - 1;
#pragma omp parallel for schedule(dynamic, 16) if (N * C > 16384)
  for (int64_t r = 0; r < runs; ++r) {
    T* dw = dweight + int64_t(ids[order[size_t(starts[size_t(r)])]]) * C;
    for (int64_t k = starts[size_t(r)]; k < starts[size_t(r + 1)]; ++k) {
      const T* g = dout + order[size_t(k)] * C;
      for (int64_t c = 0; c < C; ++c) dw[c] += g[c];
    }
  }
}

// weight (V, C) f32/f64, ids (any shape) i32/i64 → (ids.shape..., C) in weight's dtype.
// A bf16/f16 table (a model stored in 2 bytes, computing in f32: ops/matmul.hpp's weight_only_16)
// gives f32 rows, each widened exactly from the rows it picks (the table is never widened whole);
// its gradient is summed in f32 and returned in the table's dtype, as through w.to(torch.float32).
// Errors: a weight that is not 2-D float, ids that are not integers, an id outside [0, V).
inline Tensor embedding(const Tensor& weight, const Tensor& ids) {
  const bool w16 = weight.defined() && (weight.dtype() == DType::bf16 || weight.dtype() == DType::f16);
  if (!w16) detail::check_float("embedding", "weight", weight);
  GALVANI_CHECK(weight.dim() == 2, "embedding: weight must be (V, C), got ", detail::describe(weight));
  GALVANI_CHECK(ids.defined() && (ids.dtype() == DType::i32 || ids.dtype() == DType::i64),
                "embedding: ids must be an i32 or i64 tensor, got ", detail::describe(ids), " (weight ",
                detail::describe(weight), ")");
  const int64_t V = weight.shape()[0], C = weight.shape()[1], N = ids.numel();
  // Ids are checked on the host before any kernel runs: an id out of range would read
  // outside the table on any device.
  const std::vector<int64_t> id_values = host_values<int64_t>(ids, "embedding (ids)");
  for (int64_t p = 0; p < N; ++p)
    GALVANI_CHECK(id_values[size_t(p)] >= 0 && id_values[size_t(p)] < V, "embedding: id ", id_values[size_t(p)],
                  " at position ", detail::index_str(p, ids.shape()), " of ids ", shape_str(ids.shape()),
                  " is out of range for a vocabulary of V = ", V, " rows (weight ", shape_str(weight.shape()), ")");
  Tensor idc = detail::dense(ids);
  Shape out_shape = ids.shape();
  out_shape.push_back(C);
  if (w16) {
    Tensor out16 = Tensor::empty(out_shape, weight.dtype(), weight.device());
    dispatch("embedding", {{"weight", weight}, {"ids", ids}}, IndexTypes{ids.dtype()}, [&]<class I>() {
      const auto gather = [&]<class S>() {
        const S* pw = static_cast<const S*>(weight.storage()->data()) + weight.offset();
        embedding_forward<S, I>(pw, weight.strides()[0], weight.strides()[1], idc.data<I>(), out16.data<S>(), N, C);
      };
      if (weight.dtype() == DType::bf16) gather.template operator()<bf16>();
      else gather.template operator()<f16>();
    });
    Tensor out = detail::cast_raw(out16, DType::f32);
    const DType wdt = weight.dtype();
    return record("embedding", out, {weight, ids}, [idc, V, C, N, wdt](const Tensor& g, const Needs&) -> Grads {
      Tensor gc = detail::dense(g);
      Tensor dw = Tensor::empty({V, C}, DType::f32, gc.device());
      dispatch("embedding backward", {{"grad", gc}, {"ids", idc}}, IndexTypes{idc.dtype()}, [&]<class I>() {
        embedding_backward<float, I>(gc.data<float>(), idc.data<I>(), dw.data<float>(), N, V, C);
      });
      return {detail::cast_raw(dw, wdt), Tensor()};
    });
  }
  Tensor out = Tensor::empty(out_shape, weight.dtype(), weight.device());
  dispatch("embedding", {{"weight", weight}, {"ids", ids}}, IndexTypes{ids.dtype()}, [&]<class I>() {
    visit_float(weight.dtype(), "embedding", [&]<class T>() {
      const T* pw = static_cast<const T*>(weight.storage()->data()) + weight.offset();
      embedding_forward<T, I>(pw, weight.strides()[0], weight.strides()[1], idc.data<I>(), out.data<T>(), N, C);
    });
  });
  return record("embedding", out, {weight, ids}, [idc, V, C, N](const Tensor& g, const Needs&) -> Grads {
    Tensor gc = detail::dense(g);
    Tensor dw = Tensor::empty({V, C}, gc.dtype(), gc.device());
    dispatch("embedding backward", {{"grad", gc}, {"ids", idc}}, IndexTypes{idc.dtype()}, [&]<class I>() {
      visit_float(gc.dtype(), "embedding backward", [&]<class T>() {
        embedding_backward<T, I>(gc.data<T>(), idc.data<I>(), dw.data<T>(), N, V, C);
      });
    });
    return {dw, Tensor()};
  });
}

}  // namespace galvani
