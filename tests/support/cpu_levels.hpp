// tests/support/cpu_levels.hpp — run a test body once per instruction-set level this CPU has
// (core/isa.hpp), so every compiled copy of the kernels (default, avx2, avx512) is checked
// against the same reference. What runs is the CPU's: a machine without AVX-512 never runs the
// avx512 copy, and a test built with -march=native runs its own (native) copy for every level.
#pragma once
#include <catch2/catch.hpp>

#include <galvani/core/isa.hpp>

namespace galvani::testing {

// body(level) with cpu_capability() == level, for each level up to cpu_capability_supported();
// the level in use before is restored afterwards, also when the body throws.
template <class F>
void for_each_cpu_capability(F&& body) {
  struct Restore {
    CpuCapability was = cpu_capability();
    ~Restore() { set_cpu_capability(was); }
  } restore;
  for (int level = 0; level <= int(cpu_capability_supported()); ++level) {
    set_cpu_capability(CpuCapability(level));
    INFO("CPU capability " << cpu_capability_name(CpuCapability(level)));
    body(CpuCapability(level));
  }
}

}  // namespace galvani::testing
