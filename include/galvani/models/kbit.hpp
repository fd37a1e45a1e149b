// models/kbit.hpp — peft's prepare_model_for_kbit_training: get a (4-bit) model ready for
// training adapters on it, step 4 of the course's QLoRA path.
//
//   LoadCausalLMOptions lo;  lo.quantization_config = nf4;   // models/auto.hpp
//   auto model = load_causal_lm("weights/mistral-7b", lo);
//   prepare_model_for_kbit_training(*model);   // frozen, norms & embeddings f32, checkpointing on
//   LoraConfig cfg;  cfg.r = 32;  cfg.lora_alpha = 64;  cfg.lora_dropout = 0.05;
//   get_peft_model(*model, cfg);                // models/peft.hpp: only A and B train
//
// What peft 0.21 does (peft/utils/other.py), step by step, and galvani with it:
//   1. every parameter: requires_grad = False (the base is frozen; get_peft_model then makes
//      the adapters trainable);
//   2. every f16/bf16 parameter that is not a 4-bit weight (bnb's Params4bit) becomes f32 —
//      norms, embeddings, the lm_head, biases; in galvani a packed 4-bit weight is a buffer, not
//      a parameter, so only float tensors are met. The cast is in place (Tensor::set_data, torch's
//      `param.data = param.data.to(torch.float32)`), so a tied lm_head follows its embedding;
//   3. the accelerator's cache is emptied (nothing to do on the CPU, which has no caching
//      allocator);
//   4. only for a model loaded in k-bit (transformers' is_loaded_in_4bit; here: a
//      quantization_config is set or a Linear4bit is in the tree) and when
//      use_gradient_checkpointing: enable_input_require_grads(), then
//      gradient_checkpointing_enable() (models/causal_lm.hpp: each decoder layer is recomputed
//      in backward, its dropout masks replayed).
// A KV cache is never used in training: the Trainer passes none, and forward() refuses one
// while checkpointing is active (transformers sets use_cache=False there; the course also sets
// model.config.use_cache = False, which only changes what config.json says).
#pragma once
#include "../autograd/grad_mode.hpp"
#include "../nn/linear4bit.hpp"
#include "causal_lm.hpp"

namespace galvani {

// Whether `model` holds k-bit (4-bit) weights, as transformers' is_loaded_in_4bit says.
inline bool is_loaded_in_kbit(const CausalLM& model) {
  if (model.quantization_config) return true;
  for (const auto& [name, m] : model.named_modules())
    if (dynamic_cast<const Linear4bit*>(m)) return true;
  return false;
}

// peft's prepare_model_for_kbit_training(model, use_gradient_checkpointing) (see above).
// Returns the model, as peft does.
inline CausalLM& prepare_model_for_kbit_training(CausalLM& model, bool use_gradient_checkpointing = true) {
  NoGradGuard no_grad;
  for (auto& [name, p] : model.named_parameters()) p.requires_grad_(false);
  for (auto& [name, p] : model.named_parameters())
    if (p.dtype() == DType::f16 || p.dtype() == DType::bf16) p.set_data(p.to(DType::f32));
  if (use_gradient_checkpointing && is_loaded_in_kbit(model)) {
    model.enable_input_require_grads();
    model.gradient_checkpointing_enable();
  }
  return model;
}

}  // namespace galvani
