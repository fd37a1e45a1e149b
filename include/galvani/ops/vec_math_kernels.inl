// ops/vec_math_kernels.inl — the f32 loops of ops/vec_math.hpp that softmax (attention) and the
// MLP activations use, compiled once per instruction-set level by core/isa_foreach.inl into
// namespace galvani::detail::GALVANI_ISA_NS, every function marked GALVANI_ISA_FN: the always
// inlined lanes run at the copy's width (16 lanes at the avx512 levels, 8 below), so a program
// built with no flags gets AVX2 on an AVX2 CPU. The cross-entropy has its own kernel file. No
// includes here.

namespace GALVANI_ISA_NS {

// The level this copy was compiled for (the public vec_math_kernels_level() reports the one that runs).
GALVANI_ISA_FN inline int vec_math_kernels_level() { return GALVANI_ISA_LEVEL; }

inline constexpr int kVecMathLanes = GALVANI_ISA_VECTOR_BYTES >= 64 ? 16 : 8;

GALVANI_ISA_FN inline void exp_affine_k(const float* x, float* y, int64_t n, float a, float b, float c) {
  exp_affine<kVecMathLanes>(x, y, n, a, b, c);
}
GALVANI_ISA_FN inline void silu_mul_forward_k(const float* a, const float* u, float* y, int64_t n) {
  silu_mul_forward_f32<kVecMathLanes>(a, u, y, n);
}
GALVANI_ISA_FN inline void silu_mul_backward_k(const float* g, const float* a, const float* u, float* da, float* du,
                                               int64_t n) {
  silu_mul_backward_f32<kVecMathLanes>(g, a, u, da, du, n);
}
GALVANI_ISA_FN inline void gelu_tanh_forward_k(const float* x, float* y, int64_t n) {
  gelu_tanh_forward_f32<kVecMathLanes>(x, y, n);
}
GALVANI_ISA_FN inline void gelu_tanh_backward_k(const float* g, const float* x, float* dx, int64_t n) {
  gelu_tanh_backward_f32<kVecMathLanes>(g, x, dx, n);
}

}  // namespace GALVANI_ISA_NS
