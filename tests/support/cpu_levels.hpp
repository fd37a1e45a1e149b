// tests/support/cpu_levels.hpp — run a test body once per instruction-set level this CPU has
// (core/isa.hpp), so every compiled copy of the kernels (default, avx2, avx512) is checked
// against the same reference. What runs is the CPU's: a machine without AVX-512 never runs the
// avx512 copy, and a test built with -march=native runs its own (native) copy, once.
#pragma once
#include <catch2/catch.hpp>

#include <algorithm>

#include <galvani/core/isa.hpp>

namespace galvani::testing {

// The compiled copy of the kernels that runs at `level` (core/isa_foreach.inl): detail::
// kernel_variant()'s choice, where a copy the program's flags already cover is the base copy, and
// a program built with GALVANI_NO_ISA_DISPATCH has the base copy alone.
inline int kernel_copy_at(int level) {
  return GALVANI_ISA_MULTI ? std::max(std::min(level, 2), GALVANI_ISA_BASE_LEVEL) : GALVANI_ISA_BASE_LEVEL;
}

// body(level) with cpu_capability() == level, for each level up to cpu_capability_supported()
// that runs a copy of the kernels no lower level ran: each copy once (a -march=native build, or
// one with GALVANI_NO_ISA_DISPATCH, runs the body once for the levels its own copy serves); the
// level in use before is restored afterwards, also when the body throws.
template <class F>
void for_each_cpu_capability(F&& body) {
  struct Restore {
    CpuCapability was = cpu_capability();
    ~Restore() { set_cpu_capability(was); }
  } restore;
  int done = -1;  // the last copy run; kernel_copy_at never decreases with the level
  for (int level = 0; level <= int(cpu_capability_supported()); ++level) {
    if (kernel_copy_at(level) == done) continue;
    done = kernel_copy_at(level);
    set_cpu_capability(CpuCapability(level));
    INFO("CPU capability " << cpu_capability_name(CpuCapability(level)));
    body(CpuCapability(level));
  }
}

}  // namespace galvani::testing
