// io/mmap_file.hpp — a whole file mapped into memory, shared by the tensors that view it.
//
// Checkpoints are read by mapping them, not by copying them: the kernel pages the
// bytes in on first touch, and tensors made with Tensor::from_blob point straight
// into the mapping. A MappedFile lives in a shared_ptr; every tensor viewing it holds
// a reference, so the mapping is unmapped only when the last such tensor is gone.
//
// Two mapping modes:
//   copy_on_write (default) — PROT_READ|PROT_WRITE, MAP_PRIVATE. Writing to a tensor
//     (an optimizer step on a loaded weight) copies that page privately; the file on
//     disk never changes. Pages never written stay shared with the page cache.
//   read_only — PROT_READ. A write through a tensor would crash (SIGSEGV), so use it
//     only where nothing writes (inspecting, streaming conversion, benchmarks).
//
// from_bytes() wraps bytes already in memory the same way (tests, the fuzz target):
// those live in an exact-size heap block, so AddressSanitizer sees any read past
// the end — a mapped file would hide a small overrun inside its last page.
#pragma once
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "../core/error.hpp"

namespace galvani::io {

class MappedFile {
 public:
  enum class Mode { copy_on_write, read_only };

  static std::shared_ptr<MappedFile> open(const std::filesystem::path& path, Mode mode = Mode::copy_on_write) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw Error(galvani::detail::cat(path.string(), ": cannot open: ", std::strerror(errno)));
    struct stat st{};
    if (::fstat(fd, &st) != 0) {
      int e = errno;
      ::close(fd);
      throw Error(galvani::detail::cat(path.string(), ": cannot stat: ", std::strerror(e)));
    }
    if (!S_ISREG(st.st_mode)) {
      ::close(fd);
      throw Error(galvani::detail::cat(path.string(), ": not a regular file"));
    }
    auto f = std::shared_ptr<MappedFile>(new MappedFile());
    f->path_ = path.string();
    f->size_ = size_t(st.st_size);
    if (f->size_ > 0) {  // mmap of length 0 is an error; an empty file simply has no bytes
      int prot = mode == Mode::read_only ? PROT_READ : (PROT_READ | PROT_WRITE);
      void* p = ::mmap(nullptr, f->size_, prot, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        int e = errno;
        ::close(fd);
        throw Error(galvani::detail::cat(path.string(), ": cannot mmap ", f->size_, " bytes: ", std::strerror(e)));
      }
      f->data_ = static_cast<uint8_t*>(p);
      f->mapped_ = true;
    }
    ::close(fd);  // the mapping keeps its own reference to the file
    return f;
  }

  // Bytes already in memory, named `name` in error messages.
  static std::shared_ptr<MappedFile> from_bytes(std::vector<uint8_t> bytes, std::string name) {
    auto f = std::shared_ptr<MappedFile>(new MappedFile());
    f->path_ = std::move(name);
    f->size_ = bytes.size();
    if (!bytes.empty()) {
      // An exact-size block (not the vector's, which may have spare capacity) so
      // AddressSanitizer flags a read one byte past the end.
      f->owned_.reset(new uint8_t[bytes.size()]);
      std::memcpy(f->owned_.get(), bytes.data(), bytes.size());
      f->data_ = f->owned_.get();
    }
    return f;
  }

  ~MappedFile() {
    if (mapped_) ::munmap(data_, size_);
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  uint8_t* mutable_data() const { return data_; }  // writable in copy_on_write mode only
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

  // Hints to the kernel's read-ahead; harmless when they do nothing.
  void advise_sequential() const {
    if (mapped_) ::madvise(data_, size_, MADV_SEQUENTIAL);
  }
  void advise_willneed() const {
    if (mapped_) ::madvise(data_, size_, MADV_WILLNEED);
  }

 private:
  MappedFile() = default;
  std::string path_;
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  bool mapped_ = false;
  std::unique_ptr<uint8_t[]> owned_;
};

}  // namespace galvani::io
