#!/usr/bin/env python3
"""Model-level 4-bit fixtures for tests/test_nf4_models.cpp, from transformers + bitsandbytes.

Run with the reference stack (torch 2.15, transformers 5.24, bitsandbytes 0.50.2, on the CPU):
    ../refenv/bin/python tools/gen_nf4_model_fixtures.py

For a tiny GPT-2 and a tiny Mistral (every input dimension of a linear layer a multiple of
64: bnb 0.50.2's AVX-512 CPU dequantizer indexes absmax per row, which is wrong when a row
is not a whole number of 64-blocks) it writes, under tests/fixtures/nf4/<model>/:
  f32/           the random model, save_pretrained in float32 (config.json, model.safetensors)
  bnb4/          from_pretrained(f32/, quantization_config=BitsAndBytesConfig(nf4, double
                 quant, compute dtype float32), device_map="cpu"), then save_pretrained
  reference.safetensors
     input_ids   (2, T) i64
     logits      (2, T, V) f32: the 4-bit model's logits with every Linear4bit computing
                 linear(x, dequantize_4bit(W).float(), b) — the plain path, so the numbers
                 do not depend on which fused CPU kernel bitsandbytes picks
  reference.json  get_memory_footprint() of the 4-bit model (and of the f32 one), and how far transformers' own
                  forward (bnb's CPU gemm_4bit kernel) is from the plain path
The forward runs *after* save_pretrained: bnb's Linear4bit.forward casts a bias to the
compute dtype in place (bias.data = bias.data.to(x.dtype)), so a forward before saving can
change what is saved.
"""
import json
import os

import torch
import bitsandbytes.functional as F
from bitsandbytes.nn import Linear4bit
from transformers import (AutoModelForCausalLM, BitsAndBytesConfig, GPT2Config, GPT2LMHeadModel, MistralConfig,
                          MistralForCausalLM)
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "nf4")
T = 12


def bnb_config():
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=torch.float32)


def plain_forward(layer):
    def forward(x):
        w = F.dequantize_4bit(layer.weight.data, layer.weight.quant_state).to(torch.float32)
        return torch.nn.functional.linear(x.to(torch.float32), w, layer.bias)
    return forward


def make(name, model):
    d = os.path.join(OUT, name)
    model.save_pretrained(os.path.join(d, "f32"))
    q = AutoModelForCausalLM.from_pretrained(os.path.join(d, "f32"), quantization_config=bnb_config(),
                                             device_map="cpu", dtype=torch.float32)
    q.eval()
    q.save_pretrained(os.path.join(d, "bnb4"))
    footprint = q.get_memory_footprint()

    g = torch.Generator().manual_seed(3)
    ids = torch.randint(0, model.config.vocab_size, (2, T), generator=g)
    layers = [m for m in q.modules() if isinstance(m, Linear4bit)]
    for m in layers:
        m.support_avx512bf16_for_cpu = False  # keep bnb off its repacked AVX-512 bf16 path
    with torch.no_grad():
        native = q(input_ids=ids).logits
        for m in layers:
            m.forward = plain_forward(m)
        logits = q(input_ids=ids).logits
    save_file({"input_ids": ids.contiguous(), "logits": logits.contiguous()}, os.path.join(d, "reference.safetensors"))
    ref = {"memory_footprint": footprint, "f32_memory_footprint": model.get_memory_footprint(), "linear4bit_layers": len(layers),
           "native_vs_plain_max_abs_diff": (native - logits).abs().max().item()}
    with open(os.path.join(d, "reference.json"), "w") as f:
        json.dump(ref, f, indent=2)
    print(name, ref)


def main():
    torch.manual_seed(0)
    gpt2 = GPT2LMHeadModel(GPT2Config(vocab_size=128, n_positions=32, n_embd=64, n_layer=2, n_head=2, bos_token_id=0, eos_token_id=0,
                                      initializer_range=0.2))
    # GPT-2's random init gives zero biases; make them count.
    with torch.no_grad():
        for n, p in gpt2.named_parameters():
            if n.endswith("bias"):
                p.normal_(0, 0.1)
    make("gpt2", gpt2)

    torch.manual_seed(1)
    mistral = MistralForCausalLM(MistralConfig(vocab_size=128, hidden_size=64, intermediate_size=128,
                                               num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                               head_dim=16, max_position_embeddings=64, initializer_range=0.2,
                                               tie_word_embeddings=False))
    make("mistral", mistral)


if __name__ == "__main__":
    main()
