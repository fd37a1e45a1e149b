// io/state_dict.hpp — named tensors in order: what a checkpoint holds and what a model loads.
//
// A StateDict is torch's `model.state_dict()`: Hugging Face names
// ("transformer.h.0.attn.c_attn.weight") mapped to tensors, kept in insertion order
// so a save is deterministic and a listing reads like the model.
//
// Some checkpoint dtypes have no galvani DType (I8, U16, F8_E4M3, BOOL, …). They
// must still flow from a file to a file untouched (the [qlora] issue adds
// bitsandbytes keys), so an entry can be *raw*: its tensor is the flat u8 bytes,
// `raw_dtype` is the safetensors dtype string and `raw_shape` the logical shape.
// at() refuses raw entries with a clear error; entry() and the writer accept them.
#pragma once
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "../core/tensor.hpp"

namespace galvani::io {

struct StateEntry {
  std::string name;
  Tensor tensor;          // the tensor; for a raw entry, its bytes as u8 [nbytes]
  std::string raw_dtype;  // empty, or a safetensors dtype galvani cannot hold ("I8", "F8_E4M3", …)
  Shape raw_shape;        // a raw entry's logical shape

  bool is_raw() const { return !raw_dtype.empty(); }
  const Shape& shape() const { return is_raw() ? raw_shape : tensor.shape(); }
  size_t nbytes() const { return tensor.nbytes(); }
};

class StateDict {
 public:
  // Adds a tensor; a name already present is an error (a checkpoint cannot hold two).
  void insert(std::string name, Tensor t) {
    GALVANI_CHECK(t.defined(), "StateDict: tensor '", name, "' is undefined");
    add(StateEntry{std::move(name), std::move(t), {}, {}});
  }
  // Adds bytes of a dtype galvani cannot hold; `bytes` is a u8 tensor.
  void insert_raw(std::string name, std::string st_dtype, Shape shape, Tensor bytes) {
    GALVANI_CHECK(bytes.defined() && bytes.dtype() == DType::u8, "StateDict: raw tensor '", name,
                  "' must be given as u8 bytes");
    add(StateEntry{std::move(name), std::move(bytes), std::move(st_dtype), std::move(shape)});
  }
  // Inserts or replaces.
  void set(const std::string& name, Tensor t) {
    if (auto it = index_.find(name); it != index_.end()) entries_[it->second] = StateEntry{name, std::move(t), {}, {}};
    else insert(name, std::move(t));
  }

  bool contains(const std::string& name) const { return index_.count(name) != 0; }
  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }

  const StateEntry* find(const std::string& name) const {
    auto it = index_.find(name);
    return it == index_.end() ? nullptr : &entries_[it->second];
  }
  const StateEntry& entry(const std::string& name) const {
    const StateEntry* e = find(name);
    GALVANI_CHECK(e, "StateDict: no tensor named '", name, "'", hint(name));
    return *e;
  }
  const Tensor& at(const std::string& name) const {
    const StateEntry& e = entry(name);
    GALVANI_CHECK(!e.is_raw(), "StateDict: tensor '", name, "' has safetensors dtype ", e.raw_dtype,
                  ", which galvani's Tensor cannot hold; read its bytes with entry()");
    return e.tensor;
  }

  bool erase(const std::string& name) {
    auto it = index_.find(name);
    if (it == index_.end()) return false;
    entries_.erase(entries_.begin() + std::ptrdiff_t(it->second));
    reindex();
    return true;
  }
  void rename(const std::string& from, const std::string& to) {
    if (from == to) return;
    auto it = index_.find(from);
    GALVANI_CHECK(it != index_.end(), "StateDict::rename: no tensor named '", from, "'");
    GALVANI_CHECK(!contains(to), "StateDict::rename: '", to, "' already exists (renaming '", from, "')");
    size_t i = it->second;
    index_.erase(it);
    entries_[i].name = to;
    index_[to] = i;
  }

  std::vector<std::string> names() const {
    std::vector<std::string> out;
    out.reserve(entries_.size());
    for (const auto& e : entries_) out.push_back(e.name);
    return out;
  }
  size_t nbytes() const {
    size_t n = 0;
    for (const auto& e : entries_) n += e.nbytes();
    return n;
  }

  auto begin() const { return entries_.begin(); }
  auto end() const { return entries_.end(); }
  const std::vector<StateEntry>& entries() const { return entries_; }

 private:
  void add(StateEntry e) {
    GALVANI_CHECK(!contains(e.name), "StateDict: tensor '", e.name, "' is already present");
    index_[e.name] = entries_.size();
    entries_.push_back(std::move(e));
  }
  void reindex() {
    index_.clear();
    for (size_t i = 0; i < entries_.size(); ++i) index_[entries_[i].name] = i;
  }
  // "did you mean" for the common prefix mix-up (transformer.h.0 vs h.0).
  std::string hint(const std::string& name) const {
    for (const char* p : {"transformer.", "model."}) {
      std::string pre = p;
      if (name.rfind(pre, 0) == 0 && contains(name.substr(pre.size())))
        return " (the checkpoint has '" + name.substr(pre.size()) + "')";
      if (contains(pre + name)) return " (the checkpoint has '" + pre + name + "')";
    }
    return "";
  }

  std::vector<StateEntry> entries_;
  std::unordered_map<std::string, size_t> index_;
};

}  // namespace galvani::io
