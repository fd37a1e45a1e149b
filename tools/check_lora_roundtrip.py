#!/usr/bin/env python3
"""peft and transformers read what galvani writes: a LoRA adapter and a merged export.

    GALVANI_LORA_EXPORT=/tmp/lora_export build/tests/test_lora "export*"
    ../refenv/bin/python tools/check_lora_roundtrip.py /tmp/lora_export

For each architecture of tests/fixtures/lora, test_lora trains the fixture adapter one step,
saves it with save_adapter, merges it with merge_and_unload and saves the model with
save_causal_lm, and writes its own logits. This script checks that
  1. PeftModel.from_pretrained(base, galvani's adapter) gives galvani's logits, and
  2. AutoModelForCausalLM.from_pretrained(galvani's merged export) gives them too.

qlora_gpt2 and qlora_mistral do the same over a 4-bit base: transformers quantizes the nf4
fixture's f32 checkpoint on load (NF4, double quantization, compute f32, as
tools/gen_qlora_fixtures.py), peft puts galvani's adapter on it; the merged export is galvani's
merge_and_unload with the 4-bit layers dequantized, a plain f32 model. bnb's Linear4bit gets
support_avx512bf16_for_cpu = False, else an eval-mode, no-grad forward multiplies in bf16.
"""
import pathlib
import sys

import torch
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, BitsAndBytesConfig

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "lora"
NF4 = FIXTURES.parent / "nf4"


def load_base(arch):
    if not arch.startswith("qlora_"):
        return AutoModelForCausalLM.from_pretrained(FIXTURES / arch / "base")
    from bitsandbytes.nn import Linear4bit
    name = arch[len("qlora_"):]
    q = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                           bnb_4bit_compute_dtype=torch.float32)
    overrides = {"resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0} if name == "gpt2" else {}
    base = AutoModelForCausalLM.from_pretrained(NF4 / name / "f32", quantization_config=q, device_map="cpu",
                                                dtype=torch.float32, **overrides)
    for m in base.modules():
        if isinstance(m, Linear4bit):
            m.support_avx512bf16_for_cpu = False
    return base


def main(export):
    ok = True
    for arch in ["gpt2", "mistral", "qlora_gpt2", "qlora_mistral"]:
        d = pathlib.Path(export) / arch
        if not d.exists():
            print(f"{arch}: not exported, skipped")
            continue
        ref = load_file(d / "logits.safetensors")
        ids, expected = ref["input_ids"], ref["logits"]
        base = load_base(arch).eval()
        peft_model = PeftModel.from_pretrained(base, d / "adapter").eval()
        merged = AutoModelForCausalLM.from_pretrained(d / "merged").eval()
        with torch.no_grad():
            for what, model in [("peft + galvani adapter", peft_model), ("transformers + merged export", merged)]:
                diff = (model(input_ids=ids).logits - expected).abs().max().item()
                good = diff < 1e-4
                ok &= good
                print(f"{arch}: {what}: max |logits - galvani's| = {diff:.3g} {'ok' if good else 'MISMATCH'}")
        # The adapter changed in training: the check is not the fixture's logits again.
        fixture = load_file(FIXTURES / arch / "ref.safetensors")["logits"]
        print(f"{arch}: (galvani's step moved the logits by {(expected - fixture).abs().max().item():.3g})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/lora_export"))
