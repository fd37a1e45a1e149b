#!/usr/bin/env python3
"""Checkpoint fixtures for galvani's io tests, written by the real Hugging Face stack.

    python tools/gen_checkpoint_fixtures.py                 # (re)write tests/fixtures/checkpoints/
    python tools/gen_checkpoint_fixtures.py --verify DIR    # check a galvani-written model dir in transformers

Needs torch, transformers and safetensors (the ../refenv virtualenv, or
`pip install torch transformers safetensors`). Output is deterministic for a given
torch/transformers version (seeded), and small (< 300 KB).

What it writes, under tests/fixtures/checkpoints/:
  gpt2_tiny/            GPT2LMHeadModel(random, tiny).save_pretrained(...)      f32, one file
  gpt2_noprefix/        the same weights without "transformer." and with the
                        attn.bias / attn.masked_bias buffers (DistilGPT-2 Hub style)
  mistral_tiny_sharded/ MistralForCausalLM(random, tiny) in bf16,
                        save_pretrained(max_shard_size="4KB")                   9 shards + index
  expected.json         for every tensor of the three: dtype, shape, FNV-1a-64 of its bytes
                        (canonical names; the C++ test hashes what galvani loaded)
  python_written.safetensors  safetensors.torch.save_file of fixed tensors (see
                        python_written_tensors()); test_io_safetensors builds the same
                        tensors and checks galvani writes the identical bytes
  malformed/            bad files, one defect each; expected.json maps each to a phrase
                        its error must contain (and the tensor it must name)

--verify DIR loads DIR (written by galvani's save_pretrained, e.g. by
test_io_pretrained into $TMPDIR/galvani_io_roundtrip/{gpt2,mistral}) with
transformers.AutoModelForCausalLM and safetensors, and checks every tensor equals the
fixture it came from.
"""
import argparse
import json
import os
import shutil
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "checkpoints")


def fnv1a64(b: bytes) -> str:
    h = 0xcbf29ce484222325
    for x in b:
        h ^= x
        h = (h * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


def tensor_bytes(t):
    import torch
    t = t.detach().contiguous().cpu()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().tobytes()
    return t.numpy().tobytes()


def st_dtype(t):
    import torch
    return {torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16", torch.int64: "I64",
            torch.uint8: "U8", torch.bool: "BOOL", torch.int8: "I8", torch.int32: "I32", torch.float64: "F64"}[t.dtype]


def describe(sd):
    return {k: {"dtype": st_dtype(v), "shape": list(v.shape), "fnv1a64": fnv1a64(tensor_bytes(v))}
            for k, v in sd.items()}


def tiny_gpt2():
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel
    torch.manual_seed(1234)
    cfg = GPT2Config(vocab_size=64, n_positions=32, n_embd=16, n_layer=2, n_head=2,
                     bos_token_id=0, eos_token_id=0)
    return GPT2LMHeadModel(cfg).eval()


def tiny_mistral():
    import torch
    from transformers import MistralConfig, MistralForCausalLM
    torch.manual_seed(5678)
    cfg = MistralConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                        sliding_window=16)
    return MistralForCausalLM(cfg).to(torch.bfloat16).eval()


def canonical_state(model):
    """The state dict as saved: tied lm_head dropped, buffers dropped."""
    sd = {k: v for k, v in model.state_dict().items()
          if not k.endswith(".attn.bias") and not k.endswith(".attn.masked_bias")}
    if getattr(model.config, "tie_word_embeddings", False):
        sd.pop("lm_head.weight", None)
    return sd


def python_written_tensors():
    """Fixed tensors galvani's writer must serialize byte-identically (mirrored in test_io_safetensors.cpp)."""
    import torch
    return {
        "weight": torch.arange(6, dtype=torch.float32).reshape(2, 3) * 0.5 - 1.0,
        "bias": torch.tensor([0.25, -2.0, 3.5, 1024.0], dtype=torch.bfloat16),
        "half": torch.tensor([1.0, -0.5, 65504.0], dtype=torch.float16),
        "ids": torch.tensor([[1, 2], [3, -4]], dtype=torch.int64),
        "bytes": torch.tensor([0, 1, 254, 255], dtype=torch.uint8),
        "signed": torch.tensor([-128, 127, 0], dtype=torch.int8),
        "flag": torch.tensor([True, False], dtype=torch.bool),
        "scalar": torch.tensor(7.0, dtype=torch.float64),
        "empty": torch.zeros(0, 4, dtype=torch.float32),
        "a.b.c": torch.tensor([5], dtype=torch.int32),
    }


# ------------------------------------------------------------------ malformed files

def raw_file(header, data=b"", n=None, pad=True):
    """8-byte length + header bytes + data. `header` is a dict, str or bytes."""
    if isinstance(header, dict):
        header = json.dumps(header, separators=(",", ":"))
    if isinstance(header, str):
        header = header.encode("utf-8")
    if pad:
        header += b" " * ((8 - len(header) % 8) % 8)
    return struct.pack("<Q", len(header) if n is None else n) + header + data


def t(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def malformed_cases():
    good = raw_file({"a": t("F32", [2, 3], 0, 24)}, bytes(24))
    nest = "[" * 200 + "]" * 200
    cases = {
        # name: (bytes, phrase in the error, tensor the error must name or None)
        "empty_file": (b"", "too short", None),
        "short_length": (b"\x10\x00\x00", "too short", None),
        "header_past_eof": (struct.pack("<Q", 1000) + b'{"a":1}', "runs past the end of the file", None),
        "huge_header": (struct.pack("<Q", 1 << 62) + b"{}      ", "exceeds the safetensors limit", None),
        "header_just_over_limit": (struct.pack("<Q", 100_000_001) + b"{}      ", "exceeds the safetensors limit", None),
        "truncated_header": (good[:30], "runs past the end of the file", None),
        "truncated_json": (raw_file('{"a":{"dtype":"F32","shape":[2,3]'), "invalid JSON", None),
        "not_json": (raw_file("{this is not json}"), "invalid JSON", None),
        "not_an_object": (raw_file("[1, 2, 3]"), "does not start with '{'", None),
        "non_utf8_header": (raw_file(b'{"\xff\xfe":' + json.dumps(t("F32", [1], 0, 4)).encode() + b"}", bytes(4)),
                            "not valid UTF-8", None),
        "duplicate_keys": (raw_file('{"a":' + json.dumps(t("F32", [1], 0, 4)) + ',"a":' +
                                    json.dumps(t("F32", [1], 4, 8)) + "}", bytes(8)), "duplicate key", None),
        "unknown_dtype": (raw_file({"a": t("F33", [2], 0, 8)}, bytes(8)), "unknown dtype", "a"),
        "shape_size_mismatch": (raw_file({"w": t("F32", [2, 3], 0, 20)}, bytes(20)), "needs 24 bytes", "w"),
        "overlapping_offsets": (raw_file({"a": t("F32", [4], 0, 16), "b": t("F32", [4], 8, 24)}, bytes(24)),
                                "overlap", "b"),
        "gap_between_tensors": (raw_file({"a": t("F32", [2], 0, 8), "b": t("F32", [2], 16, 24)}, bytes(24)),
                                "gap", "b"),
        "offsets_past_eof": (raw_file({"a": t("F32", [250], 0, 1000)}, bytes(24)), "run past the end", "a"),
        "trailing_bytes": (raw_file({"a": t("F32", [2], 0, 8)}, bytes(12)), "follow the last tensor", None),
        "end_before_begin": (raw_file({"a": t("F32", [0], 16, 8)}, bytes(16)), "end before they begin", "a"),
        "negative_shape": (raw_file({"a": t("F32", [-1, 3], 0, 12)}, bytes(12)), "non-negative integer", "a"),
        "float_offsets": (raw_file('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0.0,4]}}', bytes(4)),
                          "non-negative integer", "a"),
        "offsets_wrong_arity": (raw_file('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}}', bytes(4)),
                                "must be [begin, end]", "a"),
        "missing_dtype": (raw_file('{"a":{"shape":[1],"data_offsets":[0,4]}}', bytes(4)), "missing \"dtype\"", "a"),
        "entry_not_object": (raw_file('{"a":5}'), "must be an object", "a"),
        "metadata_not_strings": (raw_file({"__metadata__": {"format": 1}, "a": t("F32", [1], 0, 4)}, bytes(4)),
                                 "must be a string", None),
        "shape_overflow": (raw_file({"a": t("F32", [1 << 40, 1 << 40], 0, 8)}, bytes(8)), "overflows", "a"),
        "f4_odd_count": (raw_file({"a": t("F4", [3], 0, 2)}, bytes(2)), "whole number of bytes", "a"),
        "deep_nesting": (raw_file('{"a":' + nest + '}'), "nested deeper", None),
        "header_length_zero": (struct.pack("<Q", 0), "does not start with '{'", None),
    }
    return cases


def write_malformed(out):
    d = os.path.join(out, "malformed")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    expected = {}
    from safetensors import safe_open
    for name, (data, phrase, tensor) in malformed_cases().items():
        fn = name + ".safetensors"
        with open(os.path.join(d, fn), "wb") as f:
            f.write(data)
        expected[fn] = {"error": phrase, "tensor": tensor}
        # Cross-check: the reference implementation rejects it too (deep_nesting aside, which
        # serde rejects as well; all should raise).
        try:
            with safe_open(os.path.join(d, fn), "pt") as f:
                list(f.keys())
            ok = True
        except Exception:
            ok = False
        if ok:
            print(f"note: reference safetensors accepts {fn}", file=sys.stderr)

    # Sharded checkpoints with a broken index (directories).
    def shard(tensors):
        hdr, data, off = {}, b"", 0
        for n, k in tensors:
            hdr[n] = t("F32", [k], off, off + 4 * k)
            data += struct.pack("<%df" % k, *range(k))
            off += 4 * k
        return raw_file(hdr, data)

    def sharded(name, weight_map, files, phrase, tensor=None):
        sd = os.path.join(d, name)
        os.makedirs(sd)
        for fn, tensors in files.items():
            with open(os.path.join(sd, fn), "wb") as f:
                f.write(shard(tensors))
        if weight_map is not None:
            with open(os.path.join(sd, "model.safetensors.index.json"), "w") as f:
                json.dump(weight_map, f, indent=2)
        expected[name + "/"] = {"error": phrase, "tensor": tensor}

    s1, s2 = "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"
    sharded("missing_shard", {"metadata": {"total_size": 16}, "weight_map": {"a": s1, "b": s2}},
            {s1: [("a", 2)]}, "is missing")
    sharded("index_names_missing_tensor", {"metadata": {}, "weight_map": {"a": s1, "b": s1, "c": s2}},
            {s1: [("a", 2)], s2: [("c", 2)]}, "does not hold it", "b")
    sharded("shard_tensor_not_in_index", {"weight_map": {"a": s1}}, {s1: [("a", 2), ("x", 1)]},
            "does not list it", "x")
    sharded("index_escapes_directory", {"weight_map": {"a": "../../model.safetensors"}}, {}, "not a plain file name", "a")
    sharded("index_without_weight_map", {"metadata": {}}, {}, "no \"weight_map\"")
    sharded("tensor_in_two_shards", {"weight_map": {"a": s1, "b": s2}}, {s1: [("a", 2)], s2: [("a", 2), ("b", 1)]},
            "but the index puts it in", "a")
    with open(os.path.join(d, "expected.json"), "w") as f:
        json.dump(expected, f, indent=2, sort_keys=True)
        f.write("\n")
    return expected


# ------------------------------------------------------------------ generate / verify

def generate():
    import torch
    from safetensors.torch import save_file, load_file
    os.makedirs(OUT, exist_ok=True)
    expected = {}

    g = tiny_gpt2()
    d = os.path.join(OUT, "gpt2_tiny")
    shutil.rmtree(d, ignore_errors=True)
    g.save_pretrained(d)
    expected["gpt2_tiny"] = describe(canonical_state(g))

    # DistilGPT-2 Hub style: GPT2Model keys (no "transformer."), mask buffers included.
    d2 = os.path.join(OUT, "gpt2_noprefix")
    shutil.rmtree(d2, ignore_errors=True)
    os.makedirs(d2)
    shutil.copy(os.path.join(d, "config.json"), d2)
    sd = {k[len("transformer."):]: v.clone() for k, v in canonical_state(g).items()}
    n = g.config.n_positions
    for i in range(g.config.n_layer):
        sd[f"h.{i}.attn.bias"] = torch.tril(torch.ones(n, n, dtype=torch.uint8)).view(1, 1, n, n)
        sd[f"h.{i}.attn.masked_bias"] = torch.tensor(-1e4)
    save_file(sd, os.path.join(d2, "model.safetensors"), metadata={"format": "pt"})

    m = tiny_mistral()
    d3 = os.path.join(OUT, "mistral_tiny_sharded")
    shutil.rmtree(d3, ignore_errors=True)
    m.save_pretrained(d3, max_shard_size="4KB")
    expected["mistral_tiny_sharded"] = describe(canonical_state(m))

    pw = python_written_tensors()
    save_file(pw, os.path.join(OUT, "python_written.safetensors"), metadata={"format": "pt"})
    expected["python_written"] = describe(pw)

    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")
    write_malformed(OUT)

    # Self-check: what transformers wrote loads back identically through safetensors.
    for name in ("gpt2_tiny",):
        got = describe(load_file(os.path.join(OUT, name, "model.safetensors")))
        assert got == expected[name], name
    total = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(OUT) for f in fs)
    print(f"wrote {OUT} ({total} bytes); torch {torch.__version__}")


def verify(dirpath):
    """A galvani-written directory loads in transformers with the fixture's tensors."""
    import torch
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModelForCausalLM
    with open(os.path.join(OUT, "expected.json")) as f:
        expected = json.load(f)
    cfg = AutoConfig.from_pretrained(dirpath)
    source = {"gpt2": "gpt2_tiny", "mistral": "mistral_tiny_sharded"}[cfg.model_type]
    model = AutoModelForCausalLM.from_pretrained(dirpath, dtype="auto")
    got = describe(canonical_state(model))
    want = expected[source]
    bad = [k for k in want if got.get(k) != want[k]]
    extra = sorted(set(got) - set(want))
    # The raw files, read by safetensors alone (no transformers re-tying or casting).
    files = [f for f in os.listdir(dirpath) if f.endswith(".safetensors")]
    raw = {}
    for fn in files:
        raw.update(load_file(os.path.join(dirpath, fn)))
    bad_raw = [k for k in want if describe({k: raw[k]})[k] != want[k]] if set(raw) == set(want) else sorted(
        set(raw) ^ set(want))
    if cfg.model_type == "mistral":
        assert abs(cfg.rope_parameters["rope_theta"] if hasattr(cfg, "rope_parameters") and cfg.rope_parameters
                   else cfg.rope_theta) == 10000.0
    ids = torch.arange(8).unsqueeze(0)
    with torch.no_grad():
        logits = model(ids).logits
    print(f"{dirpath}: {cfg.model_type}, {len(got)} tensors, {len(files)} safetensors file(s); "
          f"transformers mismatches: {bad or 'none'}; extra: {extra or 'none'}; "
          f"safetensors mismatches: {bad_raw or 'none'}; logits finite: {bool(torch.isfinite(logits).all())}")
    if bad or extra or bad_raw:
        sys.exit(1)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--verify", nargs="+", metavar="DIR", help="check galvani-written model directories")
    a = ap.parse_args()
    if a.verify:
        for d in a.verify:
            verify(d)
    else:
        generate()
