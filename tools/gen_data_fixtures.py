#!/usr/bin/env python3
"""Reference fixtures for galvani's data layer (include/galvani/data), made with
pandas, numpy and transformers.

    ../refenv/bin/python tools/gen_data_fixtures.py [--data ../shared/data] [--out tests/fixtures/data]

Writes into --out:
  tricky_*.csv    small CSV files with the hard cases of RFC 4180 (BOM, CRLF, quoted
                  commas/quotes/newlines, empty fields, non-ASCII), written byte for byte
  pandas.json     for each tricky file: what pandas.read_csv makes of it (columns, values,
                  null = NaN), nunique() and isnull().sum(); and describe() / np.histogram
                  of a few number arrays (std ddof=1, linear quantiles); and under "dtypes",
                  what pandas.read_csv with its defaults makes of dtypes.csv
  dtypes.csv      one column per cell pattern (DTYPE_PATTERNS below: number syntax,
                  whitespace, NA spellings, booleans, integers past int64): pandas' dtype,
                  non-null count, nunique and each cell's value per column, and describe()
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

# Type inference of pandas' default C parser (issue #11, item 4). One column per pattern,
# three cells each, written into the CSV as they stand here (so '"NA"' is a quoted NA).
DTYPE_PATTERNS = {
    "int": ["1", "2", "3"],
    "int_missing": ["1", "", "3"],
    "float": ["1.5", "2", "3"],
    "hex": ["0x1F", "2", "3"],
    "hex_upper": ["0X1F", "1", "2"],
    "lead_space": [" 42", "1", "2"],
    "trail_space": ["42 ", "1", "2"],
    "both_space": [" 42 ", "1", "2"],
    "tab_lead": ["\t42", "1", "2"],
    "float_space": [" 1.5 ", "1", "2"],
    "plus": ["+5", "1", "2"],
    "plus_space_inside": ["+ 5", "1", "2"],
    "leading_zero": ["007", "1", "2"],
    "neg_zero": ["-0", "1", "2"],
    "exp": ["1e3", "2", "3"],
    "exp_upper_neg": ["1E-2", "2", "3"],
    "exp_plus": ["2.5E+02", "1", "2"],
    "exp_no_digits": ["1e", "1", "2"],
    "exp_only": ["e5", "1", "2"],
    "d_exponent": ["1d3", "1", "2"],
    "dot_first": [".5", "1", "2"],
    "dot_last": ["5.", "1", "2"],
    "dot_last_exp": ["5.e3", "1", "2"],
    "neg_dot_first": ["-.5", "1", "2"],
    "dot_alone": [".", "1", "2"],
    "minus_alone": ["-", "1", "2"],
    "plus_minus": ["+-1", "1", "2"],
    "double_dot": ["1.2.3", "1", "2"],
    "double_minus": ["--1", "1", "2"],
    "space_inside": ["1 2", "1", "2"],
    "underscore": ["1_000", "1", "2"],
    "thousands_comma": ['"1,000"', "1", "2"],
    "decimal_comma": ['"1,5"', "1", "2"],
    "percent": ["5%", "1", "2"],
    "currency": ["$5", "1", "2"],
    "fullwidth_digit": ["\uff11", "1", "2"],
    "overflow_float": ["1e400", "1", "2"],
    "underflow_float": ["1e-400", "1", "2"],
    "many_digits": ["3.14159265358979323846264338327950288", "1", "2"],
    "inf": ["inf", "1", "2"],
    "inf_title": ["Inf", "1", "2"],
    "inf_upper": ["INF", "1", "2"],
    "plus_inf": ["+inf", "1", "2"],
    "minus_inf": ["-inf", "1", "2"],
    "infinity": ["infinity", "1", "2"],
    "minus_infinity_title": ["-Infinity", "1", "2"],
    "infinity_mixed_case": ["iNfInItY", "1", "2"],
    "inf_space": [" inf", "1", "2"],
    "infin": ["infin", "1", "2"],
    "na_NaN": ["NaN", "1", "2"],
    "na_nan": ["nan", "1", "2"],
    "na_minus_nan": ["-nan", "1", "2"],
    "na_minus_NaN": ["-NaN", "1", "2"],
    "not_na_NAN": ["NAN", "1", "2"],
    "na_NA": ["NA", "1", "2"],
    "na_N/A": ["N/A", "1", "2"],
    "na_n/a": ["n/a", "1", "2"],
    "na_null": ["null", "1", "2"],
    "na_NULL": ["NULL", "1", "2"],
    "na_#N/A": ["#N/A", "1", "2"],
    "na_#N/A N/A": ["#N/A N/A", "1", "2"],
    "na_#NA": ["#NA", "1", "2"],
    "na_None": ["None", "1", "2"],
    "not_na_none": ["none", "1", "2"],
    "na_<NA>": ["<NA>", "1", "2"],
    "na_1.#IND": ["1.#IND", "1", "2"],
    "na_-1.#QNAN": ["-1.#QNAN", "1", "2"],
    "na_quoted": ['"NA"', "1", "2"],
    "na_with_space": [" NA", "1", "2"],
    "na_in_text": ["a", "NA", "b"],
    "whitespace_only": ["  ", "1", "2"],
    "whitespace_and_na": [" ", "", ""],
    "empty_column": ["", "", ""],
    "all_na_spellings": ["NA", "nan", ""],
    "int_float_na": ["1", "2.5", "NA"],
    "float_and_nan": ["nan", "1.5", ""],
    "bool_True": ["True", "False", "True"],
    "bool_TRUE": ["TRUE", "FALSE", "TRUE"],
    "bool_true": ["true", "false", "true"],
    "bool_mixed_case": ["tRuE", "false", "true"],
    "bool_with_missing": ["True", "", "False"],
    "bool_with_NA": ["True", "NA", "False"],
    "bool_and_ints": ["True", "1", "0"],
    "bool_space": [" True", "False", "True"],
    "bool_trailing_space": ["True ", "False", "True"],
    "yes_no": ["yes", "no", "yes"],
    "text": ["a", "b", "c"],
    "text_and_numbers": ["1", "a", "2"],
    "int64_min": ["-9223372036854775808", "1", "2"],
    "past_int64": ["9223372036854775808", "1", "2"],
    "uint64_max": ["18446744073709551615", "1", "2"],
    "past_uint64": ["18446744073709551616", "1", "2"],
    "past_int64_and_negative": ["9223372036854775808", "-1", "2"],
    "below_int64_min": ["-9223372036854775809", "1", "2"],
    "past_int64_with_missing": ["9223372036854775808", "", "1"],
    "past_uint64_with_missing": ["99999999999999999999999", "", "1"],
    "past_uint64_and_float": ["99999999999999999999999", "1.5", "2"],
    "repeated_numbers": ["1", "1.0", "1e0"],
    "repeated_bools": ["True", "TRUE", "true"],
}


def dtypes_reference(out):
    """What pandas.read_csv, with every default, makes of dtypes.csv."""
    names = list(DTYPE_PATTERNS)
    lines = [",".join(names)]
    for r in range(3):
        lines.append(",".join(DTYPE_PATTERNS[n][r] for n in names))
    path = os.path.join(out, "dtypes.csv")
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write("\n".join(lines) + "\n")
    df = pd.read_csv(path)
    assert list(df.columns) == names, "a pattern broke the CSV"

    def value(v):  # a cell as JSON: numbers as numbers (inf as a string), NaN as null
        if isinstance(v, (bool, np.bool_)):
            return bool(v)
        if pd.isna(v):
            return None
        if isinstance(v, (int, np.integer)):
            return str(int(v))  # past 2^53: keep every digit
        if isinstance(v, (float, np.floating)):
            return float(v) if np.isfinite(v) else ("inf" if v > 0 else "-inf")
        return str(v)

    cols = {}
    for n in names:
        s = df[n]
        cols[n] = {"cells": DTYPE_PATTERNS[n], "dtype": str(s.dtype), "non_null": int(s.notna().sum()),
                   "nunique": int(s.nunique()), "values": [value(v) for v in s]}
    desc = df.describe()  # numeric columns only (bool and text left out)
    for n in desc.columns:
        cols[n]["describe"] = {k: value(v) for k, v in desc[n].items()}
    return {"file": "dtypes.csv", "pandas_version": pd.__version__, "columns": cols}


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
    ref["dtypes"] = dtypes_reference(out)
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
