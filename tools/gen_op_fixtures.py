#!/usr/bin/env python3
"""PyTorch reference results for every galvani op (forward and backward).

Writes tests/fixtures/ops/<family>.json, one file per op family. Each file is
  {"generator": ..., "torch": "<version>", "cases": [case, ...]}
and each case is
  {"name": "add_broadcast", "op": "add", "params": {...},
   "inputs":   [{"name": "a", "shape": [...], "data": [...]}, ...],   # f32 unless "dtype": "i64"
   "grad_out": {"shape": [...], "data": [...]},                        # the upstream gradient used
   "output":   {"shape": [...], "data": [...]},
   "grads":    {"a": {"shape": [...], "data": [...]}, ...}}            # every float input's gradient
Float32 values are written with the shortest repr that round-trips to the same
float32 (numpy's float32 str), so the files stay small and exact.

tests/test_ops_torch.cpp runs galvani's f32 op on the same inputs, calls backward
with grad_out, and compares output and gradients.

Run (needs torch; CI reads the committed files):
  ../refenv/bin/python tools/gen_op_fixtures.py
"""
import json
import math
import os

import numpy as np
import torch
import torch.nn.functional as F

OUT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "ops"))


def enc(t):
    t = t.detach()
    if t.dtype in (torch.int64, torch.int32, torch.bool):
        return {"shape": list(t.shape), "dtype": "i64", "data": [int(v) for v in t.reshape(-1).tolist()]}
    a = t.to(torch.float32).reshape(-1).numpy()
    assert np.all(np.isfinite(a)), "non-finite value in a fixture"
    # str(np.float32) is the shortest string that reads back as this float32.
    return {"shape": list(t.shape), "data": [float(str(v)) for v in a]}


def case(name, op, fn, inputs, params=None, grad_seed=None):
    """inputs: list of (name, tensor). Float tensors get requires_grad; fn(*tensors) -> output."""
    ts = []
    for _, t in inputs:
        if t.dtype.is_floating_point:
            t = t.detach().clone().requires_grad_(True)
        ts.append(t)
    out = fn(*ts)
    g = torch.Generator().manual_seed(grad_seed if grad_seed is not None else sum(map(ord, name)))
    grad_out = torch.randn(out.shape, generator=g, dtype=torch.float32)
    out.backward(grad_out)
    c = {"name": name, "op": op, "params": params or {},
         "inputs": [dict(name=n, **enc(t)) for (n, _), t in zip(inputs, ts)],
         "grad_out": enc(grad_out), "output": enc(out), "grads": {}}
    for (n, _), t in zip(inputs, ts):
        if t.dtype.is_floating_point:
            c["grads"][n] = enc(t.grad if t.grad is not None else torch.zeros_like(t))
    return c


def randn(*shape):
    return torch.randn(*shape, dtype=torch.float32)


def elementwise():
    pos = lambda *s: torch.rand(*s) + 0.5  # away from 0 for log, sqrt, pow, div
    return [
        case("add_broadcast", "add", torch.add, [("a", randn(2, 3, 4)), ("b", randn(3, 1))]),
        case("sub_broadcast", "sub", torch.sub, [("a", randn(3, 1, 4)), ("b", randn(2, 1))]),
        case("mul_broadcast", "mul", torch.mul, [("a", randn(2, 3, 4)), ("b", randn(1, 3, 1))]),
        case("div_broadcast", "div", torch.div, [("a", randn(4, 3)), ("b", pos(3))]),
        case("neg", "neg", torch.neg, [("x", randn(3, 4))]),
        case("exp", "exp", torch.exp, [("x", randn(3, 4))]),
        case("log", "log", torch.log, [("x", pos(3, 4))]),
        case("pow_2_5", "pow", lambda x: torch.pow(x, 2.5), [("x", pos(3, 4))], {"p": 2.5}),
        case("pow_3", "pow", lambda x: torch.pow(x, 3.0), [("x", randn(3, 4))], {"p": 3.0}),
        case("sqrt", "sqrt", torch.sqrt, [("x", pos(3, 4))]),
    ]


def reduction():
    x = randn(3, 4, 5)
    return [
        case("sum_all", "sum", lambda x: x.sum(), [("x", x)], {"dims": [], "keepdim": False}),
        case("sum_dim1", "sum", lambda x: x.sum(1), [("x", x)], {"dims": [1], "keepdim": False}),
        case("sum_dims02_keep", "sum", lambda x: x.sum((0, 2), keepdim=True), [("x", x)],
             {"dims": [0, 2], "keepdim": True}),
        case("mean_last", "mean", lambda x: x.mean(-1), [("x", x)], {"dims": [-1], "keepdim": False}),
        case("mean_dims01", "mean", lambda x: x.mean((0, 1)), [("x", x)], {"dims": [0, 1], "keepdim": False}),
    ]


def matmul():
    mt = lambda a, b, ta, tb: torch.matmul(a.transpose(-1, -2) if ta else a, b.transpose(-1, -2) if tb else b)
    P = lambda ta=False, tb=False: {"transpose_a": ta, "transpose_b": tb}
    return [
        case("matmul_2d", "matmul", lambda a, b: mt(a, b, 0, 0), [("a", randn(3, 5)), ("b", randn(5, 4))], P()),
        case("matmul_3d_2d", "matmul", lambda a, b: mt(a, b, 0, 0), [("a", randn(2, 3, 5)), ("b", randn(5, 4))], P()),
        case("matmul_3d_bcast", "matmul", lambda a, b: mt(a, b, 0, 0), [("a", randn(2, 3, 5)), ("b", randn(1, 5, 4))],
             P()),
        case("matmul_4d_bcast_bt", "matmul", lambda a, b: mt(a, b, 0, 1),
             [("a", randn(2, 3, 4, 6)), ("b", randn(2, 1, 5, 6))], P(tb=True)),
        case("matmul_2d_at", "matmul", lambda a, b: mt(a, b, 1, 0), [("a", randn(5, 3)), ("b", randn(5, 4))],
             P(ta=True)),
        case("matmul_3d_at_bt", "matmul", lambda a, b: mt(a, b, 1, 1), [("a", randn(2, 5, 3)), ("b", randn(2, 4, 5))],
             P(True, True)),
        case("linear_bias", "linear", F.linear, [("x", randn(2, 3, 6)), ("w", randn(4, 6)), ("b", randn(4))]),
        case("linear_nobias", "linear", F.linear, [("x", randn(5, 6)), ("w", randn(3, 6))]),
        # Hugging Face Conv1D (GPT-2): x @ W + b with W (in, out).
        case("conv1d_linear", "conv1d_linear", lambda x, w, b: x @ w + b,
             [("x", randn(2, 3, 6)), ("w", randn(6, 4)), ("b", randn(4))]),
    ]


def softmax():
    return [
        case("softmax_last", "softmax", lambda x: torch.softmax(x, -1), [("x", randn(3, 7) * 3)], {"dim": -1}),
        case("softmax_dim1", "softmax", lambda x: torch.softmax(x, 1), [("x", randn(2, 5, 3) * 3)], {"dim": 1}),
        case("log_softmax_last", "log_softmax", lambda x: torch.log_softmax(x, -1), [("x", randn(3, 7) * 3)],
             {"dim": -1}),
        case("log_softmax_dim0", "log_softmax", lambda x: torch.log_softmax(x, 0), [("x", randn(4, 3, 2) * 3)],
             {"dim": 0}),
    ]


def rms_norm_hf(x, w, eps):
    # transformers' MistralRMSNorm.forward, verbatim in substance.
    input_dtype = x.dtype
    h = x.to(torch.float32)
    variance = h.pow(2).mean(-1, keepdim=True)
    h = h * torch.rsqrt(variance + eps)
    return w * h.to(input_dtype)


def norms():
    C = 16
    return [
        case("layer_norm", "layer_norm", lambda x, w, b: F.layer_norm(x, (C,), w, b, 1e-5),
             [("x", randn(2, 3, C) * 2 + 1), ("w", 1 + 0.1 * randn(C)), ("b", 0.1 * randn(C))], {"eps": 1e-5}),
        case("layer_norm_nobias", "layer_norm", lambda x, w: F.layer_norm(x, (C,), w, None, 1e-5),
             [("x", randn(4, C)), ("w", 1 + 0.1 * randn(C))], {"eps": 1e-5}),
        case("rms_norm", "rms_norm", lambda x, w: rms_norm_hf(x, w, 1e-6),
             [("x", randn(2, 3, C)), ("w", 1 + 0.1 * randn(C))], {"eps": 1e-6}),
        case("rms_norm_eps1e-5", "rms_norm", lambda x, w: rms_norm_hf(x, w, 1e-5),
             [("x", randn(5, C) * 0.1), ("w", 1 + 0.1 * randn(C))], {"eps": 1e-5}),
    ]


def gelu_new(x):
    # transformers' NewGELUActivation.
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def activation():
    return [
        case("gelu_new", "gelu_tanh", gelu_new, [("x", randn(4, 9) * 2)]),
        case("silu", "silu", F.silu, [("x", randn(4, 9) * 2)]),
        case("silu_mul", "silu_mul", lambda g, u: F.silu(g) * u, [("gate", randn(2, 3, 8) * 2), ("up", randn(2, 3, 8))]),
    ]


def embedding():
    ids = torch.tensor([[3, 0, 7, 3], [9, 3, 1, 0]])
    return [
        case("embedding_2d_ids", "embedding", lambda w, i: F.embedding(i, w), [("weight", randn(10, 6)), ("ids", ids)]),
        case("embedding_1d_ids", "embedding", lambda w, i: F.embedding(i, w),
             [("weight", randn(7, 5)), ("ids", torch.tensor([6, 6, 0, 2, 6]))]),
    ]


def cross_entropy():
    t = torch.tensor([3, -100, 0, 10, 5, -100, 2])
    return [
        case("cross_entropy_mean_ignore", "cross_entropy", lambda x, t: F.cross_entropy(x, t, ignore_index=-100),
             [("logits", randn(7, 11) * 2), ("targets", t)], {"ignore_index": -100, "reduction": "mean"}),
        case("cross_entropy_none", "cross_entropy",
             lambda x, t: F.cross_entropy(x, t, ignore_index=-100, reduction="none"),
             [("logits", randn(7, 11) * 2), ("targets", t)], {"ignore_index": -100, "reduction": "none"}),
        case("cross_entropy_sum", "cross_entropy", lambda x, t: F.cross_entropy(x, t, reduction="sum"),
             [("logits", randn(4, 6)), ("targets", torch.tensor([5, 0, 1, 1]))],
             {"ignore_index": -100, "reduction": "sum"}),
    ]


def sdpa_reference(q, k, v, causal=True, key_padding_mask=None, window=0, query_offset=-1):
    """Attention in plain torch with an explicit boolean mask (True = attend)."""
    B, H, T, D = q.shape
    Hkv, S = k.shape[1], k.shape[2]
    if Hkv != H:  # grouped-query attention: query head h reads kv head h // (H / Hkv) (HF repeat_kv)
        k = k.repeat_interleave(H // Hkv, dim=1)
        v = v.repeat_interleave(H // Hkv, dim=1)
    off = S - T if query_offset < 0 else query_offset
    i = torch.arange(T)[:, None] + off  # query positions
    j = torch.arange(S)[None, :]        # key positions
    allow = torch.ones(T, S, dtype=torch.bool)
    if causal:
        allow &= j <= i
    if window > 0:
        allow &= (i - j >= 0) & (i - j < window)
    allow = allow[None, None].expand(B, H, T, S)
    if key_padding_mask is not None:
        allow = allow & (key_padding_mask != 0)[:, None, None, :]
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(D)
    scores = scores.masked_fill(~allow, float("-inf"))
    return torch.softmax(scores, -1) @ v


def attention():
    B, T, D = 2, 6, 8
    pad = torch.ones(B, T, dtype=torch.int64)
    pad[1, 4:] = 0  # right padding: batch 1 has 4 real tokens
    return [
        case("sdpa_causal", "sdpa", lambda q, k, v: sdpa_reference(q, k, v),
             [("q", randn(B, 2, T, D)), ("k", randn(B, 2, T, D)), ("v", randn(B, 2, T, D))], {"causal": True}),
        case("sdpa_causal_padding", "sdpa", lambda q, k, v, m: sdpa_reference(q, k, v, key_padding_mask=m),
             [("q", randn(B, 2, T, D)), ("k", randn(B, 2, T, D)), ("v", randn(B, 2, T, D)), ("key_padding_mask", pad)],
             {"causal": True}),
        case("sdpa_gqa_4q_2kv", "sdpa", lambda q, k, v: sdpa_reference(q, k, v),
             [("q", randn(B, 4, T, D)), ("k", randn(B, 2, T, D)), ("v", randn(B, 2, T, D))], {"causal": True}),
        case("sdpa_sliding_window_3", "sdpa", lambda q, k, v: sdpa_reference(q, k, v, window=3),
             [("q", randn(1, 2, T, D)), ("k", randn(1, 2, T, D)), ("v", randn(1, 2, T, D))],
             {"causal": True, "sliding_window": 3}),
        case("sdpa_noncausal", "sdpa", lambda q, k, v: sdpa_reference(q, k, v, causal=False),
             [("q", randn(1, 2, 3, D)), ("k", randn(1, 2, 5, D)), ("v", randn(1, 2, 5, D))], {"causal": False}),
        case("sdpa_causal_kv_cache", "sdpa", lambda q, k, v: sdpa_reference(q, k, v),
             [("q", randn(1, 2, 2, D)), ("k", randn(1, 2, 5, D)), ("v", randn(1, 2, 5, D))], {"causal": True}),
    ]


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def rope_reference(x, pos, theta=10000.0):
    """Hugging Face's rotary embedding (MistralRotaryEmbedding + apply_rotary_pos_emb)."""
    D = x.shape[-1]
    inv_freq = 1.0 / (theta ** (torch.arange(0, D, 2, dtype=torch.int64).float() / D))
    p = pos if pos.dim() == 2 else pos[None]                    # (P, T)
    freqs = p[..., None].float() * inv_freq[None, None, :]      # (P, T, D/2)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos()[:, None], emb.sin()[:, None]           # (P, 1, T, D)
    return x * cos + rotate_half(x) * sin


def rope():
    return [
        case("rope_positions_1d", "rope", lambda x, p: rope_reference(x, p),
             [("x", randn(2, 3, 5, 8)), ("positions", torch.tensor([0, 1, 2, 3, 4]))], {"theta": 10000.0}),
        case("rope_positions_2d", "rope", lambda x, p: rope_reference(x, p),
             [("x", randn(2, 2, 4, 8)), ("positions", torch.tensor([[0, 1, 2, 3], [7, 8, 30, 31]]))],
             {"theta": 10000.0}),
        case("rope_theta_1e6", "rope", lambda x, p: rope_reference(x, p, 1e6),
             [("x", randn(1, 2, 3, 16)), ("positions", torch.tensor([5, 100, 2000]))], {"theta": 1e6}),
    ]


def main():
    os.makedirs(OUT, exist_ok=True)
    families = {"elementwise": elementwise, "reduction": reduction, "matmul": matmul, "softmax": softmax,
                "norms": norms, "activation": activation, "embedding": embedding, "cross_entropy": cross_entropy,
                "attention": attention, "rope": rope}
    total = 0
    for fname, make in families.items():
        torch.manual_seed(1234 + sum(map(ord, fname)))
        doc = {"generator": "tools/gen_op_fixtures.py", "torch": torch.__version__, "cases": make()}
        path = os.path.join(OUT, fname + ".json")
        with open(path, "w") as f:
            json.dump(doc, f, separators=(",", ":"))
            f.write("\n")
        total += os.path.getsize(path)
        print(f"{path}: {len(doc['cases'])} cases, {os.path.getsize(path)} bytes")
    print(f"total {total} bytes")


if __name__ == "__main__":
    main()
