#!/usr/bin/env python3
"""Reference fixtures for tests/test_quant_nf4.cpp, from the bitsandbytes package itself.

Run with the reference stack (bitsandbytes 0.50.2, torch 2.15, on the CPU):
    ../refenv/bin/python tools/gen_nf4_fixtures.py
Writes tests/fixtures/nf4/quantize_4bit.safetensors and blockwise8.safetensors (small:
inputs with fixed seeds and what bitsandbytes made of them) and manifest.json.

quantize_4bit.safetensors, for each case C:
  C.input                                   the tensor given to F.quantize_4bit (f32/bf16/f16)
  C.weight, C.weight.absmax, ...            QuantState.as_dict(packed=True) under "C.weight."
                                            exactly as transformers saves a Linear4bit
  C.dequantized                             F.dequantize_4bit(packed, state) (input dtype)
  C.dequantized_flat                        code[q[i]] * absmax[i // blocksize], the format's
                                            definition (bnb's default backend and CUDA kernel).
                                            bnb 0.50.2's AVX-512 CPU dequantizer indexes absmax
                                            per row, so it differs when a row is not a whole
                                            number of blocks; manifest.json lists those cases.
blockwise8.safetensors:
  dynamic_map                               F.create_dynamic_map() (the nested code)
  C.input, C.codes_cpu, C.absmax            F.quantize_blockwise on the CPU (LUT rule)
  C.codes_nearest                           nearest code, ties to the lower (torch.bucketize
                                            over midpoints: bitsandbytes' default backend)
  mean.N / mean.N.value                     torch's float32 mean of N values (absmax.mean())
"""
import json
import os
import sys

import torch
import bitsandbytes.functional as F
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "nf4")


def gen(seed, shape, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g).to(dtype)


def nf4_midpoints():
    code = F.get_4bit_type("nf4", device="cpu")
    return (code[:-1] + code[1:]) / 2


def cases():
    out = []
    # name, tensor, blocksize, quant_type, nested
    out.append(("nf4_bs64", gen(1, (16, 96)), 64, "nf4", False))
    out.append(("nf4_bs64_dq", gen(2, (24, 128)), 64, "nf4", True))
    out.append(("nf4_bs128_dq", gen(3, (20, 160)), 128, "nf4", True))
    out.append(("nf4_bs4096_dq", gen(4, (3, 4100)), 4096, "nf4", True))
    out.append(("nf4_bs32", gen(5, (7, 64)), 32, "nf4", False))
    for bs in (256, 512, 1024, 2048):
        out.append((f"nf4_bs{bs}_dq", gen(10 + bs, (5, 1031)), bs, "nf4", True))
    # odd length (the last byte's low nibble is padding) and a short last block
    out.append(("nf4_odd", gen(6, (7, 33)), 64, "nf4", False))
    out.append(("nf4_odd_dq", gen(7, (37, 29)), 64, "nf4", True))
    # an all-zero block in the middle and one at the (short) end
    z = gen(8, (5, 70))
    z.view(-1)[64:128] = 0
    z.view(-1)[320:] = 0
    out.append(("nf4_zero_blocks", z, 64, "nf4", False))
    out.append(("nf4_zero_blocks_dq", z.clone(), 64, "nf4", True))
    # values exactly on the midpoints of adjacent codes (absmax 1, so scaled == value)
    mids = nf4_midpoints()
    m = torch.cat([mids, -mids, torch.tensor([1.0, -1.0, 0.0])])
    m = torch.cat([m, torch.zeros(128 - m.numel())]).view(2, 64)
    m[0, 63] = 1.0
    m[1, 63] = 1.0
    out.append(("nf4_midpoints", m, 64, "nf4", False))
    out.append(("nf4_bf16_dq", gen(9, (12, 100), torch.bfloat16), 64, "nf4", True))
    out.append(("nf4_f16_dq", gen(10, (9, 130), torch.float16), 128, "nf4", True))
    out.append(("fp4_bs64", gen(11, (10, 64)), 64, "fp4", False))
    out.append(("fp4_odd_dq", gen(12, (11, 31)), 64, "fp4", True))
    out.append(("fp4_zero_bf16", torch.cat([torch.zeros(64), gen(13, (100,))]).to(torch.bfloat16).view(4, 41), 64, "fp4", False))
    return out


def main():
    os.makedirs(OUT, exist_ok=True)
    q4 = {}
    manifest = {"bitsandbytes": __import__("bitsandbytes").__version__, "torch": torch.__version__, "cases": []}
    for name, t, bs, qt, nested in cases():
        packed, st = F.quantize_4bit(t, blocksize=bs, compress_statistics=nested, quant_type=qt)
        deq = F.dequantize_4bit(packed, st)
        q4[f"{name}.input"] = t.contiguous()
        q4[f"{name}.weight"] = packed
        for k, v in st.as_dict(packed=True).items():
            q4[f"{name}.weight.{k}"] = v.clone().contiguous()
        q4[f"{name}.dequantized"] = deq.contiguous()
        absmax = st.absmax
        if nested:
            absmax = F.dequantize_blockwise(st.absmax, st.state2) + st.offset
        code = st.code
        flat = packed.view(-1)
        idx = torch.stack([flat >> 4, flat & 15], 1).view(-1).long()[: t.numel()]
        vals = code[idx] * absmax[torch.arange(t.numel()) // bs]
        flat_deq = vals.to(t.dtype).view(t.shape)
        q4[f"{name}.dequantized_flat"] = flat_deq
        differs = not torch.equal(flat_deq, deq)
        manifest["cases"].append({"name": name, "shape": list(t.shape), "dtype": str(t.dtype), "blocksize": bs,
                                  "quant_type": qt, "nested": nested, "bnb_cpu_dequant_differs": differs})
    save_file(q4, os.path.join(OUT, "quantize_4bit.safetensors"))

    b8 = {"dynamic_map": F.create_dynamic_map().float()}
    code = b8["dynamic_map"]
    bounds = (code[:-1] + code[1:]) / 2
    for name, t in [("b8_random", gen(20, (1000,)) * 0.1),
                    ("b8_absmax_like", (torch.rand(2000, generator=torch.Generator().manual_seed(21)) * 0.2) - 0.1),
                    ("b8_short", gen(22, (300,)))]:
        q, st = F.quantize_blockwise(t, blocksize=256)
        b8[f"{name}.input"] = t
        b8[f"{name}.codes_cpu"] = q
        b8[f"{name}.absmax"] = st.absmax
        n = t.numel()
        full = t.view(-1)
        am = st.absmax
        scaled = torch.cat([full[i:i + 256] * (1.0 / am[i // 256]) for i in range(0, n, 256)])
        b8[f"{name}.codes_nearest"] = torch.bucketize(scaled, bounds).to(torch.uint8)
    for n in (1, 7, 8, 9, 15, 16, 17, 31, 64, 100, 255, 256, 257, 1000, 4096, 5000):
        v = torch.rand(n, generator=torch.Generator().manual_seed(100 + n)) * 3
        b8[f"mean.{n}"] = v
        b8[f"mean.{n}.value"] = v.mean().reshape(1)
    save_file(b8, os.path.join(OUT, "blockwise8.safetensors"))
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    print("wrote", OUT, file=sys.stderr)


if __name__ == "__main__":
    main()
