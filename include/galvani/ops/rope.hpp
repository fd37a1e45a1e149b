// ops/rope.hpp — rotary position embeddings (RoPE), in Hugging Face's layout (Llama, Mistral).
//
// Each head vector x (D) is split into two halves, and pair (x[i], x[i + D/2]) is rotated by
// the angle pos · inv_freq[i]:
//   inv_freq[i] = 1 / theta^(2i / D)                      i < D/2
//   out[i]       = x[i] · cos − x[i + D/2] · sin
//   out[i + D/2] = x[i + D/2] · cos + x[i] · sin
// which is HF's `x·cos + rotate_half(x)·sin` with emb = cat(freqs, freqs) and
// rotate_half(x) = cat(−x[D/2:], x[:D/2]): the half-split ("NeoX") layout. HF checkpoints'
// q_proj/k_proj rows are permuted for exactly this layout, so the interleaved-pairs variant of
// the RoPE paper (and of Meta's original code) would give wrong results with them.
//
// Angles follow HF's arithmetic: for f32 inputs inv_freq, the product pos · inv_freq and
// cos/sin are all float32 (HF computes them in float32 even under autocast); for f64 inputs
// everything is double, for gradient checks.
//
// A rotation is orthogonal, so the backward is the inverse rotation: rotate by −angle.
// Because rotations compose, rope(q, p)·rope(k, p') depends only on p − p' — that is the point.
//
// forward:  x (B, H, T, D), positions (T) or (B, T) → out (B, H, T, D)
//           via cos, sin (P, T, D/2), P = 1 (positions shared by the batch) or B
// backward: dy (B, H, T, D) → dx (B, H, T, D), the same tables, angle negated
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

#include <omp.h>

#include "../autograd/node.hpp"
#include "../core/dispatch.hpp"
#include "../core/tensor.hpp"  // the complete Tensor: views, to(), backward()

namespace galvani {

// pos: (n) positions (n = P·T, P = 1 shared by the batch, or B) → cos, sin: (n, D/2),
// the cos/sin of pos · inv_freq[i] for each pair i.
template <class T>
void rope_cos_sin(const int64_t* pos, int64_t n, int64_t D, double theta, T* cos_out, T* sin_out) {
  const int64_t half = D / 2;
  std::vector<T> inv_freq(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) inv_freq[size_t(i)] = T(1) / std::pow(T(theta), T(2 * i) / T(D));
  for (int64_t t = 0; t < n; ++t)
    for (int64_t i = 0; i < half; ++i) {
      const T angle = T(pos[t]) * inv_freq[size_t(i)];
      cos_out[t * half + i] = std::cos(angle);
      sin_out[t * half + i] = std::sin(angle);
    }
}

namespace detail {
// out (B,H,T,D) contiguous = x (B,H,T,D; D contiguous, strides xs for B, H, T) rotated by
// `sign` · angle. cos/sin are (P, T, D/2), P = B when per_batch, else 1.
template <class T>
void rope_rotate(const T* x, const Strides& xs, T* out, const T* cos_t, const T* sin_t, int64_t B, int64_t H,
                 int64_t Tn, int64_t D, bool per_batch, T sign) {
  const int64_t half = D / 2;
#pragma omp parallel for schedule(static) if (B * H * Tn * D > 65536)
  for (int64_t row = 0; row < B * H * Tn; ++row) {
    const int64_t b = row / (H * Tn), h = (row / Tn) % H, t = row % Tn;
    const T* xr = x + b * xs[0] + h * xs[1] + t * xs[2];
    T* o = out + row * D;
    const T* c = cos_t + ((per_batch ? b : 0) * Tn + t) * half;
    const T* s = sin_t + ((per_batch ? b : 0) * Tn + t) * half;
    for (int64_t i = 0; i < half; ++i) {
      const T x1 = xr[i], x2 = xr[i + half], sn = sign * s[i];
      o[i] = x1 * c[i] - x2 * sn;
      o[i + half] = x2 * c[i] + x1 * sn;
    }
  }
}
}  // namespace detail

// x (B,H,T,D), last dim contiguous, strides xs → out (B,H,T,D) contiguous, each pair
// (i, i + D/2) rotated by +angle. cos_t, sin_t: (P, T, D/2) from rope_cos_sin, P = B when
// per_batch, else 1.
template <class T>
void rope_forward(const T* x, const Strides& xs, T* out, const T* cos_t, const T* sin_t, int64_t B, int64_t H,
                  int64_t Tn, int64_t D, bool per_batch) {
  detail::rope_rotate<T>(x, xs, out, cos_t, sin_t, B, H, Tn, D, per_batch, T(1));
}

// dy (B,H,T,D), last dim contiguous, strides dys → dx (B,H,T,D) contiguous: the inverse
// rotation (−angle), since a rotation's transpose is its inverse.
template <class T>
void rope_backward(const T* dy, const Strides& dys, T* dx, const T* cos_t, const T* sin_t, int64_t B, int64_t H,
                   int64_t Tn, int64_t D, bool per_batch) {
  detail::rope_rotate<T>(dy, dys, dx, cos_t, sin_t, B, H, Tn, D, per_batch, T(-1));
}

// x (B, H, T, D) f32/f64 with D even; positions (T) or (B, T), i64 or i32 → (B, H, T, D).
// Semantics of Hugging Face's apply_rotary_pos_emb with rotate_half (see above). Positions
// are read on the host (they build the cos/sin tables). Throws galvani::Error for an odd D,
// positions of the wrong shape or dtype, or inputs on a device without a kernel.
inline Tensor rope(const Tensor& x, const Tensor& positions, double theta = 10000.0) {
  GALVANI_CHECK(x.defined() && positions.defined(), "rope: x and positions must be defined tensors");
  GALVANI_CHECK(x.dim() == 4, "rope: expected x (B, H, T, D), got ", shape_str(x.shape()));
  const int64_t B = x.size(0), H = x.size(1), Tn = x.size(2), D = x.size(3);
  GALVANI_CHECK(D % 2 == 0, "rope: the head dim D must be even (pairs (i, i + D/2) are rotated), got x ",
                shape_str(x.shape()));
  const bool per_batch = positions.dim() == 2;
  GALVANI_CHECK((positions.dim() == 1 && positions.size(0) == Tn) ||
                    (per_batch && positions.size(0) == B && positions.size(1) == Tn),
                "rope: positions must be (T) = (", Tn, ") or (B, T) = (", B, ", ", Tn, ") for x ", shape_str(x.shape()),
                ", got ", shape_str(positions.shape()));
  GALVANI_CHECK(positions.dtype() == DType::i64 || positions.dtype() == DType::i32,
                "rope (positions): expected an i32 or i64 index tensor, got ", dtype_name(positions.dtype()));
  const std::vector<int64_t> pos = host_values<int64_t>(positions, "rope (positions)");

  const int64_t P = per_batch ? B : 1, half = D / 2;
  Tensor cos_t = Tensor::empty({P, Tn, half}, x.dtype(), x.device()),
         sin_t = Tensor::empty({P, Tn, half}, x.dtype(), x.device());
  const Tensor xc = (D <= 1 || x.strides()[3] == 1) ? x : x.detach().contiguous();
  Tensor out = Tensor::empty({B, H, Tn, D}, x.dtype(), x.device());
  dispatch("rope", {{"x", x}}, FloatTypes{x.dtype()}, [&]<class T>() {
    rope_cos_sin<T>(pos.data(), int64_t(pos.size()), D, theta, cos_t.data<T>(), sin_t.data<T>());
    rope_forward<T>(xc.data<T>(), xc.strides(), out.data<T>(), cos_t.data<T>(), sin_t.data<T>(), B, H, Tn, D,
                    per_batch);
  });
  return record("rope", out, {x}, [cos_t, sin_t, B, H, Tn, D, per_batch](const Tensor& g, const Needs&) -> Grads {
    const Tensor gc = (D <= 1 || g.strides()[3] == 1) ? g : g.contiguous();
    Tensor dx = Tensor::empty({B, H, Tn, D}, g.dtype(), g.device());
    dispatch("rope backward", {{"grad", gc}, {"cos", cos_t}}, FloatTypes{g.dtype()}, [&]<class T>() {
      rope_backward<T>(gc.data<T>(), gc.strides(), dx.data<T>(), cos_t.data<T>(), sin_t.data<T>(), B, H, Tn, D,
                       per_batch);
    });
    return {dx};
  });
}

}  // namespace galvani
