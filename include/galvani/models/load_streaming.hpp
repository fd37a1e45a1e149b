// models/load_streaming.hpp — load a big checkpoint one tensor at a time, in bounded memory.
//
// Mistral-7B is 14.5 GB of bf16 in a few shards. Loading it as a StateDict and then
// copying into the model would hold the checkpoint and the model at once. Instead:
//
//   load_streaming(dir, [&](const std::string& name, const io::TensorView& v) {
//     Tensor w = v.to_tensor();          // zero-copy bf16 view into the mapped shard
//     quantize_nf4_into(params[name], w); // or copy, checksum, …
//   });
//
// visits every tensor once, shard by shard (io::for_each_tensor), with only the current
// shard mapped. Pages of a file mapping count toward the process's RSS while they are
// mapped, so a shard read front to back would fill RSS up to the shard's size; with
// release_pages (the default) each tensor's pages are handed back (MADV_DONTNEED) as soon
// as its callback returns, and peak RSS is what the callback keeps plus about one tensor.
// The bytes stay in the page cache, so nothing is read twice from disk.
//
// The mapping is read-only: a view handed to the callback must not be written through,
// and a zero-copy tensor kept past the callback re-reads its pages from the file.
#pragma once
#include <sys/mman.h>
#include <unistd.h>

#include <map>
#include <set>
#include <string>

#include "../io/pretrained.hpp"
#include "../nn/module.hpp"

namespace galvani {

struct StreamOptions {
  std::string model_type;     // "mistral", "llama", "gpt2": names are canonicalised (io::canonical_key)
                              // and buffers skipped; empty: the file's names, as they are
  bool release_pages = true;  // MADV_DONTNEED each tensor's pages after its callback
};

namespace detail {

// Drop the whole pages inside [p, p + n) from this process's page tables. The pages at the
// ends may hold a neighbouring tensor's bytes; they go when the shard is unmapped.
inline void release_pages(const uint8_t* p, size_t n) {
  static const uintptr_t page = uintptr_t(::sysconf(_SC_PAGESIZE));
  const uintptr_t lo = (reinterpret_cast<uintptr_t>(p) + page - 1) & ~(page - 1);
  const uintptr_t hi = (reinterpret_cast<uintptr_t>(p) + n) & ~(page - 1);
  if (hi > lo) ::madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_DONTNEED);
}

}  // namespace detail

// f(name, view) for every tensor of a safetensors file, an index or a model directory.
inline void load_streaming(const std::filesystem::path& path, const io::TensorCallback& f,
                           const StreamOptions& opt = {}) {
  const auto visit = [&](const std::string& name, const io::TensorView& v) {
    f(name, v);
    if (opt.release_pages && v.nbytes() > 0) detail::release_pages(v.data(), v.nbytes());
  };
  if (opt.model_type.empty()) io::for_each_tensor(path, visit, io::MappedFile::Mode::read_only);
  else io::for_each_pretrained_tensor(path, opt.model_type, visit, io::MappedFile::Mode::read_only);
}

struct StreamLoadReport {
  std::vector<std::string> loaded;      // parameters filled, in checkpoint order
  std::vector<std::string> unexpected;  // checkpoint tensors the model has no parameter for
};

// Copy a checkpoint into `model`'s parameters by name, tensor by tensor, converting the
// checkpoint's dtype (bf16, f16, …) to each parameter's. Peak memory is the model plus about
// one tensor. Shapes must match; with `strict`, every parameter must be in the checkpoint.
// Tensors the model has no parameter for (a tied lm_head.weight, rotary buffers) are skipped
// and listed in the report.
inline StreamLoadReport load_parameters_streaming(Module& model, const std::filesystem::path& path,
                                                  const std::string& model_type, bool strict = true) {
  std::map<std::string, Tensor> params;
  for (auto& [name, t] : model.named_parameters()) params.emplace(name, t);
  StreamLoadReport report;
  std::set<std::string> done;
  StreamOptions opt;
  opt.model_type = model_type;
  load_streaming(path, [&](const std::string& name, const io::TensorView& v) {
    auto it = params.find(name);
    if (it == params.end()) {
      report.unexpected.push_back(name);
      return;
    }
    const Tensor& p = it->second;
    GALVANI_CHECK(v.shape() == p.shape(), v.file(), ": tensor '", name, "' has shape ", shape_str(v.shape()),
                  " in the checkpoint but ", shape_str(p.shape()), " in the model (is it the config the weights were saved with?)");
    copy_into(p, v.to_tensor());  // bf16 → f32 on the fly, straight from the mapped bytes
    done.insert(name);
    report.loaded.push_back(name);
  }, opt);
  if (strict) {
    std::string missing;
    for (const auto& [name, t] : params)
      if (!done.count(name)) missing += (missing.empty() ? "" : ", ") + name;
    GALVANI_CHECK(missing.empty(), path.string(), ": the checkpoint has no tensor for: ", missing);
  }
  return report;
}

}  // namespace galvani
