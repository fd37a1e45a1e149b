#!/usr/bin/env python3
"""bitsandbytes' AdamW8bit / PagedAdamW8bit / PagedAdamW32bit on CPU tensors: the fixture for
optim/bnb_adamw.hpp.

Three parameters: 32x128 (4096 elements = min_8bit_size: 8-bit states, 16 blocks of 256), 17x257
(4369: 8-bit, a partial last block) and 10x10 (100 < 4096: f32 states even in the 8-bit
optimizer). Two steps of seeded random gradients; in step 1 the first 256 gradients of the
first parameter are zero (an all-zero block: absmax 0). After every step the parameters and
the optimizer state (state1/state2 bytes or floats, absmax1/absmax2) are saved.

    ../refenv/bin/python tools/gen_adamw8bit_fixtures.py   # -> tests/fixtures/optim/bnb_adamw.safetensors
"""
import json
import pathlib

import bitsandbytes as bnb
import torch
from safetensors.torch import save_file

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "optim"
SHAPES = [(32, 128), (17, 257), (10, 10)]
STEPS = 2
HP = dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    init = [torch.randn(s) for s in SHAPES]
    grads = [[torch.randn(s) * 0.1 for s in SHAPES] for _ in range(STEPS)]
    grads[0][0].view(-1)[:256] = 0
    out = {}
    for i, p in enumerate(init):
        out[f"init.{i}"] = p
        for t in range(STEPS):
            out[f"grad.{t}.{i}"] = grads[t][i]
    # On the CPU a paged optimizer is its unpaged twin: PagedAdamW8bit's results are checked
    # equal to AdamW8bit's here and not stored.
    for name, cls in [("adamw_8bit", bnb.optim.AdamW8bit), ("paged_adamw_8bit", bnb.optim.PagedAdamW8bit),
                      ("paged_adamw_32bit", bnb.optim.PagedAdamW32bit)]:
        params = [torch.nn.Parameter(p.clone()) for p in init]
        opt = cls(params, **HP)
        for t in range(STEPS):
            for p, g in zip(params, grads[t]):
                p.grad = g.clone()
            opt.step()
            for i, p in enumerate(params):
                out[f"{name}.{t}.param.{i}"] = p.detach().clone()
                st = opt.state[p]
                for k in ["state1", "state2", "absmax1", "absmax2"]:
                    if k in st:
                        out[f"{name}.{t}.{k}.{i}"] = st[k].clone()
    for k in [k for k in out if k.startswith("paged_adamw_8bit.")]:
        assert torch.equal(out.pop(k), out[k.replace("paged_adamw_8bit.", "adamw_8bit.")]), k
    save_file({k: v.contiguous() for k, v in out.items()}, OUT / "bnb_adamw.safetensors")
    (OUT / "bnb_adamw.json").write_text(json.dumps({
        "generator": "tools/gen_adamw8bit_fixtures.py", "bitsandbytes": bnb.__version__,
        "torch": torch.__version__.split("+")[0], "shapes": SHAPES, "steps": STEPS,
        "lr": HP["lr"], "betas": HP["betas"], "eps": HP["eps"], "weight_decay": HP["weight_decay"],
        "qmap1": bnb.functional.create_dynamic_map(signed=True).tolist(),
        "qmap2": bnb.functional.create_dynamic_map(signed=False).tolist()}) + "\n")


if __name__ == "__main__":
    main()
