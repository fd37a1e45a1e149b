#!/usr/bin/env python3
"""Mixed-precision fixtures from torch's CPU autocast and torch.amp.GradScaler.

Writes tests/fixtures/autocast/:
    linear_<dtype>.safetensors     for dtype bf16 and f16, two shapes (k 40 and k 300, tags s and l):
                                   x, w, b, the upstream gradient g (f32), and what torch computes
                                   under torch.autocast("cpu", dtype): y (the bf16/f16 output as f32),
                                   dx, dw, db (f32: the gradients of the f32 leaves)
    sdpa_<dtype>.safetensors       q (1, 2, 6, 8), k, v (1, 1, 6, 8) f32, causal, under autocast:
                                   out (as f32), and the gradients dq, dk, dv of sum(out * g)
    grad_scaler.json               torch.amp.GradScaler("cpu", ...) in three settings (powers of two,
                                   factors 1.7 / 0.9, a scale that overflows f32 by itself) over a few updates of
                                   one parameter, some with an inf gradient: the scale after each
                                   update(), whether the optimizer (SGD lr 1) stepped, the unscaled
                                   gradient, the parameter after each update

    ../refenv/bin/python tools/gen_autocast_fixtures.py
"""
import json
import pathlib

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "autocast"
DTYPES = {"bf16": torch.bfloat16, "f16": torch.float16}


def linear_case(dtype, n, k, m, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, k, generator=g).requires_grad_()
    w = (torch.randn(m, k, generator=g) / k ** 0.5).requires_grad_()
    b = torch.randn(m, generator=g).requires_grad_()
    up = torch.randn(n, m, generator=g)
    with torch.autocast("cpu", dtype=dtype):
        y = F.linear(x, w, b)
    assert y.dtype == dtype, y.dtype
    y.backward(up.to(dtype))
    return {"x": x.detach(), "w": w.detach(), "b": b.detach(), "g": up, "y": y.detach().float(),
            "dx": x.grad, "dw": w.grad, "db": b.grad}


def sdpa_case(dtype, seed):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(1, 2, 6, 8, generator=g).requires_grad_()
    k = torch.randn(1, 1, 6, 8, generator=g).requires_grad_()
    v = torch.randn(1, 1, 6, 8, generator=g).requires_grad_()
    up = torch.randn(1, 2, 6, 8, generator=g)
    with torch.autocast("cpu", dtype=dtype):
        # grouped-query: one kv head for two query heads, as Hugging Face's repeat_kv
        out = F.scaled_dot_product_attention(q, k.expand(1, 2, 6, 8), v.expand(1, 2, 6, 8), is_causal=True)
    assert out.dtype == dtype, out.dtype
    out.backward(up.to(dtype))
    return {"q": q.detach(), "k": k.detach(), "v": v.detach(), "g": up, "out": out.detach().float(),
            "dq": q.grad, "dk": k.grad, "dv": v.grad}


def grad_scaler_case(init_scale, growth_factor, backoff_factor, growth_interval, overflow):
    p = torch.nn.Parameter(torch.tensor([0.5, -2.0, 3.0]))
    opt = torch.optim.SGD([p], lr=1.0)
    scaler = torch.amp.GradScaler("cpu", init_scale=init_scale, growth_factor=growth_factor,
                                  backoff_factor=backoff_factor, growth_interval=growth_interval)
    steps = []
    for i, bad in enumerate(overflow):
        opt.zero_grad()
        loss = (p * torch.tensor([1.0, 0.25, -3.0 - i])).sum()
        scaler.scale(loss).backward()
        if bad:
            p.grad[1] = float("inf")
        scaler.unscale_(opt)
        grad = [float(v) if torch.isfinite(v) else str(float(v)) for v in p.grad]  # "inf": JSON has no inf
        before = p.detach().clone()
        scaler.step(opt)
        scaler.update()
        steps.append({"overflow": bad, "unscaled_grad": grad, "stepped": not torch.equal(before, p.detach()),
                      "scale_after": scaler.get_scale(), "param_after": [float(v) for v in p.detach()]})
    return {"init_scale": init_scale, "growth_factor": growth_factor, "backoff_factor": backoff_factor,
            "growth_interval": growth_interval, "param": [0.5, -2.0, 3.0],
            "coef": "[1, 0.25, -3 - i] at update i (0-based)", "steps": steps}


def grad_scaler_cases():
    return [
        # powers of two: halving and doubling
        grad_scaler_case(1024.0, 2.0, 0.5, 3, [False, False, True, False, False, False, False, True, False]),
        # factors that are not powers of two: the f32 scale times the double factor, rounded to f32
        grad_scaler_case(1000.0, 1.7, 0.9, 2, [False, True, True, False, False, False, False, False, True, False,
                                               False, False, False]),
        # a scale so large that the scaled gradients overflow f32 by themselves
        grad_scaler_case(3.0e38, 2.0, 0.5, 1, [False, False]),
    ]


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for name, dt in DTYPES.items():
        tensors = {}
        for tag, (n, k, m, seed) in {"s": (5, 40, 24, 1), "l": (7, 300, 33, 2)}.items():
            for key, t in linear_case(dt, n, k, m, seed).items():
                tensors[f"{tag}.{key}"] = t.contiguous()
        save_file(tensors, str(OUT / f"linear_{name}.safetensors"), metadata={"torch": torch.__version__})
        save_file({k: t.contiguous() for k, t in sdpa_case(dt, 3).items()}, str(OUT / f"sdpa_{name}.safetensors"),
                  metadata={"torch": torch.__version__})
    (OUT / "grad_scaler.json").write_text(json.dumps({"torch": torch.__version__, "cases": grad_scaler_cases()},
                                                     indent=1) + "\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
