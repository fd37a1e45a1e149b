#!/usr/bin/env python3
"""Does transformers read a 4-bit directory that galvani saved, and compute the same logits?

    ../refenv/bin/python tools/check_nf4_roundtrip.py DIR tests/fixtures/nf4/mistral/reference.safetensors

DIR is a directory written by galvani's save_causal_lm (for example by
    build/step3_quantize --model tests/fixtures/nf4/mistral/f32 --out DIR).
It is loaded with from_pretrained(DIR, device_map="cpu") — the quantization_config in its
config.json makes transformers build bnb Linear4bit layers and read the packed keys — and
run on the reference's input_ids, both with bitsandbytes' own forward and with the plain
dequantize-then-linear path the reference logits were made with
(tools/gen_nf4_model_fixtures.py). Exit status 1 when a difference exceeds 1e-5.
Every bnb Linear4bit gets support_avx512bf16_for_cpu = False first: on a CPU with AVX-512 BF16,
bitsandbytes 0.50.2 otherwise repacks the weight and multiplies in bf16 whatever
bnb_4bit_compute_dtype says (docs/quantization.md, "Traps"). Save DIR with
bnb_4bit_compute_dtype float32 (step3_quantize --compute-dtype float32), or transformers
computes the layers in bf16.
"""
import sys

import torch
import bitsandbytes.functional as F
from bitsandbytes.nn import Linear4bit
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM


def main(model_dir, reference):
    ref = load_file(reference)
    m = AutoModelForCausalLM.from_pretrained(model_dir, device_map="cpu")
    m.eval()
    layers = [x for x in m.modules() if isinstance(x, Linear4bit)]
    print(f"{model_dir}: {type(m).__name__}, {len(layers)} Linear4bit layers, "
          f"quant_type {layers[0].weight.quant_state.quant_type}, nested {layers[0].weight.quant_state.nested}, "
          f"get_memory_footprint {m.get_memory_footprint()} bytes")
    for x in layers:
        x.support_avx512bf16_for_cpu = False
    with torch.no_grad():
        native = m(input_ids=ref["input_ids"]).logits
        for x in layers:
            x.forward = (lambda layer: lambda inp: torch.nn.functional.linear(
                inp.float(), F.dequantize_4bit(layer.weight.data, layer.weight.quant_state).float(), layer.bias))(x)
        plain = m(input_ids=ref["input_ids"]).logits
    d_native = (native - ref["logits"]).abs().max().item()
    d_plain = (plain - ref["logits"]).abs().max().item()
    print(f"max |logits - reference|: bnb forward {d_native:.3g}, dequantize+linear {d_plain:.3g}")
    ok = d_native <= 1e-5 and d_plain <= 1e-5
    print("OK" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
