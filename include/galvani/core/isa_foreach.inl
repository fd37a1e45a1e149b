// core/isa_foreach.inl — compile the kernel file named by GALVANI_ISA_KERNELS once per
// instruction-set level (core/isa.hpp), each copy in its own namespace:
//
//   isa_avx512  AVX-512 F/BW/CD/DQ/VL + the avx2 copy's features, 512-bit vectors preferred
//   isa_avx2    AVX2, FMA, BMI1/2, POPCNT (exactly what core/isa.hpp checks the CPU for)
//   isa_base    the program's own flags; really named isa_base_l0/_l1/_l2 after the level
//               those flags give (so TUs built with different flags never share a mangled
//               name for different code), with isa_base an alias
//
// Include it inside the namespace the kernels belong to, with GALVANI_ISA_KERNELS a path
// relative to this file (e.g. "../ops/gemm_kernels.inl"). In each copy:
//   GALVANI_ISA_NS     the namespace's name;
//   GALVANI_ISA_FN     the target attribute, which the kernel file puts on every function;
//   GALVANI_ISA_LEVEL  0, 1 or 2, for the kernels' `#if`s (the compiler's own __AVX2__ and
//                      __AVX512F__ describe the program's flags, not the function's target);
//   GALVANI_ISA_VECTOR_BYTES  the hardware vector width: 64, 32, or 16 (SSE2, NEON).
// Features, not "arch=x86-64-v3": GCC never inlines a function of another arch or tuning, so
// with arch= every std::min and every library helper would stay a call. An attribute on each
// function, not `#pragma GCC target` around the file: GCC 12 drops the
// pragma's target from functions stored in a precompiled header (the copies then come out as
// plain SSE2), while attributes survive. A lambda does not inherit its enclosing function's
// attribute, so a kernel that must run at the copy's level is a named function. A copy the
// program's flags already cover (-march=native on an AVX-512 machine) is not compiled again:
// its name becomes an alias of isa_base — so in such a program forcing a lower level runs the
// base copy, which is the program's level (the tests and docs say so). Entry points dispatch with detail::kernel_variant().
//
// A kernel file includes nothing: every header it needs is included before this file, so no
// library code outside the kernels is compiled for a level the CPU may lack.
#ifndef GALVANI_ISA_KERNELS
#error "define GALVANI_ISA_KERNELS (the kernel file) before including core/isa_foreach.inl"
#endif

#if GALVANI_ISA_MULTI && GALVANI_ISA_BASE_LEVEL < 2
#if defined(__clang__)
#define GALVANI_ISA_FN \
  __attribute__((target("avx512f,avx512bw,avx512cd,avx512dq,avx512vl,avx2,fma,bmi,bmi2,popcnt")))
#else
#define GALVANI_ISA_FN                                                                                            \
  __attribute__((target("avx512f,avx512bw,avx512cd,avx512dq,avx512vl,avx2,fma,bmi,bmi2,popcnt", \
                        "prefer-vector-width=512")))
#endif
#define GALVANI_ISA_NS isa_avx512
#define GALVANI_ISA_LEVEL 2
#define GALVANI_ISA_VECTOR_BYTES 64
#include GALVANI_ISA_KERNELS
#undef GALVANI_ISA_NS
#undef GALVANI_ISA_LEVEL
#undef GALVANI_ISA_VECTOR_BYTES
#undef GALVANI_ISA_FN
#endif

#if GALVANI_ISA_MULTI && GALVANI_ISA_BASE_LEVEL < 1
#define GALVANI_ISA_FN __attribute__((target("avx2,fma,bmi,bmi2,popcnt")))
#define GALVANI_ISA_NS isa_avx2
#define GALVANI_ISA_LEVEL 1
#define GALVANI_ISA_VECTOR_BYTES 32
#include GALVANI_ISA_KERNELS
#undef GALVANI_ISA_NS
#undef GALVANI_ISA_LEVEL
#undef GALVANI_ISA_VECTOR_BYTES
#undef GALVANI_ISA_FN
#endif

#define GALVANI_ISA_FN
#if GALVANI_ISA_BASE_LEVEL == 2
#define GALVANI_ISA_NS isa_base_l2
#elif GALVANI_ISA_BASE_LEVEL == 1
#define GALVANI_ISA_NS isa_base_l1
#else
#define GALVANI_ISA_NS isa_base_l0
#endif
#define GALVANI_ISA_LEVEL GALVANI_ISA_BASE_LEVEL
#define GALVANI_ISA_VECTOR_BYTES (GALVANI_ISA_BASE_LEVEL == 2 ? 64 : GALVANI_ISA_BASE_LEVEL == 1 ? 32 : 16)
#include GALVANI_ISA_KERNELS
#undef GALVANI_ISA_NS
#undef GALVANI_ISA_LEVEL
#undef GALVANI_ISA_VECTOR_BYTES
#undef GALVANI_ISA_FN
#undef GALVANI_ISA_KERNELS

#if GALVANI_ISA_BASE_LEVEL == 2
namespace isa_base = isa_base_l2;
#elif GALVANI_ISA_BASE_LEVEL == 1
namespace isa_base = isa_base_l1;
#else
namespace isa_base = isa_base_l0;
#endif

#if !(GALVANI_ISA_MULTI && GALVANI_ISA_BASE_LEVEL < 2)
namespace isa_avx512 = isa_base;
#endif
#if !(GALVANI_ISA_MULTI && GALVANI_ISA_BASE_LEVEL < 1)
namespace isa_avx2 = isa_base;
#endif
