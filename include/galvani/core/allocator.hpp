// core/allocator.hpp — where a Storage's bytes come from: one allocator per device.
//
// Storage never calls malloc or cudaMalloc itself; it asks allocator_for(device). The CPU
// allocator is always there. A CUDA build registers its (caching) allocator for each GPU
// with register_allocator() at start-up, so the code that makes tensors does not change
// when a device is added. Asking for a device nobody registered is a clear error, never
// a silent fall-back to host memory.
//
// The registry is process-wide, like torch's: registration happens once, before tensors
// are made on that device, and is not synchronised against concurrent lookups.
#pragma once
#include <sys/mman.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <utility>
#include <vector>

#include "device.hpp"
#include "error.hpp"

namespace galvani {

// Owned memory and the function that frees it. A plain function pointer is enough: an
// allocator is a process-wide object its free function can reach without captured state.
using DataPtr = std::unique_ptr<void, void (*)(void*)>;

class Allocator {
 public:
  virtual ~Allocator() = default;
  // Fresh, uninitialised memory for `nbytes` bytes (nbytes may be 0; the pointer is
  // still valid and unique). Throws galvani::Error when the device is out of memory.
  virtual DataPtr allocate(size_t nbytes) = 0;
  virtual const char* name() const = 0;  // for error messages and logs
};

// Host memory, 64-byte aligned so SIMD loads of a row never straddle a cache line at its start.
class CpuAllocator final : public Allocator {
 public:
  static constexpr size_t kAlignment = 64;
  static constexpr size_t kHugePage = size_t(2) << 20;

  DataPtr allocate(size_t nbytes) override {
    // Blocks of 2 MiB and more are 2 MiB aligned and marked for transparent
    // huge pages: touching them for the first time then costs one page fault
    // per 2 MiB instead of one per 4 KiB (a 400 MB logits tensor: 200, not 100,000).
    const size_t align = nbytes >= kHugePage ? kHugePage : kAlignment;
    size_t rounded = (nbytes + align - 1) / align * align;
    if (rounded == 0) rounded = align;
    void* p = std::aligned_alloc(align, rounded);
    if (p && align == kHugePage) madvise(p, rounded, MADV_HUGEPAGE);
    if (!p) throw Error(detail::cat("Storage: out of memory allocating ", nbytes, " bytes"));
    return DataPtr(p, [](void* q) { std::free(q); });
  }
  const char* name() const override { return "cpu (aligned_alloc, huge pages from 2 MiB)"; }
};

namespace detail {
// Registered allocators other than the CPU one: (device, allocator) pairs.
inline std::vector<std::pair<Device, Allocator*>>& allocator_registry() {
  static std::vector<std::pair<Device, Allocator*>> registry;
  return registry;
}
}  // namespace detail

// ------------------------------------------------------------------ memory statistics
// How many bytes of tensor storage are allocated on a device now, and the most there were
// since the last reset — torch.cuda.memory_allocated / max_memory_allocated /
// reset_peak_memory_stats, for every device. Storage::allocate counts each block it gets
// from a device's allocator (the bytes asked for, not the allocator's rounding) until the
// block is freed; memory a tensor borrows (an mmapped checkpoint) is not counted. So the
// difference between two readings is what tensors hold: e.g. the activations a forward pass
// keeps for backward (tests/test_grad_checkpoint.cpp measures gradient checkpointing so).
// Counters are process-wide atomics, like torch's per-device allocator statistics.
struct MemoryStats {
  int64_t allocated = 0;  // bytes held by live tensor storage
  int64_t peak = 0;       // the most `allocated` reached since the last reset
};

namespace detail {
struct MemoryCounter {
  std::atomic<int64_t> allocated{0}, peak{0};
  void add(int64_t n) {
    const int64_t now = allocated.fetch_add(n, std::memory_order_relaxed) + n;
    int64_t p = peak.load(std::memory_order_relaxed);
    while (now > p && !peak.compare_exchange_weak(p, now, std::memory_order_relaxed)) {
    }
  }
  void sub(int64_t n) { allocated.fetch_sub(n, std::memory_order_relaxed); }
};
// One counter per device: the CPU, then cuda:0 … cuda:62 (a larger index shares the last).
inline MemoryCounter& memory_counter(Device d) {
  static std::array<MemoryCounter, 64> counters;
  const size_t i = d.is_cpu() ? 0 : size_t(std::min(d.index + 1, 63));
  return counters[i];
}
}  // namespace detail

inline MemoryStats memory_stats(Device device = Device::cpu()) {
  const detail::MemoryCounter& c = detail::memory_counter(device);
  return {c.allocated.load(std::memory_order_relaxed), c.peak.load(std::memory_order_relaxed)};
}
inline int64_t memory_allocated(Device device = Device::cpu()) { return memory_stats(device).allocated; }
inline int64_t max_memory_allocated(Device device = Device::cpu()) { return memory_stats(device).peak; }
// Start a new peak from what is allocated now.
inline void reset_peak_memory_stats(Device device = Device::cpu()) {
  detail::MemoryCounter& c = detail::memory_counter(device);
  c.peak.store(c.allocated.load(std::memory_order_relaxed), std::memory_order_relaxed);
}

// Makes `allocator` the one for `device` (replacing any earlier one). The allocator must
// outlive every tensor made with it. Passing nullptr unregisters the device.
// Throws galvani::Error for the CPU, whose allocator is fixed.
inline void register_allocator(Device device, Allocator* allocator) {
  GALVANI_CHECK(!device.is_cpu(), "register_allocator: the cpu allocator cannot be replaced");
  auto& reg = detail::allocator_registry();
  std::erase_if(reg, [&](const auto& entry) { return entry.first == device; });
  if (allocator) reg.emplace_back(device, allocator);
}

// The allocator for `device`. Throws galvani::Error naming the device when none is
// registered (in a build without CUDA, that is every cuda:N).
inline Allocator& allocator_for(Device device) {
  static CpuAllocator cpu;
  if (device.is_cpu()) return cpu;
  for (const auto& [d, a] : detail::allocator_registry())
    if (d == device) return *a;
  throw Error(detail::cat("allocator_for(", device.str(), "): no allocator for ", device.str(),
                          ": galvani was built without CUDA; ", device.str(),
                          " tensors need a build with -DGALVANI_CUDA=ON and a GPU"));
}

}  // namespace galvani
