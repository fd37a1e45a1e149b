// nn/module.hpp — Module: a layer that owns its sub-layers, named as in Hugging Face.
//
// A model is a tree. Each Module owns its children (std::unique_ptr) under the names
// transformers gives them, so the dotted path of a module is its Hugging Face name:
//
//   GPT2LMHeadModel                       ""
//   └─ transformer                        "transformer"
//      └─ h (a ModuleList)                "transformer.h"
//         └─ 0 (GPT2Block)                "transformer.h.0"
//            └─ attn                      "transformer.h.0.attn"
//               └─ c_attn (Conv1D)        "transformer.h.0.attn.c_attn"
//
// Three things follow from owning children by name, as in torch.nn.Module:
//   named_modules() / get_submodule(name)   walk the tree like the state dict's keys,
//   replace_submodule(name, new_module)     swap a layer by name — what peft's
//                                           get_peft_model and transformers'
//                                           replace_with_bnb_linear do (nn/target_modules.hpp),
//   state_dict() / load_state_dict()        one load/save path over the whole tree, in
//                                           which every module reads and writes its own
//                                           tensors (models/load.hpp streams files through it).
//
// A parent reaches a child through a ModuleRef<M>: a typed handle on the child's slot, so a
// model's code (`q_proj->forward(x)`) calls whatever module now sits in the slot. A slot
// declared as ModuleRef<LinearLayer> accepts any LinearLayer (a Linear, a LoRA wrapper, a
// 4-bit linear); replace_submodule refuses a module of the wrong kind with a clear error.
//
// Parameters are trained (requires_grad); buffers are saved but not trained (packed 4-bit
// weights, quantization state). A tensor registered twice (a tied lm_head and embedding)
// is one parameter: named_parameters() lists it once, under its first name, as torch does.
//
// Modules are neither copied nor moved (handles point into their parents); hold a root
// module by unique_ptr.
#pragma once
#include <cxxabi.h>

#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <typeinfo>
#include <type_traits>
#include <utility>
#include <vector>

#include "../core/tensor.hpp"
#include "../io/state_dict.hpp"

namespace galvani {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;
class Module;
using NamedModules = std::vector<std::pair<std::string, Module*>>;

// torch's _IncompatibleKeys, plus what was read: the result of load_state_dict().
struct LoadReport {
  std::vector<std::string> loaded;           // tensors read, in the source's order (full names)
  std::vector<std::string> missing_keys;     // tensors the model expects that the source lacks
  std::vector<std::string> unexpected_keys;  // source tensors the model has no place for
};

// A typed handle on a parent's child slot. It stays valid when the child is replaced
// (it reads the slot, not the old module) and as long as the parent lives.
template <class M>
class ModuleRef {
 public:
  ModuleRef() = default;
  ModuleRef(Module* owner, size_t slot) : owner_(owner), slot_(slot) {}
  M* get() const;
  M* operator->() const { return get(); }
  M& operator*() const { return *get(); }
  explicit operator bool() const { return owner_ != nullptr; }

 private:
  Module* owner_ = nullptr;
  size_t slot_ = 0;
};

class Module {
 public:
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;
  virtual ~Module() = default;

  // The class name as torch would print it ("Linear", "Conv1D", "GPT2Block").
  virtual std::string type_name() const { return "Module"; }

  // ------------------------------------------------------------ the tree
  // Direct children in registration order.
  NamedModules named_children() const {
    NamedModules out;
    for (const auto& c : children_) out.emplace_back(c.name, c.module.get());
    return out;
  }
  // This module (as `prefix`, "" at the root) and every descendant, depth first in
  // registration order, with dotted names — torch's named_modules().
  NamedModules named_modules(const std::string& prefix = "") const {
    NamedModules out;
    walk(prefix, [&](const std::string& name, const Module& m) { out.emplace_back(name, const_cast<Module*>(&m)); });
    return out;
  }
  // The module at a dotted path ("model.layers.3.self_attn.q_proj"); "" is this module.
  // Throws galvani::Error naming the first part of the path that does not exist.
  Module& get_submodule(const std::string& name) const {
    const Module* m = this;
    std::string seen;
    for (const std::string& part : split_path(name)) {
      const Child* c = m->find_child(part);
      GALVANI_CHECK(c, "get_submodule: '", name, "': ", (seen.empty() ? std::string("the root module") : "'" + seen + "'"),
                    " (", m->type_name(), ") has no child '", part, "'", m->children_hint());
      seen += (seen.empty() ? "" : ".") + part;
      m = c->module.get();
    }
    return const_cast<Module&>(*m);
  }
  // get_submodule() cast to M; throws when the module there is not an M.
  template <class M>
  M& get_submodule_as(const std::string& name) const {
    Module& m = get_submodule(name);
    auto* p = dynamic_cast<M*>(&m);
    GALVANI_CHECK(p, "get_submodule_as: '", name, "' is a ", m.type_name(), ", not the requested kind");
    return *p;
  }
  // Put `module` where `name` was and return the module that was there (the caller may
  // keep it, e.g. to wrap it, or drop it). The slot's declared kind must accept the new
  // module (a LinearLayer slot takes any LinearLayer); the error names both.
  std::unique_ptr<Module> replace_submodule(const std::string& name, std::unique_ptr<Module> module) {
    GALVANI_CHECK(module, "replace_submodule: '", name, "': the new module is null");
    GALVANI_CHECK(!name.empty(), "replace_submodule: the root module cannot replace itself");
    const auto dot = name.rfind('.');
    Module& parent = dot == std::string::npos ? *this : get_submodule(name.substr(0, dot));
    const std::string last = dot == std::string::npos ? name : name.substr(dot + 1);
    Child* c = parent.find_child(last);
    GALVANI_CHECK(c, "replace_submodule: '", name, "': ", parent.type_name(), " has no child '", last, "'",
                  parent.children_hint());
    GALVANI_CHECK(c->accepts(*module), "replace_submodule: '", name, "' holds a ", c->kind, " slot (now a ",
                  c->module->type_name(), "); a ", module->type_name(), " cannot take its place");
    module->training_ = c->module->training_;
    std::swap(c->module, module);
    return module;
  }

  // Take the module at `name` out and put `wrap(old)` in its place — how peft's
  // get_peft_model puts a LoRA layer around the Linear it then owns. `wrap` receives the old
  // module as `std::unique_ptr<Module>&` and moves from it only once it is sure to succeed:
  // if it throws, or returns a module the slot's kind refuses, whatever is left in `old` goes
  // back into the slot (the tree is unchanged). Returns the new module.
  template <class Wrap>
  Module& wrap_submodule(const std::string& name, Wrap&& wrap) {
    GALVANI_CHECK(!name.empty(), "wrap_submodule: the root module cannot wrap itself");
    const auto dot = name.rfind('.');
    Module& parent = dot == std::string::npos ? *this : get_submodule(name.substr(0, dot));
    const std::string last = dot == std::string::npos ? name : name.substr(dot + 1);
    Child* c = parent.find_child(last);
    GALVANI_CHECK(c, "wrap_submodule: '", name, "': ", parent.type_name(), " has no child '", last, "'",
                  parent.children_hint());
    const bool training = c->module->training_;
    const std::string old_type = c->module->type_name();
    std::unique_ptr<Module> old = std::move(c->module);
    std::unique_ptr<Module> fresh;
    try {
      fresh = wrap(old);
    } catch (...) {
      c->module = std::move(old);
      throw;
    }
    if (!fresh || !c->accepts(*fresh)) {
      c->module = std::move(old);
      GALVANI_CHECK(fresh, "wrap_submodule: '", name, "': the wrapper returned no module");
      throw Error("wrap_submodule: '" + name + "' holds a " + c->kind + " slot (was a " + old_type + "); a " +
                  fresh->type_name() + " cannot take its place");
    }
    fresh->training_ = training;
    c->module = std::move(fresh);
    return *c->module;
  }

  // ------------------------------------------------------------ tensors
  // Every parameter, depth first in registration order, with dotted names. A tensor
  // registered under two names (tied weights) is listed once, under its first name
  // (torch's remove_duplicate=True).
  NamedTensors named_parameters(const std::string& prefix = "") const {
    NamedTensors out;
    std::set<const TensorImpl*> seen;
    walk(prefix, [&](const std::string& name, const Module& m) {
      for (const auto& [local, t] : m.params_)
        if (seen.insert(t->impl()).second) out.emplace_back(join(name, local), *t);
    });
    return out;
  }
  // Buffers: state saved with the model but not trained. Non-persistent buffers are
  // listed here but left out of state_dict(), as in torch.
  NamedTensors named_buffers(const std::string& prefix = "") const {
    NamedTensors out;
    std::set<const TensorImpl*> seen;
    walk(prefix, [&](const std::string& name, const Module& m) {
      for (const auto& b : m.buffers_)
        if (seen.insert(b.tensor->impl()).second) out.emplace_back(join(name, b.name), *b.tensor);
    });
    return out;
  }
  std::vector<Tensor> parameters() const {
    std::vector<Tensor> out;
    for (auto& [name, t] : named_parameters()) out.push_back(t);
    return out;
  }
  // Parameters that will be trained (requires_grad), e.g. only LoRA adapters.
  std::vector<Tensor> trainable_parameters() const {
    std::vector<Tensor> out;
    for (auto& [name, t] : named_parameters())
      if (t.requires_grad()) out.push_back(t);
    return out;
  }
  int64_t num_parameters(bool trainable_only = false) const {
    int64_t n = 0;
    for (auto& [name, t] : named_parameters())
      if (!trainable_only || t.requires_grad()) n += t.numel();
    return n;
  }

  // train(): dropout active. eval(): dropout off. Applies to every descendant.
  void train(bool on = true) {
    walk("", [&](const std::string&, const Module& m) { const_cast<Module&>(m).training_ = on; });
  }
  void eval() { train(false); }
  bool is_training() const { return training_; }

  void zero_grad() const {
    for (auto& [name, t] : named_parameters()) t.zero_grad();
  }

  // ------------------------------------------------------------ state dict
  // torch's state_dict(): every module's saved tensors under their full names. Tied
  // weights appear under each of their names (save_pretrained drops the duplicates).
  io::StateDict state_dict() const {
    io::StateDict out;
    walk("", [&](const std::string& name, const Module& m) { m.save_own_tensors(name.empty() ? "" : name + ".", out); });
    return out;
  }
  // Load tensors by name from `sd` (models/load.hpp does the same for files, directories
  // and streams). Each module reads its own tensors (read_own_tensor): the default converts
  // the dtype into the parameter's; a quantized layer takes its raw bytes. With `strict`,
  // a tensor the model expects and `sd` lacks is an error naming it; unexpected tensors are
  // reported, never an error (torch's strict also rejects them; transformers' loader, which
  // is what users meet, only warns).
  LoadReport load_state_dict(const io::StateDict& sd, bool strict = true);

  // The local names of the tensors this module itself saves and loads (not its
  // children's). Default: its parameters and persistent buffers.
  virtual std::vector<std::string> own_tensor_names() const {
    std::vector<std::string> out;
    for (const auto& [name, t] : params_) out.push_back(name);
    for (const auto& b : buffers_)
      if (b.persistent) out.push_back(b.name);
    return out;
  }
  // Which tensor a local name stands for, or nullptr when the module manages its state
  // itself: two names over the same tensor are one (tied weights), loaded once.
  virtual const TensorImpl* own_tensor_identity(const std::string& local) const {
    const Tensor* t = find_own_tensor(local);
    return t ? t->impl() : nullptr;
  }
  // Read one of this module's tensors from `src` (its full name is src.name). The default
  // copies into the parameter or buffer of that local name, converting the dtype (bf16 →
  // f32, …); shapes must match and raw (unknown-dtype) entries are refused. Override to
  // take the bytes as they are (a 4-bit layer's packed weight and quant state).
  virtual void read_own_tensor(const std::string& local, const io::StateEntry& src) {
    const Tensor* dst = find_own_tensor(local);
    GALVANI_CHECK(dst, type_name(), " has no tensor '", local, "' (loading '", src.name, "')");
    GALVANI_CHECK(!src.is_raw(), "tensor '", src.name, "' has dtype ", src.raw_dtype, ", which a ", type_name(),
                  " cannot convert into its ", dtype_name(dst->dtype()), " ", local);
    GALVANI_CHECK(src.shape() == dst->shape(), "tensor '", src.name, "' has shape ", shape_str(src.shape()),
                  " in the checkpoint but ", shape_str(dst->shape()),
                  " in the model (is it the config the weights were saved with?)");
    copy_into(*dst, src.tensor);
  }
  // Write this module's own tensors into `out` under `prefix` + local name. Default: its
  // parameters and persistent buffers, as they are (no copy).
  virtual void save_own_tensors(const std::string& prefix, io::StateDict& out) const {
    for (const std::string& local : own_tensor_names())
      if (const Tensor* t = find_own_tensor(local)) out.insert(prefix + local, *t);
  }

 protected:
  // Register a member tensor as a parameter (requires_grad is set by the caller).
  Tensor& register_parameter(const std::string& name, Tensor& t) {
    if (t.defined() && t.name().empty()) t.set_name(name);
    params_.emplace_back(name, &t);
    return t;
  }
  // Register a member tensor as a buffer: saved (if persistent) and moved with the model,
  // never trained.
  Tensor& register_buffer(const std::string& name, Tensor& t, bool persistent = true) {
    if (t.defined() && t.name().empty()) t.set_name(name);
    buffers_.push_back({name, &t, persistent});
    return t;
  }
  // Adopt `module` as the child `name`; the slot accepts any module that is an M
  // (e.g. M = LinearLayer). Returns the handle the parent calls it through.
  template <class M, class Impl = M>
  ModuleRef<M> add_module(const std::string& name, std::unique_ptr<Impl> module) {
    static_assert(std::is_base_of_v<M, Impl>, "add_module<M>: the module must be an M");
    GALVANI_CHECK(module, "add_module: '", name, "' is null");
    GALVANI_CHECK(!find_child(name), "add_module: '", name, "' is already a child of ", type_name());
    GALVANI_CHECK(name.find('.') == std::string::npos && !name.empty(), "add_module: '", name,
                  "' is not a valid child name (no dots, not empty)");
    module->training_ = training_;
    children_.push_back(Child{name, std::move(module), [](const Module& m) {
                                if constexpr (std::is_base_of_v<M, Module>)
                                  return true;  // an upcast: every module is one (and GCC warns of the null check)
                                else
                                  return dynamic_cast<const M*>(std::addressof(m)) != nullptr;
                              },
                              kind_name<M>()});
    return ModuleRef<M>(this, children_.size() - 1);
  }

  // The parameter or buffer registered under `local`, or nullptr.
  const Tensor* find_own_tensor(const std::string& local) const {
    for (const auto& [name, t] : params_)
      if (name == local) return t;
    for (const auto& b : buffers_)
      if (b.name == local) return b.tensor;
    return nullptr;
  }

 private:
  template <class M>
  friend class ModuleRef;

  struct Child {
    std::string name;
    std::unique_ptr<Module> module;
    std::function<bool(const Module&)> accepts;  // is a module of the slot's declared kind
    std::string kind;                           // that kind, for errors
  };
  struct Buffer {
    std::string name;
    Tensor* tensor;
    bool persistent;
  };

  template <class M>
  static std::string kind_name() {
    if constexpr (requires { M::kKind; }) return M::kKind;
    else {
      int status = 0;
      std::unique_ptr<char, void (*)(void*)> d(abi::__cxa_demangle(typeid(M).name(), nullptr, nullptr, &status), std::free);
      return status == 0 && d ? std::string(d.get()) : std::string(typeid(M).name());
    }
  }
  static std::string join(const std::string& prefix, const std::string& name) {
    return prefix.empty() ? name : prefix + "." + name;
  }
  static std::vector<std::string> split_path(const std::string& name) {
    std::vector<std::string> parts;
    if (name.empty()) return parts;
    size_t start = 0;
    for (;;) {
      const size_t dot = name.find('.', start);
      parts.push_back(name.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
      if (dot == std::string::npos) break;
      start = dot + 1;
    }
    return parts;
  }
  const Child* find_child(const std::string& name) const {
    for (const auto& c : children_)
      if (c.name == name) return &c;
    return nullptr;
  }
  Child* find_child(const std::string& name) {
    return const_cast<Child*>(static_cast<const Module*>(this)->find_child(name));
  }
  std::string children_hint() const {
    if (children_.empty()) return " (it has no children)";
    std::string s = " (its children: ";
    for (size_t i = 0; i < children_.size() && i < 12; ++i) s += (i ? ", " : "") + children_[i].name;
    return s + (children_.size() > 12 ? ", …)" : ")");
  }
  // Pre-order walk: f(name, module) for this module and every descendant.
  void walk(const std::string& name, const std::function<void(const std::string&, const Module&)>& f) const {
    f(name, *this);
    for (const auto& c : children_) c.module->walk(join(name, c.name), f);
  }

  std::vector<std::pair<std::string, Tensor*>> params_;
  std::vector<Buffer> buffers_;
  std::vector<Child> children_;
  bool training_ = true;
};

template <class M>
M* ModuleRef<M>::get() const {
  GALVANI_CHECK(owner_, "ModuleRef: the handle is empty");
  return static_cast<M*>(owner_->children_[slot_].module.get());  // the slot only ever holds an M
}

// torch.nn.ModuleList: children named "0", "1", … (transformer.h.0, model.layers.0).
template <class M>
class ModuleList : public Module {
 public:
  std::string type_name() const override { return "ModuleList"; }
  M& append(std::unique_ptr<M> m) {
    items_.push_back(add_module<M>(std::to_string(items_.size()), std::move(m)));
    return *items_.back();
  }
  size_t size() const { return items_.size(); }
  M& operator[](size_t i) const { return *items_.at(i); }

 private:
  std::vector<ModuleRef<M>> items_;
};

// ------------------------------------------------------------------ loading

// Where every tensor of a module tree goes: full name → (module, local name). Names of one
// tensor beyond its first (a tied lm_head.weight) are aliases of that first, primary name.
class TensorRouter {
 public:
  struct Slot {
    Module* module;
    std::string local;
    std::string primary;  // the full name the tensor is expected under
  };

  explicit TensorRouter(const Module& root) {
    std::map<const TensorImpl*, std::string> first;
    for (auto& [name, m] : root.named_modules()) {
      const std::string prefix = name.empty() ? "" : name + ".";
      for (const std::string& local : m->own_tensor_names()) {
        const std::string full = prefix + local;
        std::string primary = full;
        if (const TensorImpl* id = m->own_tensor_identity(local)) {
          auto [it, fresh] = first.emplace(id, full);
          primary = it->second;
        }
        if (primary == full) expected_.push_back(full);
        slots_.emplace(full, Slot{m, local, primary});
      }
    }
  }

  const Slot* find(const std::string& name) const {
    auto it = slots_.find(name);
    return it == slots_.end() ? nullptr : &it->second;
  }
  // The primary names, in tree order: what a strict load must find.
  const std::vector<std::string>& expected() const { return expected_; }

 private:
  std::map<std::string, Slot> slots_;
  std::vector<std::string> expected_;
};

// Feeds named tensors, in any order, into the modules of a tree. Used by load_state_dict()
// and by models/load.hpp's file and streaming loaders, so every load path is this one.
//
// Tied weights: an alias (lm_head.weight of a tied model) fills the tensor only if its
// primary name (the embedding) has not been read; the primary, when present, wins whatever
// the order — transformers re-ties the head to the embedding after loading in the same way.
class StateLoader {
 public:
  // `origin` names the source in errors (a file, a directory, "state dict").
  StateLoader(const Module& root, std::string origin) : router_(root), origin_(std::move(origin)) {}
  // Name a more precise source for the tensors fed next (the shard a tensor comes from).
  void set_origin(const std::string& origin) { origin_ = origin; }

  void feed(const io::StateEntry& e) {
    const TensorRouter::Slot* s = router_.find(e.name);
    if (!s) {
      report_.unexpected_keys.push_back(e.name);
      return;
    }
    if (s->primary != e.name && read_.count(s->primary)) return;  // the primary is in: it wins
    try {
      s->module->read_own_tensor(s->local, e);
    } catch (const Error& err) {
      throw Error(origin_ + ": " + err.what());
    }
    read_.insert(s->primary);
    report_.loaded.push_back(e.name);
  }

  // The report; with `strict`, a missing tensor is an error naming all of them.
  LoadReport finish(bool strict) {
    for (const std::string& name : router_.expected())
      if (!read_.count(name)) report_.missing_keys.push_back(name);
    if (strict && !report_.missing_keys.empty()) {
      std::string missing;
      for (const auto& n : report_.missing_keys) missing += (missing.empty() ? "" : ", ") + n;
      throw Error(origin_ + ": the checkpoint has no tensor for: " + missing);
    }
    return report_;
  }

 private:
  TensorRouter router_;
  std::string origin_;
  std::set<std::string> read_;  // primary names already filled
  LoadReport report_;
};

inline LoadReport Module::load_state_dict(const io::StateDict& sd, bool strict) {
  StateLoader loader(*this, "load_state_dict");
  for (const auto& e : sd) loader.feed(e);
  return loader.finish(strict);
}

}  // namespace galvani
