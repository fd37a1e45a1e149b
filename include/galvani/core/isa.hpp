// core/isa.hpp — which instruction set the hot kernels use, chosen once at run time.
//
// galvani is header-only, so the compiler flags of the program that includes it decide what
// ordinary code may use; a program built with no flags gets x86-64's SSE2. The hot kernels
// (ops/gemm_kernels.inl, ops/cross_entropy_kernels.inl, quant/nf4_kernels.inl,
// optim/adamw_kernels.inl, ops/vec_math_kernels.inl) are therefore
// compiled several times, once per level below, each copy in its own namespace with a target
// attribute on every function (core/isa_foreach.inl), and
// every call picks the copy for the level in use. This is what PyTorch's ATen does
// (`torch.backends.cpu.get_cpu_capability()`, forced with `ATEN_CPU_CAPABILITY`), and OpenBLAS
// and ggml likewise choose their kernels from the CPU they find.
//
//   level        the copy is compiled for
//   default      the program's own flags (none: SSE2, every x86-64; aarch64: NEON, the ABI's)
//   avx2         AVX2, FMA, BMI1, BMI2, POPCNT        (x86-64-v3's vector features)
//   avx512       AVX-512 F, BW, CD, DQ, VL + avx2's   (x86-64-v4's)
//   avx512_bf16  avx512 + AVX512-BF16                 (the kernels of avx512 until bf16 ones land)
//
// The level in use is the highest the CPU has (cpuid through __builtin_cpu_supports, which also
// checks that the OS saves the wide registers), or the one named by the environment variable
// GALVANI_CPU_CAPABILITY (default|avx2|avx512|avx512_bf16; read at the first kernel call), or the
// one set by set_cpu_capability() — both for tests and benchmarks, and both refuse a level this
// CPU lacks (PyTorch falls back silently; a forced test should not pass by running something
// else): set_cpu_capability() with a galvani::Error, the environment variable by ending the
// program with a message and exit status 2 (see cpu_capability()). In a program built with
// flags at or above a level (-march=native), that level and those below run the same code: the
// program's own. docs/performance.md has the design.
#pragma once
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "error.hpp"

// The level the including program's own flags already give (0, 1 or 2, as kernel_variant()).
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512DQ__) && defined(__AVX512VL__) && \
    defined(__AVX2__) && defined(__FMA__)
#define GALVANI_ISA_BASE_LEVEL 2
#elif defined(__AVX2__) && defined(__FMA__)
#define GALVANI_ISA_BASE_LEVEL 1
#else
#define GALVANI_ISA_BASE_LEVEL 0
#endif
// Whether more copies than the base one are compiled: x86-64 with GCC or Clang, unless the
// program defines GALVANI_NO_ISA_DISPATCH (then the program's flags alone decide).
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(GALVANI_NO_ISA_DISPATCH)
#define GALVANI_ISA_MULTI 1
#else
#define GALVANI_ISA_MULTI 0
#endif

namespace galvani {

enum class CpuCapability : int { baseline = 0, avx2 = 1, avx512 = 2, avx512_bf16 = 3 };

// PyTorch's spelling: "default", "avx2", "avx512" (and galvani's "avx512_bf16").
inline const char* cpu_capability_name(CpuCapability c) {
  switch (c) {
    case CpuCapability::avx2: return "avx2";
    case CpuCapability::avx512: return "avx512";
    case CpuCapability::avx512_bf16: return "avx512_bf16";
    default: return "default";
  }
}

// The highest level this CPU (and OS) supports.
inline CpuCapability cpu_capability_supported() {
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
  static const CpuCapability level = [] {
    __builtin_cpu_init();
    // Every feature the copies are compiled for (core/isa_foreach.inl), no fewer.
    const bool v3 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                    __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2") &&
                    __builtin_cpu_supports("popcnt");
    const bool v4 = v3 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                    __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
                    __builtin_cpu_supports("avx512cd");
    if (v4 && __builtin_cpu_supports("avx512bf16")) return CpuCapability::avx512_bf16;
    if (v4) return CpuCapability::avx512;
    return v3 ? CpuCapability::avx2 : CpuCapability::baseline;
  }();
  return level;
#else
  return CpuCapability::baseline;
#endif
}

// "default" (or "baseline"), "avx2", "avx512", "avx512_bf16" → the level. Error: any other name.
inline CpuCapability parse_cpu_capability(std::string_view name) {
  if (name == "default" || name == "baseline") return CpuCapability::baseline;
  if (name == "avx2") return CpuCapability::avx2;
  if (name == "avx512") return CpuCapability::avx512;
  if (name == "avx512_bf16") return CpuCapability::avx512_bf16;
  throw Error("unknown CPU capability '" + std::string(name) + "': expected default, avx2, avx512 or avx512_bf16");
}

namespace detail {
inline std::atomic<int>& cpu_capability_slot() {
  static std::atomic<int> slot{-1};  // -1: not chosen yet
  return slot;
}
inline void check_cpu_capability(CpuCapability c, const char* who) {
  const CpuCapability have = cpu_capability_supported();
  GALVANI_CHECK(int(c) <= int(have), who, " asks for CPU capability ", cpu_capability_name(c),
                " but this CPU supports at most ", cpu_capability_name(have), "; choose one of the levels up to it");
}
}  // namespace detail

// Use level `c` from now on (tests, benchmarks). Error: the CPU lacks it.
inline void set_cpu_capability(CpuCapability c) {
  detail::check_cpu_capability(c, "set_cpu_capability");
  detail::cpu_capability_slot().store(int(c), std::memory_order_relaxed);
}

// The level the kernels use now (see the top). GALVANI_CPU_CAPABILITY is read at the first
// call, usually from a kernel, possibly inside an OpenMP region where an exception could only
// abort: an unknown level, or one this CPU lacks, therefore ends the program there with
// "galvani: GALVANI_CPU_CAPABILITY: …" on stderr and exit status 2.
inline CpuCapability cpu_capability() {
  int v = detail::cpu_capability_slot().load(std::memory_order_relaxed);
  if (v >= 0) return CpuCapability(v);
  CpuCapability c = cpu_capability_supported();
  if (const char* env = std::getenv("GALVANI_CPU_CAPABILITY"); env && *env) {
    try {
      c = parse_cpu_capability(env);
      detail::check_cpu_capability(c, "GALVANI_CPU_CAPABILITY");
    } catch (const Error& e) {
      std::fprintf(stderr, "galvani: GALVANI_CPU_CAPABILITY: %s\n", e.what());
      std::fflush(nullptr);
      std::_Exit(2);  // not exit(): no atexit handlers from inside a parallel region
    }
  }
  detail::cpu_capability_slot().store(int(c), std::memory_order_relaxed);
  return c;
}

namespace detail {
// Which compiled copy of the kernels serves the level in use: 0 isa_base, 1 isa_avx2,
// 2 isa_avx512 (see core/isa_foreach.inl).
inline int kernel_variant() {
  const int level = int(cpu_capability());
  return level > 2 ? 2 : level;
}
}  // namespace detail

// GALVANI_ISA_CALL(ns, fn(args…)) returns ns::isa_avx512::fn(args…), ns::isa_avx2::fn(args…) or
// ns::isa_base::fn(args…), whichever copy detail::kernel_variant() picks: the one switch every
// dispatching entry point shares. ns is the namespace that included core/isa_foreach.inl.
#define GALVANI_ISA_CALL(ns, ...)                      \
  switch (::galvani::detail::kernel_variant()) {       \
    case 2: return ns::isa_avx512::__VA_ARGS__;        \
    case 1: return ns::isa_avx2::__VA_ARGS__;          \
    default: return ns::isa_base::__VA_ARGS__;         \
  }

}  // namespace galvani
