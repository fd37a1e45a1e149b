#!/usr/bin/env python3
"""Reference verdicts for "a JSON file is one value, consumed whole" (issue #11, item 3).

    ../refenv/bin/python tools/gen_json_fixtures.py [--out tests/fixtures/json_whole]

Every JSON file galvani reads is read by a reference that consumes it whole:
  safetensors header         safetensors.safe_open (Rust serde_json::from_str)
  tokenizer.json             tokenizers.Tokenizer.from_file (serde_json)
  config.json                transformers PretrainedConfig._dict_from_json_file (json.loads)
  generation_config.json     transformers GenerationConfig._dict_from_json_file (json.loads)
  tokenizer_config.json      json.load of the UTF-8 text, as PreTrainedTokenizerBase.from_pretrained
  special_tokens_map.json    the same
  model.safetensors.index.json  json.load of the UTF-8 text, as modeling_utils does for shards
After the value only JSON whitespace (space, tab, LF, CR) may follow.

Writes into --out a small valid file per kind (base.*) and expected.json: for each kind
the base file, and for each case the bytes appended to it (a "suffix", latin-1 code points
0-255 standing for bytes) or put before it ("prefix"), the reference's verdict ("ok" or
its error message) and, for an error, the byte offset of the first byte that is not
whitespace after the value (the offset galvani's error names; for a safetensors file the
offset counts from the start of the file). The C++ tests build each file from these,
so nothing malformed is committed as such. Needs safetensors, tokenizers, transformers.
"""
import argparse
import json
import os
import struct
import tempfile

from safetensors import safe_open
from tokenizers import Tokenizer, models, pre_tokenizers, decoders
from transformers import GenerationConfig, PretrainedConfig

# name: (where the bytes go, the bytes)
CASES = {
    "clean": ("suffix", b""),
    "lf": ("suffix", b"\n"),
    "whitespace": ("suffix", b" \t\r\n  \n"),
    "nul": ("suffix", b"\0"),
    "nuls": ("suffix", b"\0\0\0"),
    "nul_then_text": ("suffix", b"\0 trailing junk {"),
    "whitespace_then_nul": ("suffix", b"\n\n\0"),
    "letter": ("suffix", b"x"),
    "second_value": ("suffix", b" {}"),
    "number": ("suffix", b" 1"),
    "extra_brace": ("suffix", b"}"),
    "comma": ("suffix", b","),
    "form_feed": ("suffix", b"\f"),
    "vertical_tab": ("suffix", b"\v"),
    "nbsp": ("suffix", "\u00a0".encode()),
    "bom_at_end": ("suffix", b"\xef\xbb\xbf"),
    "line_comment": ("suffix", b"// comment"),
    "ctrl_z": ("suffix", b"\x1a"),
    "leading_whitespace": ("prefix", b" \n\t"),
    "leading_bom": ("prefix", b"\xef\xbb\xbf"),
}


def tiny_tokenizer_json():
    """A byte-level BPE as GPT-2's, with 256 + 3 tokens and <|endoftext|>: small enough to commit."""
    byte_chars = pre_tokenizers.ByteLevel.alphabet()
    vocab = {c: i for i, c in enumerate(sorted(byte_chars))}
    merges = [("h", "e"), ("l", "l"), ("he", "ll")]
    for a, b in merges:
        vocab[a + b] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(["<|endoftext|>"])  # the eos_token the config files below name
    return tok.to_str().encode()


def safetensors_file(header_bytes):
    return struct.pack("<Q", len(header_bytes)) + header_bytes + bytes(4)


KINDS = {
    # kind: (base file name, its bytes, where the JSON starts in the file)
    "safetensors": ("base.safetensors",
                    json.dumps({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode(), 8),
    "tokenizer.json": ("tokenizer.json", tiny_tokenizer_json(), 0),
    "config.json": ("config.json", json.dumps({"model_type": "gpt2", "n_layer": 2}, indent=2).encode(), 0),
    "generation_config.json": ("generation_config.json",
                               json.dumps({"eos_token_id": 50256, "max_new_tokens": 8}, indent=2).encode(), 0),
    "tokenizer_config.json": ("tokenizer_config.json",
                              json.dumps({"model_max_length": 1024, "eos_token": "<|endoftext|>"}).encode(), 0),
    "special_tokens_map.json": ("special_tokens_map.json", json.dumps({"eos_token": "<|endoftext|>"}).encode(), 0),
    "model.safetensors.index.json": ("model.safetensors.index.json",
                                     json.dumps({"metadata": {"total_size": 4},
                                                 "weight_map": {"a": "base.safetensors"}}, indent=2).encode(), 0),
}


def reference(kind, path):
    """The reference's verdict on the file at `path`: "ok" or its error message."""
    try:
        if kind == "safetensors":
            with safe_open(path, "pt") as f:
                list(f.keys())
        elif kind == "tokenizer.json":
            Tokenizer.from_file(path)
        elif kind == "config.json":
            PretrainedConfig._dict_from_json_file(path)
        elif kind == "generation_config.json":
            GenerationConfig._dict_from_json_file(path)
        else:
            with open(path, encoding="utf-8") as f:
                json.load(f)
        return "ok"
    except Exception as e:  # the reference's own words
        return f"{type(e).__name__}: {e}"


def build(kind, where, extra):
    _, text, _ = KINDS[kind]
    text = extra + text if where == "prefix" else text + extra
    return safetensors_file(text) if kind == "safetensors" else text


def expected_offset(kind, where, extra):
    """Where galvani's error points: the first byte after the value that is not whitespace
    (for a prefix: the first byte that is not whitespace before it), None when there is none."""
    _, text, base = KINDS[kind]
    if where == "prefix":
        k = len(extra) - len(extra.lstrip(b" \t\r\n"))
        return None if k == len(extra) else base + k
    k = len(extra) - len(extra.lstrip(b" \t\r\n"))
    return None if k == len(extra) else base + len(text) + k


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(here, "..", "tests", "fixtures", "json_whole"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind, (name, text, base) in KINDS.items():
            with open(os.path.join(a.out, name), "wb") as f:
                f.write(safetensors_file(text) if kind == "safetensors" else text)
            cases = {}
            for case, (where, extra) in CASES.items():
                path = os.path.join(tmp, name)
                with open(path, "wb") as f:
                    f.write(build(kind, where, extra))
                verdict = reference(kind, path)
                offset = expected_offset(kind, where, extra)
                # The rule the C++ follows: an error exactly when a non-whitespace byte is outside the value.
                assert (verdict == "ok") == (offset is None), (kind, case, verdict)
                cases[case] = {where: extra.decode("latin-1"), "reference": verdict, "offset": offset}
            out[kind] = {"file": name, "json_starts_at": base, "cases": cases}
    with open(os.path.join(a.out, "expected.json"), "w") as f:
        json.dump(out, f, indent=1, ensure_ascii=True)
        f.write("\n")
    for kind, v in out.items():
        bad = sum(c["reference"] != "ok" for c in v["cases"].values())
        print(f"{kind}: {len(v['cases'])} cases, {bad} refused by the reference")


if __name__ == "__main__":
    main()
