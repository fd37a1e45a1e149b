#!/usr/bin/env python3
"""Module-tree fixtures from transformers: named_modules(), named_parameters() and
state_dict() keys of GPT2LMHeadModel, MistralForCausalLM and a tied LlamaForCausalLM.

tests/test_module_tree.cpp checks that galvani's trees carry exactly these names (and
transformers' class names), so peft-style code that swaps layers by name finds the same
modules in both.

    ../refenv/bin/python tools/gen_module_fixtures.py   # -> tests/fixtures/modules/trees.json
"""
import json
import pathlib

import torch
import transformers
from transformers import (GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, MistralConfig,
                          MistralForCausalLM)

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "modules" / "trees.json"


def describe(model, config):
    return {
        "config": config.to_diff_dict() | {"model_type": config.model_type},
        "named_modules": [[n, type(m).__name__] for n, m in model.named_modules()],
        "named_parameters": [n for n, _ in model.named_parameters()],
        "state_dict": list(model.state_dict().keys()),
    }


def peft_targets(make_model, target_modules):
    """The full names of the modules peft's get_peft_model wraps for these target_modules."""
    from peft import LoraConfig, get_peft_model
    from peft.tuners.lora import LoraLayer
    peft_model = get_peft_model(make_model(), LoraConfig(r=4, lora_alpha=8, target_modules=target_modules))
    prefix = "base_model.model."
    return [n[len(prefix):] for n, m in peft_model.named_modules() if isinstance(m, LoraLayer)]


def main():
    torch.manual_seed(0)
    gpt2 = GPT2Config(n_layer=2, n_embd=16, n_head=2, vocab_size=64, n_positions=32, bos_token_id=0, eos_token_id=0)
    mistral = MistralConfig(num_hidden_layers=2, hidden_size=16, num_attention_heads=2, num_key_value_heads=1,
                            intermediate_size=32, vocab_size=64, max_position_embeddings=64, sliding_window=8)
    llama = LlamaConfig(num_hidden_layers=1, hidden_size=16, num_attention_heads=2, num_key_value_heads=1,
                        intermediate_size=32, vocab_size=64, max_position_embeddings=64, tie_word_embeddings=True)
    out = {
        "generator": "tools/gen_module_fixtures.py",
        "versions": {"transformers": transformers.__version__, "torch": torch.__version__.split("+")[0]},
        "gpt2": describe(GPT2LMHeadModel(gpt2), gpt2),
        "mistral": describe(MistralForCausalLM(mistral), mistral),
        "llama_tied": describe(LlamaForCausalLM(llama), llama),
    }
    # peft's target_modules matching: a list of suffixes, a regex (fullmatch), "all-linear".
    cases = [["q_proj", "v_proj"], ["c_attn"], "all-linear", r".*\.(q|k)_proj", r".*\.h\.1\..*c_proj",
             ["mlp.c_proj"], ["layers.1.self_attn.o_proj", "gate_proj"]]
    out["peft_targets"] = []
    for arch, make in [("gpt2", lambda: GPT2LMHeadModel(gpt2)), ("mistral", lambda: MistralForCausalLM(mistral)),
                       ("llama_tied", lambda: LlamaForCausalLM(llama))]:
        for tm in cases:
            try:
                selected = peft_targets(make, tm)
            except ValueError:  # peft refuses a config that matches nothing
                selected = []
            out["peft_targets"].append({"model": arch, "target_modules": tm, "selected": selected})
    out["versions"]["peft"] = __import__("peft").__version__
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
