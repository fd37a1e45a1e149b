// core/memory.hpp — keep freed memory in the process, so training does not
// pay for fresh pages every step.
//
// A training step frees and re-allocates the same large tensors (logits,
// their gradient, activations) every time. By default glibc serves every
// block of 128 KiB or more with mmap and returns it with munmap, so each step
// faults the pages in again — on the VMs galvani is developed on, about 11 µs
// per 4 KiB page, which made a step 5–9x slower (see ../shared/bench/README.md).
// keep_freed_memory() makes glibc serve large blocks from its heap and never
// trim it: after the first step, memory is reused without faults. It is the
// same as the baseline's GLIBC_TUNABLES=glibc.malloc.mmap_max=0:
// glibc.malloc.trim_threshold=…, set from inside the program. It changes a
// process-wide allocator setting, so programs call it (the Trainer does too).
#pragma once
#include <climits>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace galvani {

inline void keep_freed_memory() {
#if defined(__GLIBC__)
  mallopt(M_MMAP_MAX, 0);              // no mmap for large blocks: they come from the heap
  mallopt(M_TRIM_THRESHOLD, INT_MAX);  // and freed heap memory stays mapped for reuse
#endif
}

}  // namespace galvani
