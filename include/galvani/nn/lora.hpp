// nn/lora.hpp — LoRA (Hu et al. 2021) with peft's semantics: a frozen linear layer plus a
// trainable low-rank update.
//
//   y = base_layer(x) + lora_B(lora_A(dropout(x))) · scaling
//
//   x        (…, in)
//   lora_A   Linear in → r, weight (r, in):   Kaiming-uniform, U(−1/√in, 1/√in)
//   lora_B   Linear r → out, weight (out, r): zeros, so a fresh adapter changes nothing
//   scaling  lora_alpha / r  (rsLoRA: lora_alpha / √r)
//
// Only A and B train: r·(in + out) numbers instead of in·out. The base layer may be anything
// that is a LinearLayer — a Linear, GPT-2's Conv1D (weight (in, out): peft's fan_in_fan_out),
// a bf16 Linear, a 4-bit Linear4bit — because LoraLinear only calls base_layer->forward().
//
// The tree is peft's, so named_modules() and state_dict() keys match peft's (less peft's
// "base_model.model." prefix):
//
//   model.layers.0.self_attn.q_proj                    Linear        (peft's lora.Linear: this class)
//   model.layers.0.self_attn.q_proj.base_layer         Linear        the original layer, frozen
//   model.layers.0.self_attn.q_proj.lora_dropout       ModuleDict
//   model.layers.0.self_attn.q_proj.lora_dropout.default  Identity (p = 0) or Dropout
//   model.layers.0.self_attn.q_proj.lora_A             ModuleDict
//   model.layers.0.self_attn.q_proj.lora_A.default     Linear        weight (r, in)
//   model.layers.0.self_attn.q_proj.lora_B             ModuleDict
//   model.layers.0.self_attn.q_proj.lora_B.default     Linear        weight (out, r)
//
// peft keys its ModuleDicts by adapter name; galvani holds one adapter, "default" (peft's
// name when none is given). peft also registers three empty containers (lora_embedding_A/B,
// lora_magnitude_vector, for embeddings and DoRA) that hold nothing; galvani leaves them out.
//
// get_peft_model(model, config) wraps every module target_modules selects
// (nn/target_modules.hpp) and freezes everything else; io/peft.hpp saves and loads adapters
// in peft's files.
#pragma once
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "../autograd/grad_mode.hpp"
#include "../core/random.hpp"
#include "../ops/elementwise.hpp"
#include "layers.hpp"
#include "linear4bit.hpp"
#include "module.hpp"
#include "target_modules.hpp"

namespace galvani {

// torch.nn.Identity: what peft puts in lora_dropout when lora_dropout = 0.
struct Identity : Module {
  std::string type_name() const override { return "Identity"; }
};

// torch.nn.ModuleDict: children keyed by name (peft keys by adapter name).
template <class M>
class ModuleDict : public Module {
 public:
  std::string type_name() const override { return "ModuleDict"; }
  M& insert(const std::string& key, std::unique_ptr<M> m) {
    refs_.emplace(key, add_module<M>(key, std::move(m)));
    return *refs_.at(key);
  }
  bool contains(const std::string& key) const { return refs_.count(key) != 0; }
  M& at(const std::string& key) const {
    auto it = refs_.find(key);
    GALVANI_CHECK(it != refs_.end(), "ModuleDict: no entry '", key, "'");
    return *it->second;
  }

 private:
  std::map<std::string, ModuleRef<M>> refs_;
};

// peft's LoraConfig, the fields galvani implements (defaults are peft's).
struct LoraConfig {
  int64_t r = 8;
  double lora_alpha = 8;
  double lora_dropout = 0.0;
  bool use_rslora = false;                     // scaling = alpha / √r instead of alpha / r
  std::optional<TargetModules> target_modules; // unset: peft's default for the model type
  bool fan_in_fan_out = false;                 // set by get_peft_model when it wraps a Conv1D (as peft)
  std::string bias = "none";                   // only "none": biases stay frozen
  std::string task_type = "CAUSAL_LM";
  std::string base_model_name_or_path;         // written to adapter_config.json (null when empty)
  bool inference_mode = false;                 // true: the adapter is loaded frozen

  double scaling() const { return use_rslora ? lora_alpha / std::sqrt(double(r)) : lora_alpha / double(r); }
};

class LoraLinear : public LinearLayer {
 public:
  static constexpr const char* kAdapter = "default";  // peft's adapter name when none is given

  ModuleRef<LinearLayer> base_layer;
  ModuleRef<ModuleDict<Module>> lora_dropout;  // "default": Identity or Dropout
  ModuleRef<ModuleDict<Linear>> lora_A;        // "default": Linear(in, r, bias = false)
  ModuleRef<ModuleDict<Linear>> lora_B;        // "default": Linear(r, out, bias = false)

  // Wraps `base` (which it now owns). A and B are drawn from `gen`, which also draws the
  // dropout masks: A Kaiming-uniform with a = √5 (nn.Linear's default, peft's init), B zero.
  LoraLinear(std::unique_ptr<LinearLayer> base, const LoraConfig& cfg, Generator& gen)
      : r_(cfg.r), alpha_(cfg.lora_alpha), scaling_(cfg.scaling()) {
    GALVANI_CHECK(base, "LoraLinear: no base layer");
    GALVANI_CHECK(cfg.r > 0, "LoraConfig: r must be positive, got ", cfg.r);
    GALVANI_CHECK(cfg.bias == "none", "LoraConfig: bias \"", cfg.bias, "\" is not supported (only \"none\")");
    const int64_t in = base->in_features(), out = base->out_features();
    base_layer = add_module<LinearLayer>("base_layer", std::move(base));
    lora_dropout = add_module<ModuleDict<Module>>("lora_dropout", std::make_unique<ModuleDict<Module>>());
    if (cfg.lora_dropout > 0) lora_dropout->insert(kAdapter, std::make_unique<Dropout>(cfg.lora_dropout, gen));
    else lora_dropout->insert(kAdapter, std::make_unique<Identity>());
    lora_A = add_module<ModuleDict<Linear>>("lora_A", std::make_unique<ModuleDict<Linear>>());
    lora_B = add_module<ModuleDict<Linear>>("lora_B", std::make_unique<ModuleDict<Linear>>());
    // LoRA weights are f32 whatever the base's dtype (peft's autocast_adapter_dtype).
    Tensor a = kaiming_uniform({r_, in}, std::sqrt(5.0), gen);
    Tensor b = Tensor::zeros({out, r_}, DType::f32);
    lora_A->insert(kAdapter, std::make_unique<Linear>(a.requires_grad_()));
    lora_B->insert(kAdapter, std::make_unique<Linear>(b.requires_grad_()));
  }

  // peft's class for a LoRA over a 4-bit base is lora.Linear4bit, otherwise lora.Linear.
  std::string type_name() const override {
    return base_layer->type_name() == "Linear4bit" ? "Linear4bit" : "Linear";
  }
  int64_t in_features() const override { return base_layer->in_features(); }
  int64_t out_features() const override { return base_layer->out_features(); }
  bool fan_in_fan_out() const override { return base_layer->fan_in_fan_out(); }

  int64_t r() const { return r_; }
  double lora_alpha() const { return alpha_; }
  double scaling() const { return scaling_; }
  const Tensor& A() const { return lora_A->at(kAdapter).weight; }  // (r, in)
  const Tensor& B() const { return lora_B->at(kAdapter).weight; }  // (out, r)
  double dropout_p() const {
    const auto* d = dynamic_cast<const Dropout*>(&lora_dropout->at(kAdapter));
    return d ? d->p : 0.0;
  }

  // x (…, in) → (…, out). The LoRA branch runs in f32 (x is cast to the adapter's dtype, as
  // peft does); the sum is taken in f32 and cast back to the base's output dtype, which is
  // what torch's type promotion does in peft's `result = result + lora_B(…) * scaling`.
  Tensor forward(const Tensor& x) const override {
    Tensor result = base_layer->forward(x);
    if (!enabled_ || merged_) return result;
    Tensor h = x.dtype() == DType::f32 ? x : x.to(DType::f32);
    if (const auto* d = dynamic_cast<const Dropout*>(&lora_dropout->at(kAdapter))) h = d->forward(h);
    Tensor delta = mul(lora_B->at(kAdapter).forward(lora_A->at(kAdapter).forward(h)), scaling_);
    if (result.dtype() == DType::f32) return result + delta;
    return (result.to(DType::f32) + delta).to(result.dtype());
  }

  // ------------------------------------------------------------ merge, unmerge, disable
  // ΔW = scaling · B·A (out, in), transposed to (in, out) for a fan_in_fan_out base.
  Tensor delta_weight() const {
    NoGradGuard no_grad;
    Tensor d = mul(matmul(B().detach(), A().detach()), scaling_);
    return fan_in_fan_out() ? d.t().contiguous() : d;
  }
  // Fold the update into the base weight (W += ΔW, computed in f32 and rounded once into
  // W's dtype, as torch's in-place add does): forward then costs the base layer alone. Needs a
  // base with a dense weight (Linear, Conv1D); a quantized base is dequantized first by
  // merge_and_unload's `to_dense`.
  void merge() {
    if (merged_) return;
    add_to_base(delta_weight(), +1);
    merged_ = true;
  }
  void unmerge() {
    if (!merged_) return;
    add_to_base(delta_weight(), -1);
    merged_ = false;
  }
  bool merged() const { return merged_; }
  // peft's disable_adapter(): forward is the base layer's alone (a merged layer is unmerged).
  void set_enabled(bool on) {
    if (!on) unmerge();
    enabled_ = on;
  }
  bool enabled() const { return enabled_; }

  // Hand the base layer back (what merge_and_unload puts in this layer's place); this layer
  // is left holding an empty placeholder and is to be dropped.
  std::unique_ptr<LinearLayer> take_base() {
    std::unique_ptr<Module> m =
        replace_submodule("base_layer", std::make_unique<Linear>(0, 0, false, ModuleInit{ModuleInit::Mode::empty}));
    return std::unique_ptr<LinearLayer>(static_cast<LinearLayer*>(m.release()));
  }

 private:
  void add_to_base(const Tensor& delta, int sign) {
    NoGradGuard no_grad;
    const Tensor* w = nullptr;
    if (auto* lin = dynamic_cast<Linear*>(&*base_layer)) w = &lin->weight;
    else if (auto* conv = dynamic_cast<Conv1D*>(&*base_layer)) w = &conv->weight;
    GALVANI_CHECK(w, "LoraLinear::merge: the base layer is a ", base_layer->type_name(),
                  ", which has no dense weight to merge into (merge_and_unload dequantizes it first)");
    GALVANI_CHECK(w->shape() == delta.shape(), "LoraLinear::merge: base weight ", shape_str(w->shape()),
                  " and ΔW ", shape_str(delta.shape()), " differ");
    Tensor w32 = w->dtype() == DType::f32 ? *w : w->to(DType::f32);
    Tensor sum = sign > 0 ? w32 + delta : w32 - delta;
    copy_into(*w, sum.to(w->dtype()));
  }

  int64_t r_;
  double alpha_, scaling_;
  bool merged_ = false;
  bool enabled_ = true;
};

// ------------------------------------------------------------------ applying LoRA to a model

// Every LoraLinear of `root`, with its full name, in named_modules() order.
inline std::vector<std::pair<std::string, LoraLinear*>> lora_layers(const Module& root) {
  std::vector<std::pair<std::string, LoraLinear*>> out;
  for (auto& [name, m] : root.named_modules())
    if (auto* l = dynamic_cast<LoraLinear*>(m)) out.emplace_back(name, l);
  return out;
}

// peft's get_peft_model for LoRA: wrap every module `config.target_modules` selects (peft's
// per-architecture default when unset) in a LoraLinear and freeze every other parameter
// (peft's _mark_only_adapters_as_trainable with bias "none"). `model_type` picks the default
// targets; `gen` draws A and the dropout masks. Returns the wrapped modules' names; sets
// config.fan_in_fan_out when a wrapped layer stores its weight (in, out) (GPT-2's Conv1D),
// as peft does (with a warning there). Errors: no module matches (naming the targets), or a
// match that is not a linear layer (naming it).
inline std::vector<std::string> apply_lora(Module& model, LoraConfig& config, const std::string& model_type,
                                           Generator& gen) {
  if (!config.target_modules) config.target_modules = default_lora_target_modules(model_type);
  std::vector<std::string> names;
  for (const std::string& name : config.target_modules->select(model)) {
    // A module inside an existing LoRA layer (its base_layer, lora_A…) is never a target.
    bool inside = false;
    for (const auto& [done, l] : lora_layers(model))
      if (name.rfind(done + ".", 0) == 0) inside = true;
    if (inside) continue;
    names.push_back(name);
  }
  GALVANI_CHECK(!names.empty(), "get_peft_model: target_modules ", config.target_modules->str(),
                " match no module of this ", model.type_name(), " (its linear layers are named like '",
                [&] {
                  for (auto& [n, m] : model.named_modules())
                    if (dynamic_cast<const LinearLayer*>(m)) return n;
                  return std::string("?");
                }(),
                "')");
  for (const std::string& name : names) {
    Module& m = model.get_submodule(name);
    GALVANI_CHECK(dynamic_cast<const LinearLayer*>(&m), "get_peft_model: target module '", name, "' is a ",
                  m.type_name(), "; LoRA wraps linear layers (Linear, Conv1D, Linear4bit) only");
    if (dynamic_cast<const LinearLayer&>(m).fan_in_fan_out())
      config.fan_in_fan_out = true;
  }
  for (auto& [name, t] : model.named_parameters())
    if (t.requires_grad()) t.requires_grad_(false);
  for (const std::string& name : names)
    model.wrap_submodule(name, [&](std::unique_ptr<Module>& old) -> std::unique_ptr<Module> {
      auto* lin = static_cast<LinearLayer*>(old.get());
      auto lora = std::make_unique<LoraLinear>(std::unique_ptr<LinearLayer>(lin), config, gen);
      old.release();
      return lora;
    });
  const bool train_adapters = !config.inference_mode;
  for (const auto& [name, l] : lora_layers(model)) {
    const_cast<Tensor&>(l->A()).requires_grad_(train_adapters);
    const_cast<Tensor&>(l->B()).requires_grad_(train_adapters);
  }
  return names;
}

// peft's adapters on/off for every LoRA layer (PeftModel.disable_adapter(), as a guard):
//   { DisabledAdapters off(model); base_logits = model.forward(ids); }
class DisabledAdapters {
 public:
  explicit DisabledAdapters(Module& model) : layers_(lora_layers(model)) {
    for (auto& [n, l] : layers_) l->set_enabled(false);
  }
  ~DisabledAdapters() {
    for (auto& [n, l] : layers_) l->set_enabled(true);
  }
  DisabledAdapters(const DisabledAdapters&) = delete;
  DisabledAdapters& operator=(const DisabledAdapters&) = delete;

 private:
  std::vector<std::pair<std::string, LoraLinear*>> layers_;
};

inline void merge_adapters(Module& model) {
  for (auto& [n, l] : lora_layers(model)) l->merge();
}
inline void unmerge_adapters(Module& model) {
  for (auto& [n, l] : lora_layers(model)) l->unmerge();
}

// peft's merge_and_unload(): fold every adapter into its base weight and put the base layer
// back where the LoraLinear was, leaving a plain model (save it with save_causal_lm). A base
// without a dense weight (a 4-bit layer) is first turned into one by `to_dense` (e.g. a
// dequantizing Linear4bit → Linear); without it such a base is an error.
using ToDense = std::function<std::unique_ptr<LinearLayer>(const LinearLayer&)>;
inline void merge_and_unload(Module& model, const ToDense& to_dense = nullptr) {
  for (auto& [name, l] : lora_layers(model)) {
    LinearLayer& base = *l->base_layer;
    if (!dynamic_cast<Linear*>(&base) && !dynamic_cast<Conv1D*>(&base)) {
      GALVANI_CHECK(to_dense, "merge_and_unload: '", name, ".base_layer' is a ", base.type_name(),
                    " with no dense weight; pass a to_dense function (a dequantizer)");
      std::unique_ptr<LinearLayer> dense = to_dense(base);
      l->replace_submodule("base_layer", std::move(dense));
    }
    l->merge();
    model.wrap_submodule(name, [](std::unique_ptr<Module>& old) -> std::unique_ptr<Module> {
      return static_cast<LoraLinear*>(old.get())->take_base();  // `old` (the LoraLinear) is dropped
    });
  }
}

// Parameters as peft counts them (get_nb_trainable_parameters): a packed 4-bit weight (u8,
// two values a byte; a parameter, a persistent buffer named "weight", or a Linear4bit's
// packed weight, which it holds outside its registered tensors) counts twice.
struct ParameterCount {
  int64_t trainable = 0, all = 0;
};
inline ParameterCount count_parameters(const Module& model) {
  ParameterCount c;
  for (auto& [name, t] : model.named_parameters()) {
    const int64_t n = t.dtype() == DType::u8 ? 2 * t.numel() : t.numel();
    c.all += n;
    if (t.requires_grad()) c.trainable += n;
  }
  for (auto& [name, t] : model.named_buffers()) {
    const bool packed_weight = t.dtype() == DType::u8 && (name == "weight" || name.ends_with(".weight"));
    if (packed_weight) c.all += 2 * t.numel();
  }
  for (auto& [name, m] : model.named_modules())
    if (const auto* q = dynamic_cast<const Linear4bit*>(m); q && q->packed_weight().defined())
      c.all += 2 * q->packed_weight().numel();  // peft: Params4bit numel() * 2
  return c;
}

// peft's print_trainable_parameters() line:
//   trainable params: 3,584 || all params: 205,632 || trainable%: 1.7429
inline std::string trainable_parameters_line(const Module& model) {
  const ParameterCount c = count_parameters(model);
  const auto commas = [](int64_t v) {
    std::string s = std::to_string(v), out;
    for (size_t i = 0; i < s.size(); ++i) {
      if (i && (s.size() - i) % 3 == 0) out += ',';
      out += s[i];
    }
    return out;
  };
  char pct[32];
  std::snprintf(pct, sizeof pct, "%.4f", c.all ? 100.0 * double(c.trainable) / double(c.all) : 0.0);
  return "trainable params: " + commas(c.trainable) + " || all params: " + commas(c.all) + " || trainable%: " + pct;
}
inline void print_trainable_parameters(const Module& model) { std::printf("%s\n", trainable_parameters_line(model).c_str()); }

}  // namespace galvani
