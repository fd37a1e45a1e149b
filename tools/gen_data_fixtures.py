#!/usr/bin/env python3
"""Reference fixtures for galvani's data layer (include/galvani/data), made with
pandas, numpy and transformers.

    ../refenv/bin/python tools/gen_data_fixtures.py [--data ../shared/data] [--out tests/fixtures/data]

Writes into --out:
  tricky_*.csv    small CSV files with the hard cases of RFC 4180 (BOM, CRLF, quoted
                  commas/quotes/newlines, empty fields, non-ASCII), written byte for byte
  pandas.json     for each tricky file: what pandas.read_csv makes of it (columns, values,
                  null = NaN), nunique() and isnull().sum(); and describe() / np.histogram
                  of a few number arrays (std ddof=1, linear quantiles)
  collator.json   DataCollatorForLanguageModeling(tokenizer, mlm=False) on real batches:
                  GPT-2 (pad = eos = 50256, padding on the right), one row that spells
                  "<|endoftext|>" so a real EOS is in the batch, an empty row, and
                  pad_to_multiple_of=8; Mistral (pad = eos = 2, padding on the left)
Needs pandas, numpy, torch and transformers (the reference venv); nothing here is committed
but the outputs.
"""
import argparse
import json
import os

import numpy as np
import pandas as pd

TRICKY = {
    # name: exact bytes
    "tricky_basic.csv": (
        b'\xef\xbb\xbftext,n\r\n'                       # BOM, CRLF
        b'"Hello, world",1\r\n'                         # comma inside quotes
        b'"She said ""hi"" twice",2\r\n'                # doubled quotes
        b'"two\nlines",3\r\n'                           # LF inside quotes
        b'"crlf\r\ninside",4\r\n'                       # CRLF inside quotes
        b',5\r\n'                                       # empty field = NaN
        b'"",6\r\n'                                     # quoted empty = NaN too
        b'   ,7\r\n'                                    # whitespace only: kept as text
        b'\r\n'                                         # blank line: skipped
        + '“Café” — Genève,8\r\n'.encode("utf-8")      # non-ASCII
        + b'last,9'                                     # no final line end
    ),
    "tricky_lf.csv": (
        b'text\n'
        b'plain\n'
        b'"a, b, c"\n'
        b'""""\n'                                       # a single quote character
        b'\n'
        b'"multi\n\nparagraph"\n'
    ),
    "tricky_short_rows.csv": (
        b'a,b,c\n'
        b'1,2,3\n'
        b'4,5\n'                                        # too few fields: NaN-padded
        b'x,,z\n'
    ),
}


def cell(v):
    return None if pd.isna(v) else str(v)


def pandas_reference(out):
    ref = {"csv": {}, "describe": [], "histogram": []}
    for name, data in TRICKY.items():
        path = os.path.join(out, name)
        with open(path, "wb") as f:
            f.write(data)
        df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
        ref["csv"][name] = {
            "columns": list(df.columns),
            "rows": [[cell(v) for v in row] for row in df.itertuples(index=False)],
            "nunique": {c: int(v) for c, v in df.nunique().items()},
            "isnull_sum": {c: int(v) for c, v in df.isnull().sum().items()},
            "char_len_describe": {k: (None if pd.isna(v) else float(v))
                                  for k, v in df[df.columns[0]].str.len().describe().items()},
        }
    rng = np.random.default_rng(0)
    arrays = {
        "small": [3, 1, 4, 1, 5, 9, 2, 6],
        "single": [7],
        "pair": [2, 10],
        "lengths": rng.integers(700, 1300, size=101).tolist(),
        "floats": rng.normal(50.0, 12.5, size=37).round(3).tolist(),
    }
    for name, xs in arrays.items():
        d = pd.Series(xs, dtype="float64").describe()
        ref["describe"].append({"name": name, "values": xs,
                                "describe": {k: (None if pd.isna(v) else float(v)) for k, v in d.items()}})
    for name in ("small", "lengths", "floats"):
        counts, edges = np.histogram(np.array(arrays[name], dtype=float), bins=7)
        ref["histogram"].append({"name": name, "values": arrays[name], "bins": 7,
                                 "counts": counts.tolist(), "edges": edges.tolist()})
    with open(os.path.join(out, "pandas.json"), "w") as f:
        json.dump(ref, f, indent=1, ensure_ascii=False)


def collator_reference(data, out):
    from transformers import DataCollatorForLanguageModeling, PreTrainedTokenizerFast

    cases = []

    def run(name, tok, texts, pad_to_multiple_of=None):
        feats = [dict(tok(t)) for t in texts]  # dataset.map(tokenize): input_ids + attention_mask, unpadded
        coll = DataCollatorForLanguageModeling(tokenizer=tok, mlm=False, pad_to_multiple_of=pad_to_multiple_of,
                                               return_tensors="pt")
        b = coll(feats)
        cases.append({
            "name": name,
            "texts": texts,
            "features": [f["input_ids"] for f in feats],
            "pad_id": tok.pad_token_id,
            "padding_side": tok.padding_side,
            "pad_to_multiple_of": pad_to_multiple_of or 0,
            "input_ids": b["input_ids"].tolist(),
            "attention_mask": b["attention_mask"].tolist(),
            "labels": b["labels"].tolist(),
        })

    gpt2 = PreTrainedTokenizerFast(tokenizer_file=os.path.join(data, "tokenizers/gpt2/tokenizer.json"),
                                   eos_token="<|endoftext|>", bos_token="<|endoftext|>")
    gpt2.pad_token = gpt2.eos_token  # as the course does
    texts = [
        "I'm afraid I've created a monster.",
        "You will rejoice to hear that no disaster has accompanied the commencement of an enterprise "
        "which you have regarded with such evil forebodings.",
        "The end.<|endoftext|>",  # a real EOS inside the text: masked in labels too
        "Learn from me, if not by my precepts, at least by my example.",
    ]
    run("gpt2_right", gpt2, texts)
    run("gpt2_right_multiple_of_8", gpt2, texts[:2], pad_to_multiple_of=8)
    run("gpt2_with_empty_row", gpt2, ["", "Beware; for I am fearless, and therefore powerful."])
    run("gpt2_equal_lengths", gpt2, ["It was on a dreary night", "It was on a dreary night"])

    mistral = PreTrainedTokenizerFast(tokenizer_file=os.path.join(data, "tokenizers/mistral/tokenizer.json"),
                                      bos_token="<s>", eos_token="</s>", unk_token="<unk>", padding_side="left")
    mistral.pad_token = mistral.eos_token
    run("mistral_left", mistral, texts[:3])

    with open(os.path.join(out, "collator.json"), "w") as f:
        json.dump({"cases": cases}, f, indent=1, ensure_ascii=False)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.path.join(here, "..", "..", "shared", "data"))
    ap.add_argument("--out", default=os.path.join(here, "..", "tests", "fixtures", "data"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    pandas_reference(a.out)
    collator_reference(a.data, a.out)
    print("wrote", a.out)


if __name__ == "__main__":
    main()
