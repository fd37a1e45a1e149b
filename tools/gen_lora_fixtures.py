#!/usr/bin/env python3
"""LoRA fixtures from peft: tiny GPT-2 and Mistral bases, peft adapters over them, and what
peft computes with them (logits, loss, LoRA gradients).

For each architecture this writes, under tests/fixtures/lora/<arch>/:
    base/        a randomly initialised model, save_pretrained (config.json, model.safetensors)
    adapter/     peft's save_pretrained of a LoRA over it (adapter_config.json,
                 adapter_model.safetensors); lora_B is set to random values so that the
                 adapter changes the output (peft initialises B to zero)
    ref.safetensors   input_ids, labels, logits, loss, and the gradient of every LoRA weight
                      under its saved key + ".grad"
    ref.json     peft's print_trainable_parameters() line and the wrapped modules' names

    gpt2:     target_modules default (["c_attn"], Conv1D: fan_in_fan_out true), r 4, alpha 8
    mistral:  target_modules "all-linear", r 4, alpha 8, use_rslora (scaling alpha / sqrt(r))

The base's dropout probabilities are 0 and lora_dropout is 0, so the numbers are the
model's own arithmetic and not torch's random masks.

    ../refenv/bin/python tools/gen_lora_fixtures.py
"""
import contextlib
import io
import json
import pathlib

import peft
import torch
import transformers
from peft import LoraConfig, get_peft_model
from safetensors.torch import save_file
from transformers import GPT2Config, GPT2LMHeadModel, MistralConfig, MistralForCausalLM

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "lora"


def build(arch):
    if arch == "gpt2":
        cfg = GPT2Config(n_layer=2, n_embd=16, n_head=2, vocab_size=64, n_positions=32, bos_token_id=0,
                         eos_token_id=0, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
        return GPT2LMHeadModel(cfg), LoraConfig(r=4, lora_alpha=8, task_type="CAUSAL_LM")
    cfg = MistralConfig(num_hidden_layers=2, hidden_size=16, num_attention_heads=2, num_key_value_heads=1,
                        intermediate_size=32, vocab_size=64, max_position_embeddings=64, sliding_window=8,
                        bos_token_id=1, eos_token_id=2)
    return MistralForCausalLM(cfg), LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", use_rslora=True,
                                               task_type="CAUSAL_LM")


def main():
    for seed, arch in enumerate(["gpt2", "mistral"]):
        torch.manual_seed(seed)
        base, lcfg = build(arch)
        d = OUT / arch
        base.save_pretrained(d / "base")
        model = get_peft_model(base, lcfg)
        with torch.no_grad():
            for n, p in model.named_parameters():
                if "lora_B" in n:
                    p.copy_(torch.randn_like(p) * 0.1)
        model.save_pretrained(d / "adapter")
        (d / "adapter" / "README.md").unlink()  # peft's model card: not part of the format
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            model.print_trainable_parameters()
        model.eval()
        ids = torch.randint(0, 64, (2, 7))
        out = model(input_ids=ids, labels=ids)  # labels = input_ids: the model shifts them
        out.loss.backward()
        ref = {"input_ids": ids, "logits": out.logits.detach().contiguous(),
               "loss": out.loss.detach().reshape(1)}
        for n, p in model.named_parameters():
            if p.requires_grad:
                ref[n.replace(".default", "") + ".grad"] = p.grad.contiguous()
        save_file(ref, d / "ref.safetensors")
        # Logits with the adapter switched off (a base-model evaluation).
        with model.disable_adapter(), torch.no_grad():
            base_logits = model(input_ids=ids).logits
        save_file({"logits": base_logits.contiguous()}, d / "ref_base.safetensors")
        wrapped = [n[len("base_model.model."):] for n, m in model.named_modules()
                   if isinstance(m, peft.tuners.lora.LoraLayer)]
        (d / "ref.json").write_text(json.dumps({
            "generator": "tools/gen_lora_fixtures.py",
            "versions": {"peft": peft.__version__, "transformers": transformers.__version__,
                         "torch": torch.__version__.split("+")[0]},
            "print_trainable_parameters": printed.getvalue().strip(),
            "wrapped": wrapped,
            "named_modules": [[n, type(m).__name__] for n, m in model.named_modules() if ".0." in n],
        }, indent=1) + "\n")


if __name__ == "__main__":
    main()
