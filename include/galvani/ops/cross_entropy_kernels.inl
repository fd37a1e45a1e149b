// ops/cross_entropy_kernels.inl — cross-entropy's f32 row kernels (ops/cross_entropy.hpp explains
// them), compiled once per instruction-set level by core/isa_foreach.inl into namespace
// galvani::detail::GALVANI_ISA_NS, every function marked GALVANI_ISA_FN: the eight-lane loops of
// ops/vec_math.hpp (always inlined) run at the copy's width. The sums are in
// the same order at every level except across vector lanes. No includes here.

namespace GALVANI_ISA_NS {

// The level this copy was compiled for (the public cross_entropy_kernels_level() reports the one that runs).
GALVANI_ISA_FN inline int cross_entropy_kernels_level() { return GALVANI_ISA_LEVEL; }

// Lanes of ops/vec_math.hpp's loops in this copy: one register of its width (8 below AVX-512).
inline constexpr int kCrossEntropyLanes = GALVANI_ISA_VECTOR_BYTES >= 64 ? 16 : 8;


// logsumexp of one contiguous row x (V). Σexp is summed in float within blocks of
// 512 terms (each ≤ 1, split over the vector lanes: 32 per lane with AVX-512) and in
// double across blocks, so the float rounding never grows with V; a float sum of all
// 50257 terms would lose ~1e-5 relative, the size of the parity tolerance.
GALVANI_ISA_FN inline float logsumexp_row(const float* x, int64_t V) {
  const float m = max_f32<kCrossEntropyLanes>(x, V);  // ops/vec_math.hpp, inlined at this copy's width
  constexpr int64_t kBlock = 512;
  double s = 0;
  for (int64_t j0 = 0; j0 < V; j0 += kBlock) s += double(sum_exp_shift<kCrossEntropyLanes>(x + j0, std::min(V, j0 + kBlock) - j0, m));
  return m + float(std::log(s));
}

// The f32 fast path of cross_entropy_forward: rows of logits contiguous (s1 == 1), row stride s0.
template <class I>
GALVANI_ISA_FN void cross_entropy_forward_rows(const float* logits, int64_t s0, const I* targets, float* loss, float* lse, int64_t N,
                                int64_t V, int64_t ignore_index) {
#pragma omp parallel for schedule(static) if (N * V > 16384)
  for (int64_t i = 0; i < N; ++i) {
    const float* x = logits + i * s0;
    const float l = logsumexp_row(x, V);
    lse[i] = l;
    const int64_t t = int64_t(targets[i]);
    loss[i] = t == ignore_index ? 0.0f : l - x[t];
  }
}

// The f32 fast path of cross_entropy_backward: dlogits_i = (e^(x_i − lse_i) − onehot(t_i))·s_i, one pass per row.
template <class I>
GALVANI_ISA_FN void cross_entropy_backward_rows(const float* logits, int64_t s0, const I* targets, const float* lse,
                                 const float* scale, float* dlogits, int64_t N, int64_t V, int64_t ignore_index) {
#pragma omp parallel for schedule(static) if (N * V > 16384)
  for (int64_t i = 0; i < N; ++i) {
    const float* x = logits + i * s0;
    float* d = dlogits + i * V;
    const int64_t t = int64_t(targets[i]);
    if (t == ignore_index || scale[i] == 0.0f) {
      std::fill_n(d, V, 0.0f);
      continue;
    }
    const float l = lse[i], s = scale[i];
    exp_affine<kCrossEntropyLanes>(x, d, V, 1.0f, l, s);
    d[t] -= s;
  }
}

}  // namespace GALVANI_ISA_NS
