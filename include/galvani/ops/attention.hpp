// ops/attention.hpp — scaled-dot-product attention, the core of GPT-2 and Mistral:
//
//   out[b, h, i] = Σ_j softmax_j( scale · q[b,h,i]·k[b,g,j]  over the keys j row i may see ) · v[b,g,j]
//
// with g = h / (H / Hkv): grouped-query attention, where H / Hkv query heads share one
// key/value head (Hugging Face's repeat_kv; H == Hkv is ordinary multi-head attention).
//
// Which keys a query sees. Query i sits at position p = query_offset + i among the S keys
// (by default the queries are the last T positions, as when decoding with a KV cache).
// Key j is visible to it when all of these hold:
//   causal:             j <= p
//   sliding_window w:   0 <= p - j < w           (Mistral; also implies j <= p)
//   key_padding_mask:   mask[b, j] != 0
// The first two make the visible keys of row i an interval [lo(i), hi(i)) whose ends only
// grow with i; the kernel computes scores only inside it (a causal block skips the upper
// triangle), then drops the padded keys.
//
// A row that sees no key at all (a left-padded row in front of its first real token)
// outputs zeros and passes back a zero gradient. Hugging Face's eager attention instead adds
// a large negative number to masked scores, so such a row becomes a uniform average of the
// masked values; its output is garbage either way and is ignored by the loss, but the two
// differ there, so fixtures must compare only rows that see at least one key.
//
// The kernel is fused (no (T, S) tensor ever reaches the autograd graph). Work is split over
// (batch, head, block of kForwardRows query rows); per block:
//   scores (rows, keys) = Q_blk · K_rangeᵀ                    one GEMM
//   P = softmax(scale · scores) over the visible keys         per row, max-subtracted
//   O_blk = P · V_range                                       one GEMM
// For backward we save the log-sum-exp of each row (B, H, T), not P (B, H, T, S): P is
// recomputed from it exactly as exp(scale·q·k − lse), which costs one more Q·Kᵀ GEMM in
// backward (about 1/7 of the attention work) but keeps the saved state O(T) instead of
// O(T·S). For GPT-2 at T = S = 1024 P would be 50 MB per layer and sequence in f32, written
// as fresh pages in forward and read once in backward; at the course's T = 256 either choice
// works (we did not benchmark a saved-P variant), and the lse one is the FlashAttention recipe,
// so long sequences need no extra memory.
//
// Backward, with dO the gradient of the output and Δ_i = rowsum(dO ⊙ O)_i:
//   dP = dO · Vᵀ,   dS = P ⊙ (dP − Δ),   dQ = scale · dS · K,
//   dK = scale · dSᵀ · Q,   dV = Pᵀ · dO
// dK and dV sum over the query heads that share a kv head, so backward is split over
// (batch, kv head): each work item owns its dK/dV slice outright and there are no races.
//
// Dropout on the probabilities (Hugging Face's attn_pdrop / attention_dropout, train mode
// only): O = Pd · V with Pd = P ⊙ M / (1 − p), M[b,h,i,j] ∈ {0, 1} kept with probability
// 1 − p. As in ops/dropout.hpp the mask is never stored: M[b,h,i,j] is
// uniform01(seed, base + ((b·H + h)·T + i)·S + j) >= p, an index over the whole (B, H, T, S)
// grid (one gen.advance(B·H·T·S) per call), so it is the same for any thread count or row
// blocking and backward draws it again. lse stays the log-sum-exp of the undropped scores.
// Backward, writing M' = M / (1 − p):
//   dV = Pdᵀ · dO,   dP = (dO · Vᵀ) ⊙ M',   dS = P ⊙ (dP − Δ)     (P undropped)
// where Δ_i = Σ_j P_ij dP_ij is softmax's own term. It is still rowsum(dO ⊙ O):
//   Σ_j P_ij M'_ij (dO_i · V_j) = dO_i · Σ_j Pd_ij V_j = dO_i · O_i,
// because O is the dropped output; so both paths compute Δ the same way.
#pragma once
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include <omp.h>

#include "../autograd/node.hpp"
#include "../core/dispatch.hpp"
#include "../core/random.hpp"
#include "../core/tensor.hpp"  // the complete Tensor: views, to(), backward()
#include "autocast.hpp"
#include "fast_exp.hpp"
#include "vec_math.hpp"
#include "gemm.hpp"

namespace galvani {

struct AttentionOptions {
  bool causal = true;
  Tensor key_padding_mask;     // (B, S), nonzero = attend, zero = padding (i64, i32 or float); undefined = none
  int64_t sliding_window = 0;  // 0 = none; else query at position i sees key at position j only if 0 <= i - j < window
  int64_t query_offset = -1;   // position of query 0 among the keys; -1 means S - T (the queries are the last T positions, as with a KV cache)
  double scale = 0;            // 0 means 1/sqrt(D)
  double dropout_p = 0;        // dropout on the probabilities (train mode); 0 = none, the fast path
  Generator* gen = nullptr;    // draws the dropout mask; required when dropout_p > 0
};
// ------------------------------------------------------------------ kernel arguments

// A (B, H, N, D) tensor read in place through its strides, D contiguous:
// element [b, h, n, d] is at p[b*sb + h*sh + n*sn + d].
template <class T>
struct HeadView {
  const T* p = nullptr;
  int64_t sb = 0, sh = 0, sn = 0;
  const T* row(int64_t b, int64_t h, int64_t n) const { return p + b * sb + h * sh + n * sn; }
};

// Which keys query row i may see (see the header comment).
struct AttentionMask {
  int64_t S = 0, offset = 0, window = 0;
  bool causal = true;
  const uint8_t* keep = nullptr;  // (B, S): 1 = real token, 0 = padding; nullptr = no padding

  // Visible keys of row i lie in [lo(i), hi(i)); both are non-decreasing in i.
  int64_t lo(int64_t i) const { return window > 0 ? std::clamp<int64_t>(offset + i - window + 1, 0, S) : 0; }
  int64_t hi(int64_t i) const { return (causal || window > 0) ? std::clamp<int64_t>(offset + i + 1, 0, S) : S; }
  bool padded(int64_t b, int64_t j) const { return keep && !keep[b * S + j]; }
};

// Dropout on the probabilities (see the header comment); p == 0 means none.
struct AttentionDropout {
  double p = 0;
  uint64_t seed = 0, base = 0;  // element (b, h, i, j) draws counter base + ((b·H + h)·T + i)·S + j

  bool keep(uint64_t counter) const { return Generator::uniform01(seed, counter) >= p; }

  // One row's probabilities p_row[lo:hi] (keys klo + lo … klo + hi − 1) become P ⊙ M / (1 − p);
  // `first` is the counter of key 0 of this row. 1 / (1 − p) is inf when p == 1, but then
  // nothing is kept and it is never used.
  template <class T>
  void apply(T* p_row, int64_t lo, int64_t hi, int64_t klo, uint64_t first) const {
    const T inv = T(1.0 / (1.0 - p));
    for (int64_t j = lo; j < hi; ++j) p_row[j] = keep(first + uint64_t(klo + j)) ? p_row[j] * inv : T(0);
  }
};

namespace detail {

// The tensor itself when its last dim is contiguous (a transposed (B,T,H,D) view is), else a
// contiguous copy (made once, outside the graph). Keep the returned tensor alive while reading.
inline Tensor last_dim_contiguous(const Tensor& t) {
  return (t.size(-1) <= 1 || t.strides().back() == 1) ? t : t.detach().contiguous();
}

template <class T>
HeadView<T> head_view(const Tensor& t) {
  return {t.data<T>(), t.strides()[0], t.strides()[1], t.strides()[2]};
}

// Query rows per work item. Small blocks waste little on a causal block's diagonal (scores
// above it are computed, then masked); backward wants taller blocks because its dK/dV
// products reduce over the block's rows, and a short reduction keeps the GEMM from speed.
constexpr int64_t kForwardRows = 32, kBackwardRows = 64;

// e^x for the softmax, whose arguments are <= 0 once the row max is subtracted.
// After the two GEMMs, exp is where attention's time goes: one per visible score, forward and
// again in backward. For f32 it is the vectorizable polynomial of ops/fast_exp.hpp (within
// 1 ulp on [-87, 0]); f64 (the gradient checks) keeps std::exp.
inline float softmax_exp(float x) { return expf_poly(x); }
inline double softmax_exp(double x) { return std::exp(x); }

// p[lo:hi] = e^(scale·s − shift) in place, zero elsewhere in [0, nk) and on padded keys:
// the probabilities of one row, given its max (forward) or its log-sum-exp (backward).
template <class T>
void exp_visible(T* p, int64_t nk, int64_t lo, int64_t hi, T scale, T shift, int64_t klo, int64_t b,
                 const AttentionMask& mask) {
  std::fill(p, p + lo, T(0));
  std::fill(p + hi, p + nk, T(0));
  if constexpr (std::is_same_v<T, float>) {
    exp_affine_isa(p + lo, p + lo, hi - lo, scale, shift, 1.0f);  // ops/vec_math.hpp, the level in use
  } else {
    for (int64_t j = lo; j < hi; ++j) p[j] = softmax_exp(scale * p[j] - shift);
  }
  if (mask.keep)
    for (int64_t j = lo; j < hi; ++j)
      if (mask.padded(b, klo + j)) p[j] = T(0);
}

// s: the scores of row i (batch b) for keys klo .. klo+nk-1. Turns them into softmax
// probabilities of scale·s over the visible keys (zeros elsewhere) and returns the
// log-sum-exp of the visible scale·s, or -inf when no key is visible (the row is all zeros).
template <class T>
T softmax_row(T* s, int64_t nk, int64_t klo, int64_t b, int64_t i, T scale, const AttentionMask& mask) {
  const int64_t lo = std::max<int64_t>(mask.lo(i) - klo, 0), hi = std::min<int64_t>(mask.hi(i) - klo, nk);
  T mx = -std::numeric_limits<T>::infinity();
  for (int64_t j = lo; j < hi; ++j)
    if (!mask.padded(b, klo + j)) mx = std::max(mx, scale * s[j]);
  if (mx == -std::numeric_limits<T>::infinity()) {
    std::fill_n(s, nk, T(0));
    return mx;
  }
  exp_visible(s, nk, lo, hi, scale, mx, klo, b, mask);  // mx is finite, so lo < hi
  T total = 0;
  for (int64_t j = lo; j < hi; ++j) total += s[j];
  const T inv = T(1) / total;
  for (int64_t j = lo; j < hi; ++j) s[j] *= inv;
  return mx + std::log(total);
}

}  // namespace detail

// ------------------------------------------------------------------ kernels

// forward: q (B,H,Tq,D), k/v (B,Hkv,S,D), read through HeadViews → out (B,H,Tq,D) contiguous,
// lse (B,H,Tq). With drop.p > 0 the probabilities are dropped before P · V (lse is still the undropped one).
template <class T>
void attention_forward(const HeadView<T>& q, const HeadView<T>& k, const HeadView<T>& v, T* out, T* lse,
                       int64_t B, int64_t H, int64_t Hkv, int64_t Tq, int64_t S, int64_t D, T scale,
                       const AttentionMask& mask, const AttentionDropout& drop = {}) {
  const int64_t group = H / Hkv, nblocks = (Tq + detail::kForwardRows - 1) / detail::kForwardRows;
#pragma omp parallel if (B * H * Tq * S * D > 32768)
  {
    std::vector<T> scores(size_t(detail::kForwardRows * S));  // (rows, keys) of one block, reused
#pragma omp for schedule(dynamic, 1)
    for (int64_t item = 0; item < B * H * nblocks; ++item) {
      const int64_t b = item / (H * nblocks), h = (item / nblocks) % H, g = h / group;
      const int64_t i0 = (item % nblocks) * detail::kForwardRows, i1 = std::min(Tq, i0 + detail::kForwardRows);
      const int64_t nr = i1 - i0;
      const int64_t klo = mask.lo(i0), nk = std::max<int64_t>(mask.hi(i1 - 1) - klo, 0);
      T* o = out + ((b * H + h) * Tq + i0) * D;  // (nr, D)
      T* l = lse + (b * H + h) * Tq + i0;         // (nr)
      // scores (nr, nk) = Q[i0:i1] · K[klo:klo+nk]ᵀ; Kᵀ is read through its strides.
      gemm<T>(nr, nk, D, q.row(b, h, i0), q.sn, 1, k.row(b, g, klo), 1, k.sn, scores.data(), nk, false, false);
      for (int64_t r = 0; r < nr; ++r)
        l[r] = detail::softmax_row<T>(scores.data() + r * nk, nk, klo, b, i0 + r, scale, mask);
      if (drop.p > 0)
        for (int64_t r = 0; r < nr; ++r) {
          const int64_t i = i0 + r;
          const int64_t lo = std::max<int64_t>(mask.lo(i) - klo, 0), hi = std::min<int64_t>(mask.hi(i) - klo, nk);
          drop.apply(scores.data() + r * nk, lo, hi, klo, drop.base + uint64_t(((b * H + h) * Tq + i) * S));
        }
      // O (nr, D) = P · V[klo:klo+nk] (a row with no visible key has P = 0, so O = 0).
      gemm<T>(nr, D, nk, scores.data(), nk, 1, v.row(b, g, klo), v.sn, 1, o, D, false, false);
    }
  }
}

// backward: q, k, v as in forward, out and lse from forward, dout (B,H,Tq,D)
// → dq (B,H,Tq,D), dk, dv (B,Hkv,S,D), all contiguous; every element is written
// (zeroed here, inside the parallel loop, so the fresh pages are touched by both threads).
template <class T>
void attention_backward(const HeadView<T>& q, const HeadView<T>& k, const HeadView<T>& v, const T* out,
                        const T* lse, const HeadView<T>& dout, T* dq, T* dk, T* dv, int64_t B, int64_t H,
                        int64_t Hkv, int64_t Tq, int64_t S, int64_t D, T scale, const AttentionMask& mask,
                        const AttentionDropout& drop = {}) {
  const int64_t group = H / Hkv, nblocks = (Tq + detail::kBackwardRows - 1) / detail::kBackwardRows;
#pragma omp parallel if (B * H * Tq * S * D > 32768)
  {
    std::vector<T> P(size_t(detail::kBackwardRows * S)), dS(size_t(detail::kBackwardRows * S));  // (rows, keys)
#pragma omp for schedule(dynamic, 1)
    for (int64_t item = 0; item < B * Hkv; ++item) {
      const int64_t b = item / Hkv, g = item % Hkv;
      T* dk_g = dk + (b * Hkv + g) * S * D;  // (S, D): only this work item writes it
      T* dv_g = dv + (b * Hkv + g) * S * D;
      std::fill_n(dk_g, S * D, T(0));
      std::fill_n(dv_g, S * D, T(0));
      for (int64_t h = g * group; h < (g + 1) * group; ++h) {
        for (int64_t blk = 0; blk < nblocks; ++blk) {
          const int64_t i0 = blk * detail::kBackwardRows, i1 = std::min(Tq, i0 + detail::kBackwardRows);
          const int64_t nr = i1 - i0;
          const int64_t klo = mask.lo(i0), nk = std::max<int64_t>(mask.hi(i1 - 1) - klo, 0);
          if (nk == 0) {  // no key visible: dQ is zero, nothing reaches dK/dV
            std::fill_n(dq + ((b * H + h) * Tq + i0) * D, nr * D, T(0));
            continue;
          }
          const T* o = out + ((b * H + h) * Tq + i0) * D;
          const T* l = lse + (b * H + h) * Tq + i0;
          // Recompute P (nr, nk) = exp(scale · Q Kᵀ − lse) on the visible keys.
          gemm<T>(nr, nk, D, q.row(b, h, i0), q.sn, 1, k.row(b, g, klo), 1, k.sn, P.data(), nk, false, false);
          // dP (nr, nk) = dO · Vᵀ, into dS, which then becomes scale · P ⊙ (dP − Δ) in place.
          gemm<T>(nr, nk, D, dout.row(b, h, i0), dout.sn, 1, v.row(b, g, klo), 1, v.sn, dS.data(), nk, false, false);
          for (int64_t r = 0; r < nr; ++r) {
            const int64_t i = i0 + r;
            T* p = P.data() + r * nk;
            T* ds = dS.data() + r * nk;
            if (l[r] == -std::numeric_limits<T>::infinity()) {  // the row saw no key
              std::fill_n(p, nk, T(0));
              std::fill_n(ds, nk, T(0));
              continue;
            }
            const int64_t lo = std::max<int64_t>(mask.lo(i) - klo, 0), hi = std::min<int64_t>(mask.hi(i) - klo, nk);
            detail::exp_visible(p, nk, lo, std::max(lo, hi), scale, l[r], klo, b, mask);
            const T* gi = dout.row(b, h, i);
            T delta = 0;  // Δ_i = Σ_d dO[i,d] · O[i,d]  (= Σ_j P[i,j] · dP[i,j])
            for (int64_t d = 0; d < D; ++d) delta += gi[d] * o[r * D + d];
            if (drop.p == 0) {
              for (int64_t j = 0; j < nk; ++j) ds[j] = scale * p[j] * (ds[j] - delta);
            } else {
              // The mask again, from the same counters: dP = (dO · Vᵀ) ⊙ M' and, for dV,
              // P becomes Pd = P ⊙ M'. Outside [lo, hi) P is zero, so dS and Pd are too.
              const T inv = T(1.0 / (1.0 - drop.p));
              const uint64_t first = drop.base + uint64_t(((b * H + h) * Tq + i) * S + klo);
              for (int64_t j = 0; j < nk; ++j) {
                const bool kept = j >= lo && j < hi && drop.keep(first + uint64_t(j));
                ds[j] = scale * p[j] * ((kept ? ds[j] * inv : T(0)) - delta);
                p[j] = kept ? p[j] * inv : T(0);
              }
            }
          }
          // dQ[i0:i1] (nr, D) = dS · K[klo:klo+nk]         (scale already folded into dS)
          gemm<T>(nr, D, nk, dS.data(), nk, 1, k.row(b, g, klo), k.sn, 1, dq + ((b * H + h) * Tq + i0) * D, D,
                  false, false);
          // dK[klo:klo+nk] (nk, D) += dSᵀ · Q[i0:i1]
          gemm<T>(nk, D, nr, dS.data(), 1, nk, q.row(b, h, i0), q.sn, 1, dk_g + klo * D, D, true, false);
          // dV[klo:klo+nk] (nk, D) += Pᵀ · dO[i0:i1]   (Pdᵀ · dO with dropout)
          gemm<T>(nk, D, nr, P.data(), 1, nk, dout.row(b, h, i0), dout.sn, 1, dv_g + klo * D, D, true, false);
        }
      }
    }
  }
}



// q (B, H, T, D), k and v (B, Hkv, S, D) → (B, H, T, D); f32 or f64, any strides.
// Semantics of torch's scaled_dot_product_attention / Hugging Face's eager attention with
// the masks of AttentionOptions (see the header comment for the fully-masked-row exception).
// Under autocast (core/autocast.hpp), f32 q, k, v are rounded to bf16/f16 and so is the output
// (torch's CPU autocast runs sdpa in the lower precision; its kernel sums in f32, as this one).
// Throws galvani::Error for mismatched shapes or dtypes, bad options, mixed devices, or a
// device without a kernel; the key_padding_mask is read on the host.
inline Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                           const AttentionOptions& opt = {}) {
  constexpr const char* op = "scaled_dot_product_attention";
  GALVANI_CHECK(q.defined() && k.defined() && v.defined(), op, ": q, k and v must all be defined tensors");
  if (detail::autocast_applies(q) && k.dtype() == DType::f32 && v.dtype() == DType::f32)
    return detail::autocast_lower([&opt](const Tensor& q2, const Tensor& k2, const Tensor& v2) {
      return scaled_dot_product_attention(q2, k2, v2, opt);
    }, q, k, v);
  const auto shapes = [&] {
    return detail::cat("q ", shape_str(q.shape()), ", k ", shape_str(k.shape()), ", v ", shape_str(v.shape()));
  };
  GALVANI_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4, op, ": expected q (B, H, T, D) and k, v (B, Hkv, S, D), got ",
                shapes());
  GALVANI_CHECK(q.dtype() == k.dtype() && q.dtype() == v.dtype(), op, ": dtypes differ: q ", dtype_name(q.dtype()),
                ", k ", dtype_name(k.dtype()), ", v ", dtype_name(v.dtype()));
  const int64_t B = q.size(0), H = q.size(1), Tq = q.size(2), D = q.size(3);
  const int64_t Hkv = k.size(1), S = k.size(2);
  GALVANI_CHECK(k.shape() == v.shape(), op, ": k and v must have the same shape, got ", shapes());
  GALVANI_CHECK(k.size(0) == B, op, ": batch sizes differ (", B, " queries vs ", k.size(0), " keys): ", shapes());
  GALVANI_CHECK(k.size(3) == D, op, ": head dims differ (q has D = ", D, ", k has D = ", k.size(3), "): ", shapes());
  GALVANI_CHECK(Hkv > 0 && H % Hkv == 0, op, ": the ", H, " query heads are not a multiple of the ", Hkv,
                " key/value heads (grouped-query attention needs H % Hkv == 0): ", shapes());
  GALVANI_CHECK(opt.sliding_window >= 0, op, ": sliding_window must be >= 0 (0 = none), got ", opt.sliding_window);
  GALVANI_CHECK(opt.query_offset >= -1, op, ": query_offset must be >= 0, or -1 for S - T; got ", opt.query_offset);
  GALVANI_CHECK(opt.dropout_p >= 0 && opt.dropout_p <= 1, op, ": dropout_p must be in [0, 1], got ", opt.dropout_p);
  GALVANI_CHECK(opt.dropout_p == 0 || opt.gen, op, ": dropout_p = ", opt.dropout_p,
                " needs a Generator for the mask (AttentionOptions::gen is null): ", shapes());

  AttentionMask mask;
  mask.S = S;
  mask.causal = opt.causal;
  mask.window = opt.sliding_window;
  mask.offset = opt.query_offset < 0 ? S - Tq : opt.query_offset;
  // Positions matter only to the causal and window rules; plain (cross) attention ignores them.
  if (opt.causal || opt.sliding_window > 0)
    GALVANI_CHECK(mask.offset >= 0 && mask.offset + Tq <= S, op, ": the ", Tq, " queries at offset ", mask.offset,
                  " run past the ", S, " keys (query_offset + T > S): ", shapes());
  std::vector<uint8_t> keep;
  if (opt.key_padding_mask.defined()) {
    const Tensor& m = opt.key_padding_mask;
    GALVANI_CHECK(m.dim() == 2 && m.size(0) == B && m.size(1) == S, op, ": key_padding_mask must be (B, S) = (", B,
                  ", ", S, "), got ", shape_str(m.shape()), " (", shapes(), ")");
    // Read on the host: the (B, S) mask becomes the kernel's byte array of kept keys.
    for (double x : host_values<double>(m, "scaled_dot_product_attention (key_padding_mask)")) keep.push_back(x != 0);
  }

  const Tensor qc = detail::last_dim_contiguous(q), kc = detail::last_dim_contiguous(k),
               vc = detail::last_dim_contiguous(v);
  Tensor out = Tensor::empty({B, H, Tq, D}, q.dtype(), q.device());
  Tensor lse = Tensor::empty({B, H, Tq}, q.dtype(), q.device());  // log-sum-exp of each row's scaled scores
  const double scale = opt.scale != 0 ? opt.scale : 1.0 / std::sqrt(double(D));
  AttentionDropout drop;
  if (opt.dropout_p > 0) {  // one counter per (b, h, i, j) of the full grid, drawn once per call
    drop.p = opt.dropout_p;
    drop.seed = opt.gen->seed();
    drop.base = opt.gen->advance(uint64_t(B * H * Tq * S));
  }
  dispatch(op, {{"q", q}, {"k", k}, {"v", v}}, FloatTypes{q.dtype()}, [&]<class T>() {
    mask.keep = keep.empty() ? nullptr : keep.data();
    attention_forward<T>(detail::head_view<T>(qc), detail::head_view<T>(kc), detail::head_view<T>(vc), out.data<T>(),
                         lse.data<T>(), B, H, Hkv, Tq, S, D, T(scale), mask, drop);
  });

  // Saved for backward: the inputs as read, O (a fresh handle: capturing `out` itself
  // would make the node own its own output, a reference cycle), lse, the mask and the
  // dropout's seed and counter base (its mask is drawn again, not stored).
  return record(op, out, {q, k, v},
                [qc, kc, vc, o = out.detach(), lse, mask, keep = std::move(keep), drop, B, H, Hkv, Tq, S, D, scale](
                    const Tensor& g, const Needs& need) -> Grads {
                  const Tensor gc = detail::last_dim_contiguous(g);
                  const Device dev = o.device();
                  Tensor dq = Tensor::empty({B, H, Tq, D}, o.dtype(), dev);
                  Tensor dk = Tensor::empty({B, Hkv, S, D}, o.dtype(), dev);
                  Tensor dv = Tensor::empty({B, Hkv, S, D}, o.dtype(), dev);
                  dispatch("scaled_dot_product_attention backward", {{"grad", gc}, {"q", qc}, {"k", kc}, {"v", vc}},
                           FloatTypes{o.dtype()}, [&]<class T>() {
                    AttentionMask m = mask;
                    m.keep = keep.empty() ? nullptr : keep.data();
                    attention_backward<T>(detail::head_view<T>(qc), detail::head_view<T>(kc), detail::head_view<T>(vc),
                                          o.data<T>(), lse.data<T>(), detail::head_view<T>(gc), dq.data<T>(),
                                          dk.data<T>(), dv.data<T>(), B, H, Hkv, Tq, S, D, T(scale), m, drop);
                  });
                  return {need[0] ? dq : Tensor(), need[1] ? dk : Tensor(), need[2] ? dv : Tensor()};
                });
}

}  // namespace galvani
