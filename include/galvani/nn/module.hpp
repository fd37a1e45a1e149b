// nn/module.hpp — Module: a layer with named parameters and sub-layers.
//
// A Module registers its tensors and children under the names Hugging Face uses,
// so named_parameters() of a GPT-2 yields "transformer.h.0.attn.c_attn.weight"
// and a checkpoint maps onto the model by name alone. Modules are neither
// copied nor moved (registrations point at members); hold them by unique_ptr.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "../core/tensor.hpp"

namespace galvani {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class Module {
 public:
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;
  virtual ~Module() = default;

  // Every parameter, depth first in registration order, with dotted names.
  NamedTensors named_parameters(const std::string& prefix = "") const {
    NamedTensors out;
    collect(prefix, out);
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

  // train(): dropout active. eval(): dropout off. Applies to every child.
  void train(bool on = true) {
    training_ = on;
    for (auto& [name, m] : children_) m->train(on);
  }
  void eval() { train(false); }
  bool is_training() const { return training_; }

  void zero_grad() const {
    for (auto& [name, t] : named_parameters()) t.zero_grad();
  }

  // Copy weights in by name. `find(name)` returns the tensor for a parameter or
  // nullptr; values are converted to the parameter's dtype (bf16 → f32, …).
  // Missing parameters are an error unless !strict; shapes must match.
  void load_parameters(const std::function<const Tensor*(const std::string&)>& find, bool strict = true) {
    std::string missing;
    for (auto& [name, param] : named_parameters()) {
      const Tensor* src = find(name);
      if (!src) {
        missing += (missing.empty() ? "" : ", ") + name;
        continue;
      }
      GALVANI_CHECK(src->shape() == param.shape(), "load: '", name, "' has shape ", shape_str(src->shape()),
                    " in the checkpoint but ", shape_str(param.shape()), " in the model (is it the config the weights were saved with?)");
      copy_into(param, *src);
    }
    GALVANI_CHECK(!strict || missing.empty(), "load: the checkpoint has no tensor for: ", missing);
  }

 protected:
  // Register a member tensor as a parameter (requires_grad is set by the caller).
  Tensor& param(const std::string& name, Tensor& t) {
    t.set_name(name);
    params_.emplace_back(name, &t);
    return t;
  }
  template <class M>
  M& child(const std::string& name, M& m) {
    children_.emplace_back(name, &m);
    return m;
  }

 private:
  void collect(const std::string& prefix, NamedTensors& out) const {
    for (auto& [name, t] : params_) out.emplace_back(prefix + name, *t);
    for (auto& [name, m] : children_) m->collect(prefix + name + ".", out);
  }
  std::vector<std::pair<std::string, Tensor*>> params_;
  std::vector<std::pair<std::string, Module*>> children_;
  bool training_ = true;
};

}  // namespace galvani
