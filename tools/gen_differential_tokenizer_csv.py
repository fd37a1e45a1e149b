#!/usr/bin/env python3
"""Differential corpus for galvani's tokenizer.json loader and CSV reader (issue #17).

    ../refenv/bin/python tools/gen_differential_tokenizer_csv.py \
        [--novel ../shared/data/frankenstein/pg84.txt] [--out tests/fixtures/differential]

Writes two folders, each a set of small files plus a verdicts.json saying what the reference
implementation made of every file:

  tokenizer/  *.json tokenizer files: mutations of three small BPE tokenizers trained here with
              the `tokenizers` package on a slice of the novel (GPT-2 style ByteLevel, Mistral
              style Metaspace with byte fallback, and a plain Whitespace one). The verdict is
              Tokenizer.from_str's: rejected (with its error, for information only), or accepted
              and then, for each of SAMPLES, the ids and offsets with and without special tokens
              and the decodes of the ids (skipping special tokens or not). Identical readings are
              stored once under "readings" and named by a short hash.
  csv/        *.csv files: what pandas.read_csv(path) with its default arguments makes of each
              (rejected, with pandas' error; or the columns, dtypes, row count and every cell as
              a string, null for NaN; floats as Python's repr, bools as True/False).

tests/test_differential_tokenizer_csv.cpp runs galvani's readers on every file and checks that
they agree, except for the deliberate differences listed there (and in docs/robustness.md).
The output is deterministic: run it twice and nothing changes.
"""
import argparse
import hashlib
import json
import os
import shutil

import pandas as pd
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

# ------------------------------------------------------------------------- tokenizer

# Every accepted tokenizer encodes these: ASCII, whitespace runs, accents (NFC and NFD forms),
# CJK, emoji with a modifier, special and added tokens inside the text, the empty string.
SAMPLES = [
    "Hello, world! It was November.",
    "  two  spaces,\ttab\n\nand\r\n  ",
    "caf\u00e9 na\u00efve, cafe\u0301 \uff26\uff55\uff4c\uff4c \ufb01",
    "\u65e5\u672c \ud55c \U0001f44d\U0001f3fd",
    "<s>a</s> b <|endoftext|>c<|endoftext|>",
    "x <mask> and  <mask>  y,z<mask>w <MASK>",
    "1234 3.14; ?! [UNK]",
    "",
]

NOVEL_SLICE = 20000


def novel_slice(path):
    text = open(path, encoding="utf-8").read()
    start = text.find("Letter 1")
    return text[start:start + NOVEL_SLICE]


def train_bytelevel(text):
    """GPT-2 style: ByteLevel pre-tokenizer/decoder/post-processor, 256 byte symbols + merges."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tr = trainers.BpeTrainer(vocab_size=256 + 1 + 80, special_tokens=["<|endoftext|>"],
                             initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator([text], tr)
    return json.loads(tok.to_str())


def train_metaspace(text):
    """Mistral style: Metaspace (prepend first, no split), byte fallback <0x..>, <unk> <s> </s>."""
    byte_tokens = ["<0x%02X>" % b for b in range(256)]
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first", split=False)
    tr = trainers.BpeTrainer(vocab_size=3 + 256 + 120, special_tokens=["<unk>", "<s>", "</s>"] + byte_tokens,
                             show_progress=False)
    # Training needs the words split; the real file then says split=false, as Mistral's does.
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first", split=True)
    tok.train_from_iterator([text], tr)
    j = json.loads(tok.to_str())
    j["added_tokens"] = [a for a in j["added_tokens"] if a["content"] in ("<unk>", "<s>", "</s>")]
    j["pre_tokenizer"] = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": False}
    j["post_processor"] = {
        "type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                 {"SpecialToken": {"id": "<s>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}}
    j["decoder"] = {"type": "Sequence", "decoders": [
        {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
        {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
    return j


def train_plain(text):
    """A small one with no byte level: Whitespace pre-tokenizer, [UNK], the slice's alphabet.
    (limit_alphabet would make training nondeterministic: ties among rare characters.)"""
    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tr = trainers.BpeTrainer(vocab_size=90, special_tokens=["[UNK]", "[CLS]", "[SEP]"],
                             show_progress=False)
    tok.train_from_iterator([text], tr)
    return json.loads(tok.to_str())


def dumps(j, **kw):
    kw.setdefault("ensure_ascii", False)
    kw.setdefault("separators", (",", ":"))
    return json.dumps(j, **kw)


def copy(j):
    return json.loads(json.dumps(j))


def reading(tok):
    """What the reference reads: per sample, ids/offsets with special tokens (and without, when that
    differs: ids_plain, offsets_plain) and the decode of the ids keeping special tokens (and
    skipping them, when that differs: decode_skip)."""
    out = []
    for s in SAMPLES:
        try:
            w = tok.encode(s, add_special_tokens=True)
            wo = tok.encode(s, add_special_tokens=False)
            out.append({
                "ids": w.ids, "offsets": [list(o) for o in w.offsets],
                "decode": tok.decode(w.ids, skip_special_tokens=False),
            })
            skip = tok.decode(w.ids, skip_special_tokens=True)
            if skip != out[-1]["decode"]:  # skip_special_tokens=True; absent: the same
                out[-1]["decode_skip"] = skip
            if wo.ids != w.ids or wo.offsets != w.offsets:  # add_special_tokens=False; absent: the same
                out[-1].update({"ids_plain": wo.ids, "offsets_plain": [list(o) for o in wo.offsets]})
        except BaseException as e:  # e.g. the unk token is missing: an error only when a text needs it
            if isinstance(e, KeyboardInterrupt):
                raise
            # (a Rust panic arrives as pyo3's PanicException, a BaseException)
            out.append({"error": type(e).__name__ + ": " + str(e)})
    return out


def tokenizer_variants(bl, ms, pl):
    """(name, text) pairs; each name says what the variant is. Most mutate the small plain
    tokenizer (2 KB); what depends on byte-level or Metaspace details mutates those."""
    V = []

    def add(name, j_or_text):
        V.append((name, j_or_text if isinstance(j_or_text, str) else dumps(j_or_text)))

    def patched(base, **fields):
        j = copy(base)
        for k, v in fields.items():
            j[k] = v
        return j

    # Metaspace variants that need no byte fallback drop its 256 <0x..> tokens (ids renumbered).
    ms_small = copy(ms)
    kept = [k for k, _ in sorted(ms["model"]["vocab"].items(), key=lambda kv: kv[1]) if not k.startswith("<0x")]
    ms_small["model"] = dict(ms["model"], byte_fallback=False, vocab={k: i for i, k in enumerate(kept)})

    # --- the bases: as tokenizers' to_str() writes them, and pretty-printed
    add("base_bytelevel", bl)
    add("base_metaspace", ms)
    add("base_plain_pretty", json.dumps(pl, ensure_ascii=False, indent=2))

    # --- unusual but legal JSON, and JSON that is not
    add("json_ascii_escapes", dumps(bl, ensure_ascii=True))  # "\u0120t", surrogate pairs
    add("json_escaped_ascii_keys", dumps(pl).replace('"type"', '"\\u0074ype"').replace('"BPE"', '"\\u0042\\u0050\\u0045"'))
    add("json_whitespace_tabs_crlf",
        "\n \t\r\n" + json.dumps(pl, ensure_ascii=False, indent="\t").replace("\n", "\r\n") + "\r\n\r\n  ")
    j = {k: pl[k] for k in reversed(list(pl))}
    j["model"] = {k: pl["model"][k] for k in reversed(list(pl["model"]))}
    j["model"]["vocab"] = dict(reversed(list(pl["model"]["vocab"].items())))
    add("json_key_order_reversed", j)
    t = dumps(pl)
    add("json_bom", "\ufeff" + t)
    add("json_trailing_comma", t[:-1] + ",}")
    add("json_comment", "// a tokenizer\n" + t)
    add("json_trailing_garbage", t + "x")
    # numbers: an id with an exponent (a float to JSON), a negative id
    add("number_vocab_id_exponent", t.replace('"[UNK]":0', '"[UNK]":0e0', 1))
    add("number_vocab_id_negative", t.replace('"[UNK]":0', '"[UNK]":-1', 1))

    # --- duplicate keys
    add("dup_key_top_level_decoder", t[:-1] + ',"decoder":null}')
    add("dup_key_vocab_entry", t.replace('"the":', '"the":7,"the":', 1))
    add("dup_key_model_field", t.replace('"type":"BPE",', '"type":"BPE","unk_token":"[CLS]",', 1))

    # --- missing optional fields; unknown extra fields
    j = copy(pl)
    for k in ("version", "truncation", "padding", "normalizer"):
        del j[k]
    for k in ("dropout", "continuing_subword_prefix", "end_of_word_suffix", "fuse_unk", "byte_fallback",
              "ignore_merges"):
        del j["model"][k]
    add("missing_optional_fields", j)
    j = copy(pl)
    del j["model"]["type"]
    add("missing_model_type", j)
    j = copy(pl)
    del j["added_tokens"]
    add("missing_added_tokens", j)
    add("missing_model", {k: v for k, v in pl.items() if k != "model"})
    add("missing_vocab", patched(pl, model={k: v for k, v in pl["model"].items() if k != "vocab"}))
    add("unknown_field_top_level", patched(pl, extra_top_level={"anything": [1, 2]}))
    add("unknown_field_model", patched(pl, model=dict(pl["model"], extra_model_field=True)))
    j = copy(pl)
    j["added_tokens"][0]["extra"] = 1
    add("unknown_field_added_token", j)

    # --- the model: merges forms, bad merges, odd vocabs
    m = pl["model"]
    add("merges_as_strings", patched(pl, model=dict(m, merges=[a + " " + b for a, b in m["merges"]])))
    add("merges_strings_version_line",
        patched(pl, model=dict(m, merges=["#version: 0.2"] + [a + " " + b for a, b in m["merges"]])))
    add("merge_unknown_token", patched(pl, model=dict(m, merges=m["merges"] + [["th", "zzz"]])))
    add("merge_result_not_in_vocab", patched(pl, model=dict(m, merges=m["merges"] + [["q", "q"]])))
    add("merge_repeated", patched(pl, model=dict(m, merges=m["merges"] + [m["merges"][0]])))
    add("merges_empty", patched(pl, model=dict(m, merges=[])))
    add("vocab_duplicate_id", patched(pl, model=dict(m, vocab=dict(m["vocab"], zz_alias=m["vocab"]["q"]))))
    add("vocab_id_gap", patched(pl, model=dict(m, vocab={k: i + 5 if i > 2 else i for k, i in m["vocab"].items()})))
    add("unk_token_not_in_vocab", patched(pl, model=dict(m, unk_token="<nope>")))
    add("fuse_unk", patched(pl, model=dict(m, fuse_unk=True)))
    add("model_wordpiece_unsupported", patched(pl, model={
        "type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100,
        "vocab": m["vocab"]}))
    add("model_bpe_dropout", patched(pl, model=dict(m, dropout=0.5)))

    # --- added tokens: flags, ids
    def with_added(base, *toks):
        j = copy(base)
        for content, flags in toks:
            a = {"id": flags.pop("id", len(j["model"]["vocab"]) + len(j["added_tokens"])), "content": content,
                 "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": False}
            a.update(flags)
            j["added_tokens"].append(a)
        return j

    add("added_plain", with_added(bl, ("<mask>", {})))
    add("added_special", with_added(bl, ("<mask>", {"special": True})))
    add("added_lstrip", with_added(pl, ("<mask>", {"lstrip": True})))
    add("added_lstrip_rstrip_special", with_added(bl, ("<mask>", {"lstrip": True, "rstrip": True, "special": True})))
    add("added_single_word", with_added(pl, ("<mask>", {"single_word": True})))
    add("added_normalized_lowercase",
        patched(with_added(pl, ("<MASK>", {"normalized": True})), normalizer={"type": "Lowercase"}))
    add("added_not_normalized_lowercase",
        patched(with_added(pl, ("<MASK>", {"normalized": False})), normalizer={"type": "Lowercase"}))
    add("added_in_vocab", with_added(pl, ("the", {"id": 5})))
    add("added_overlapping", with_added(pl, ("<mask>", {}), ("mask", {}), ("<mask> and", {})))
    add("added_id_wrong", with_added(pl, ("<mask>", {"id": 99999})))
    add("added_id_past_int32", with_added(pl, ("<mask>", {"id": 3000000000})))
    add("added_id_past_uint32", with_added(pl, ("<mask>", {"id": 5000000000})))
    j = with_added(pl, ("<mask>", {}))
    del j["added_tokens"][-1]["single_word"], j["added_tokens"][-1]["normalized"]
    add("added_flags_missing", j)

    # --- truncation and padding written in the file
    add("truncation_set", patched(pl, truncation={"direction": "Right", "max_length": 5, "strategy": "LongestFirst",
                                                  "stride": 0}))
    add("padding_fixed", patched(pl, padding={"strategy": {"Fixed": 32}, "direction": "Right", "pad_to_multiple_of": None,
                                              "pad_id": 0, "pad_type_id": 0, "pad_token": "[UNK]"}))

    # --- every normalizer galvani implements, and ones it does not
    def norm(name, n, base=None):
        add("normalizer_" + name, patched(base or pl, normalizer=n))

    norm("nfkc", {"type": "NFKC"})
    norm("nfkd_bytelevel", {"type": "NFKD"}, bl)
    norm("nfc_lowercase", {"type": "Sequence", "normalizers": [{"type": "NFC"}, {"type": "Lowercase"}]})
    norm("strip_accents_nfd", {"type": "Sequence", "normalizers": [{"type": "NFD"}, {"type": "StripAccents"}]})
    norm("strip_left", {"type": "Strip", "strip_left": True, "strip_right": False})
    norm("prepend_replace_string", {"type": "Sequence", "normalizers": [
        {"type": "Prepend", "prepend": "\u2581"}, {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
        patched(ms_small, pre_tokenizer=None))  # Mistral's older files
    norm("replace_regex", {"type": "Replace", "pattern": {"Regex": "\\s+"}, "content": " "})
    norm("bert_unsupported", {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True,
                              "strip_accents": None, "lowercase": True})

    # --- pre-tokenizers
    def pre(name, p, base=None):
        add("pre_tokenizer_" + name, patched(base or bl, pre_tokenizer=p))

    gpt2_re = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"
    pre("bytelevel_no_regex", {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False})
    pre("bytelevel_prefix_space", {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True})
    pre("split_gpt2_then_bytelevel", {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": gpt2_re}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]})
    pre("split_string_whitespace_regex", {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"String": ","}, "behavior": "MergedWithPrevious", "invert": False},
        {"type": "Split", "pattern": {"Regex": "\\s+"}, "behavior": "Removed", "invert": False}]}, pl)
    pre("split_unsupported_regex", {"type": "Split", "pattern": {"Regex": "[a-z]+"}, "behavior": "Isolated",
                                    "invert": False}, pl)
    pre("metaspace_always_split", {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always",
                                   "split": True}, ms_small)
    pre("metaspace_never", {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "never", "split": False}, ms_small)
    pre("whitespace_split", {"type": "WhitespaceSplit"}, pl)
    pre("punctuation_digits", {"type": "Sequence", "pretokenizers": [
        {"type": "WhitespaceSplit"}, {"type": "Punctuation", "behavior": "Isolated"},
        {"type": "Digits", "individual_digits": True}]}, pl)
    pre("char_delimiter", {"type": "CharDelimiterSplit", "delimiter": " "}, pl)
    pre("bert_unsupported", {"type": "BertPreTokenizer"}, pl)

    # --- decoders
    def dec(name, d, base=None):
        add("decoder_" + name, patched(base or pl, decoder=d))

    dec("metaspace", {"type": "Sequence", "decoders": [{"type": "ByteFallback"},
                                                      {"type": "Metaspace", "replacement": "\u2581",
                                                       "prepend_scheme": "always", "split": True}]}, ms)
    dec("bpe_suffix", {"type": "BPEDecoder", "suffix": "</w>"})
    dec("null_bytelevel", None, bl)
    dec("wordpiece_unsupported", {"type": "WordPiece", "prefix": "##", "cleanup": True})

    # --- post-processors
    def post(name, p, base=None):
        add("post_processor_" + name, patched(base or bl, post_processor=p))

    eot = {"<|endoftext|>": {"id": "<|endoftext|>", "ids": [0], "tokens": ["<|endoftext|>"]}}
    post("template_bos_eos", {
        "type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                   {"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}}],
        "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": eot})
    post("template_missing_special", {
        "type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "<bos>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {}}, pl)
    post("bert", {"type": "BertProcessing", "sep": ["[SEP]", 2], "cls": ["[CLS]", 1]}, pl)
    post("roberta", {"type": "RobertaProcessing", "sep": ["<|endoftext|>", 0], "cls": ["<|endoftext|>", 0],
                     "trim_offsets": True, "add_prefix_space": False})
    post("sequence", {"type": "Sequence", "processors": [
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        {"type": "TemplateProcessing",
         "single": [{"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}}],
         "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
         "special_tokens": eot}]})
    return V


def tokenizer_corpus(novel, out):
    text = novel_slice(novel)
    bl, ms, pl = train_bytelevel(text), train_metaspace(text), train_plain(text)
    files, readings = {}, {}
    for name, body in tokenizer_variants(bl, ms, pl):
        fname = name + ".json"
        data = body.encode("utf-8") if isinstance(body, str) else body
        with open(os.path.join(out, fname), "wb") as f:
            f.write(data)
        try:
            tok = Tokenizer.from_str(data.decode("utf-8"))
        except Exception as e:
            files[fname] = {"accepted": False, "error": str(e)}
            continue
        v = {"accepted": True}
        if name == "model_bpe_dropout":
            v["reading"] = None  # random by design: nothing fixed to compare
        else:
            r = reading(tok)
            key = hashlib.sha256(dumps(r).encode()).hexdigest()[:12]
            readings[key] = r
            v["reading"] = key
        files[fname] = v
    return {"samples": SAMPLES, "files": files, "readings": readings}


# ------------------------------------------------------------------------- CSV

CSV = {
    # name: exact bytes
    "basic": b"text,n\nhello,1\nworld,2\n",
    "quoted_delimiter": b'text,n\n"a, b",1\n"c,d,e",2\n',
    "doubled_quotes": b'text,n\n"she said ""hi""",1\n"""",2\n"a""""b",3\n',
    "quoted_newline_lf": b'text,n\n"two\nlines",1\n"three\n\nlines",2\n',
    "quoted_newline_crlf": b'text,n\r\n"two\r\nlines",1\r\n',
    "quoted_newline_cr": b'text,n\r"two\rlines",1\r',
    "crlf": b"text,n\r\nhello,1\r\nworld,2\r\n",
    "cr_only": b"text,n\rhello,1\rworld,2\r",
    "mixed_line_endings": b"text,n\nhello,1\r\nworld,2\rlast,3\n",
    "bom": b"\xef\xbb\xbftext,n\nhello,1\n",
    "bom_quoted_header": b'\xef\xbb\xbf"text",n\nhello,1\n',
    "no_final_newline": b"text,n\nhello,1\nworld,2",
    "no_final_newline_quoted": b'text,n\nhello,1\n"world, again",2',
    "blank_lines": b"text,n\n\nhello,1\n\n\nworld,2\n\n",
    "blank_lines_crlf": b"text,n\r\n\r\nhello,1\r\n\r\n",
    "whitespace_only_line": b"text,n\nhello,1\n   \nworld,2\n",
    "whitespace_only_lines_tab_eof": b"text\nhello\n\t \r\nworld\n  \t",
    "form_feed_line": b"text,n\nhello,1\n\x0c\nworld,2\n",
    "blank_line_before_header": b"\n\ntext,n\nhello,1\n",
    "whitespace_around_fields": b"text , n\n hello , 1 \n world,2\t\n",
    "whitespace_numbers": b"a,b\n 1 , 2.5 \n3\t,\t4\n",
    "ragged_too_few": b"a,b,c\n1,2,3\n4,5\n6\n",
    "ragged_too_many": b"a,b\n1,2\n3,4,5\n",
    "ragged_too_many_first_row": b"a,b\n1,2,3\n4,5,6\n",
    "trailing_comma_every_line": b"a,b,\n1,2,\n3,4,\n",
    "only_commas_row": b"a,b\n,\n1,2\n",
    "na_spellings": (b"s,n\nNA,1\nnan,2\nNaN,3\nnull,4\nNULL,5\nNone,6\n#N/A,7\nN/A,8\nn/a,9\n<NA>,10\n"
                     b"-nan,11\n1.#IND,12\n,13\n\"\",14\nna,15\nNone ,16\n\"NA\",17\nx,18\n"),
    "na_numeric": b"x,y\n1,NA\n2,\n3,4\n",
    "header_only": b"a,b,c\n",
    "header_only_no_newline": b"a,b",
    "empty_file": b"",
    "only_blank_lines": b"\n\n\r\n",
    "duplicate_columns": b"a,b,a\n1,2,3\n",
    "empty_header_names": b",x,\n1,2,3\n",
    "header_na_spelling": b"NA,null\n1,2\n",
    "header_quoted_newline": b'"multi\nline",b\n1,2\n',
    "numeric_int": b"i\n1\n-2\n+3\n007\n",
    "numeric_float": b"f\n1.5\n.5\n5.\n1e3\n-2E-2\ninf\n-Infinity\n",
    "numeric_int_with_nan": b"i\n1\n\n3\n",
    "numeric_uint64": b"u\n18446744073709551615\n1\n",
    "numeric_big_int": b"u\n99999999999999999999999\n1\n",
    "bool_column": b"b\nTrue\nfalse\nTRUE\n",
    "bool_with_nan": b"b\nTrue\n\nFalse\n",
    "mixed_column": b"m\n1\ntwo\n3.0\n",
    "not_numbers": b"m\n0x1F\n1_000\n1,000\n",
    "quote_inside_unquoted": b'text\nsay "hi"\n',
    "text_after_closing_quote": b'text,n\n"abc"def,1\n',
    "space_after_closing_quote": b'text,n\n"abc" ,1\n',
    "unclosed_quote": b'text,n\n"abc,1\n',
    "invalid_utf8": b"text\nab\xff\n",
    "invalid_utf8_in_quotes": b'text\n"ab\xc3"\n',
    "utf8_multibyte": "text,n\ncaf\u00e9,1\n\u65e5\u672c\u8a9e,2\n\U0001f44d,3\n".encode("utf-8"),
    "backslash": b"text\na\\b\n\"c\\\"\n",
    "single_column_empty_quoted": b'text\n""\nx\n',
    "tab_separated_read_as_one_column": b"a\tb\n1\t2\n",
}


def cell_text(v):
    if pd.isna(v):
        return None
    if isinstance(v, float):
        return repr(float(v))  # (numpy 2's repr of a np.float64 is "np.float64(1.5)")
    return str(v)


def pandas_dtype(dt):
    # pandas 3 reads text as the "str" dtype; galvani says object, as pandas 2 and the course do.
    s = str(dt)
    return "object" if s in ("str", "string", "object") else s


def csv_corpus(out):
    files = {}
    for name, data in CSV.items():
        fname = name + ".csv"
        path = os.path.join(out, fname)
        with open(path, "wb") as f:
            f.write(data)
        try:
            df = pd.read_csv(path)
        except Exception as e:
            files[fname] = {"accepted": False, "error": type(e).__name__ + ": " + str(e).replace(path, fname)}
            continue
        v = {"accepted": True, "columns": [str(c) for c in df.columns],
             "dtypes": [pandas_dtype(df[c].dtype) for c in df.columns] if df.columns.is_unique else
             [pandas_dtype(df.iloc[:, i].dtype) for i in range(df.shape[1])],
             "rows": int(df.shape[0]),
             "cells": [[cell_text(df.iloc[r, c]) for c in range(df.shape[1])] for r in range(df.shape[0])]}
        if not isinstance(df.index, pd.RangeIndex):
            # pandas took the first column as the index (a row one field longer than the header)
            v["index"] = [cell_text(x) for x in df.index]
        files[fname] = v
    return {"files": files}


def verdicts_text(v):
    """verdicts.json: one line per file, per reading's sample, per CSV row (diffs stay readable)."""
    def block(d, inner):
        items = [f"  {dumps(k)}: {inner(d[k])}" for k in sorted(d)]
        return "{\n" + ",\n".join(items) + "\n }"

    parts = []
    for k in sorted(v):
        if k == "files":
            parts.append(f' "files": ' + block(v[k], dumps))
        elif k == "readings":
            parts.append(f' "readings": ' + block(v[k], lambda r: "[\n   " + ",\n   ".join(dumps(x) for x in r) + "\n  ]"))
        else:
            parts.append(f" {dumps(k)}: {dumps(v[k])}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--novel", default=os.path.join(here, "../../shared/data/frankenstein/pg84.txt"))
    ap.add_argument("--out", default=os.path.join(here, "../tests/fixtures/differential"))
    a = ap.parse_args()
    for sub, make in (("tokenizer", lambda d: tokenizer_corpus(a.novel, d)), ("csv", csv_corpus)):
        d = os.path.join(a.out, sub)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        verdicts = make(d)
        with open(os.path.join(d, "verdicts.json"), "w", encoding="utf-8") as f:
            f.write(verdicts_text(verdicts))
        n = len(verdicts["files"])
        acc = sum(v["accepted"] for v in verdicts["files"].values())
        print(f"{d}: {n} files, {acc} accepted by the reference, {n - acc} rejected")


if __name__ == "__main__":
    main()
