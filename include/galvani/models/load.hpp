// models/load.hpp — the one way weights get into a model: a file, a sharded directory or a
// stream of tensors, one tensor at a time, through the module tree's own loaders.
//
//   load_checkpoint(model, dir, "mistral")   every tensor of the checkpoint goes, by its
//                                            canonical Hugging Face name, to the module that
//                                            owns it (StateLoader, nn/module.hpp), which reads
//                                            it in its own way: by default converted into the
//                                            parameter's dtype, a 4-bit layer's packed bytes
//                                            as they are. Module::load_state_dict() is the
//                                            same path for a StateDict in memory.
//
// Why one tensor at a time: Mistral-7B is 14.5 GB of bf16 in a few shards. Loading it as a StateDict and then
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

#include <algorithm>
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

// The other names safetensors' __metadata__ gives the tensor `v` ({alias: v's name}, where the
// alias is not itself a tensor of the file), canonicalised for `model_type` like tensor names.
inline std::vector<std::string> metadata_aliases(const io::TensorView& v, const std::string& model_type) {
  std::vector<std::string> out;
  const io::Header& h = v.header();
  if (!h.has_metadata) return out;
  for (const auto& entry : h.metadata) {  // not a structured binding: clang 14 cannot capture one
    const std::string& alias = entry.first;
    if (entry.second != v.name()) continue;
    const bool is_tensor = std::any_of(h.tensors.begin(), h.tensors.end(),
                                       [&](const io::TensorInfo& t) { return t.name == alias; });
    if (is_tensor) continue;
    if (model_type.empty()) out.push_back(alias);
    else if (auto key = io::canonical_key(model_type, alias)) out.push_back(*key);
  }
  return out;
}

// Load a checkpoint (a .safetensors file, an index, or a model directory) into `model`,
// tensor by tensor, with canonical names for `model_type` (io::canonical_key: a bare
// GPT2Model's names gain "transformer.", causal-mask buffers and rotary inv_freq are
// skipped). Each tensor goes to the module that owns it (Module::read_own_tensor): shapes
// must match, dtypes are converted by default. A tied pair loads from either name. With
// `strict`, a tensor the model expects and the checkpoint lacks is an error naming it;
// tensors the model has no place for are listed in the report. Peak memory is the model
// plus about one tensor: each tensor is a zero-copy view of the mapped file whose pages are
// released after its module has read it. Names safetensors' save_model() recorded as
// aliases in __metadata__ are followed (metadata_aliases).
inline LoadReport load_checkpoint(Module& model, const std::filesystem::path& path, const std::string& model_type,
                                  bool strict = true) {
  StateLoader loader(model, path.string());
  StreamOptions opt;
  opt.model_type = model_type;
  load_streaming(path, [&](const std::string& name, const io::TensorView& v) {
    // A dtype galvani cannot hold travels as raw bytes; a module that understands it (a
    // quantized layer) takes them, the default loader refuses them with the dtype's name.
    io::StateEntry e = v.dtype() ? io::StateEntry{name, v.to_tensor(), {}, {}}
                                 : io::StateEntry{name, v.bytes(), v.dtype_name(), v.shape()};
    loader.set_origin(v.file());  // errors name the file the tensor came from
    loader.feed(e);
    // safetensors' save_model() writes each of a group of shared tensors once and records
    // the others in __metadata__ as {removed name: kept name}; the removed names are the
    // same tensor, so they are fed the kept one's bytes (a tied GPT-2 saved that way keeps
    // only lm_head.weight and records transformer.wte.weight → lm_head.weight).
    for (const std::string& alias : metadata_aliases(v, model_type)) {
      e.name = alias;
      loader.feed(e);
    }
  }, opt);
  loader.set_origin(path.string());  // what is missing is missing from the whole checkpoint
  return loader.finish(strict);
}

}  // namespace galvani
