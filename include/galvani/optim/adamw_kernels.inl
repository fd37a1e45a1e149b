// optim/adamw_kernels.inl — AdamW's f32 element update (optim/adamw.hpp has the formulas and
// their sources), compiled once per instruction-set level by core/isa_foreach.inl into namespace
// galvani::detail::GALVANI_ISA_NS, every function marked GALVANI_ISA_FN. No includes here.
//
// Why a kernel file: the update is one pass over four arrays (param, grad, exp_avg, exp_avg_sq),
// so it should run at memory speed, but GCC does not vectorize std::sqrt unless the program is
// built with -fno-math-errno (it keeps a call to sqrtf for negative inputs, which set errno). On
// x86 the vector loop below takes the square root with the copy's own instruction (sqrtps at 16,
// 32 or 64 bytes: IEEE square root, correctly rounded, the value std::sqrt gives); elsewhere
// (aarch64) only the scalar loop exists so far. Each element sees the same operations in the
// same order at every level, except that GCC's default -ffp-contract=fast fuses a multiply and
// an add into one FMA where the copy has FMA (m + (g − m)·(1 − β1), v·β2 + g²·(1 − β2), and the
// legacy p − p·λ·lr), which rounds once instead of twice: f32 AdamW therefore differs in the last
// bit between the avx2/avx512 copies and the baseline one (as it did before between a default
// and a -march=native build). Measured in docs/benchmarks.md (SmolLM2-135M: 289–320 ms → ~60 ms
// per step on 2 Zen 3 cores).

namespace GALVANI_ISA_NS {

GALVANI_ISA_FN inline int adamw_kernels_level() { return GALVANI_ISA_LEVEL; }

#if defined(__x86_64__) || defined(__SSE__)
typedef float AdamWVec __attribute__((vector_size(GALVANI_ISA_VECTOR_BYTES)));
// √x per lane with the copy's own instruction (a named function: a lambda would not take the
// copy's target attribute).
GALVANI_ISA_FN inline AdamWVec adamw_sqrt(AdamWVec x) {
#if GALVANI_ISA_VECTOR_BYTES == 64
  return AdamWVec(_mm512_maskz_sqrt_ps(0xFFFF, __m512(x)));  // = _mm512_sqrt_ps, whose undefined passthrough GCC 12 warns about
#elif GALVANI_ISA_VECTOR_BYTES == 32
  return AdamWVec(_mm256_sqrt_ps(__m256(x)));
#else
  return AdamWVec(_mm_sqrt_ps(__m128(x)));
#endif
}
#endif

// torch.optim.AdamW's update of elements [0, n) (legacy = false), or transformers' AdamW
// (legacy = true); the scalars as AdamW::step computes them.
GALVANI_ISA_FN inline void adamw_update(float* __restrict p, const float* __restrict g, float* __restrict m,
                                        float* __restrict v, int64_t n, const AdamWScalars& s) {
  int64_t i = 0;
#if defined(__x86_64__) || defined(__SSE__)
  constexpr int VB = GALVANI_ISA_VECTOR_BYTES, L = VB / 4;
  using V = AdamWVec;
  const V decay = V{} + s.decay, b1c = V{} + (1.0f - s.beta1), b1 = V{} + s.beta1, b2 = V{} + s.beta2,
          b2c = V{} + (1.0f - s.beta2), eps = V{} + s.eps, ss = V{} + s.step_size, bc2 = V{} + s.bc2_sqrt,
          hf_step = V{} + s.hf_step, hf_decay = V{} + s.hf_decay;
  for (; i + L <= n; i += L) {
    V pv, gv, mv, vv;
    std::memcpy(&pv, p + i, VB), std::memcpy(&gv, g + i, VB), std::memcpy(&mv, m + i, VB), std::memcpy(&vv, v + i, VB);
    if (!s.legacy) {
      pv *= decay;
      mv += (gv - mv) * b1c;
      vv = vv * b2 + gv * gv * b2c;
      pv -= ss * mv / (adamw_sqrt(vv) / bc2 + eps);
    } else {
      mv = mv * b1 + gv * b1c;
      vv = vv * b2 + gv * gv * b2c;
      pv -= hf_step * mv / (adamw_sqrt(vv) + eps);
      pv -= pv * hf_decay;
    }
    std::memcpy(p + i, &pv, VB), std::memcpy(m + i, &mv, VB), std::memcpy(v + i, &vv, VB);
  }
#endif
  adamw_update_scalar(p, g, m, v, i, n, s);  // the tail (everything where no vector square root is written above)
}

}  // namespace GALVANI_ISA_NS
