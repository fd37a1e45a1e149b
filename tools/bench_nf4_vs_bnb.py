#!/usr/bin/env python3
"""bench_nf4_vs_bnb.py — galvani's NF4 decoding GEMV against bitsandbytes' CPU 4-bit inference
path, side by side in one run (issue #12's CPU goals: the GEMV at >= 60% of the machine's copy
bandwidth, >= 3x galvani's own f32 GEMV, >= 1.5x bitsandbytes' CPU path).

    ../refenv/bin/python tools/bench_nf4_vs_bnb.py --bench build-native/bench_nf4 --threads 2 --rounds 2

Rounds alternate: galvani's `bench_nf4 --decode-only --json` (its f32 and 4-bit kernels and the
copy bandwidth), then bitsandbytes in this process, so load on the machine hits both alike.

The bitsandbytes side is what a transformers user runs for 4-bit inference on a CPU:
`bnb.nn.Linear4bit(K, N, bias=False, quant_type="nf4", compress_statistics=True,
compute_dtype=…)` in eval mode under `torch.no_grad()`, one input row (M = 1), with
`torch.set_num_threads(threads)`. Weights N(0, 0.02), as bench_nf4's. bitsandbytes picks its own
path: on a CPU with AVX512-BF16 a repacked bf16 kernel, elsewhere dequantize then F.linear
(bitsandbytes/backends/default/ops.py, _gemm_4bit_default_impl). Timed with the course's bf16
compute dtype and with f32 (galvani's kernels compute in f32). The cases are bench_nf4's:
one weight called repeatedly (six shapes), and a decode step, --layers copies of SmolLM2-135M's
seven projections each multiplied once (weights streamed from memory). Medians of --decode-reps
(of max(3, --decode-reps / 4) for the decode step, as bench_nf4 does).

Prints a table; --json FILE writes everything. Needs torch and bitsandbytes (the README's
reference virtualenv).
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

SHAPES = [("smollm2 q/o_proj  576x576", 576, 576), ("smollm2 gate/up   1536x576", 1536, 576),
          ("smollm2 down_proj 576x1536", 576, 1536), ("gpt2 c_attn       2304x768", 2304, 768),
          ("gpt2 c_fc         3072x768", 3072, 768), ("gpt2 c_proj       768x3072", 768, 3072)]
# One SmolLM2 layer's projections (out, in): q, k, v, o, gate, up, down.
SMOLLM2_LAYER = [(576, 576), (192, 576), (192, 576), (576, 576), (1536, 576), (1536, 576), (576, 1536)]


def make_layer(torch, bnb, N, K, dtype, gen):
    w = torch.empty(N, K).normal_(0, 0.02, generator=gen)
    lin = bnb.nn.Linear4bit(K, N, bias=False, compute_dtype=dtype, compress_statistics=True, quant_type="nf4")
    lin.weight = bnb.nn.Params4bit(w, requires_grad=False, quant_type="nf4", compress_statistics=True)
    lin = lin.to("cpu")  # Params4bit quantizes on its first move to a device
    assert getattr(lin.weight, "quant_state", None) is not None, "bitsandbytes did not quantize the weight"
    return lin.eval()


def median_time(fn, reps):
    fn()  # warm-up
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def bnb_round(torch, layers, reps):
    """{dtype: {"one_weight_us": [...], "decode_step_ms": x}} for one round."""
    out = {}
    with torch.no_grad():
        for dtype, (singles, step) in layers.items():
            xs = {K: torch.randn(1, K) for K in (576, 768, 1536, 3072)}
            one = [median_time(lambda l=l, K=K: l(xs[K]), reps) * 1e6 for (_, N, K), l in zip(SHAPES, singles)]

            def run_step():
                for (N, K), l in step:
                    l(xs[K])
            out[dtype] = {"one_weight_us": one, "decode_step_ms": median_time(run_step, max(3, reps // 4)) * 1e3}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", default="build-native/bench_nf4", help="galvani's bench_nf4 [build-native/bench_nf4]")
    ap.add_argument("--threads", type=int, default=2, help="threads for both [2]")
    ap.add_argument("--rounds", type=int, default=2, help="galvani + bitsandbytes pairs [2]")
    ap.add_argument("--decode-reps", type=int, default=30, help="timed repetitions per case [30]")
    ap.add_argument("--layers", type=int, default=30, help="SmolLM2 layers in the decode step [30]")
    ap.add_argument("--json", help="write every number to this file")
    a = ap.parse_args()
    if not os.access(a.bench, os.X_OK):
        sys.exit(f"bench_nf4_vs_bnb.py: --bench {a.bench} is not an executable; build it first "
                 "(cmake --build build-native --target bench_nf4)")
    # Both run with OpenMP's default wait policy, as a user's programs do: with
    # OMP_WAIT_POLICY=passive every parallel region wakes sleeping threads, which on a small VM
    # costs more than a 4-bit GEMV of these shapes (measured: the decode step ~5x slower). Unset
    # before torch starts its OpenMP runtime; bench_nf4 inherits this environment.
    if os.environ.pop("OMP_WAIT_POLICY", None) is not None:
        print("bench_nf4_vs_bnb: OMP_WAIT_POLICY unset for both sides (see the source)", file=sys.stderr)
    try:
        import torch
        import bitsandbytes as bnb
    except ImportError as e:
        sys.exit(f"bench_nf4_vs_bnb.py: {e}; run it with the reference virtualenv's python (README)")
    torch.set_num_threads(a.threads)
    gen = torch.Generator().manual_seed(0)
    print(f"bench_nf4_vs_bnb: {a.threads} threads, {a.rounds} rounds, torch {torch.__version__}, "
          f"bitsandbytes {bnb.__version__}; quantizing the bitsandbytes layers ...", file=sys.stderr)
    layers = {}
    for name, dtype in (("bfloat16", torch.bfloat16), ("float32", torch.float32)):
        singles = [make_layer(torch, bnb, N, K, dtype, gen) for _, N, K in SHAPES]
        step = [((N, K), make_layer(torch, bnb, N, K, dtype, gen)) for _ in range(a.layers) for N, K in SMOLLM2_LAYER]
        layers[name] = (singles, step)

    env = dict(os.environ)
    rounds = []
    for r in range(a.rounds):
        with tempfile.NamedTemporaryFile(suffix=".json") as f:
            print(f"round {r + 1}: galvani ...", file=sys.stderr)
            subprocess.run([a.bench, "--decode-only", "--threads", str(a.threads), "--decode-reps", str(a.decode_reps),
                            "--layers", str(a.layers), "--json", f.name], check=True, env=env, stdout=subprocess.DEVNULL)
            with open(f.name) as jf:
                g = json.load(jf)
        print(f"round {r + 1}: bitsandbytes ...", file=sys.stderr)
        rounds.append({"galvani": g, "bitsandbytes": bnb_round(torch, layers, a.decode_reps)})

    print(f"\nM = 1, {a.threads} threads, {platform.processor() or platform.machine()}; "
          "µs per call (one weight) / ms per step; ratio = bitsandbytes time / galvani nf4 time")
    for r, res in enumerate(rounds):
        g, b = res["galvani"], res["bitsandbytes"]
        print(f"\nround {r + 1} (galvani's kernels at ISA level {g['nf4_kernels_level']})")
        print(f"{'case':28} {'galvani f32':>11} {'galvani nf4':>11} {'bnb bf16':>9} {'bnb f32':>9} "
              f"{'nf4/f32':>7} {'vs bnb bf16':>11} {'vs bnb f32':>10}")
        for i, row in enumerate(g["one_weight"]):
            bb, bf = b["bfloat16"]["one_weight_us"][i], b["float32"]["one_weight_us"][i]
            print(f"{row['name']:28} {row['f32_us']:11.1f} {row['nf4_us']:11.1f} {bb:9.1f} {bf:9.1f} "
                  f"{row['f32_us'] / row['nf4_us']:7.2f} {bb / row['nf4_us']:11.2f} {bf / row['nf4_us']:10.2f}")
        d = g["decode_step"]
        bb, bf = b["bfloat16"]["decode_step_ms"], b["float32"]["decode_step_ms"]
        print(f"{'decode step (' + str(d['layers']) + ' layers x 7)':28} {d['f32_ms']:11.2f} {d['nf4_ms']:11.2f} "
              f"{bb:9.2f} {bf:9.2f} {d['f32_ms'] / d['nf4_ms']:7.2f} {bb / d['nf4_ms']:11.2f} {bf / d['nf4_ms']:10.2f}")
        gbs = d["nf4_bytes"] / (d["nf4_ms"] / 1e3) / 1e9
        print(f"galvani nf4 reads {d['nf4_bytes'] / 1e6:.1f} MB per step at {gbs:.1f} GB/s = "
              f"{100 * gbs / d['copy_gbps']:.0f}% of the copy bandwidth ({d['copy_gbps']:.1f} GB/s, read + write)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"threads": a.threads, "torch": torch.__version__, "bitsandbytes": bnb.__version__,
                       "rounds": rounds}, f, indent=1)


if __name__ == "__main__":
    main()
