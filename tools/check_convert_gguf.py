#!/usr/bin/env python3
"""Cross-check galvani's C++ GGUF converter (build/convert_gguf) against the independent Python
one (tools/convert_smollm2.py): two converted directories of the same GGUF must agree.

    build/convert_gguf SmolLM2-135M-Instruct.Q4_1.gguf /tmp/smollm2-cpp
    ../refenv/bin/python tools/convert_smollm2.py --gguf SmolLM2-135M-Instruct.Q4_1.gguf --out /tmp/smollm2-py
    ../refenv/bin/python tools/check_convert_gguf.py /tmp/smollm2-cpp /tmp/smollm2-py \
        --text ../shared/data/frankenstein/pg84.txt --lines 400

Checks, and exits 1 on any difference:
  * model.safetensors: the same tensor names, dtypes and shapes, every tensor bit-identical;
  * config.json, generation_config.json, tokenizer_config.json, special_tokens_map.json: equal
    as JSON values (numbers compared as numbers);
  * tokenizer.json: equal as JSON, and Hugging Face `tokenizers` gives the same ids with both
    on every non-empty line of --text (the first --lines of them) and on a few edge cases.
Needs numpy and tokenizers.
"""
import argparse
import json
import os
import struct
import sys

import numpy as np
from tokenizers import Tokenizer

EDGE = ["", " ", "  leading spaces", "digits 1234567890 and 3.14", "I'm afraid I've created a ",
        "Caf\u00e9 \u65e5\u672c\u8a9e \U0001F600", "<|im_start|>user\nhi<|im_end|>\n", "tabs\tand\nnewlines\r\n"]


def read_safetensors(path):
    """{name: (dtype, shape, raw bytes)}: any dtype (numpy has no bfloat16), no torch needed."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    return {k: (v["dtype"], v["shape"], data[v["data_offsets"][0]:v["data_offsets"][1]])
            for k, v in header.items() if k != "__metadata__"}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("a", help="a converted directory (e.g. from build/convert_gguf)")
    ap.add_argument("b", help="another (e.g. from tools/convert_smollm2.py)")
    ap.add_argument("--text", help="a text file whose lines are tokenized with both tokenizer.json files")
    ap.add_argument("--lines", type=int, default=400, help="how many non-empty lines of --text (default 400)")
    args = ap.parse_args()
    bad = 0

    ta = read_safetensors(os.path.join(args.a, "model.safetensors"))
    tb = read_safetensors(os.path.join(args.b, "model.safetensors"))
    if sorted(ta) != sorted(tb):
        print(f"tensor names differ: only in a {sorted(set(ta) - set(tb))}, only in b {sorted(set(tb) - set(ta))}")
        bad += 1
    same = 0
    for name in sorted(set(ta) & set(tb)):
        (dx, sx, x), (dy, sy, y) = ta[name], tb[name]
        if dx != dy or sx != sy or x != y:
            diff = ""
            if dx == dy == "F32" and sx == sy:
                diff = f", max |diff| {np.abs(np.frombuffer(x, '<f4') - np.frombuffer(y, '<f4')).max()}"
            print(f"tensor {name}: {dx}{sx} vs {dy}{sy}, bytes differ{diff}")
            bad += 1
        else:
            same += 1
    n_params = sum(int(np.prod(v[1])) for v in ta.values())
    print(f"[1] model.safetensors: {same}/{len(ta)} tensors bit-identical ({n_params:,} parameters)")

    for f in ["config.json", "generation_config.json", "tokenizer_config.json", "special_tokens_map.json",
              "tokenizer.json"]:
        ja = json.load(open(os.path.join(args.a, f), encoding="utf-8"))
        jb = json.load(open(os.path.join(args.b, f), encoding="utf-8"))
        if ja == jb:
            print(f"[2] {f}: equal")
            continue
        bad += 1
        if isinstance(ja, dict) and isinstance(jb, dict):
            for k in sorted(set(ja) | set(jb)):
                if ja.get(k, "<absent>") != jb.get(k, "<absent>"):
                    print(f"[2] {f}: key {k!r}: {str(ja.get(k, '<absent>'))[:200]} vs {str(jb.get(k, '<absent>'))[:200]}")
        else:
            print(f"[2] {f}: differs")

    tka = Tokenizer.from_file(os.path.join(args.a, "tokenizer.json"))
    tkb = Tokenizer.from_file(os.path.join(args.b, "tokenizer.json"))
    texts = list(EDGE)
    if args.text:
        with open(args.text, encoding="utf-8") as fh:
            lines = [ln.rstrip("\n") for ln in fh if ln.strip()]
        texts += lines[: args.lines]
    n_tokens = mismatches = 0
    for t in texts:
        ia, ib = tka.encode(t).ids, tkb.encode(t).ids
        n_tokens += len(ia)
        if ia != ib:
            mismatches += 1
            if mismatches <= 5:
                print(f"[3] ids differ on {t!r}: {ia[:20]} vs {ib[:20]}")
    bad += mismatches
    print(f"[3] tokenizer: {len(texts)} texts, {n_tokens} tokens, {mismatches} mismatches")
    print("ALL EQUAL" if not bad else f"{bad} DIFFERENCES")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
