#!/usr/bin/env python3
"""Compare galvani's logits (tools/lm_logits) with transformers' on the same model directory.

  build/lm_logits --model DIR --prompt "…" --prompt "…" > galvani.json
  python tools/check_logits.py DIR galvani.json [--tol 1e-3]

Needs torch + transformers (a virtualenv outside the repository). Feeds transformers the
token ids galvani produced, so tokenizers are not part of the comparison (they are tested
separately); prints max |diff| of the last position's logits and the argmax agreement per
prompt, and exits 1 when a difference exceeds --tol.
"""
import argparse
import json
import sys

import torch
from transformers import AutoModelForCausalLM


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir")
    ap.add_argument("galvani_json")
    ap.add_argument("--tol", type=float, default=1e-3)
    args = ap.parse_args()
    g = json.load(open(args.galvani_json))
    model = AutoModelForCausalLM.from_pretrained(args.model_dir, torch_dtype=torch.float32, attn_implementation="eager")
    model.eval()
    worst = 0.0
    for p in g["prompts"]:
        ids = torch.tensor([p["ids"]])
        with torch.no_grad():
            logits = model(ids).logits[0]
        last = logits[-1]
        diff = (last - torch.tensor(p["logits"])).abs().max().item()
        agree = sum(int(a == b) for a, b in zip(logits.argmax(-1).tolist(), p["argmax"]))
        worst = max(worst, diff)
        print(f"{p['text']!r}: {len(p['ids'])} tokens, max |logit diff| {diff:.3g} "
              f"(logits up to {last.abs().max().item():.3g}), argmax agrees at {agree}/{len(p['ids'])} positions")
    ok = worst <= args.tol
    print(("OK" if ok else "FAILED") + f": worst {worst:.3g}, tolerance {args.tol}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
