// nn/target_modules.hpp — which modules a LoRA config (or a quantization config) targets,
// matched by name exactly as peft's `target_modules` is.
//
// peft (tuners_utils.check_target_module_exists) takes target_modules in three forms:
//   a list of names    ["q_proj", "v_proj"]: a module matches when its full name is in the
//                      list or ends with "." + an entry ("model.layers.0.self_attn.q_proj"
//                      ends with ".q_proj");
//   a regex string     ".*\.(q|v)_proj": the full name must match it whole (re.fullmatch;
//                      matched by RE2 in linear time, core/regex.hpp);
//   "all-linear"       every linear layer (Linear, GPT-2's Conv1D) but the output layer:
//                      peft collects the last name part of each linear module, removes the
//                      lm_head's, and then matches that list as above (so a "c_proj" name
//                      is targeted in the attention and the MLP alike).
// Matching walks named_modules(); replace_submodule() then swaps each match (nn/module.hpp).
#pragma once
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "../core/regex.hpp"
#include "layers.hpp"
#include "module.hpp"

namespace galvani {

class TargetModules {
 public:
  enum class Kind { names, regex, all_linear };

  // ["q_proj", "v_proj"]: full names or name suffixes.
  static TargetModules names(std::vector<std::string> list) {
    GALVANI_CHECK(!list.empty(), "target_modules: the list is empty");
    TargetModules t;
    t.kind_ = Kind::names;
    t.names_ = std::move(list);
    return t;
  }
  // A regular expression the whole module name must match (Python's re.fullmatch, as peft
  // matches it). Throws galvani::Error naming the pattern if it is not one core/regex.hpp
  // can match (its syntax is RE2's: Python's without backreferences and lookaround).
  static TargetModules regex(const std::string& pattern) {
    TargetModules t;
    t.kind_ = Kind::regex;
    t.pattern_ = pattern;
    t.regex_.emplace(pattern, "target_modules");
    return t;
  }
  static TargetModules all_linear() {
    TargetModules t;
    t.kind_ = Kind::all_linear;
    return t;
  }
  // From a JSON-like spelling, as adapter_config.json holds it: "all-linear", a regex string,
  // or a list of names.
  static TargetModules parse(const std::string& s) { return s == "all-linear" ? all_linear() : regex(s); }

  Kind kind() const { return kind_; }
  const std::vector<std::string>& name_list() const { return names_; }  // the names form's entries
  const std::string& pattern() const { return pattern_; }                // the regex form's pattern

  // The full names of the modules of `root` this selects, in named_modules() order.
  // `output_layer` is the name excluded by "all-linear" (the model's lm_head).
  std::vector<std::string> select(const Module& root, const std::string& output_layer = "lm_head") const {
    std::vector<std::string> suffixes = names_;
    if (kind_ == Kind::all_linear) {
      std::set<std::string> last_parts;
      for (auto& [name, m] : root.named_modules())
        if (!name.empty() && dynamic_cast<const LinearLayer*>(m)) last_parts.insert(last_part(name));
      last_parts.erase(last_part(output_layer));
      suffixes.assign(last_parts.begin(), last_parts.end());
    }
    std::vector<std::string> out;
    for (auto& [name, m] : root.named_modules()) {
      if (name.empty()) continue;
      if (kind_ == Kind::regex ? regex_->full_match(name) : matches_suffix(name, suffixes)) out.push_back(name);
    }
    return out;
  }
  // Does this module name match (names and regex forms; "all-linear" needs the tree: select)?
  bool matches(const std::string& name) const {
    GALVANI_CHECK(kind_ != Kind::all_linear, "target_modules: \"all-linear\" is resolved against a model; use select()");
    return kind_ == Kind::regex ? regex_->full_match(name) : matches_suffix(name, names_);
  }

  std::string str() const {
    if (kind_ == Kind::all_linear) return "\"all-linear\"";
    if (kind_ == Kind::regex) return "\"" + pattern_ + "\"";
    std::string s = "[";
    for (size_t i = 0; i < names_.size(); ++i) s += (i ? ", \"" : "\"") + names_[i] + "\"";
    return s + "]";
  }

 private:
  static std::string last_part(const std::string& name) {
    const auto dot = name.rfind('.');
    return dot == std::string::npos ? name : name.substr(dot + 1);
  }
  static bool matches_suffix(const std::string& name, const std::vector<std::string>& list) {
    for (const std::string& t : list) {
      if (name == t) return true;
      if (name.size() > t.size() && name.compare(name.size() - t.size(), t.size(), t) == 0 &&
          name[name.size() - t.size() - 1] == '.')
        return true;
    }
    return false;
  }

  Kind kind_ = Kind::names;
  std::vector<std::string> names_;
  std::string pattern_;
  std::optional<Regex> regex_;  // the regex form's compiled pattern
};

// peft's TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING for the architectures galvani
// builds: what LoraConfig targets when target_modules is not given.
inline TargetModules default_lora_target_modules(const std::string& model_type) {
  if (model_type == "gpt2") return TargetModules::names({"c_attn"});
  if (model_type == "mistral" || model_type == "llama") return TargetModules::names({"q_proj", "v_proj"});
  throw Error("target_modules: peft has no default for model_type \"" + model_type +
              "\"; give target_modules explicitly");
}

}  // namespace galvani
