// models/peft.hpp — peft's get_peft_model and its adapter files, for galvani's causal LMs.
//
//   auto model = load_causal_lm("weights/mistral-7b");
//   LoraConfig cfg;  cfg.r = 16; cfg.lora_alpha = 32;       // target_modules: peft's default
//   get_peft_model(*model, cfg);                             // wraps q_proj, v_proj; freezes the rest
//   print_trainable_parameters(*model);                      // peft's line
//   … train …
//   save_adapter(*model, cfg, "out/adapter");                // peft's PeftModel.save_pretrained
//
//   auto base = load_causal_lm("weights/mistral-7b");
//   load_adapter(*base, "out/adapter");                      // PeftModel.from_pretrained
//
// An adapter directory holds two files, as peft writes them:
//   adapter_config.json          the LoraConfig (peft_type "LORA", r, lora_alpha, target_modules, …)
//   adapter_model.safetensors    per adapted module, F32:
//                                  base_model.model.<module>.lora_A.weight   (r, in)
//                                  base_model.model.<module>.lora_B.weight   (out, r)
//                                peft's own state dict says <module>.lora_A.default.weight; the
//                                adapter name ("default") is dropped in the file.
#pragma once
#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <string>

#include "../io/json.hpp"
#include "../io/safetensors.hpp"
#include "../nn/lora.hpp"
#include "causal_lm.hpp"

namespace galvani {

inline std::string model_type_of(const CausalLM& model) { return model.config_json().value("model_type", ""); }

// get_peft_model(model, config): LoRA on the modules config.target_modules selects (peft's
// default for the model's type when unset), every other parameter frozen. Returns the
// wrapped modules' names. A and B are drawn from the model's generator.
inline std::vector<std::string> get_peft_model(CausalLM& model, LoraConfig& config) {
  return apply_lora(model, config, model_type_of(model), model.generator());
}

// ------------------------------------------------------------------ adapter_config.json

inline constexpr const char* kAdapterConfigFile = "adapter_config.json";
inline constexpr const char* kAdapterWeightsFile = "adapter_model.safetensors";
inline constexpr const char* kPeftKeyPrefix = "base_model.model.";

// adapter_config.json as peft 0.21.2 writes it for a LoRA: every field of its LoraConfig,
// those galvani does not implement at peft's defaults. `wrapped` are the adapted modules'
// names: peft writes a resolved "all-linear" as that list.
inline nlohmann::json lora_config_to_json(const LoraConfig& c, const std::vector<std::string>& wrapped) {
  using nlohmann::json;
  json targets;
  if (!c.target_modules || c.target_modules->kind() == TargetModules::Kind::all_linear) {
    std::vector<std::string> w = wrapped;
    std::sort(w.begin(), w.end());
    targets = w;
  } else if (c.target_modules->kind() == TargetModules::Kind::regex) {
    targets = c.target_modules->pattern();
  } else {
    std::vector<std::string> w = c.target_modules->name_list();
    std::sort(w.begin(), w.end());  // peft keeps a set: its order is arbitrary
    targets = w;
  }
  const auto number = [](double v) { return v == std::floor(v) ? json(int64_t(v)) : json(v); };
  return json{
      {"alora_invocation_tokens", nullptr},
      {"alpha_pattern", json::object()},
      {"arrow_config", nullptr},
      {"auto_mapping", nullptr},
      {"base_model_name_or_path", c.base_model_name_or_path.empty() ? json(nullptr) : json(c.base_model_name_or_path)},
      {"bias", c.bias},
      {"corda_config", nullptr},
      {"ensure_weight_tying", false},
      {"eva_config", nullptr},
      {"exclude_modules", nullptr},
      {"fan_in_fan_out", c.fan_in_fan_out},
      {"inference_mode", true},  // peft writes true: a saved adapter loads frozen unless told otherwise
      {"init_lora_weights", true},
      {"kasa_config", nullptr},
      {"layer_replication", nullptr},
      {"layers_pattern", nullptr},
      {"layers_to_transform", nullptr},
      {"loftq_config", json::object()},
      {"lora_alpha", number(c.lora_alpha)},
      {"lora_bias", false},
      {"lora_dropout", c.lora_dropout},
      {"lora_ga_config", nullptr},
      {"megatron_config", nullptr},
      {"megatron_core", "megatron.core"},
      {"modules_to_save", nullptr},
      {"monteclora_config", nullptr},
      {"peft_type", "LORA"},
      {"peft_version", "0.21.2"},
      {"qalora_group_size", 16},
      {"r", c.r},
      {"rank_pattern", json::object()},
      {"revision", nullptr},
      {"target_modules", targets},
      {"target_parameters", nullptr},
      {"task_type", c.task_type},
      {"trainable_token_indices", nullptr},
      {"use_bdlora", nullptr},
      {"use_dora", false},
      {"use_qalora", false},
      {"use_rslora", c.use_rslora},
      {"velora_config", nullptr},
  };
}

// adapter_config.json → LoraConfig. Options galvani does not implement (DoRA, per-module
// ranks, layers_to_transform, modules_to_save, a LoRA bias, …) are refused by name rather than
// silently ignored; an unknown field is ignored, as peft ignores it.
inline LoraConfig lora_config_from_json(const nlohmann::json& j, const std::string& where) {
  using nlohmann::json;
  GALVANI_CHECK(j.is_object(), where, ": not a JSON object");
  // A key of the wrong JSON type is an error naming the key (json::value would throw
  // nlohmann's own type_error, which names neither the file nor the key).
  const auto get = [&]<class T>(const char* key, T fallback) -> T {
    const auto it = j.find(key);
    if (it == j.end() || it->is_null()) return fallback;
    if constexpr (std::is_same_v<T, bool>)
      GALVANI_CHECK(it->is_boolean(), where, ": \"", key, "\" must be true or false, got ", it->dump());
    else if constexpr (std::is_same_v<T, std::string>)
      GALVANI_CHECK(it->is_string(), where, ": \"", key, "\" must be a string, got ", it->dump());
    else
      GALVANI_CHECK(it->is_number(), where, ": \"", key, "\" must be a number, got ", it->dump());
    return it->get<T>();
  };
  const std::string peft_type = get("peft_type", std::string());
  GALVANI_CHECK(peft_type == "LORA", where, ": peft_type is \"", peft_type, "\"; galvani loads LORA adapters only");
  const auto is_off = [&](const char* key) {
    if (!j.contains(key)) return true;
    const json& v = j[key];
    return v.is_null() || (v.is_boolean() && !v.get<bool>()) || (v.is_object() && v.empty()) ||
           (v.is_array() && v.empty());
  };
  for (const char* key : {"use_dora", "lora_bias", "alpha_pattern", "rank_pattern", "layers_to_transform",
                          "layer_replication", "modules_to_save", "exclude_modules", "trainable_token_indices",
                          "target_parameters", "use_qalora"})
    GALVANI_CHECK(is_off(key), where, ": \"", key, "\" = ", j[key].dump(), " is not supported by galvani's LoRA");
  LoraConfig c;
  try {
    GALVANI_CHECK(j.contains("r") && j["r"].is_number_integer(), where, ": \"r\" must be an integer");
    c.r = j["r"].get<int64_t>();
    GALVANI_CHECK(c.r > 0, where, ": \"r\" must be positive, got ", c.r);
    c.lora_alpha = get("lora_alpha", 8.0);
    c.lora_dropout = get("lora_dropout", 0.0);
    c.use_rslora = get("use_rslora", false);
    c.fan_in_fan_out = get("fan_in_fan_out", false);
    c.bias = get("bias", std::string("none"));
    GALVANI_CHECK(c.bias == "none", where, ": bias \"", c.bias, "\" is not supported (only \"none\")");
    if (j.contains("task_type") && j["task_type"].is_string()) c.task_type = j["task_type"].get<std::string>();
    if (j.contains("base_model_name_or_path") && j["base_model_name_or_path"].is_string())
      c.base_model_name_or_path = j["base_model_name_or_path"].get<std::string>();
    c.inference_mode = get("inference_mode", true);
    if (j.contains("target_modules") && !j["target_modules"].is_null()) {
      const json& t = j["target_modules"];
      if (t.is_string()) {
        try {
          c.target_modules = TargetModules::parse(t.get<std::string>());
        } catch (const Error& e) {  // a pattern RE2 refuses: name the file too
          throw Error(where + ": " + e.what());
        }
      } else {
        GALVANI_CHECK(t.is_array() && std::all_of(t.begin(), t.end(), [](const json& n) { return n.is_string(); }),
                      where, ": \"target_modules\" must be a string or a list of names, got ", t.dump());
        c.target_modules = TargetModules::names(t.get<std::vector<std::string>>());
      }
    }
  } catch (const json::exception& e) {
    throw Error(where + ": " + e.what());
  }
  return c;
}

inline LoraConfig read_adapter_config(const std::filesystem::path& dir) {
  const std::filesystem::path f = dir / kAdapterConfigFile;
  GALVANI_CHECK(std::filesystem::exists(f), dir.string(), ": no ", kAdapterConfigFile, " (is it a peft adapter directory?)");
  return lora_config_from_json(io::read_json_file(f), f.string());
}

// ------------------------------------------------------------------ saving and loading adapters

// peft's PeftModel.save_pretrained for a LoRA: adapter_config.json and adapter_model.safetensors
// (the A and B of every LoraLinear of `model`, F32, keys base_model.model.<module>.lora_A.weight).
inline void save_adapter(const Module& model, const LoraConfig& config, const std::filesystem::path& dir) {
  const auto layers = lora_layers(model);
  GALVANI_CHECK(!layers.empty(), "save_adapter: the model has no LoRA layers (call get_peft_model first)");
  std::filesystem::create_directories(dir);
  io::StateDict sd;
  std::vector<std::string> wrapped;
  for (const auto& [name, l] : layers) {
    wrapped.push_back(name);
    sd.insert(kPeftKeyPrefix + name + ".lora_A.weight", l->A().detach().contiguous());
    sd.insert(kPeftKeyPrefix + name + ".lora_B.weight", l->B().detach().contiguous());
  }
  io::save_safetensors(dir / kAdapterWeightsFile, sd, io::Metadata{{"format", "pt"}});
  io::write_json_file(dir / kAdapterConfigFile, lora_config_to_json(config, wrapped));
}

// Copy an adapter's tensors (peft's keys) into the LoRA layers of `model`, checking every
// shape against the module it is for. Every LoRA layer must receive its A and B, and every
// tensor must find a LoRA layer; the errors name the module (and both shapes).
inline void load_adapter_weights(Module& model, const io::StateDict& sd, const std::string& where) {
  std::map<std::string, LoraLinear*> by_name;
  for (const auto& [name, l] : lora_layers(model)) by_name[name] = l;
  std::set<std::string> filled;
  for (const auto& e : sd) {
    std::string key = e.name;
    GALVANI_CHECK(key.rfind(kPeftKeyPrefix, 0) == 0, where, ": tensor '", key, "' does not start with '",
                  kPeftKeyPrefix, "' (not a peft LoRA adapter?)");
    key = key.substr(std::string(kPeftKeyPrefix).size());
    std::string which;
    for (const char* suffix : {".lora_A.weight", ".lora_B.weight"})
      if (key.ends_with(suffix)) which = suffix;
    GALVANI_CHECK(!which.empty(), where, ": tensor '", e.name, "' is not a LoRA A or B weight");
    const std::string module = key.substr(0, key.size() - which.size());
    auto it = by_name.find(module);
    GALVANI_CHECK(it != by_name.end(), where, ": tensor '", e.name, "' is for module '", module,
                  "', which adapter_config.json's target_modules did not select in this model (is the adapter for "
                  "another base model?)");
    LoraLinear& l = *it->second;
    const bool is_a = which == ".lora_A.weight";
    const Tensor& dst = is_a ? l.A() : l.B();
    GALVANI_CHECK(!e.is_raw(), where, ": tensor '", e.name, "' has dtype ", e.raw_dtype, ", not a float");
    GALVANI_CHECK(e.shape() == dst.shape(), where, ": module '", module, "': ", (is_a ? "lora_A" : "lora_B"),
                  ".weight is ", shape_str(e.shape()), " in the adapter but this model needs ", shape_str(dst.shape()),
                  is_a ? " (r, in_features)" : " (out_features, r)", " — r = ", l.r(), " in adapter_config.json, ",
                  l.in_features(), " → ", l.out_features(), " in the model; is the adapter for another base model, or "
                  "does its r disagree with its weights?");
    NoGradGuard no_grad;
    copy_into(dst, e.tensor);
    filled.insert(module + which);
  }
  for (const auto& [name, l] : by_name)
    for (const char* suffix : {".lora_A.weight", ".lora_B.weight"})
      GALVANI_CHECK(filled.count(name + suffix), where, ": module '", name, "' is targeted by adapter_config.json but "
                    "the adapter has no '", kPeftKeyPrefix, name, suffix, "'");
}

// PeftModel.from_pretrained(model, dir): apply the adapter's LoraConfig to `model` and load
// its weights. `is_trainable` (peft's name): the adapter trains on (resuming from an adapter
// checkpoint); otherwise it is frozen, as peft loads it. Returns the config as read (with
// target_modules resolved).
inline LoraConfig load_adapter(CausalLM& model, const std::filesystem::path& dir, bool is_trainable = false) {
  LoraConfig cfg = read_adapter_config(dir);
  cfg.inference_mode = !is_trainable;
  const std::filesystem::path weights = dir / kAdapterWeightsFile;
  GALVANI_CHECK(std::filesystem::exists(weights), dir.string(), ": no ", kAdapterWeightsFile);
  io::StateDict sd = io::load_safetensors(weights, io::LoadOptions{std::nullopt, true});
  try {
    get_peft_model(model, cfg);
  } catch (const Error& e) {
    throw Error((dir / kAdapterConfigFile).string() + ": " + e.what());
  }
  load_adapter_weights(model, sd, weights.string());
  return cfg;
}

}  // namespace galvani
