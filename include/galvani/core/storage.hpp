// core/storage.hpp — a block of memory that tensors share.
//
// A Storage owns (or borrows) bytes; Tensors are views onto it. CPU memory is
// 64-byte aligned so SIMD loads of a row never straddle a cache line at its
// start. A Storage can also borrow memory it does not own — a region of an
// mmapped safetensors file — keeping the owner alive through `keepalive`.
#pragma once
#include <sys/mman.h>

#include <cstdlib>
#include <cstring>
#include <memory>

#include "device.hpp"
#include "error.hpp"

namespace galvani {

class Storage {
 public:
  static constexpr size_t kAlignment = 64;

  static constexpr size_t kHugePage = size_t(2) << 20;

  // Fresh, uninitialised CPU memory (like torch.empty).
  static std::shared_ptr<Storage> allocate(size_t nbytes) {
    auto s = std::shared_ptr<Storage>(new Storage());
    // Blocks of 2 MiB and more are 2 MiB aligned and marked for transparent
    // huge pages: touching them for the first time then costs one page fault
    // per 2 MiB instead of one per 4 KiB (a 400 MB logits tensor: 200, not 100,000).
    const size_t align = nbytes >= kHugePage ? kHugePage : kAlignment;
    size_t rounded = (nbytes + align - 1) / align * align;
    if (rounded == 0) rounded = align;
    void* p = std::aligned_alloc(align, rounded);
    if (p && align == kHugePage) madvise(p, rounded, MADV_HUGEPAGE);
    if (!p) throw Error(detail::cat("Storage: out of memory allocating ", nbytes, " bytes"));
    s->data_ = p;
    s->nbytes_ = nbytes;
    s->keepalive_ = std::shared_ptr<void>(p, [](void* q) { std::free(q); });
    return s;
  }

  // Borrowed memory: `owner` is kept alive as long as any tensor uses the bytes.
  static std::shared_ptr<Storage> borrow(void* data, size_t nbytes, std::shared_ptr<void> owner,
                                         Device device = Device::cpu()) {
    auto s = std::shared_ptr<Storage>(new Storage());
    s->data_ = data;
    s->nbytes_ = nbytes;
    s->keepalive_ = std::move(owner);
    s->device_ = device;
    return s;
  }

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }

 private:
  Storage() = default;
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  Device device_{};
  std::shared_ptr<void> keepalive_;  // frees owned memory, or pins a borrowed owner
};

}  // namespace galvani
