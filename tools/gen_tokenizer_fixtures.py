#!/usr/bin/env python3
"""Reference fixtures for galvani's tokenizer, made with Hugging Face `tokenizers`.

    python tools/gen_tokenizer_fixtures.py [--data ../shared/data] [--out tests/fixtures/tokenizer]
                                           [--chunks frankenstein_chunks.csv]

Writes, for each of the shared tokenizers (gpt2, mistral):
  novel_<name>.json   the whole novel: id count, sha256 of the ids, first/last 300 ids,
                      with and without special tokens, and the sha256 of decode(ids)
  edge_<name>.json    the edge-case suite below: full ids (with/without special tokens),
                      char offsets, decode and decode(skip_special_tokens)
  variants.json       small patches of the two tokenizer.json files that switch on other
                      components (normalizers, Metaspace schemes, added-token flags, ...),
                      each with the ids of a subset of the edge suite
  batch.json          encode_batch with padding/truncation, as transformers' fast
                      tokenizer does it (enable_truncation / enable_padding)
With --chunks CSV (the course CSV, column `text`), also chunks_<name>.json: per-row id
count and sha256 for every row, so the C++ test can check each chunk.

Invalid UTF-8 inputs are stored as hex bytes; their expected ids are those of
bytes.decode("utf-8", errors="replace"), which is what a Python user gets.
Needs only the `tokenizers` package (pip install tokenizers); it is not committed.
"""
import argparse
import copy
import csv
import hashlib
import json
import os
import sys

from tokenizers import Tokenizer


def sha_ids(ids):
    return hashlib.sha256(json.dumps(list(ids), separators=(",", ":")).encode()).hexdigest()


def edge_strings():
    """The edge-case suite: (name, str or bytes). Bytes are invalid UTF-8 on purpose."""
    s = []
    add = lambda name, text: s.append((name, text))
    add("empty", "")
    add("space", " ")
    add("two_spaces", "  ")
    add("hello", "Hello world")
    add("hello_lead", " Hello world")
    add("hello_trail", "Hello world ")
    add("hello_both", "  Hello world  ")
    add("novel_open", "Frankenstein;\n\nor, the Modern Prometheus\n\nby Mary Wollstonecraft (Godwin) Shelley")
    add("prompt", "I'm afraid I've created a ")
    # contractions, in every case and with curly apostrophes
    for c in ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'VE", "'M", "'LL", "'D"]:
        add("contr" + c, "it" + c + " ok")
    add("contr_mix", "I'd've thought you'll've she's they're we've I'm can't won't")
    add("contr_curly", "I’m sure it’s fine, isn’t it?")
    add("contr_alone", "'s 's ''s '''")
    add("contr_start", "'tis the season")
    add("contr_num", "'90s and '80s")
    # digits
    for d in ["0", "7", "42", "123", "2024", "12345", "1234567890", "3.14159", "1,000,000", "-17", "+1e-9",
              "0x1F", "１２３", "٣٤٥", "½ and ¼", "Ⅻ", "²³"]:
        add("digits_" + d, "n=" + d + " x" + d)
    add("digit_run", "1" * 100)
    add("digits_words", "abc123def456 789ghi")
    # whitespace
    ws = [" ", "  ", "   ", "\t", "\t\t", "\n", "\n\n", "\r\n", "\r\n\r\n", " \n", "\n ", " \t ", "\t \n",
          "\u00a0", "\u3000", "\u2009", "\u200b", "\u2028", "\x0b", "\x0c", "\x85"]
    for i, w in enumerate(ws):
        add(f"ws_mid_{i}", "a" + w + "b")
        add(f"ws_edge_{i}", w + "word" + w)
        add(f"ws_alone_{i}", w)
    add("ws_many", "a" + " " * 40 + "b" + "\t" * 5 + "c\r\n\r\n\r\nd    ")
    add("ws_trailing_nl", "line one\nline two\n")
    add("crlf_para", "First line.\r\nSecond line.\r\n\r\nThird.\r\n")
    add("tabs_code", "def f(x):\n\treturn x  # comment\n\t\tpass\n")
    # punctuation and symbols
    for p in ["!", "?!", "...", "—", "–", "“quoted”", "‘single’", "(paren)", "[x]", "{y}", "@user", "#tag",
              "$9.99", "100%", "a&b", "a_b", "a-b", "a/b", "C++", "e.g.", "<html>", "</s>x", "~~", "`code`"]:
        add("punct_" + p, "say " + p + " now")
    add("punct_run", "!!!???...,,,;;;:::---___***")
    add("url", "https://www.gutenberg.org/ebooks/84?x=1&y=2#top")
    add("email", "mary.shelley@example.com")
    add("path", "C:\\Users\\victor\\lab\\notes.txt")
    add("json", '{"a": [1, 2, {"b": null}], "c": "d"}')
    # accents, combining marks, other scripts
    add("accents", "café naïve résumé Ångström façade")
    add("accents_novel", "Mont Blanc, the supreme and magnificent Mont Blanc; the Arve; Chamounix; Servox; Genève")
    add("combining_nfd", "cafe\u0301 nai\u0308ve")
    add("combining_stack", "a\u0301\u0302\u0303\u0304 z\u0335\u0336")
    add("combining_alone", "\u0301\u0302 x")
    add("zalgo", "Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f\u0334\u0319\u0324\u031e\u0349\u035a\u032f\u031e\u0320\u034dA\u036b\u0357")
    add("greek", "Ἐν ἀρχῇ ἦν ὁ λόγος")
    add("cyrillic", "Привет, мир! Съешь же ещё этих мягких французских булок.")
    add("arabic", "مرحبا بالعالم")
    add("hebrew", "שלום עולם")
    add("rtl_mixed", "The word שלום means peace, and سلام too.")
    add("rtl_marks", "abc\u200fdef\u200e ghi \u202ertl override\u202c")
    add("devanagari", "नमस्ते दुनिया")
    add("thai", "สวัสดีชาวโลก")
    add("hangul", "안녕하세요 세계")
    add("hangul_jamo", "\u1100\u1161\u11a8 \u1112\u1161\u11ab")
    add("cjk", "你好，世界。我是弗兰肯斯坦的怪物。")
    add("cjk_long", "天地玄黄宇宙洪荒日月盈昃辰宿列张寒来暑往秋收冬藏" * 4)
    add("japanese", "こんにちは世界、カタカナとひらがな。ｶﾀｶﾅ")
    add("cjk_mixed", "GPT-2は2019年に公開されました。")
    add("fullwidth", "ＡＢＣ ａｂｃ １２３ ！？")
    add("ligatures", "ﬁnd the ﬂow ﬀ")
    add("math", "∀x ∈ ℝ: x² ≥ 0 ⇒ √(x²) = |x|")
    add("rare_chars", "\U0001d400\U0001d401 \U00010330\U00010331 \U0002a6d6")
    add("private_use", "\ue000\uf8ff x")
    add("control", "a\x00b\x01c\x07d\x1be\x7f")
    add("bom", "\ufeffHello")
    add("replacement_char", "bad \ufffd char")
    add("surrogate_like", "\U0010fffd end")
    # emoji
    add("emoji", "I love 🐍 and 🤖!")
    add("emoji_zwj_family", "👨‍👩‍👧‍👦 family")
    add("emoji_zwj_prof", "👩🏽‍🔬 and 🧑‍🚀 and 🏳️‍🌈")
    add("emoji_skin", "👍🏻👍🏼👍🏽👍🏾👍🏿")
    add("emoji_flags", "🇬🇧🇫🇷🇨🇭 flags")
    add("emoji_keycap", "1️⃣ 2️⃣ #️⃣")
    add("emoji_run", "😀" * 20)
    add("emoji_vs", "☺️ ☺︎ ❤️")
    # special tokens inside text
    for name, t in [("eot", "<|endoftext|>"), ("bos", "<s>"), ("eos", "</s>"), ("unk", "<unk>")]:
        add(f"special_{name}_alone", t)
        add(f"special_{name}_mid", "Hello" + t + "world")
        add(f"special_{name}_spaced", "Hello " + t + " world")
        add(f"special_{name}_start", t + "Start here")
        add(f"special_{name}_end", "End here" + t)
        add(f"special_{name}_double", t + t)
        add(f"special_{name}_nl", "line\n" + t + "\nline")
    add("special_partial", "<|endoftext| <s <|endoftext|><")
    add("special_mixed", "<s>[INST] hi [/INST]</s><|endoftext|>")
    add("byte_token_text", "<0x0A> <0xFF>")
    # metaspace character in text
    add("metaspace_char", "▁Hello▁world ▁")
    add("metaspace_only", "▁▁▁")
    add("g_dot_char", "ĠHello Ċ")
    # lengths
    add("long_word_20000", "".join("abcdefghijklmnopqrstuvwxyz"[(i * 7 + i // 26) % 26] for i in range(20000)))
    add("long_same_char", "a" * 5000)
    add("long_spaces", " " * 3000)
    add("long_newlines", "\n" * 500)
    add("long_mixed_token", "Frankenstein" * 200)
    add("long_cjk_word", "怪" * 1000)
    add("long_emoji_run", "🐍" * 500)
    add("one_char_each", " ".join(chr(c) for c in range(33, 127)))
    add("latin1_all", "".join(chr(c) for c in range(0xa0, 0x100)))
    # novel sentences
    add("novel_1", "You will rejoice to hear that no disaster has accompanied the commencement of an enterprise which you have regarded with such evil forebodings.")
    add("novel_2", "“Cursed, cursed creator! Why did I live?”")
    add("novel_3", "I beheld the wretch—the miserable monster whom I had created.")
    add("novel_4", "Chapter 5\n\nIt was on a dreary night of November that I beheld the accomplishment of my toils.")
    add("novel_5", "_Letter 2_\n\n_To Mrs. Saville, England._")
    add("mixed_case", "HELLO hello Hello hElLo")
    add("caps_words", "THE MODERN PROMETHEUS")
    add("numbers_text", "On the 11th of December, 17—, at 3:45 p.m.")
    # invalid UTF-8 (bytes): what Python users get with errors="replace"
    for i, b in enumerate([b"\xff", b"abc\x80def", b"\xc3", b"\xc3(", b"\xe2\x82", b"\xe2\x82(", b"\xf0\x9f\x98",
                           b"\xf0\x9f\x98 x", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf5\x80\x80\x80", b"\xf4\x90\x80\x80",
                           b"\xe0\x80\xaf", b"ok \xfe\xfe ok", b"\xf0\x80\x80\x80", b"caf\xe9 latin-1"]):
        add(f"invalid_utf8_{i}", b)
    return s


def as_text(v):
    return v.decode("utf-8", errors="replace") if isinstance(v, bytes) else v


def store_text(v):
    return {"hex": v.hex()} if isinstance(v, bytes) else {"text": v}


def run_edge(tok, strings, with_offsets=True):
    out = []
    for name, v in strings:
        text = as_text(v)
        e_sp = tok.encode(text, add_special_tokens=True)
        e = tok.encode(text, add_special_tokens=False)
        # Fields equal to another are left out to keep fixtures small: a missing
        # "ids_special" equals "ids", a missing "decode_skip" equals "decode".
        rec = {"name": name, **store_text(v), "ids": e.ids}
        if e_sp.ids != e.ids:
            rec["ids_special"] = e_sp.ids
        rec["decode"] = tok.decode(e_sp.ids, skip_special_tokens=False)
        skip = tok.decode(e_sp.ids, skip_special_tokens=True)
        if skip != rec["decode"]:
            rec["decode_skip"] = skip
        if with_offsets and len(text) <= 1000:  # offsets of the long strings would dominate the file
            rec["offsets"] = [list(o) for o in e.offsets]
        out.append(rec)
    return out


def variants(base):
    """(name, which base, patch). A patch replaces top-level keys; "model" updates fields."""
    metaspace = lambda scheme, split: {"type": "Metaspace", "replacement": "▁", "prepend_scheme": scheme, "split": split}
    gpt2_extra_tokens = [
        {"id": 50257, "content": "<|sw|>", "single_word": True, "lstrip": False, "rstrip": False, "normalized": False, "special": True},
        {"id": 50258, "content": "<|ls|>", "single_word": False, "lstrip": True, "rstrip": False, "normalized": False, "special": True},
        {"id": 50259, "content": "<|rs|>", "single_word": False, "lstrip": False, "rstrip": True, "normalized": False, "special": True},
        {"id": 50260, "content": "hello", "single_word": True, "lstrip": False, "rstrip": False, "normalized": True, "special": False},
        {"id": 50261, "content": " world", "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": False},
        {"id": 50262, "content": "<|both|>", "single_word": False, "lstrip": True, "rstrip": True, "normalized": False, "special": True},
        {"id": 50263, "content": "<|end", "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": False},
    ]
    g_added = base["gpt2"]["added_tokens"] + gpt2_extra_tokens
    return [
        ("gpt2_prefix_space", "gpt2", {"pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}}),
        ("gpt2_no_regex", "gpt2", {"pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}}),
        ("gpt2_nfkc_lower_strip", "gpt2", {"normalizer": {"type": "Sequence", "normalizers": [
            {"type": "NFKC"}, {"type": "Lowercase"}, {"type": "Strip", "strip_left": True, "strip_right": True}]}}),
        ("gpt2_nfc", "gpt2", {"normalizer": {"type": "NFC"}}),
        ("gpt2_nfd", "gpt2", {"normalizer": {"type": "NFD"}}),
        ("gpt2_nfkd", "gpt2", {"normalizer": {"type": "NFKD"}}),
        ("gpt2_replace", "gpt2", {"normalizer": {"type": "Replace", "pattern": {"String": "the"}, "content": "THE"}}),
        ("gpt2_added_flags", "gpt2", {"added_tokens": g_added}),
        ("gpt2_ignore_merges", "gpt2", {"model": {"ignore_merges": True}}),
        ("gpt2_whitespace", "gpt2", {"pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Whitespace"}, {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}}),
        ("gpt2_whitespace_split", "gpt2", {"pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "WhitespaceSplit"}, {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}}),
        ("gpt2_split_string", "gpt2", {"pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"String": " "}, "behavior": "MergedWithNext", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}}),
        ("gpt2_split_isolated", "gpt2", {"pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"String": "e"}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]}}),
        ("gpt2_split_removed", "gpt2", {"pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"String": "o"}, "behavior": "Removed", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]}}),
        ("gpt2_split_prev", "gpt2", {"pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"String": ","}, "behavior": "MergedWithPrevious", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]}}),
        ("gpt2_split_contiguous", "gpt2", {"pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"String": "l"}, "behavior": "Contiguous", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]}}),
        ("gpt2_split_regex", "gpt2", {"pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"},
             "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}}),
        ("gpt2_template_eos", "gpt2", {"post_processor": {"type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}}],
            "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<|endoftext|>": {"id": "<|endoftext|>", "ids": [50256], "tokens": ["<|endoftext|>"]}}}}),
        ("mistral_legacy", "mistral", {"normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
            "pre_tokenizer": None,
            "decoder": {"type": "Sequence", "decoders": [
                {"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"},
                {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}}),
        ("mistral_always_split", "mistral", {"pre_tokenizer": metaspace("always", True),
            "decoder": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": True}}),
        ("mistral_never", "mistral", {"pre_tokenizer": metaspace("never", False),
            "decoder": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "never", "split": False}}),
        ("mistral_first_split", "mistral", {"pre_tokenizer": metaspace("first", True)}),
        ("mistral_unk_fuse", "mistral", {"model": {"byte_fallback": False, "fuse_unk": True}}),
        ("mistral_unk_nofuse", "mistral", {"model": {"byte_fallback": False, "fuse_unk": False}}),
        ("mistral_no_type", "mistral", {"model": {"type": None}}),
        ("mistral_nfkc", "mistral", {"normalizer": {"type": "NFKC"}}),
        ("mistral_lower", "mistral", {"normalizer": {"type": "Lowercase"}}),
    ]


VARIANT_SUBSET = None  # every edge string whose ids are short enough (< 400 ids) and not the long ones


def apply_patch(base, patch):
    j = copy.deepcopy(base)
    for k, v in patch.items():
        if k == "model":
            for mk, mv in v.items():
                if mv is None:
                    j["model"].pop(mk, None)
                else:
                    j["model"][mk] = mv
        else:
            j[k] = v
    return j


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.path.join(here, "..", "..", "shared", "data"))
    ap.add_argument("--out", default=os.path.join(here, "..", "tests", "fixtures", "tokenizer"))
    ap.add_argument("--chunks", default=None, help="course CSV (column `text`): also write chunks_<name>.json")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    import tokenizers
    print("tokenizers", tokenizers.__version__, file=sys.stderr)

    names = ["gpt2", "mistral"]
    paths = {n: os.path.join(args.data, "tokenizers", n, "tokenizer.json") for n in names}
    base = {n: json.load(open(paths[n], encoding="utf-8")) for n in names}
    toks = {n: Tokenizer.from_file(paths[n]) for n in names}
    novel = open(os.path.join(args.data, "frankenstein", "pg84.txt"), encoding="utf-8").read()
    strings = edge_strings()
    meta = {"generator": "tools/gen_tokenizer_fixtures.py", "tokenizers_version": tokenizers.__version__}

    def dump(name, obj):
        with open(os.path.join(args.out, name), "w", encoding="utf-8") as f:
            json.dump(obj, f, ensure_ascii=False, separators=(",", ":"))
            f.write("\n")

    for n in names:
        tok = toks[n]
        rec = dict(meta)
        for key, sp in [("plain", False), ("special", True)]:
            ids = tok.encode(novel, add_special_tokens=sp).ids
            rec[key] = {"count": len(ids), "sha256": sha_ids(ids), "head": ids[:300], "tail": ids[-300:],
                        "decode_sha256": hashlib.sha256(tok.decode(ids, skip_special_tokens=False).encode()).hexdigest(),
                        "decode_skip_sha256": hashlib.sha256(tok.decode(ids, skip_special_tokens=True).encode()).hexdigest()}
        print(n, "novel", rec["plain"]["count"], rec["special"]["count"], file=sys.stderr)
        dump(f"novel_{n}.json", rec)
        dump(f"edge_{n}.json", dict(meta, cases=run_edge(tok, strings)))

    # variants: patched tokenizer.json files on the edge strings (skipping the very long ones)
    subset = [(nm, v) for nm, v in strings if len(as_text(v)) <= 120]
    # A case whose results equal the unpatched tokenizer's is listed by name only ("same").
    base_cases = {n: {c["name"]: c for c in run_edge(toks[n], subset, with_offsets=False)} for n in names}
    vrecs = []
    for vname, which, patch in variants(base):
        tok = Tokenizer.from_str(json.dumps(apply_patch(base[which], patch)))
        cases = run_edge(tok, subset, with_offsets=False)
        same = [c["name"] for c in cases if c == base_cases[which][c["name"]]]
        diff = [c for c in cases if c != base_cases[which][c["name"]]]
        vrecs.append({"name": vname, "base": which, "patch": patch, "same": same, "cases": diff})
    dump("variants.json", dict(meta, variants=vrecs))

    # batches with padding and truncation, as transformers' fast tokenizers call them
    texts = [as_text(v) for _, v in strings if len(as_text(v)) <= 200][:40]
    brecs = []
    for n in names:
        pad_id = tok_pad = None
        for opt in [dict(padding="longest", side="right", max_length=None, truncation=False),
                    dict(padding="longest", side="left", max_length=None, truncation=False),
                    dict(padding="max_length", side="right", max_length=24, truncation=True),
                    dict(padding="max_length", side="left", max_length=24, truncation=True),
                    dict(padding="none", side="right", max_length=8, truncation=True),
                    dict(padding="longest", side="right", max_length=12, truncation=True)]:
            for sp in [True, False]:
                tok = Tokenizer.from_file(paths[n])
                eos = "<|endoftext|>" if n == "gpt2" else "</s>"
                pad_id = tok.token_to_id(eos)
                if opt["truncation"]:
                    tok.enable_truncation(max_length=opt["max_length"])
                if opt["padding"] != "none":
                    tok.enable_padding(direction=opt["side"], pad_id=pad_id, pad_token=eos,
                                       length=opt["max_length"] if opt["padding"] == "max_length" else None)
                encs = tok.encode_batch(texts, add_special_tokens=sp)
                brecs.append({"tokenizer": n, **opt, "add_special_tokens": sp, "pad_id": pad_id,
                              "ids": [e.ids for e in encs], "attention_mask": [e.attention_mask for e in encs]})
    dump("batch.json", dict(meta, texts=texts, batches=brecs))

    if args.chunks:
        with open(args.chunks, newline="", encoding="utf-8") as f:
            rows = [r["text"] for r in csv.DictReader(f)]
        for n in names:
            out = []
            for r in rows:
                ids = toks[n].encode(r, add_special_tokens=True).ids
                out.append({"count": len(ids), "sha256": sha_ids(ids)})
            dump(f"chunks_{n}.json", dict(meta, csv=os.path.basename(args.chunks), rows=out))
            print(n, "chunks", len(rows), file=sys.stderr)


if __name__ == "__main__":
    main()
