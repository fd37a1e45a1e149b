// core/storage.hpp — a block of memory that tensors share.
//
// A Storage owns (or borrows) bytes on one device; Tensors are views onto it. Owned
// memory comes from the device's allocator (core/allocator.hpp). A Storage can also
// borrow memory it does not own — a region of an mmapped safetensors file — keeping
// the owner alive through `keepalive`.
#pragma once
#include <cstddef>
#include <memory>

#include "allocator.hpp"
#include "device.hpp"

namespace galvani {

class Storage {
 public:
  static constexpr size_t kAlignment = CpuAllocator::kAlignment;
  static constexpr size_t kHugePage = CpuAllocator::kHugePage;

  // Fresh, uninitialised memory on `device` (like torch.empty), from allocator_for(device).
  // Throws galvani::Error when the device has no allocator or is out of memory.
  // The bytes are counted in memory_stats(device) until the storage is freed.
  static std::shared_ptr<Storage> allocate(size_t nbytes, Device device = Device::cpu()) {
    DataPtr p = allocator_for(device).allocate(nbytes);
    auto s = std::shared_ptr<Storage>(new Storage());
    s->data_ = p.get();
    s->nbytes_ = nbytes;
    s->device_ = device;
    s->owned_ = true;
    detail::memory_counter(device).add(int64_t(nbytes));
    // The shared_ptr takes the block over (and frees it through its deleter, even if making
    // the shared_ptr itself throws).
    const auto free = p.get_deleter();
    s->keepalive_ = std::shared_ptr<void>(p.release(), [free, nbytes, device](void* q) {
      detail::memory_counter(device).sub(int64_t(nbytes));
      free(q);
    });
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
  // True for memory from allocate(), false for borrow()ed bytes (a file mapping, a caller's
  // buffer): only owned memory may be kept or written as a gradient (autograd/engine.hpp).
  bool owned() const { return owned_; }

 private:
  Storage() = default;
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  Device device_{};
  bool owned_ = false;
  std::shared_ptr<void> keepalive_;  // frees owned memory, or pins a borrowed owner
};

}  // namespace galvani
