#!/usr/bin/env python3
"""peft and transformers read what galvani writes: a LoRA adapter and a merged export.

    GALVANI_LORA_EXPORT=/tmp/lora_export build/tests/test_lora "export*"
    ../refenv/bin/python tools/check_lora_roundtrip.py /tmp/lora_export

For each architecture of tests/fixtures/lora, test_lora trains the fixture adapter one step,
saves it with save_adapter, merges it with merge_and_unload and saves the model with
save_causal_lm, and writes its own logits. This script checks that
  1. PeftModel.from_pretrained(base, galvani's adapter) gives galvani's logits, and
  2. AutoModelForCausalLM.from_pretrained(galvani's merged export) gives them too.
"""
import pathlib
import sys

import torch
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "lora"


def main(export):
    ok = True
    for arch in ["gpt2", "mistral"]:
        d = pathlib.Path(export) / arch
        ref = load_file(d / "logits.safetensors")
        ids, expected = ref["input_ids"], ref["logits"]
        base = AutoModelForCausalLM.from_pretrained(FIXTURES / arch / "base").eval()
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
