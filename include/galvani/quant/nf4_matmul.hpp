// quant/nf4_matmul.hpp — y = x · Wᵀ (+ b) and dX = dY · W with W stored 4-bit, never dequantized
// in full.
//
//   x (M, K) row-major; W (N, K) as bnb stores it: packed u8 [(N·K+1)/2], absmax f32 [nblocks]
//   (already un-nested, QuantState4bit::absmax_f32()); element (n, k) is flat index n·K + k,
//   its block (n·K + k) / blocksize — a block may straddle two rows when K is not a multiple of
//   the block size, so the kernels index by the flat position, as bnb's CUDA kernels do.
//
// Two paths, chosen by M:
//   GEMV (M <= 4, decoding one token per sequence): each thread owns output rows n and decodes
//        row n of W once, on the fly, for all M inputs. The time goes into reading W: K/2 bytes
//        per row, 4× less than bf16.
//   GEMM (training batches, prefill): W is dequantized one tile (kTileN rows × kTileK columns)
//        at a time into a per-thread float buffer (kTileN·kTileK·4 = 64 KiB, L2-resident), then
//        multiplied with all M rows of x. The full dequantized weight never exists.
// The input gradient dX (M, K) = dY (M, N) · W (N, K) uses the same tiles; each thread owns a
// range of K, so no two threads write the same dX element. W is frozen: there is no dW.
// Accumulation is in T (float for f32 inputs); the order differs from a dense matmul, so results
// match dequantize-then-matmul to rounding (tests/test_quant_nf4.cpp), not bit for bit.
#pragma once
#include <algorithm>
#include <vector>

#include "../autograd/node.hpp"
#include "../core/dispatch.hpp"
#include "../ops/op_args.hpp"
#include "quantize_4bit.hpp"

namespace galvani::quant {

inline constexpr int64_t kTileN = 64, kTileK = 256;

// W[n0 .. n0+nt, k0 .. k0+kt) → tile (nt, kt) float32.
inline void dequantize_tile(const uint8_t* packed, const float* absmax, QuantType qt, int64_t bs, int64_t K, int64_t n0,
                            int64_t nt, int64_t k0, int64_t kt, float* tile) {
  for (int64_t r = 0; r < nt; ++r) {
    const int64_t base = (n0 + r) * K + k0;
    for (int64_t c = 0; c < kt; ++c) {
      const int64_t i = base + c;
      tile[r * kt + c] = dequantize_code4(qt, nibble_at(packed, i), absmax[block_of(i, bs)]);
    }
  }
}

// y (M, N) = x (M, K) · Wᵀ + bias (N, or null).
template <class T>
void nf4_linear_forward(const T* x, const uint8_t* packed, const float* absmax, QuantType qt, int64_t bs, const T* bias,
                        T* y, int64_t M, int64_t N, int64_t K) {
  if (M <= 4) {  // GEMV
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
      T acc[4] = {0, 0, 0, 0};
      const int64_t base = n * K;
      for (int64_t k = 0; k < K; ++k) {
        const int64_t i = base + k;
        const T w = T(dequantize_code4(qt, nibble_at(packed, i), absmax[block_of(i, bs)]));
        for (int64_t m = 0; m < M; ++m) acc[m] += x[m * K + k] * w;
      }
      for (int64_t m = 0; m < M; ++m) y[m * N + n] = acc[m] + (bias ? bias[n] : T(0));
    }
    return;
  }
  // GEMM: threads own N tiles; each walks K in tiles, dequantizing into its own buffer.
#pragma omp parallel
  {
    std::vector<float> tile(static_cast<size_t>(kTileN * kTileK));
#pragma omp for schedule(dynamic)
    for (int64_t n0 = 0; n0 < N; n0 += kTileN) {
      const int64_t nt = std::min(kTileN, N - n0);
      for (int64_t m = 0; m < M; ++m)
        for (int64_t r = 0; r < nt; ++r) y[m * N + n0 + r] = bias ? bias[n0 + r] : T(0);
      for (int64_t k0 = 0; k0 < K; k0 += kTileK) {
        const int64_t kt = std::min(kTileK, K - k0);
        dequantize_tile(packed, absmax, qt, bs, K, n0, nt, k0, kt, tile.data());
        for (int64_t m = 0; m < M; ++m) {
          const T* xr = x + m * K + k0;
          for (int64_t r = 0; r < nt; ++r) {
            const float* wr = tile.data() + r * kt;
            T acc = 0;
            for (int64_t c = 0; c < kt; ++c) acc += xr[c] * T(wr[c]);
            y[m * N + n0 + r] += acc;
          }
        }
      }
    }
  }
}

// dx (M, K) = dy (M, N) · W (N, K).
template <class T>
void nf4_linear_backward_input(const T* dy, const uint8_t* packed, const float* absmax, QuantType qt, int64_t bs, T* dx,
                               int64_t M, int64_t N, int64_t K) {
#pragma omp parallel
  {
    std::vector<float> tile(static_cast<size_t>(kTileN * kTileK));
#pragma omp for schedule(dynamic)
    for (int64_t k0 = 0; k0 < K; k0 += kTileK) {
      const int64_t kt = std::min(kTileK, K - k0);
      for (int64_t m = 0; m < M; ++m)
        for (int64_t c = 0; c < kt; ++c) dx[m * K + k0 + c] = T(0);
      for (int64_t n0 = 0; n0 < N; n0 += kTileN) {
        const int64_t nt = std::min(kTileN, N - n0);
        dequantize_tile(packed, absmax, qt, bs, K, n0, nt, k0, kt, tile.data());
        for (int64_t m = 0; m < M; ++m) {
          T* dxr = dx + m * K + k0;
          for (int64_t r = 0; r < nt; ++r) {
            const T g = dy[m * N + n0 + r];
            const float* wr = tile.data() + r * kt;
            for (int64_t c = 0; c < kt; ++c) dxr[c] += g * T(wr[c]);
          }
        }
      }
    }
  }
}

// A frozen 4-bit weight ready for matmuls: packed bytes, the un-nested absmax, the layout.
struct Weight4bit {
  Tensor packed;   // u8 [(N·K+1)/2, 1]
  Tensor absmax;   // f32 [nblocks], un-nested
  QuantType quant_type = QuantType::nf4;
  int64_t blocksize = 64;
  int64_t out_features = 0, in_features = 0;  // N, K
};

// y (..., N) = x (..., K) · Wᵀ + bias — bnb's Linear4bit forward (matmul_4bit), fused. The
// autograd node gives the input's gradient (and the bias's); W is frozen.
inline Tensor nf4_linear(const Tensor& x, const Weight4bit& w, const Tensor& bias = Tensor()) {
  galvani::detail::check_float("nf4_linear", "input", x);
  const int64_t N = w.out_features, K = w.in_features;
  GALVANI_CHECK(x.dim() >= 1 && x.size(-1) == K, "nf4_linear: input ", shape_str(x.shape()),
                " does not fit a 4-bit weight of shape (", N, ", ", K, ")");
  GALVANI_CHECK(!bias.defined() || (bias.shape() == Shape{N} && bias.dtype() == x.dtype()), "nf4_linear: bias ",
                galvani::detail::describe(bias), " does not match (", N, ") ", dtype_name(x.dtype()));
  const Tensor xc = galvani::detail::dense(x), bc = bias.defined() ? galvani::detail::dense(bias) : Tensor();
  const int64_t M = xc.numel() / std::max<int64_t>(K, 1);
  Shape out_shape = x.shape();
  out_shape.back() = N;
  Tensor y = Tensor::empty(out_shape, x.dtype(), x.device());
  dispatch("nf4_linear", {{"input", x}, {"weight", w.packed}, {"bias", bias}}, FloatTypes{x.dtype()}, [&]<class T>() {
    nf4_linear_forward<T>(xc.data<T>(), w.packed.data<uint8_t>(), w.absmax.data<float>(), w.quant_type, w.blocksize,
                          bc.defined() ? bc.data<T>() : nullptr, y.data<T>(), M, N, K);
  });
  return record("nf4_linear", y, {x, bias}, [w, M, N, K, x_shape = x.shape()](const Tensor& g, const Needs& need) -> Grads {
    const Tensor gc = galvani::detail::dense(g);
    Tensor dx, db;
    if (need[0]) {
      dx = Tensor::empty(x_shape, gc.dtype(), gc.device());
      dispatch("nf4_linear backward", {{"grad", gc}, {"weight", w.packed}}, FloatTypes{gc.dtype()}, [&]<class T>() {
        nf4_linear_backward_input<T>(gc.data<T>(), w.packed.data<uint8_t>(), w.absmax.data<float>(), w.quant_type,
                                     w.blocksize, dx.data<T>(), M, N, K);
      });
    }
    if (need[1]) {
      db = Tensor::zeros({N}, gc.dtype(), gc.device());
      dispatch("nf4_linear backward (bias)", {{"grad", gc}}, FloatTypes{gc.dtype()}, [&]<class T>() {
        const T* gp = gc.data<T>();
        T* d = db.data<T>();
        for (int64_t m = 0; m < M; ++m)
          for (int64_t n = 0; n < N; ++n) d[n] += gp[m * N + n];
      });
    }
    return {dx, db};
  });
}

}  // namespace galvani::quant
