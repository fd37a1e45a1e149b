// models/quantize.hpp — a model's linear layers become 4-bit, as transformers'
// replace_with_bnb_linear does (integrations/bitsandbytes.py), and what that saves.
//
//   replace_with_bnb_linear(model, config, pre_quantized)
//       every Linear and GPT-2 Conv1D, but the modules not to convert, is replaced by an
//       *empty* Linear4bit, ready for the load path: with pre_quantized it reads bnb's packed
//       keys, else it quantizes the float weight on arrival (a Conv1D's (in, out) weight is
//       transposed to (out, in) first, as transformers does). models/auto.hpp builds the model
//       with init = empty, calls this, then streams the checkpoint: peak memory is the 4-bit
//       model plus one float tensor.
//   quantize_model(model, config)
//       the same for a model already in memory: each layer is quantized from its weights now.
//   get_memory_footprint(model)
//       transformers' model.get_memory_footprint(): Σ nelement·element_size over parameters
//       and buffers. A bnb weight (Params4bit) is the packed uint8 tensor, n/2 bytes; its quant
//       state (absmax, quant_map, nested_*) is neither a parameter nor a buffer, so it is not
//       counted — transformers' number is a little smaller than what the 4-bit model holds.
//
// Which modules are not converted (quantizers/base.py::get_modules_to_not_convert):
//   llm_int8_skip_modules == null: the output layer (lm_head), the module of the model's last
//       parameter, and tied weights' modules (get_keys_to_not_convert);
//   llm_int8_skip_modules == [...]: that list *only* — transformers then adds no default, so a
//       list without "lm_head" quantizes the lm_head too (galvani refuses a *tied* lm_head,
//       GPT-2's, with an error naming the fix; transformers quantizes it).
// A name is skipped when a pattern matches it (quantizers_utils.py::should_convert_module):
// as a regex from the start, ending on a module boundary ("layers.1" skips "layers.1.mlp",
// not "layers.11.mlp"), or as a plain suffix of the name (no boundary: "proj" skips
// "q_proj").
#pragma once
#include <optional>
#include <set>
#include <string_view>

#include "../core/regex.hpp"
#include "../nn/linear4bit.hpp"
#include "../quant/bnb_config.hpp"
#include "causal_lm.hpp"
#include "mistral.hpp"

namespace galvani {

// transformers' should_convert_module: false when a pattern in `patterns` matches `name`.
// Throws galvani::Error (RegexError) naming a pattern that uses a feature of Python's re that
// RE2 lacks (core/regex.hpp); a pattern that is no regex at all is used as a suffix only.
inline bool should_convert_module(const std::string& name, const std::vector<std::string>& patterns) {
  for (const std::string& key : patterns) {
    if (name.size() >= key.size() && name.compare(name.size() - key.size(), key.size(), key) == 0) return false;
    // re.match(f"(?:{key})" + boundary, name): some prefix name[0, L) matches the key as a
    // regex and L sits on a boundary (after a '.', before a '.', or at the end).
    std::optional<Regex> re;
    try {
      re.emplace(key, "llm_int8_skip_modules");
    } catch (const RegexError& e) {
      // Valid Python that RE2 cannot run (lookaround, a backreference): refuse rather than
      // quantize a module transformers would skip. Not a regex at all: only the suffix rule.
      if (e.python_feature) throw;
      continue;
    }
    for (size_t L = 0; L <= name.size(); ++L) {
      const bool boundary = (L > 0 && name[L - 1] == '.') || L == name.size() || name[L] == '.';
      if (boundary && re->full_match(std::string_view(name).substr(0, L))) return false;
    }
  }
  return true;
}

// transformers' get_keys_to_not_convert for galvani's causal LMs: the output layer, the
// module of the last parameter, and (tied) the embedding the output layer shares.
inline std::vector<std::string> get_keys_to_not_convert(const Module& model, const std::string& output_layer = "lm_head") {
  std::set<std::string> keys = {output_layer};
  const NamedTensors params = model.named_parameters();
  if (!params.empty()) {
    const std::string& last = params.back().first;
    keys.insert(last.substr(0, last.rfind('.')));
  }
  return {keys.begin(), keys.end()};
}

inline std::vector<std::string> modules_to_not_convert(const Module& model, const BitsAndBytesConfig& config) {
  return config.llm_int8_skip_modules ? *config.llm_int8_skip_modules : get_keys_to_not_convert(model);
}

// The Linear / Conv1D modules the config converts, in named_modules() order.
inline std::vector<std::string> bnb_targets(const Module& model, const BitsAndBytesConfig& config) {
  const std::vector<std::string> skip = modules_to_not_convert(model, config);
  std::set<std::string> own;  // parameters under their first name: a tied lm_head.weight is not one
  for (auto& [name, t] : model.named_parameters()) own.insert(name);
  std::vector<std::string> out;
  for (auto& [name, m] : model.named_modules())
    if ((dynamic_cast<const Linear*>(m) || dynamic_cast<const Conv1D*>(m)) && should_convert_module(name, skip)) {
      // transformers would quantize a tied lm_head here (a skip list without "lm_head");
      // galvani keeps the tie and refuses, naming the fix.
      GALVANI_CHECK(own.count(name + ".weight"), "quantization: '", name,
                    "' shares its weight with the embedding (tied); add \"", name, "\" to llm_int8_skip_modules");
      out.push_back(name);
    }
  return out;
}

// Replace the targets by empty Linear4bit layers (bias in `dtype`), to be filled by a load:
// pre_quantized reads bnb's keys, otherwise each float weight is quantized on arrival.
// Returns the names replaced.
inline std::vector<std::string> replace_with_bnb_linear(Module& model, const BitsAndBytesConfig& config,
                                                        bool pre_quantized, DType dtype = DType::f32) {
  const std::vector<std::string> names = bnb_targets(model, config);
  Linear4bitOptions opt;
  opt.quant = config.quantize_options();
  opt.expect_packed = pre_quantized;
  opt.weight_dtype = dtype;  // transformers quantizes the weight in the model's dtype
  for (const std::string& name : names) {
    const auto& base = model.get_submodule_as<LinearLayer>(name);
    Linear4bitOptions o = opt;
    o.from_conv1d = base.fan_in_fan_out();
    const bool has_bias = base.own_tensor_identity("bias") != nullptr;
    model.replace_submodule(name, std::make_unique<Linear4bit>(base.in_features(), base.out_features(), has_bias, o,
                                                               ModuleInit{ModuleInit::Mode::empty, nullptr, dtype}));
  }
  return names;
}

// Quantize a model in memory: each target layer's weight is quantized now (Linear4bit::
// from_linear) and the float layer is freed. Returns the names replaced.
inline std::vector<std::string> quantize_model(Module& model, const BitsAndBytesConfig& config) {
  const std::vector<std::string> names = bnb_targets(model, config);
  Linear4bitOptions opt;
  opt.quant = config.quantize_options();
  opt.expect_packed = true;  // what it saves (and would load back) are bnb's keys
  for (const std::string& name : names) {
    const Module& base = model.get_submodule(name);
    const Tensor* w = nullptr;
    const Tensor* b = nullptr;
    if (auto* l = dynamic_cast<const Linear*>(&base)) w = &l->weight, b = &l->bias;
    else if (auto* c = dynamic_cast<const Conv1D*>(&base)) w = &c->weight, b = &c->bias;
    auto q = Linear4bit::from_linear(dynamic_cast<const LinearLayer&>(base), w->detach(), b->defined() ? b->detach() : Tensor(), opt);
    model.replace_submodule(name, std::move(q));
  }
  return names;
}

// The float twin of a 4-bit layer: a Linear with the dequantized weight (out, in), or a Conv1D
// (in, out) where the layer was one (GPT-2), f32, with the bias — so that a merged export
// saves the names and orientation the original checkpoint had. transformers' model.dequantize()
// does the same per layer. Pass it to merge_and_unload as the to_dense function.
inline std::unique_ptr<LinearLayer> dequantize_linear(const LinearLayer& layer) {
  const auto* q = dynamic_cast<const Linear4bit*>(&layer);
  GALVANI_CHECK(q, "dequantize_linear: a ", layer.type_name(), " is not a 4-bit layer");
  NoGradGuard no_grad;
  const Tensor w = q->dequantized(DType::f32);  // (out, in)
  const ModuleInit empty{ModuleInit::Mode::empty};
  if (q->options().from_conv1d) {
    auto c = std::make_unique<Conv1D>(q->in_features(), q->out_features(), empty);
    copy_into(c->weight, w.transpose(0, 1));
    if (q->bias.defined()) copy_into(c->bias, q->bias.to(DType::f32));
    else copy_into(c->bias, Tensor::zeros({q->out_features()}, DType::f32));
    return c;
  }
  auto l = std::make_unique<Linear>(q->in_features(), q->out_features(), q->bias.defined(), empty);
  copy_into(l->weight, w);
  if (q->bias.defined()) copy_into(l->bias, q->bias.to(DType::f32));
  return l;
}

// transformers' model.dequantize(): every 4-bit layer back to a float one (dequantize_linear).
// Returns the names replaced. The caller clears quantization_config (a CausalLM's) so that a
// save writes a plain float checkpoint.
inline std::vector<std::string> dequantize_model(Module& model) {
  std::vector<std::string> names;
  for (auto& [name, m] : model.named_modules())
    if (dynamic_cast<const Linear4bit*>(m)) names.push_back(name);
  for (const std::string& name : names)
    model.replace_submodule(name, dequantize_linear(model.get_submodule_as<Linear4bit>(name)));
  return names;
}

// transformers' get_memory_footprint() (return_buffers=True), in bytes. galvani keeps two
// things outside its registered tensors that torch counts: a Linear4bit's packed weight (a
// Params4bit parameter in torch) and the rotary embedding's inv_freq and original_inv_freq
// buffers (head_dim/2 floats each; galvani computes the angles inside ops/rope.hpp).
inline int64_t get_memory_footprint(const Module& model) {
  int64_t bytes = 0;
  for (auto& [name, t] : model.named_parameters()) bytes += int64_t(t.nbytes());
  for (auto& [name, t] : model.named_buffers()) bytes += int64_t(t.nbytes());
  for (auto& [name, m] : model.named_modules()) {
    if (auto* q = dynamic_cast<const Linear4bit*>(m)) bytes += int64_t(q->packed_weight().nbytes());
    if (auto* r = dynamic_cast<const RotaryEmbedding*>(m)) bytes += 2 * (r->head_dim / 2) * int64_t(sizeof(float));
  }
  return bytes;
}

}  // namespace galvani
