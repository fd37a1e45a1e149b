// quant/bnb_config.hpp — transformers' BitsAndBytesConfig: how a model is quantized, and what
// config.json's "quantization_config" says about a quantized checkpoint.
//
// The fields and their defaults are transformers' (utils/quantization_config.py). Note the
// defaults: fp4 (not nf4), no double quantization, compute in float32. QLoRA sets
//   load_in_4bit = true, bnb_4bit_quant_type = "nf4", bnb_4bit_use_double_quant = true,
//   bnb_4bit_compute_dtype = "bfloat16"                                 (BitsAndBytesConfig::qlora())
// transformers 5.24's save_pretrained writes it as (keys sorted):
//   "quantization_config": {"_load_in_4bit": true, "_load_in_8bit": false,
//     "bnb_4bit_compute_dtype": "float32", "bnb_4bit_quant_storage": "uint8",
//     "bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": true,
//     "llm_int8_enable_fp32_cpu_offload": false, "llm_int8_has_fp16_weight": false,
//     "llm_int8_skip_modules": null, "llm_int8_threshold": 6.0,
//     "load_in_4bit": true, "load_in_8bit": false, "quant_method": "bitsandbytes"}
// galvani implements the 4-bit half (load_in_4bit) with uint8 storage; the 8-bit fields are
// kept only so that a config survives a load/save round trip unchanged.
#pragma once
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "quantize_4bit.hpp"

namespace galvani {

struct BitsAndBytesConfig {
  bool load_in_4bit = false;
  bool load_in_8bit = false;
  std::string bnb_4bit_quant_type = "fp4";        // "nf4" or "fp4"
  bool bnb_4bit_use_double_quant = false;         // quantize the absmax too (nested, blocks of 256)
  std::string bnb_4bit_compute_dtype = "float32"; // None in Python means float32
  std::string bnb_4bit_quant_storage = "uint8";   // the packed weight's dtype in the file
  std::optional<std::vector<std::string>> llm_int8_skip_modules;  // null: transformers' defaults (lm_head)
  double llm_int8_threshold = 6.0;
  bool llm_int8_has_fp16_weight = false;
  bool llm_int8_enable_fp32_cpu_offload = false;

  // The QLoRA paper's setting.
  static BitsAndBytesConfig qlora() {
    BitsAndBytesConfig c;
    c.load_in_4bit = true;
    c.bnb_4bit_quant_type = "nf4";
    c.bnb_4bit_use_double_quant = true;
    c.bnb_4bit_compute_dtype = "bfloat16";
    return c;
  }

  // What a Linear4bit of this config quantizes with. Refuses what galvani does not implement.
  quant::Quantize4bitOptions quantize_options(const std::string& where = "quantization_config") const {
    GALVANI_CHECK(load_in_4bit && !load_in_8bit, where, ": only load_in_4bit is implemented in galvani (got load_in_4bit=",
                  load_in_4bit, ", load_in_8bit=", load_in_8bit, ")");
    GALVANI_CHECK(bnb_4bit_quant_type == "nf4" || bnb_4bit_quant_type == "fp4", where, ": bnb_4bit_quant_type \"",
                  bnb_4bit_quant_type, "\" is neither nf4 nor fp4");
    GALVANI_CHECK(bnb_4bit_quant_storage == "uint8", where, ": bnb_4bit_quant_storage \"", bnb_4bit_quant_storage,
                  "\" is not implemented (only uint8)");
    quant::Quantize4bitOptions o;
    o.quant_type = bnb_4bit_quant_type == "nf4" ? quant::QuantType::nf4 : quant::QuantType::fp4;
    o.double_quant = bnb_4bit_use_double_quant;
    return o;  // blocksize 64: transformers never passes another
  }

  nlohmann::json to_json() const {
    nlohmann::json j;
    j["_load_in_4bit"] = load_in_4bit;
    j["_load_in_8bit"] = load_in_8bit;
    j["bnb_4bit_compute_dtype"] = bnb_4bit_compute_dtype;
    j["bnb_4bit_quant_storage"] = bnb_4bit_quant_storage;
    j["bnb_4bit_quant_type"] = bnb_4bit_quant_type;
    j["bnb_4bit_use_double_quant"] = bnb_4bit_use_double_quant;
    j["llm_int8_enable_fp32_cpu_offload"] = llm_int8_enable_fp32_cpu_offload;
    j["llm_int8_has_fp16_weight"] = llm_int8_has_fp16_weight;
    j["llm_int8_skip_modules"] = llm_int8_skip_modules ? nlohmann::json(*llm_int8_skip_modules) : nlohmann::json();
    j["llm_int8_threshold"] = llm_int8_threshold;
    j["load_in_4bit"] = load_in_4bit;
    j["load_in_8bit"] = load_in_8bit;
    j["quant_method"] = "bitsandbytes";
    return j;
  }

  // From config.json's "quantization_config" (either spelling of load_in_4bit is accepted:
  // transformers writes both). Every error names `where`.
  static BitsAndBytesConfig from_json(const nlohmann::json& j, const std::string& where = "quantization_config") {
    GALVANI_CHECK(j.is_object(), where, ": not a JSON object");
    const auto qm = j.find("quant_method");
    GALVANI_CHECK(qm != j.end() && *qm == "bitsandbytes", where, ": quant_method is ",
                  qm == j.end() ? std::string("missing") : qm->dump(), "; galvani reads only \"bitsandbytes\"");
    BitsAndBytesConfig c;
    auto get = [&](const char* key, auto& out) {
      const auto it = j.find(key);
      if (it == j.end() || it->is_null()) return false;
      try {
        out = it->get<std::decay_t<decltype(out)>>();
      } catch (const nlohmann::json::exception&) {
        throw Error(detail::cat(where, ": ", key, " has the wrong type (", it->dump(), ")"));
      }
      return true;
    };
    if (!get("load_in_4bit", c.load_in_4bit)) get("_load_in_4bit", c.load_in_4bit);
    if (!get("load_in_8bit", c.load_in_8bit)) get("_load_in_8bit", c.load_in_8bit);
    get("bnb_4bit_quant_type", c.bnb_4bit_quant_type);
    get("bnb_4bit_use_double_quant", c.bnb_4bit_use_double_quant);
    get("bnb_4bit_compute_dtype", c.bnb_4bit_compute_dtype);
    get("bnb_4bit_quant_storage", c.bnb_4bit_quant_storage);
    std::vector<std::string> skip;
    if (get("llm_int8_skip_modules", skip)) c.llm_int8_skip_modules = skip;
    get("llm_int8_threshold", c.llm_int8_threshold);
    get("llm_int8_has_fp16_weight", c.llm_int8_has_fp16_weight);
    get("llm_int8_enable_fp32_cpu_offload", c.llm_int8_enable_fp32_cpu_offload);
    c.quantize_options(where);  // refuse what galvani cannot load, now
    return c;
  }
};

}  // namespace galvani
