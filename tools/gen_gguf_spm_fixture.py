#!/usr/bin/env python3
"""A llama-family GGUF with a SentencePiece vocabulary (tokenizer.ggml.model "llama"), and the
tokenizer transformers builds from it: the fixture of the "llama" tokenizer rebuild in
tests/test_gguf_convert.cpp (io/gguf_convert.hpp, gguf_tokenizer_files).

    ../refenv/bin/python tools/gen_gguf_spm_fixture.py   # (re)write tests/fixtures/gguf_model/spm*

Needs gguf, tokenizers and transformers (the reference virtualenv) and the Mistral-7B
tokenizer.json and the novel from $GALVANI_DATA (default ../shared/data). Deterministic; ~100 KB.

The vocabulary is a slice of Mistral-7B's, laid out as llama.cpp's convert_hf_to_gguf.py lays out
a SentencePiece BPE model: <unk> (token type 2, UNKNOWN), <s> and </s> (3, CONTROL), the 256 byte
pieces <0x00>..<0xFF> (6, BYTE), then Mistral's first 3,741 merged pieces and its 600 most frequent
single characters (1, NORMAL) with SentencePiece-style scores (minus the Mistral id: earlier
pieces win), then two ChatML control tokens and one USER_DEFINED token (<think>) as a chat
finetune adds them. Text outside the slice falls back to bytes, so byte fallback is exercised
on every accented letter and dash of the novel.

A GGUF carries no merges for such a vocabulary: they are recovered from the pieces and scores.
The reference is transformers' own GGUF loader, AutoTokenizer.from_pretrained(dir,
gguf_file=...) -> integrations/gguf/gguf_tokenizer_mapping.py: LlamaTokenizer with
generate_merges(vocab, scores), Metaspace(prepend_scheme "first"), byte fallback, control tokens
special, user-defined ones plain. spm_expected.json stores the merge count and digest, the ids of
the whole novel (count, sha256 of json.dumps(ids), first 300) and of sample strings, with and
without <s>, their decodings, and the same samples for a variant whose metadata says
tokenizer.ggml.add_space_prefix = false and add_eos_token = true (the test patches those keys;
see the note in main() on add_space_prefix).
"""
import hashlib
import json
import os
import shutil
import tempfile

import gguf
from tokenizers import decoders, pre_tokenizers
from transformers import AutoTokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "gguf_model")
DATA = os.environ.get("GALVANI_DATA", os.path.join(ROOT, "..", "shared", "data"))

N_MERGED = 4000          # Mistral ids 0..3999: <unk>, <s>, </s>, 256 bytes, 3,741 merged pieces
FIRST_CHAR, N_CHARS = 28705, 600   # Mistral's single characters start at id 28705, most frequent first
EXTRA = [("<|im_start|>", 3), ("<|im_end|>", 3), ("<think>", 4)]

SAMPLES = [
    "I'm afraid I've created a ",
    "It was on a dreary night of November that I beheld the accomplishment of my toils.",
    "  two leading spaces, and  two inside",
    " one leading space",
    "line one\nline two\n\n\tA tab",
    "Genève, Chamounix—the Arve; “Cursed creator!”",
    "naïve café 日本語 🧟 emoji",
    "<|im_start|>user\nWrite a story<|im_end|>\n<think>hmm</think>",
    "<s> a literal bos </s>",
    "1818 and 2024",
    "",
    " ",
]


def ids_digest(ids):
    return hashlib.sha256(json.dumps(ids, separators=(",", ":")).encode()).hexdigest()


def write_gguf(path, tokens, scores, types, add_space_prefix=None, add_eos=False):
    w = gguf.GGUFWriter(path, "llama")
    w.add_name("spm-vocab-fixture")
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(True)
    w.add_add_eos_token(add_eos)
    if add_space_prefix is not None:
        w.add_add_space_prefix(add_space_prefix)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def samples_of(tok):
    out = []
    for s in SAMPLES:
        plain = tok(s, add_special_tokens=False).input_ids
        special = tok(s).input_ids
        out.append({"text": s, "ids": plain, "ids_special": special,
                    "decode": tok.decode(special), "decode_skip": tok.decode(special, skip_special_tokens=True)})
    return out


def main():
    mj = json.load(open(os.path.join(DATA, "tokenizers", "mistral", "tokenizer.json"), encoding="utf-8"))
    vocab = mj["model"]["vocab"]
    mistral = sorted(vocab, key=vocab.get)
    keep = list(range(N_MERGED)) + list(range(FIRST_CHAR, FIRST_CHAR + N_CHARS))
    tokens, scores, types = [], [], []
    for i in keep:
        t = mistral[i]
        tokens.append(t)
        if t == "<unk>":
            types.append(2), scores.append(0.0)
        elif t in ("<s>", "</s>"):
            types.append(3), scores.append(0.0)
        elif len(t) == 6 and t.startswith("<0x") and t.endswith(">"):
            types.append(6), scores.append(0.0)
        else:
            types.append(1), scores.append(-float(i))
    for t, ty in EXTRA:
        tokens.append(t), types.append(ty), scores.append(0.0)

    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "spm_vocab.gguf")
    write_gguf(path, tokens, scores, types)
    tok = AutoTokenizer.from_pretrained(OUT, gguf_file="spm_vocab.gguf")
    backend = json.loads(tok.backend_tokenizer.to_str())
    merges = [" ".join(m) for m in backend["model"]["merges"]]

    novel = open(os.path.join(DATA, "frankenstein", "pg84.txt"), encoding="utf-8").read()
    expected = {
        "generator": "tools/gen_gguf_spm_fixture.py",
        "transformers_version": __import__("transformers").__version__,
        "gguf_version": __import__("importlib.metadata").metadata.version("gguf"),
        "n_tokens": len(tokens),
        "merges": {"count": len(merges), "sha256": hashlib.sha256("\n".join(merges).encode()).hexdigest(),
                   "head": merges[:20]},
        "pre_tokenizer": backend["pre_tokenizer"],
        "decoder": backend["decoder"],
        "post_processor": backend["post_processor"],
        "added_tokens": [{k: a[k] for k in ("id", "content", "special")} for a in backend["added_tokens"]],
        "novel": {},
        "samples": samples_of(tok),
    }
    for key, special in (("plain", False), ("special", True)):
        ids = tok(novel, add_special_tokens=special).input_ids
        expected["novel"][key] = {"count": len(ids), "sha256": ids_digest(ids), "head": ids[:300],
                                  "decode_sha256": hashlib.sha256(tok.decode(ids).encode()).hexdigest()}

    with tempfile.TemporaryDirectory() as tmp:
        write_gguf(os.path.join(tmp, "v.gguf"), tokens, scores, types, add_space_prefix=False, add_eos=True)
        variant = AutoTokenizer.from_pretrained(tmp, gguf_file="v.gguf")
        # transformers 5.24 reads add_space_prefix but never hands it to LlamaTokenizer, so its
        # tokenizer still prepends "▁". llama.cpp (which writes the key, from SentencePiece's
        # add_dummy_prefix) does not; galvani follows the file. The reference for the variant is
        # therefore what LlamaTokenizer(add_prefix_space=False) sets up: no prepended "▁" and no
        # Strip in the decoder.
        variant.backend_tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581",
                                                                           prepend_scheme="never", split=False)
        variant.backend_tokenizer.decoder = decoders.Sequence(
            [decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse()])
        vb = json.loads(variant.backend_tokenizer.to_str())
        expected["no_space_prefix_add_eos"] = {"pre_tokenizer": vb["pre_tokenizer"], "decoder": vb["decoder"],
                                               "samples": samples_of(variant)}

    with open(os.path.join(OUT, "spm_expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, ensure_ascii=False, indent=1)
    print(f"wrote {path} ({os.path.getsize(path)} bytes, {len(tokens)} tokens, {len(merges)} merges) "
          f"and spm_expected.json (novel: {expected['novel']['plain']['count']} ids)")


if __name__ == "__main__":
    main()
