// ops/matmul.hpp — matmul (batched, with broadcasting), and the two Linear layouts:
//   linear(x, W, b)        y = x·Wᵀ + b, W (out, in)  — torch nn.Linear, Mistral
//   conv1d_linear(x, W, b) y = x·W  + b, W (in, out)  — Hugging Face GPT-2 "Conv1D"
// Both layouts run on the same GEMM: a transposed weight is read through its
// strides, never copied.
#pragma once
#include "../autograd/node.hpp"
#include "../core/broadcast.hpp"
#include "../core/dispatch.hpp"
#include "../core/reduce.hpp"
#include "../core/tensor.hpp"  // the complete Tensor: views, to(), backward()
#include "autocast.hpp"
#include "elementwise.hpp"
#include "gemm.hpp"

namespace galvani {

namespace detail {

// A 2-D transpose as a raw view (no autograd), for use inside kernels.
inline Tensor t2d(const Tensor& m) {
  return m.as_strided({m.shape()[1], m.shape()[0]}, {m.strides()[1], m.strides()[0]}, m.offset());
}

// C (M, N) = A (M, K) · B (K, N) for 2-D tensors of any strides; C contiguous.
// With `into`, accumulates into that contiguous tensor instead.
inline Tensor mm_kernel(const Tensor& A, const Tensor& B, const char* op, Tensor into = Tensor()) {
  const int64_t M = A.shape()[0], K = A.shape()[1], N = B.shape()[1];
  GALVANI_CHECK(B.shape()[0] == K, op, ": cannot multiply ", shape_str(A.shape()), " by ", shape_str(B.shape()));
  GALVANI_CHECK(A.dtype() == B.dtype(), op, ": dtypes differ: ", dtype_name(A.dtype()), " vs ", dtype_name(B.dtype()));
  const bool accumulate = into.defined();
  Tensor C = accumulate ? into : Tensor::empty({M, N}, A.dtype(), A.device());
  dispatch(op, {{"a", A}, {"b", B}, {"out", C}}, FloatTypes{A.dtype()}, [&]<class T>() {
    gemm<T>(M, N, K, A.data<T>(), A.strides()[0], A.strides()[1], B.data<T>(), B.strides()[0], B.strides()[1],
            C.data<T>(), N, accumulate);
  });
  return C;
}

// x (..., C) as a 2-D (rows, C) tensor; copies only if x's rows are not uniformly strided.
inline Tensor rows_of(const Tensor& x) {
  const int64_t C = x.shape().back();
  Tensor c = x.is_contiguous() ? x : x.contiguous();
  return c.as_strided({c.numel() / std::max<int64_t>(C, 1), C}, {C, 1}, c.offset());
}

// y (N, out) += b (out) for each row.
inline void add_bias_rows(Tensor& y, const Tensor& b) {
  dispatch("linear (bias)", {{"output", y}, {"bias", b}}, FloatTypes{y.dtype()}, [&]<class T>() {
    T* py = y.data<T>();
    const Tensor bc = b.contiguous();
    const T* pb = bc.data<T>();
    const int64_t N = y.shape()[0], O = y.shape()[1];
#pragma omp parallel for schedule(static) if (N * O > 65536)
    for (int64_t i = 0; i < N; ++i)
      for (int64_t j = 0; j < O; ++j) py[i * O + j] += pb[j];
  });
}

// A 2-D bf16/f16 operand widened to f32 in its own layout: a contiguous matrix, or the transposed
// view of one (Wᵀ as `linear` reads it), stays so, and the copy is a straight pass.
inline Tensor widened(const Tensor& t) {
  if (!t.is_contiguous() && t2d(t).is_contiguous()) return t2d(cast_raw(t2d(t), DType::f32));
  return cast_raw(t, DType::f32);
}

// C (M, N) f32 = A (M, K) · B (K, N) for 2-D operands of one lower-precision dtype (bf16 or
// f16), any strides, f32 sums: the f32 GEMM of the widened operands, so each product is exact
// and only the sums round. (The operands are widened into f32 copies for the call rather than
// through gemm_mixed's packing: gemm_mixed, instantiated here, would add two GEMMs per CPU level
// to every translation unit that includes this header — +50% compile time, measured.)
// Error: shapes or dtypes that do not fit.
inline Tensor mm_low(const Tensor& A, const Tensor& B, const char* op) {
  GALVANI_CHECK(A.shape()[1] == B.shape()[0] && A.dtype() == B.dtype() &&
                    (A.dtype() == DType::bf16 || A.dtype() == DType::f16),
                op, ": cannot multiply ", dtype_name(A.dtype()), " ", shape_str(A.shape()), " by ",
                dtype_name(B.dtype()), " ", shape_str(B.shape()));
  return mm_kernel(widened(A), widened(B), op);
}

// linear (W (out, in)) or, with fan_in_fan_out, conv1d_linear (W (in, out)) under autocast
// (core/autocast.hpp): x and W cast to the autocast dtype (W through the region's weight cache),
// multiplied with f32 sums (mm_low), the bias added in f32 after its own rounding, and the result rounded
// once — as torch's bf16 addmm on oneDNN. Saved for backward: the 2-byte x and W. Backward: the
// output gradient rounded to the dtype, dx and dW from 2-byte operands, each rounded; db the
// f32 sum of the rounded gradient, rounded.
inline Tensor autocast_linear(const Tensor& x, const Tensor& w, const Tensor& b, bool fan_in_fan_out,
                              const char* op) {
  const DType low = get_autocast_dtype();
  const Tensor x2 = rows_of(x);
  const Tensor xl = cast_raw(x2, low);  // (N, in)
  const Tensor wl = autocast_weight(w, low);
  Tensor y = mm_low(xl, fan_in_fan_out ? wl : t2d(wl), op);
  if (b.defined()) add_bias_rows(y, rounded_copy(b, low));
  round_to_precision_(y, low);
  const int64_t out_features = fan_in_fan_out ? w.shape()[1] : w.shape()[0];
  Shape out_shape = x.shape();
  out_shape.back() = out_features;
  y = y.as_strided(out_shape, contiguous_strides(out_shape), 0);
  return record(op, y, {x, w, b}, [xl, wl, low, fan_in_fan_out, has_b = b.defined(), x_shape = x.shape(), op](
                                      const Tensor& g, const Needs& need) -> Grads {
    const Tensor gl = cast_raw(rows_of(g), low);  // (N, out)
    Tensor dx, dw, db;
    if (need[0]) {
      dx = mm_low(gl, fan_in_fan_out ? t2d(wl) : wl, op);
      round_to_precision_(dx, low);
      dx = dx.as_strided(x_shape, contiguous_strides(x_shape), 0);
    }
    if (need[1]) {
      dw = fan_in_fan_out ? mm_low(t2d(xl), gl, op) : mm_low(t2d(gl), xl, op);  // W's own layout
      round_to_precision_(dw, low);
    }
    if (has_b && need[2]) {
      db = sum_kernel(cast_raw(gl, DType::f32), {0}, false);
      round_to_precision_(db, low);
    }
    return {dx, dw, db};
  });
}

// True for an f32 input with a bf16 or f16 weight: a model whose parameters are stored in 2 bytes
// (load_causal_lm with dtype bf16) computing in f32 — weight-only 16-bit, as llama.cpp runs a BF16
// GGUF and unlike torch, whose linear refuses mixed dtypes (transformers' torch_dtype=bfloat16 also
// computes in bf16).
inline bool weight_only_16(const Tensor& x, const Tensor& w) {
  return x.dtype() == DType::f32 && (w.dtype() == DType::bf16 || w.dtype() == DType::f16);
}

// y (M, N) f32 = x2 (M, K) f32 · B (K, N) with B a bf16/f16 view (Wᵀ of linear's W (N, K), or
// conv1d_linear's W (K, N) itself). Up to kGemvRows rows (decoding, a short prompt): gemv_mixed
// for bf16 — each weight read once, in 2 bytes, and widened in registers; more rows (a prompt or a
// batch: compute-bound) and f16 weights: the f32 GEMM of a widened copy of B. Either way the result
// is the f32 product over the widened weight, to the bit (every bf16/f16 value is a float).
inline Tensor mm_weight16(const Tensor& x2, const Tensor& B, const char* op) {
  const int64_t M = x2.shape()[0], K = x2.shape()[1], N = B.shape()[1];
  GALVANI_CHECK(B.shape()[0] == K, op, ": cannot multiply ", shape_str(x2.shape()), " by ", shape_str(B.shape()));
  if (B.dtype() == DType::bf16 && M <= kGemvRows && (B.strides()[0] == 1 || B.strides()[1] == 1)) {
    Tensor C = Tensor::empty({M, N}, DType::f32, x2.device());
    dispatch(op, {{"input", x2}, {"weight", B}}, FloatTypes{x2.dtype()}, [&]<class T>() {
      if constexpr (std::is_same_v<T, float>)
        gemv_mixed<bf16>(M, N, K, x2.data<float>(), x2.strides()[0], x2.strides()[1], B.data<bf16>(), B.strides()[0],
                         B.strides()[1], C.data<float>(), N);
    });
    return C;
  }
  return mm_kernel(x2, widened(B), op);
}

// linear (W (out, in)) or, with fan_in_fan_out, conv1d_linear (W (in, out)) of an f32 x with a
// bf16/f16 weight (weight_only_16): y f32 through mm_weight16, a 2-byte bias widened exactly. No
// rounding anywhere: the f32 layer over the widened parameters, bit for bit. Backward: dx from the
// widened W in f32; dW and db computed in f32 and returned in the parameter's dtype (rounded to
// nearest even, as the gradient of torch's w.to(torch.float32) arrives at w).
inline Tensor linear_weight16(const Tensor& x, const Tensor& w, const Tensor& b, bool fan_in_fan_out, const char* op) {
  GALVANI_CHECK(!b.defined() || b.dtype() == DType::f32 || b.dtype() == w.dtype(), op, ": bias ", dtype_name(b.dtype()),
                " does not go with a ", dtype_name(w.dtype()), " weight (expected ", dtype_name(w.dtype()), " or f32)");
  const Tensor x2 = rows_of(x);
  Tensor y = mm_weight16(x2, fan_in_fan_out ? w : t2d(w), op);
  if (b.defined()) add_bias_rows(y, b.dtype() == DType::f32 ? b : cast_raw(b, DType::f32));
  const int64_t out_features = fan_in_fan_out ? w.shape()[1] : w.shape()[0];
  Shape out_shape = x.shape();
  out_shape.back() = out_features;
  y = y.as_strided(out_shape, contiguous_strides(out_shape), 0);
  return record(op, y, {x, w, b}, [x2, w, b_dtype = b.defined() ? b.dtype() : DType::f32, fan_in_fan_out,
                                   has_b = b.defined(), x_shape = x.shape(), op](const Tensor& g, const Needs& need) -> Grads {
    const Tensor g2 = rows_of(g);  // (N, out)
    Tensor dx, dw, db;
    if (need[0])
      dx = mm_kernel(g2, widened(fan_in_fan_out ? t2d(w) : w), op).as_strided(x_shape, contiguous_strides(x_shape), 0);
    if (need[1])
      dw = cast_raw(fan_in_fan_out ? mm_kernel(t2d(x2), g2, op) : mm_kernel(t2d(g2), x2, op), w.dtype());
    if (has_b && need[2]) db = cast_raw(sum_kernel(g2, {0}, false), b_dtype);
    return {dx, dw, db};
  });
}

}  // namespace detail

// matmul: a (..., M, K) · b (..., K, N) → (..., M, N), 2-D to 4-D, batch dims broadcast.
// Under autocast (core/autocast.hpp) with f32 operands: they and the result rounded to bf16/f16.
inline Tensor matmul(const Tensor& a, const Tensor& b) {
  GALVANI_CHECK(a.dim() >= 2 && a.dim() <= 4 && b.dim() >= 2 && b.dim() <= 4, "matmul: expected 2-D to 4-D tensors, got ",
                shape_str(a.shape()), " and ", shape_str(b.shape()));
  GALVANI_CHECK(a.dtype() == b.dtype(), "matmul: dtypes differ: ", dtype_name(a.dtype()), " ", shape_str(a.shape()),
                " vs ", dtype_name(b.dtype()), " ", shape_str(b.shape()));
  if (detail::autocast_applies(a))  // torch's autocast: bf16/f16 operands and result, f32 sums
    return detail::autocast_lower([](const Tensor& x, const Tensor& y) { return matmul(x, y); }, a, b);
  const int64_t M = a.size(-2), K = a.size(-1), N = b.size(-1);
  GALVANI_CHECK(b.size(-2) == K, "matmul: shapes ", shape_str(a.shape()), " and ", shape_str(b.shape()),
                " cannot be multiplied (", K, " columns vs ", b.size(-2), " rows)");
  Shape a_batch(a.shape().begin(), a.shape().end() - 2), b_batch(b.shape().begin(), b.shape().end() - 2);
  Shape batch = broadcast_shapes(a_batch, b_batch, "matmul");
  Shape out_shape = batch;
  out_shape.push_back(M);
  out_shape.push_back(N);
  Tensor out = Tensor::empty(out_shape, a.dtype(), a.device());

  // Per-operand batch strides, 0 along broadcast dims.
  auto batch_strides = [&](const Tensor& t) {
    Shape tb(t.shape().begin(), t.shape().end() - 2);
    Tensor view = t.as_strided(tb, Strides(t.strides().begin(), t.strides().end() - 2), t.offset());
    return broadcast_strides(view, batch);
  };
  const Strides sa = batch_strides(a), sb = batch_strides(b);
  const int64_t nbatch = numel_of(batch);
  dispatch("matmul", {{"a", a}, {"b", b}}, FloatTypes{a.dtype()}, [&]<class T>() {
    const T* pa = static_cast<const T*>(a.storage()->data());
    const T* pb = static_cast<const T*>(b.storage()->data());
    T* po = out.data<T>();
    // Many small products (attention heads): one thread per product. One big one: threads inside.
    const bool outer = nbatch > 1 && M * N * K < (1 << 22);
#pragma omp parallel for schedule(dynamic, 1) if (outer)
    for (int64_t i = 0; i < nbatch; ++i) {
      int64_t oa = a.offset(), ob = b.offset();
      for (int64_t d = int64_t(batch.size()) - 1, r = i; d >= 0; --d) {
        oa += (r % batch[d]) * sa[d];
        ob += (r % batch[d]) * sb[d];
        r /= batch[d];
      }
      gemm<T>(M, N, K, pa + oa, a.strides()[a.dim() - 2], a.strides()[a.dim() - 1], pb + ob,
              b.strides()[b.dim() - 2], b.strides()[b.dim() - 1], po + i * M * N, N, false, !outer);
    }
  });
  return record("matmul", out, {a, b}, [a, b](const Tensor& g, const Needs& need) -> Grads {
    return {need[0] ? sum_to(matmul(g, b.transpose(-1, -2)), a.shape()) : Tensor(),
            need[1] ? sum_to(matmul(a.transpose(-1, -2), g), b.shape()) : Tensor()};
  });
}

// y = x·Wᵀ + b: x (..., in), W (out, in), b (out) or undefined → y (..., out).
// Under autocast (core/autocast.hpp) with f32 x and W: bf16/f16 operands and result, f32 sums.
// An f32 x with a bf16/f16 W (and b): weight-only 16-bit, y f32 — the f32 layer over the widened
// weight, bit for bit; a decode step reads the 2-byte weight once (detail::linear_weight16).
inline Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b = Tensor()) {
  GALVANI_CHECK(w.dim() == 2 && x.dim() >= 1 && x.size(-1) == w.shape()[1], "linear: input ", shape_str(x.shape()),
                " does not fit weight ", shape_str(w.shape()), " (expected (..., ", w.dim() == 2 ? w.shape()[1] : -1,
                ") for a weight of shape (out, in))");
  GALVANI_CHECK(!b.defined() || (b.dim() == 1 && b.shape()[0] == w.shape()[0]), "linear: bias ",
                shape_str(b.shape()), " does not match weight ", shape_str(w.shape()));
  if (detail::weight_only_16(x, w)) return detail::linear_weight16(x, w, b, false, "linear");
  if (detail::autocast_applies(x) && w.dtype() == DType::f32)
    return detail::autocast_linear(x, w, b, false, "linear");
  Tensor x2 = detail::rows_of(x);
  Tensor y = detail::mm_kernel(x2, detail::t2d(w), "linear");
  if (b.defined()) detail::add_bias_rows(y, b);
  Shape out_shape = x.shape();
  out_shape.back() = w.shape()[0];
  y = y.as_strided(out_shape, contiguous_strides(out_shape), 0);
  return record("linear", y, {x, w, b}, [x2, w, has_b = b.defined(), x_shape = x.shape()](const Tensor& g,
                                                                                       const Needs& need) -> Grads {
    Tensor g2 = detail::rows_of(g);  // (N, out)
    Tensor dx, dw, db;
    if (need[0]) dx = detail::mm_kernel(g2, w, "linear backward").as_strided(x_shape, contiguous_strides(x_shape), 0);
    if (need[1]) dw = detail::mm_kernel(detail::t2d(g2), x2, "linear backward");  // (out, in)
    if (has_b && need[2]) db = sum_kernel(g2, {0}, false);
    return {dx, dw, db};
  });
}

// y = x·W + b with W (in, out): Hugging Face's Conv1D, used by every GPT-2 projection.
// Autocast and bf16/f16 weights as linear().
inline Tensor conv1d_linear(const Tensor& x, const Tensor& w, const Tensor& b = Tensor()) {
  GALVANI_CHECK(w.dim() == 2 && x.dim() >= 1 && x.size(-1) == w.shape()[0], "conv1d_linear: input ",
                shape_str(x.shape()), " does not fit weight ", shape_str(w.shape()), " (Conv1D weights are (in, out))");
  GALVANI_CHECK(!b.defined() || (b.dim() == 1 && b.shape()[0] == w.shape()[1]), "conv1d_linear: bias ",
                shape_str(b.shape()), " does not match weight ", shape_str(w.shape()));
  if (detail::weight_only_16(x, w)) return detail::linear_weight16(x, w, b, true, "conv1d_linear");
  if (detail::autocast_applies(x) && w.dtype() == DType::f32)
    return detail::autocast_linear(x, w, b, true, "conv1d_linear");
  Tensor x2 = detail::rows_of(x);
  Tensor y = detail::mm_kernel(x2, w, "conv1d_linear");
  if (b.defined()) detail::add_bias_rows(y, b);
  Shape out_shape = x.shape();
  out_shape.back() = w.shape()[1];
  y = y.as_strided(out_shape, contiguous_strides(out_shape), 0);
  return record("conv1d_linear", y, {x, w, b}, [x2, w, has_b = b.defined(), x_shape = x.shape()](
                                                   const Tensor& g, const Needs& need) -> Grads {
    Tensor g2 = detail::rows_of(g);  // (N, out)
    Tensor dx, dw, db;
    if (need[0])
      dx = detail::mm_kernel(g2, detail::t2d(w), "conv1d_linear backward").as_strided(x_shape, contiguous_strides(x_shape), 0);
    if (need[1]) dw = detail::mm_kernel(detail::t2d(x2), g2, "conv1d_linear backward");  // (in, out)
    if (has_b && need[2]) db = sum_kernel(g2, {0}, false);
    return {dx, dw, db};
  });
}

}  // namespace galvani
