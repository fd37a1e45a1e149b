#!/usr/bin/env python3
"""Differential-test corpus for galvani's safetensors and GGUF readers (issue #17): small
files, valid and subtly invalid, each with the reference implementation's verdict.

    ../refenv/bin/python tools/gen_differential_safetensors_gguf.py   # (re)write the corpus

Needs numpy, safetensors (0.8.0 here) and gguf (gguf-py, 0.19.0 here); no torch. Deterministic:
fixed data, no clock, no randomness without a seed, so re-running it rewrites the same bytes.

What it writes:
  tests/fixtures/differential/safetensors/*.safetensors + verdicts.json
  tests/fixtures/differential/gguf/*.gguf               + verdicts.json

Every file starts from a real one — `safetensors.numpy.save`, `gguf.GGUFWriter` — and changes
one thing: its header JSON's spacing, key order, escapes, duplicate keys, dtypes, shapes,
offsets, metadata; GGUF's version, value types, arrays, alignment, tensor offsets and types,
counts, magic; or its length (truncations, trailing bytes). Each mutant is built by a small
re-encoder that the generator first checks against the reference writer: it reproduces the
writer's bytes for the base file exactly (asserted below), so a mutant differs from a real
file in the one thing its name says.

The verdict is what the reference made of the file on disk:
  safetensors  `safe_open(path, framework="numpy")` (keys, metadata) and
               `safetensors.deserialize(bytes)` (dtype in safetensors' spelling, shape, the
               bytes), both through the Rust crate's header validation. Both must agree.
  GGUF         `gguf.GGUFReader(path)`, then every field's contents() and every tensor's data
               (gguf-py decodes string values lazily: a value it cannot decode is a rejection
               here), and `gguf.quants.dequantize` of tensors whose type galvani dequantizes.
Accepted: what it read. Rejected: the reference's error text (for information only; galvani's
messages are its own). tests/test_differential_safetensors_gguf.cpp reads every file with
galvani and checks the verdicts, listing the deliberate differences in one table.

Shapes: safetensors shapes are row-major (PyTorch order). GGUF tensors record both `ne`
(GGUF's order, fastest-varying first, as stored) and `shape` (ne reversed: PyTorch's order,
which is what galvani's GgufTensorInfo::shape holds).

Metadata values (GGUF) are recorded as {"type": T, ...}: integers and bools as "value";
FLOAT32/FLOAT64 as "bits" (the IEEE bits in hex, so NaN, inf and -0.0 compare exactly);
STRING as "value"; ARRAY as "elem" (the element type; "ARRAY" for an array of arrays, whose
elements carry their own) + "count" + either "values" (nested arrays, or ≤ 16 elements; each
described the same way, without "type") or "sha256" of the elements as stored (scalars: their
little-endian bytes; strings: u64 length + bytes each).
"""
import hashlib
import json
import os
import shutil
import struct
import sys
from collections import OrderedDict

import numpy as np

import safetensors
from safetensors import safe_open
from safetensors.numpy import save as st_save

import gguf
from gguf import GGMLQuantizationType as Q
from gguf import GGUFValueType as V

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "differential")
SHORT_ARRAY = 16  # arrays up to this long are recorded element by element


def sha256(b) -> str:
    return hashlib.sha256(bytes(b)).hexdigest()


# =============================================================================== safetensors

class Obj(list):
    """A JSON object as a list of (key, value) pairs: keeps key order and duplicate keys
    (a dict can hold neither a duplicate nor, for json.dumps, the order we want to test)."""


def st_parse(blob: bytes):
    """(ordered header pairs, data bytes) of a file safetensors wrote."""
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + n].decode(), object_pairs_hook=Obj)
    return header, blob[8 + n:]


def dumps_pairs(pairs, compact=True):
    """JSON text of an object given as (key, value) pairs, keeping their order and any
    duplicates (json.dumps of a dict cannot write a duplicate key)."""
    def enc(v):
        if isinstance(v, Obj):
            return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + enc(x) for k, x in v) + "}"
        if isinstance(v, list):
            return "[" + ",".join(enc(x) for x in v) + "]"
        return json.dumps(v, ensure_ascii=False)
    assert compact
    return enc(pairs)


def st_encode(header_text, data: bytes, pad=True, length=None) -> bytes:
    """The file: u64 header length, the header (padded with spaces to a multiple of 8, as
    safetensors pads it), the data."""
    hb = header_text.encode() if isinstance(header_text, str) else header_text
    if pad:
        hb += b" " * ((8 - len(hb) % 8) % 8)
    return struct.pack("<Q", len(hb) if length is None else length) + hb + data


def entry(dtype, shape, begin, end):
    return Obj([("dtype", dtype), ("shape", shape), ("data_offsets", [begin, end])])


# Every dtype safetensors 0.8 knows, its bits per element, and a shape whose bits fill whole bytes.
ST_DTYPES = [("BOOL", 8), ("F4", 4), ("F6_E2M3", 6), ("F6_E3M2", 6), ("U8", 8), ("I8", 8), ("F8_E5M2", 8),
             ("F8_E4M3", 8), ("F8_E8M0", 8), ("F8_E4M3FNUZ", 8), ("F8_E5M2FNUZ", 8), ("I16", 16), ("U16", 16),
             ("F16", 16), ("BF16", 16), ("I32", 32), ("U32", 32), ("F32", 32), ("C64", 64), ("F64", 64),
             ("I64", 64), ("U64", 64)]


def pattern(n, seed):
    """n deterministic bytes."""
    return np.random.default_rng(seed).integers(0, 256, size=n, dtype=np.uint8).tobytes()


def st_from_tensors(tensors, metadata=None):
    """A safetensors file of raw tensors [(name, dtype, shape, bytes)], laid out as
    safetensors lays it out (dtype's alignment descending, then name): header pairs + data."""
    order = {d: i for i, (d, _) in enumerate(ST_DTYPES)}
    tensors = sorted(tensors, key=lambda t: (-order[t[1]], t[0]))
    pairs, data = Obj(), b""
    if metadata is not None:
        pairs.append(("__metadata__", Obj(metadata.items())))
    for name, dtype, shape, raw in tensors:
        pairs.append((name, entry(dtype, shape, len(data), len(data) + len(raw))))
        data += raw
    return pairs, data


def st_variants():
    """[(file name, what it is, bytes)]."""
    out = []

    def add(name, what, blob):
        out.append((name + ".safetensors", what, blob))

    # --- real files, as safetensors.numpy.save writes them
    real = OrderedDict()
    real["weight"] = (np.arange(6, dtype=np.float32).reshape(2, 3) * 0.5 - 1)
    real["ids"] = np.array([[1, 2], [3, -4]], dtype=np.int64)
    real["bytes"] = np.array([0, 1, 254, 255], dtype=np.uint8)
    real["half"] = np.array([1.0, -0.5, 65504.0], dtype=np.float16)
    base = st_save(real, metadata={"format": "pt"})
    pairs, data = st_parse(base)
    assert st_encode(dumps_pairs(pairs), data) == base, "the re-encoder must reproduce safetensors' bytes"
    add("valid_numpy_save", "safetensors.numpy.save of F32, I64, U8, F16 tensors with metadata {format: pt}", base)
    add("valid_numpy_save_no_metadata", "safetensors.numpy.save without metadata", st_save(real))
    more = {"c64": np.array([1 + 2j, -3.5j], dtype=np.complex64), "u64": np.array([0, 2**64 - 1], dtype=np.uint64),
            "u32": np.array([7, 2**32 - 1], dtype=np.uint32), "i16": np.array([-32768, 32767], dtype=np.int16),
            "u16": np.array([1, 65535], dtype=np.uint16), "flag": np.array([True, False, True], dtype=np.bool_),
            "i8": np.array([-128, 127, 0], dtype=np.int8), "f64": np.array(np.pi), "i32": np.array([-1], np.int32)}
    add("valid_numpy_save_more_dtypes", "safetensors.numpy.save of C64, U64, U32, I16, U16, BOOL, I8, an F64 scalar, I32",
        st_save(more))
    add("valid_numpy_save_zero_size", "safetensors.numpy.save of [0] and [3, 0] tensors beside a [2] one",
        st_save({"empty": np.zeros((0,), np.float32), "empty2d": np.zeros((3, 0), np.int64),
                 "x": np.array([1.5, 2.5], np.float32)}))
    add("valid_numpy_save_only_empty", "safetensors.numpy.save of zero-size tensors only: an empty data section",
        st_save({"a": np.zeros((0,), np.float32), "b": np.zeros((0, 5), np.uint8)}))
    add("valid_numpy_save_nothing", "safetensors.numpy.save of no tensors: header {} padded to 8", st_save({}))

    # --- every dtype safetensors knows, raw bytes
    tens = []
    for i, (d, bits) in enumerate(ST_DTYPES):
        n = 4  # 4 elements fill whole bytes for every width (F4: 2 bytes, F6: 3 bytes)
        tens.append((f"t_{d.lower()}", d, [2, 2], pattern(n * bits // 8, 100 + i)))
    add("all_dtypes", "one [2, 2] tensor of each of the 22 dtypes, laid out as safetensors lays them out",
        st_encode(dumps_pairs(st_from_tensors(tens)[0]), st_from_tensors(tens)[1]))
    scal = [(f"s_{d.lower()}", d, [], pattern(bits // 8, 200 + i)) for i, (d, bits) in enumerate(ST_DTYPES) if bits % 8 == 0]
    p, dd = st_from_tensors(scal)
    add("scalars_every_byte_dtype", "a scalar (shape []) of every whole-byte dtype", st_encode(dumps_pairs(p), dd))
    p, dd = st_from_tensors([("f4", "F4", [], b"")])
    add("scalar_f4", "an F4 scalar: 4 bits, not a whole byte", st_encode(dumps_pairs(p), dd))
    p, dd = st_from_tensors([("f4", "F4", [3], b"\x12\x34")])
    add("f4_odd_count", "3 F4 elements (12 bits) in 2 bytes", st_encode(dumps_pairs(p), dd))
    p, dd = st_from_tensors([("f6", "F6_E3M2", [2, 4], pattern(6, 7))])
    add("f6_two_rows", "a [2, 4] F6_E3M2 tensor: 48 bits in 6 bytes", st_encode(dumps_pairs(p), dd))
    p, dd = st_from_tensors([("z", "BF16", [0, 7], b""), ("z2", "F8_E4M3", [3, 0, 2], b""), ("x", "BF16", [1], b"\x80\x3f")])
    add("zero_size_unusual_dtypes", "zero-size BF16 [0, 7] and F8_E4M3 [3, 0, 2] tensors", st_encode(dumps_pairs(p), dd))

    # --- header spacing and padding
    def text_of(pairs_):
        return dumps_pairs(Obj(pairs_))
    base_text = text_of(pairs)
    add("header_no_padding", "the header unpadded: its length not a multiple of 8",
        st_encode(base_text, data, pad=False))
    add("header_padded_64", "the header padded with 64 spaces", st_encode(base_text + " " * 64, data, pad=False))
    add("header_leading_whitespace", "spaces, a tab and a newline before the opening brace",
        st_encode(" \t\n" + base_text, data))
    add("header_trailing_newlines", "CR LF and a tab after the closing brace", st_encode(base_text + "\r\n\t", data))
    pretty = json.dumps(json.loads(base_text, object_pairs_hook=OrderedDict), indent=2)
    add("header_pretty_printed", "the header re-indented by json.dumps(indent=2): whitespace at every level",
        st_encode(pretty, data))
    add("header_space_inside", "spaces around every colon and comma", st_encode(
        base_text.replace(":", " : ").replace(",", " , ").replace("[", "[ ").replace("]", " ]"), data))
    add("header_bom", "a UTF-8 byte order mark before the header", st_encode(b"\xef\xbb\xbf" + base_text.encode(), data))
    add("header_nul_padding", "the header padded with NUL bytes instead of spaces",
        st_encode(base_text.encode() + b"\0" * ((8 - len(base_text) % 8) % 8 or 8), data, pad=False))
    add("header_junk_after", "a second value after the header's object", st_encode(base_text + "{}", data))
    add("header_empty_object", "the header {} and no data", st_encode("{}", b""))
    add("header_only_whitespace", "a header of 8 spaces", st_encode(" " * 8, b"", pad=False))
    add("header_length_zero", "a header length of 0", st_encode(b"", b"", pad=False))
    add("header_top_level_array", "the header is a JSON array", st_encode("[]", b""))

    # --- key order
    rev = [pairs[0]] + list(reversed(pairs[1:]))
    add("keys_reversed", "tensor entries in reverse order (offsets unchanged)", st_encode(text_of(rev), data))
    add("metadata_last", "__metadata__ after the tensors", st_encode(text_of(pairs[1:] + [pairs[0]]), data))
    inner = [(k, Obj(reversed(v)) if k != "__metadata__" else v) for k, v in pairs]
    add("entry_fields_reversed", "data_offsets, shape, dtype in reverse order in every entry", st_encode(text_of(inner), data))
    extra = [(k, Obj(v + [("extra", Obj([("nested", [1, [2, [3]]])])), ("note", "x")]) if k != "__metadata__" else v)
             for k, v in pairs]
    add("entry_unknown_fields", "unknown fields (a nested object, a string) in every entry", st_encode(text_of(extra), data))

    # --- duplicate keys
    name0, e0 = pairs[1]
    add("duplicate_tensor_same", "one tensor entry written twice, identically",
        st_encode(text_of(pairs[:2] + [(name0, e0)] + pairs[2:]), data))
    e_w = dict(pairs)["weight"]  # F32 [2, 3]: the same 24 bytes read as I32 [3, 2]
    add("duplicate_tensor_different", "\"weight\" given twice: F32 [2, 3], then I32 [3, 2] over the same bytes",
        st_encode(text_of(pairs + [("weight", dict_set(dict_set(e_w, "dtype", "I32"), "shape", [3, 2]))]), data))
    add("duplicate_metadata_object", "__metadata__ given twice",
        st_encode(text_of(pairs + [("__metadata__", Obj([("format", "np")]))]), data))
    add("duplicate_metadata_key", "a key given twice inside __metadata__",
        st_encode(text_of([("__metadata__", Obj([("format", "pt"), ("format", "np")]))] + pairs[1:]), data))
    dup_field = [(k, v if k != name0 else Obj([("dtype", "U8")] + v)) for k, v in pairs]
    add("duplicate_entry_field", "\"dtype\" twice in one entry", st_encode(text_of(dup_field), data))

    # --- __metadata__ forms
    body = pairs[1:]
    for name, md, what in [
            ("metadata_empty", Obj(), "__metadata__ {}"),
            ("metadata_null", None, "__metadata__ null"),
            ("metadata_unicode", Obj([("名前", "ünïcödé ✓"), ("", "empty key"), ("emoji", "😀"), ("ctl", "a\nb\t\"c\"\\")]),
             "non-ASCII, empty, emoji and escaped keys and values"),
            ("metadata_tensor_like", Obj([("dtype", "F32"), ("shape", "[1]"), ("data_offsets", "[0, 4]")]),
             "metadata keys that look like a tensor entry's"),
            ("metadata_int_value", Obj([("step", 1)]), "a metadata value that is an integer"),
            ("metadata_bool_value", Obj([("ok", True)]), "a metadata value that is a bool"),
            ("metadata_null_value", Obj([("x", None)]), "a metadata value that is null"),
            ("metadata_nested_object", Obj([("x", Obj([("y", "z")]))]), "a metadata value that is an object"),
            ("metadata_array_value", Obj([("x", ["a", "b"])]), "a metadata value that is an array of strings")]:
        add(name, what, st_encode(text_of([("__metadata__", md)] + body), data))
    add("metadata_is_array", "__metadata__ is an array", st_encode(
        text_of(body).replace("{", '{"__metadata__":["format","pt"],', 1), data))
    add("metadata_is_string", "__metadata__ is a string", st_encode(
        text_of(body).replace("{", '{"__metadata__":"pt",', 1), data))

    # --- unusual but legal JSON, and numbers
    esc = base_text.replace('"weight"', '"\\u0077\\u0065ight"').replace('"F32"', '"\\u004632"')
    add("escapes_unicode_in_name_and_dtype", "\\u escapes spelling a tensor name and a dtype", st_encode(esc, data))
    add("escapes_surrogate_pair_name", "a tensor name given as a \\ud83d\\ude00 surrogate pair (😀)",
        st_encode(base_text.replace('"weight"', '"w\\ud83d\\ude00"'), data))
    add("escapes_lone_surrogate_name", "a tensor name holding a lone surrogate \\ud83d",
        st_encode(base_text.replace('"weight"', '"w\\ud83d"'), data))
    add("escapes_solidus_and_controls", "a tensor name with \\/, \\b, \\f, \\n and \\t escapes",
        st_encode(base_text.replace('"weight"', '"a\\/b\\b\\f\\n\\tc"'), data))
    add("name_empty_string", "a tensor named \"\"", st_encode(base_text.replace('"weight"', '""'), data))
    add("name_raw_utf8", "a tensor name in raw (unescaped) UTF-8: 'gewicht.ß.層'",
        st_encode(base_text.replace('"weight"', '"gewicht.ß.層"'), data))
    w_off = dict(pairs[1:])["weight"][2][1]  # weight's [begin, end]
    w_old = '"data_offsets":[%d,%d]' % tuple(w_off)
    assert w_old in base_text
    for name, repl, what in [
            ("number_exponent_offset", '"data_offsets":[%d,%de0]' % tuple(w_off), "an offset written 24e0"),
            ("number_float_offset", '"data_offsets":[%d,%d.0]' % tuple(w_off), "an offset written 24.0"),
            ("number_negative_zero_offset", '"data_offsets":[-0,%d]' % w_off[1] if w_off[0] == 0 else None,
             "an offset written -0"),
            ("number_leading_zero_offset", '"data_offsets":[%d,0%d]' % tuple(w_off), "an offset written with a leading 0"),
            ("number_offset_too_big", '"data_offsets":[%d,18446744073709551616]' % w_off[0],
             "an offset of 2^64"),
            ("number_negative_offset", '"data_offsets":[-8,%d]' % w_off[1], "a negative offset"),
            ("offsets_three_entries", '"data_offsets":[%d,%d,%d]' % (w_off[0], w_off[1], w_off[1]),
             "data_offsets with 3 entries"),
            ("offsets_string", '"data_offsets":["%d","%d"]' % tuple(w_off), "data_offsets as strings")]:
        if repl is None:
            continue
        add(name, what, st_encode(base_text.replace(w_old, repl), data))
    add("shape_exponent", "a shape entry written 3e0", st_encode(base_text.replace('"shape":[2,3]', '"shape":[2,3e0]'), data))
    for name, shape, what in [
            ("shape_zero_then_huge", "[0,4294967296,4294967296]", "shape [0, 2^32, 2^32]: zero elements, "
             "though the later dimensions alone overflow"),
            ("shape_huge_then_zero", "[4294967296,4294967296,0]", "shape [2^32, 2^32, 0]: the running product "
             "overflows before the 0"),
            ("shape_zero_and_2_63", "[0,9223372036854775808]", "shape [0, 2^63]: zero elements, a dimension past int64"),
            ("shape_zero_and_u64_max", "[18446744073709551615,0]", "shape [2^64 - 1, 0]: zero elements")]:
        add(name, what, st_encode('{"a":{"dtype":"F32","shape":%s,"data_offsets":[0,0]}}' % shape, b""))
    add("name_with_escaped_nul", "a tensor name holding \\u0000",
        st_encode(base_text.replace('"weight"', '"w\\u0000x"'), data))
    add("header_formfeed_before", "a form feed (not JSON whitespace) before the header's object",
        st_encode("\f" + base_text, data))
    add("shape_null", "a null shape", st_encode(base_text.replace('"shape":[2,3]', '"shape":null'), data))
    add("dtype_lowercase", "dtype \"f32\"", st_encode(base_text.replace('"F32"', '"f32"'), data))
    add("dtype_unknown", "dtype \"F12\"", st_encode(base_text.replace('"F32"', '"F12"'), data))
    add("entry_not_object", "a tensor entry that is a number", st_encode('{"a":1}', b""))
    deep = '{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":' + "[" * 100 + "]" * 100 + "}}"
    add("nesting_100_deep", "100 nested arrays in an unknown field", st_encode(deep, b"\x07"))
    deep = '{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":' + "[" * 200 + "]" * 200 + "}}"
    add("nesting_200_deep", "200 nested arrays in an unknown field", st_encode(deep, b"\x07"))

    # --- the data section
    add("trailing_bytes", "one byte after the last tensor", st_encode(base_text, data + b"\0"))
    a, b = pairs[1], pairs[2]
    ab, ae = dict(a[1])["data_offsets"]
    bb, be = dict(b[1])["data_offsets"]
    assert ab == 0 and bb == ae
    swapped = [pairs[0], (a[0], dict_set(a[1], "data_offsets", [be - bb, be - bb + ae])),
               (b[0], dict_set(b[1], "data_offsets", [0, be - bb]))] + pairs[3:]
    add("offsets_out_of_order", "the first two tensors' bytes swapped in the data section, offsets to match",
        st_encode(text_of(swapped), data[bb:be] + data[ab:ae] + data[be:]))
    add("offsets_gap", "4 unused bytes between two tensors", st_encode(
        text_of(shift_after(pairs, ae, 4)), data[:ae] + b"\0" * 4 + data[ae:]))
    add("offsets_overlap", "two tensors sharing 4 bytes", st_encode(
        text_of(shift_after(pairs, ae, -4)), data[:ae - 4] + data[ae:]))
    add("offsets_same_range", "two tensors of the same size at the same offsets",
        st_encode('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
                  '"b":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}}', pattern(8, 3)))
    add("offsets_end_before_begin", "data_offsets [8, 0]", st_encode(
        '{"a":{"dtype":"U8","shape":[0],"data_offsets":[8,0]},"b":{"dtype":"U8","shape":[8],"data_offsets":[0,8]}}',
        pattern(8, 4)))
    add("offsets_past_end", "the last tensor's end one byte past the file", st_encode(base_text, data[:-1] + b""))
    add("size_mismatch", "shape [2, 3] of F32 with 20 bytes", st_encode(
        '{"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}}', pattern(20, 5)))
    add("shape_overflow", "shape [2^32, 2^32, 2]: the element count overflows 64 bits", st_encode(
        '{"a":{"dtype":"U8","shape":[4294967296,4294967296,2],"data_offsets":[0,0]}}', b""))
    add("zero_size_inside_other", "a zero-size tensor at an offset inside another tensor's bytes", st_encode(
        '{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"z":{"dtype":"F32","shape":[0],"data_offsets":[2,2]}}',
        pattern(4, 6)))
    add("zero_size_at_end", "a zero-size tensor at the data section's end", st_encode(
        '{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"z":{"dtype":"F32","shape":[3,0],"data_offsets":[4,4]}}',
        pattern(4, 6)))
    add("zero_size_two_at_one_offset", "two zero-size tensors at the same offset, between two others", st_encode(
        '{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"z1":{"dtype":"F32","shape":[0],"data_offsets":[2,2]},'
        '"z0":{"dtype":"I64","shape":[0,3],"data_offsets":[2,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}}',
        pattern(4, 6)))
    add("zero_size_past_end", "a zero-size tensor past the data section's end", st_encode(
        '{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"z":{"dtype":"F32","shape":[0],"data_offsets":[8,8]}}',
        pattern(4, 6)))

    # --- truncations and lengths
    add("truncated_in_length", "the first 5 bytes only", base[:5])
    add("truncated_in_header", "cut in the middle of the header", base[:8 + len(base_text) // 2])
    add("truncated_in_data", "the last byte of the data missing", base[:-1])
    padded = len(st_encode(base_text, b"")) - 8
    add("header_length_past_end", "a header length 8 larger than the header (it swallows 8 bytes of data)",
        st_encode(base_text, data, length=padded + 8))
    add("header_length_over_limit", "a header length of 100,000,001 (over safetensors' limit)",
        struct.pack("<Q", 100_000_001) + b"{}")
    return out


def dict_set(pairs_, key, value):
    return Obj((k, value if k == key else v) for k, v in pairs_)


def shift_after(pairs, at, by):
    """Moves every tensor whose bytes begin at or after `at` by `by` bytes."""
    out = Obj()
    for k, v in pairs:
        if k == "__metadata__":
            out.append((k, v))
            continue
        b, e = dict(v)["data_offsets"]
        if b >= at:
            b, e = b + by, e + by
        out.append((k, dict_set(v, "data_offsets", [b, e])))
    return out


def st_verdict(path, blob):
    """What safetensors makes of the file: via safe_open and via deserialize, which must agree."""
    try:
        with safe_open(path, framework="numpy") as f:
            keys = sorted(f.keys())
            metadata = f.metadata()
        opened = None
    except Exception as e:  # noqa: BLE001 — any refusal is the verdict
        opened = f"{type(e).__name__}: {e}"
    try:
        items = safetensors.deserialize(blob)
        des = None
    except Exception as e:  # noqa: BLE001
        des = f"{type(e).__name__}: {e}"
    assert (opened is None) == (des is None), (path, opened, des)
    if opened is not None:
        return {"accepted": False, "error": opened}
    assert sorted(n for n, _ in items) == keys
    tensors = [{"name": n, "dtype": t["dtype"], "shape": list(t["shape"]), "nbytes": len(t["data"]),
                "sha256": sha256(t["data"])} for n, t in sorted(items, key=lambda x: x[0])]
    if metadata is not None:  # a Rust HashMap: its order changes from run to run
        metadata = dict(sorted(metadata.items()))
    return {"accepted": True, "tensors": tensors, "metadata": metadata}


# ====================================================================================== GGUF

SCALAR_FMT = {V.UINT8: "<B", V.INT8: "<b", V.UINT16: "<H", V.INT16: "<h", V.UINT32: "<I", V.INT32: "<i",
              V.FLOAT32: "<f", V.UINT64: "<Q", V.INT64: "<q", V.FLOAT64: "<d", V.BOOL: "<B"}


def gs(text) -> bytes:
    b = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q", len(b)) + b


def gval(vtype, value, sub=None) -> bytes:
    """A value's bytes. An array value is (element type, [elements]); nested arrays give each
    element as (type, [elements])."""
    if vtype == V.STRING:
        return gs(value)
    if vtype == V.ARRAY:
        etype, elems = value
        return struct.pack("<IQ", etype, len(elems)) + b"".join(gval(etype, e) for e in elems)
    if isinstance(value, (bytes, bytearray)):  # raw bits (e.g. a NaN payload, a bool of 2)
        return bytes(value)
    return struct.pack(SCALAR_FMT[vtype], value)


def gkv(key, vtype, value) -> bytes:
    return gs(key) + struct.pack("<I", vtype) + gval(vtype, value)


def gti(name, ne, ggml_type, offset) -> bytes:
    return gs(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", d) for d in ne) + \
        struct.pack("<IQ", ggml_type, offset)


def gguf_build(kvs, infos, data, version=3, alignment=32, n_tensors=None, n_kv=None, magic=b"GGUF"):
    """A GGUF file from encoded key/values and tensor infos and the data section."""
    head = magic + struct.pack("<IQQ", version, len(infos) if n_tensors is None else n_tensors,
                               len(kvs) if n_kv is None else n_kv)
    head += b"".join(kvs) + b"".join(infos)
    head += b"\0" * ((alignment - len(head) % alignment) % alignment)
    return head + data


def gguf_writer_bytes(tmp, build):
    """The bytes gguf.GGUFWriter writes, after build(writer) adds keys and tensors."""
    w = gguf.GGUFWriter(tmp, arch="llama")
    build(w)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with open(tmp, "rb") as f:
        return f.read()


F16_FIELDS = {Q.Q2_K: [80, 82], Q.Q3_K: [108], Q.Q4_K: [0, 2], Q.Q5_K: [0, 2], Q.Q6_K: [208]}


def k_blocks(qtype, n_blocks, seed):
    """Deterministic blocks of a K-quant type (gguf.quants has no quantizer for them) with
    finite f16 scales."""
    rng = np.random.default_rng(seed)
    _, size = gguf.GGML_QUANT_SIZES[qtype]
    data = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)
    for off in F16_FIELDS[qtype]:
        scale = (rng.uniform(0.01, 2.0, size=n_blocks) * rng.choice([-1, 1], size=n_blocks)).astype(np.float16)
        data[:, off:off + 2] = scale.view(np.uint8).reshape(n_blocks, 2)
    return data.tobytes()


def gguf_variants(tmpdir):
    out = []

    def add(name, what, blob):
        out.append((name + ".gguf", what, blob))

    tmp = os.path.join(tmpdir, "w.gguf")
    w_f32 = (np.arange(12, dtype=np.float32).reshape(3, 4) - 5.5) / 4  # ne [4, 3]
    w_f16 = np.array([1.0, -2.0, 0.5, 65504.0, 0.0, -0.0], dtype=np.float16)

    # --- real files, as gguf.GGUFWriter writes them
    def basic(w):
        w.add_name("diff")
        w.add_uint32("llama.block_count", 2)
        w.add_float32("llama.rope.freq_base", 10000.0)
        w.add_bool("x.flag", True)
        w.add_array("x.tokens", ["<s>", "</s>", "hé"])
        w.add_tensor("w", w_f32)
        w.add_tensor("h", w_f16)
    base = gguf_writer_bytes(tmp, basic)
    # The hand encoder reproduces it.
    kvs = [gkv("general.architecture", V.STRING, "llama"), gkv("general.name", V.STRING, "diff"),
           gkv("llama.block_count", V.UINT32, 2), gkv("llama.rope.freq_base", V.FLOAT32, 10000.0),
           gkv("x.flag", V.BOOL, True), gkv("x.tokens", V.ARRAY, (V.STRING, ["<s>", "</s>", "hé"]))]
    d_w = w_f32.tobytes()
    d_h = w_f16.tobytes()
    data = d_w + b"\0" * (64 - len(d_w)) + d_h + b"\0" * (32 - len(d_h))
    infos = [gti("w", [4, 3], Q.F32, 0), gti("h", [6], Q.F16, 64)]
    assert gguf_build(kvs, infos, data) == base, "the hand encoder must reproduce GGUFWriter's bytes"
    add("valid_writer_v3", "gguf.GGUFWriter: string, u32, f32, bool and string-array keys; F32 [3, 4] and F16 [6]", base)
    add("valid_writer_as_v2", "the same bytes with the version field set to 2", gguf_build(kvs, infos, data, version=2))

    def quant(w):
        rng = np.random.default_rng(17)
        x = rng.standard_normal((2, 64)).astype(np.float32)
        for qt in (Q.Q8_0, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1):
            w.add_tensor(f"q.{qt.name.lower()}", gguf.quants.quantize(x, qt), raw_dtype=qt)
        bf = gguf.quants.quantize(x[:, :8], Q.BF16)
        w.add_tensor("q.bf16", bf, raw_dtype=Q.BF16)
        for i, qt in enumerate((Q.Q2_K, Q.Q3_K, Q.Q4_K, Q.Q5_K, Q.Q6_K)):
            blocks = np.frombuffer(k_blocks(qt, 2, 30 + i), dtype=np.uint8).reshape(2, -1)
            w.add_tensor(f"q.{qt.name.lower()}", blocks, raw_dtype=qt)
        w.add_tensor("raw.iq4_nl", np.frombuffer(pattern(36, 40), np.uint8).reshape(1, 36), raw_dtype=Q.IQ4_NL)
        w.add_tensor("raw.i8", np.arange(-3, 3, dtype=np.int8))
        w.add_tensor("raw.i16", np.arange(-3, 3, dtype=np.int16))
        w.add_tensor("raw.i32", np.arange(-3, 3, dtype=np.int32))
        w.add_tensor("raw.i64", np.arange(-3, 3, dtype=np.int64))
        w.add_tensor("raw.f64", np.linspace(-1, 1, 5))
    add("valid_writer_quantized", "GGUFWriter: Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 (gguf.quants.quantize), BF16, Q2_K..Q6_K "
        "blocks, and IQ4_NL, I8, I16, I32, I64, F64 tensors galvani reads as bytes", gguf_writer_bytes(tmp, quant))

    def every_value(w):
        w.add_uint8("v.u8", 255)
        w.add_int8("v.i8", -128)
        w.add_uint16("v.u16", 65535)
        w.add_int16("v.i16", -32768)
        w.add_uint32("v.u32", 2**32 - 1)
        w.add_int32("v.i32", -2**31)
        w.add_float32("v.f32", -1.5e-7)
        w.add_bool("v.bool_false", False)
        w.add_string("v.str", "ünïcödé ✓ 😀")
        w.add_string("v.str_empty", "")
        w.add_uint64("v.u64", 2**64 - 1)
        w.add_int64("v.i64", -2**63)
        w.add_float64("v.f64", 1 / 3)
        for vt, vals in [(V.UINT8, [0, 255]), (V.INT8, [-1, 1]), (V.UINT16, [7]), (V.INT16, [-7, 7]),
                         (V.UINT32, [1, 2, 3]), (V.INT32, [-5]), (V.FLOAT32, [0.5, -0.0]), (V.BOOL, [True, False]),
                         (V.UINT64, [2**63]), (V.INT64, [-1, 2**62]), (V.FLOAT64, [2.5, 1e300])]:
            w.add_key_value(f"a.{vt.name.lower()}", vals, V.ARRAY, sub_type=vt)
        w.add_array("a.long_i32", list(range(-50, 50)))
        w.add_array("a.long_str", [f"tok{i}" for i in range(40)])
        w.add_array("a.empty", [])
    add("valid_writer_every_value_type", "GGUFWriter: every scalar value type at its extremes, arrays of each, "
        "long arrays, an empty array; no tensors", gguf_writer_bytes(tmp, every_value))

    # --- hand-built variants from the encoder above
    def vkv(*extra):
        return kvs + list(extra)

    add("nested_arrays", "an array of arrays of u8, one of arrays of strings, and an array of arrays of arrays",
        gguf_build(vkv(gkv("n.u8", V.ARRAY, (V.ARRAY, [(V.UINT8, [1, 2]), (V.UINT8, [3])])),
                       gkv("n.str", V.ARRAY, (V.ARRAY, [(V.STRING, ["a"]), (V.STRING, ["b", "c"])])),
                       gkv("n.deep", V.ARRAY, (V.ARRAY, [(V.ARRAY, [(V.INT32, [-1])])]))), infos, data))
    add("nested_arrays_mixed_types", "an array of arrays whose elements have different element types",
        gguf_build(vkv(gkv("n.mixed", V.ARRAY, (V.ARRAY, [(V.UINT8, [1]), (V.STRING, ["x"]), (V.FLOAT32, [2.0])]))),
                   infos, data))
    deep = (V.UINT8, [1])
    for _ in range(9):
        deep = (V.ARRAY, [deep])
    add("nested_arrays_10_deep", "arrays nested 10 deep", gguf_build(vkv(gkv("n.deep", V.ARRAY, deep)), infos, data))
    add("float_specials", "f32 and f64 NaN (with a payload), ±inf and -0.0, scalars and in arrays", gguf_build(vkv(
        gkv("f.nan32", V.FLOAT32, b"\x01\x00\xc0\x7f"), gkv("f.inf32", V.FLOAT32, float("inf")),
        gkv("f.negzero64", V.FLOAT64, -0.0), gkv("f.nan64", V.FLOAT64, b"\x00" * 6 + b"\xf8\xff"),
        gkv("f.arr", V.ARRAY, (V.FLOAT32, [float("-inf"), b"\x00\x00\x80\x7f", -0.0, 1e-45]))), infos, data))
    add("string_with_nul_and_controls", "string values and a key holding NUL, newline and DEL", gguf_build(vkv(
        gkv("s.nul", V.STRING, "a\0b"), gkv("s.ctl\n", V.STRING, "\x7f\t"), gkv("", V.STRING, "empty key")), infos, data))
    add("bool_value_2", "a bool stored as 2", gguf_build(vkv(gkv("b.two", V.BOOL, b"\x02")), infos, data))
    add("bool_array_value_255", "a bool array element stored as 255",
        gguf_build(vkv(gkv("b.arr", V.ARRAY, (V.BOOL, [True, b"\xff"]))), infos, data))
    add("string_value_bad_utf8", "a string value that is not UTF-8",
        gguf_build(vkv(gkv("s.bad", V.STRING, b"\xff\xfe")), infos, data))
    add("key_bad_utf8", "a key that is not UTF-8", gguf_build(vkv(gkv(b"k\xc3", V.UINT8, 1)), infos, data))
    add("duplicate_key", "general.name twice", gguf_build(vkv(gkv("general.name", V.STRING, "again")), infos, data))
    add("unknown_value_type", "a value of type 13", gguf_build(
        vkv(gs("x.bad") + struct.pack("<I", 13) + b"\0" * 8), infos, data))
    add("unknown_array_element_type", "an array of element type 20", gguf_build(
        vkv(gs("x.bad") + struct.pack("<IIQ", V.ARRAY, 20, 0)), infos, data))

    # alignment
    def aligned(al, al_kv=None):
        """base's tensors under general.alignment = al (the key encoded by al_kv, default u32)."""
        pad = lambda n: n + (al - n % al) % al  # noqa: E731
        o_h = pad(len(d_w))
        dd = d_w + b"\0" * (o_h - len(d_w)) + d_h
        dd += b"\0" * (pad(len(dd)) - len(dd))
        kv_al = al_kv if al_kv is not None else gkv("general.alignment", V.UINT32, al)
        return gguf_build(kvs + [kv_al], [gti("w", [4, 3], Q.F32, 0), gti("h", [6], Q.F16, o_h)], dd,
                          alignment=al if al_kv is None else 32)
    add("alignment_1", "general.alignment = 1: no padding anywhere", aligned(1))
    add("alignment_8", "general.alignment = 8", aligned(8))
    add("alignment_256", "general.alignment = 256", aligned(256))
    add("alignment_32_explicit", "general.alignment = 32 given explicitly", aligned(32))
    add("alignment_zero", "general.alignment = 0", aligned(32, gkv("general.alignment", V.UINT32, 0)))
    add("alignment_24", "general.alignment = 24, not a power of two", aligned(32, gkv("general.alignment", V.UINT32, 24)))
    add("alignment_as_u64", "general.alignment = 32 as a UINT64", aligned(32, gkv("general.alignment", V.UINT64, 32)))
    add("alignment_as_i32", "general.alignment = 32 as an INT32", aligned(32, gkv("general.alignment", V.INT32, 32)))
    add("alignment_as_string", "general.alignment = \"32\"", aligned(32, gkv("general.alignment", V.STRING, "32")))
    add("alignment_64_no_tensors", "general.alignment = 64 and no tensors",
        gguf_build(kvs + [gkv("general.alignment", V.UINT32, 64)], [], b"", alignment=64))

    # tensor counts, shapes, offsets
    add("no_tensors_no_keys", "a header alone: no key/values, no tensors", gguf_build([], [], b""))
    add("no_tensors_unpadded", "no tensors, and the file ends right after the metadata (no padding)",
        gguf_build(kvs, [], b"", alignment=1))
    add("tensors_gap", "general.alignment = 8 and 8 unused bytes between the two tensors",
        gguf_build(kvs + [gkv("general.alignment", V.UINT32, 8)], [gti("w", [4, 3], Q.F32, 0), gti("h", [6], Q.F16, 56)],
                   d_w + b"\0" * 8 + d_h + b"\0" * 4, alignment=8))
    add("tensors_reverse_order", "tensor infos in the reverse of their data order",
        gguf_build(kvs, [gti("h", [6], Q.F16, 64), gti("w", [4, 3], Q.F32, 0)], data))
    add("tensors_overlap", "two tensors sharing bytes", gguf_build(
        kvs, [gti("w", [4, 3], Q.F32, 0), gti("h", [6], Q.F16, 32)], data))
    add("tensors_same_offset", "two tensors at the same offset", gguf_build(
        kvs, [gti("w", [4, 3], Q.F32, 0), gti("h", [6], Q.F16, 0)], data))
    add("tensor_misaligned_offset", "a tensor offset not a multiple of the alignment", gguf_build(
        kvs, [gti("w", [4, 3], Q.F32, 0), gti("h", [6], Q.F16, 50)], data))
    add("tensor_0_dims", "a 0-dimensional F32 tensor (one element)", gguf_build(
        kvs, [gti("s", [], Q.F32, 0)], struct.pack("<f", 2.5) + b"\0" * 28))
    add("tensor_4_dims", "a 4-dimensional F32 tensor [1, 2, 1, 3]", gguf_build(
        kvs, [gti("w", [3, 1, 2, 1], Q.F32, 0)], d_w[:24] + b"\0" * 8))
    add("tensor_5_dims", "a 5-dimensional tensor", gguf_build(
        kvs, [gti("w", [3, 1, 2, 1, 1], Q.F32, 0)], d_w[:24] + b"\0" * 8))
    add("tensor_zero_dim", "a tensor with ne = [4, 0]", gguf_build(kvs, [gti("z", [4, 0], Q.F32, 0)], b""))
    add("tensor_name_empty", "a tensor named \"\"", gguf_build(
        kvs, [gti("", [4, 3], Q.F32, 0), gti("h", [6], Q.F16, 64)], data))
    add("tensor_name_100_bytes", "a 100-byte tensor name (ggml refuses 64 or more; gguf-py reads it)", gguf_build(
        kvs, [gti("n" * 100, [4, 3], Q.F32, 0), gti("h", [6], Q.F16, 64)], data))
    add("string_array_bad_utf8", "an array of strings with an element that is not UTF-8",
        gguf_build(vkv(gkv("s.arr", V.ARRAY, (V.STRING, ["ok", b"\xc3("]))), infos, data))
    add("alignment_2_31_no_tensors", "general.alignment = 2^31 and no tensors: the data section starts past the file",
        gguf_build(kvs + [gkv("general.alignment", V.UINT32, 2**31)], [], b"", alignment=1))
    add("alignment_2_31_tensor", "general.alignment = 2^31 and a tensor: its bytes lie past the file",
        gguf_build(kvs + [gkv("general.alignment", V.UINT32, 2**31)], [gti("s", [], Q.F32, 0)], b"\0" * 4,
                   alignment=1))
    add("tensor_row_not_whole_blocks", "a Q8_0 tensor whose row (48) is not a multiple of its block (32)",
        gguf_build(kvs, [gti("q", [48], Q.Q8_0, 0)], pattern(64, 9)))
    add("tensor_unknown_type", "ggml type 99", gguf_build(kvs, [gti("w", [4, 3], Q.F32, 0)[:-12] +
                                                              struct.pack("<IQ", 99, 0)], data))
    add("tensor_removed_type_4", "ggml type 4 (Q4_2, removed from ggml)", gguf_build(
        kvs, [gti("q", [32], 4, 0)], pattern(32, 10)))
    add("tensor_duplicate_name", "two tensors named w", gguf_build(
        kvs, [gti("w", [4, 3], Q.F32, 0), gti("w", [6], Q.F16, 64)], data))
    add("tensor_name_bad_utf8", "a tensor name that is not UTF-8", gguf_build(
        kvs, [gti(b"w\xc0", [4, 3], Q.F32, 0), gti("h", [6], Q.F16, 64)], data))
    add("tensor_past_end", "the last tensor's offset past the data", gguf_build(
        kvs, [gti("w", [4, 3], Q.F32, 0), gti("h", [6], Q.F16, 96)], data))
    add("trailing_bytes", "100 bytes after the data section", gguf_build(kvs, infos, data + pattern(100, 11)))

    # header fields and counts
    add("bad_magic", "magic GGUX", gguf_build(kvs, infos, data, magic=b"GGUX"))
    add("version_1", "version 1", gguf_build(kvs, infos, data, version=1))
    add("version_4", "version 4", gguf_build(kvs, infos, data, version=4))
    w = gguf.GGUFWriter(tmp, arch="llama", endianess=gguf.GGUFEndian.BIG)
    w.add_uint32("x.n", 7)
    w.add_tensor("w", w_f32)  # the writer byte-swaps it
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with open(tmp, "rb") as f:
        add("big_endian_writer", "GGUFWriter(endianess=BIG): a big-endian v3 file", f.read())
    add("kv_count_one_more", "kv_count one more than there are", gguf_build(kvs, infos, data, n_kv=len(kvs) + 1))
    add("kv_count_one_less", "kv_count one less than there are", gguf_build(kvs, infos, data, n_kv=len(kvs) - 1))
    add("kv_count_huge", "kv_count 2^62", gguf_build(kvs, infos, data, n_kv=2**62))
    add("tensor_count_one_more", "tensor_count one more than there are", gguf_build(kvs, infos, data, n_tensors=3))
    add("tensor_count_one_less", "tensor_count one less than there are (the second info is read as padding/data)",
        gguf_build(kvs, infos, data, n_tensors=1))
    add("tensor_count_huge", "tensor_count 2^63", gguf_build(kvs, infos, data, n_tensors=2**63))
    add("array_count_huge", "an array length of 2^60", gguf_build(
        vkv(gs("a.huge") + struct.pack("<IIQ", V.ARRAY, V.UINT32, 2**60)), infos, data))
    add("string_length_huge", "a string value length of 2^40", gguf_build(
        vkv(gs("s.huge") + struct.pack("<IQ", V.STRING, 2**40)), infos, data))

    # truncations of the real file
    kv_end = 24 + sum(len(k) for k in kvs)
    info_end = kv_end + sum(len(i) for i in infos)
    for name, n, what in [("truncated_empty", 0, "an empty file"), ("truncated_in_magic", 3, "3 bytes"),
                          ("truncated_in_version", 6, "cut in the version"),
                          ("truncated_in_counts", 20, "cut in the key/value count"),
                          ("truncated_in_metadata", kv_end - 5, "cut in the last key/value"),
                          ("truncated_in_tensor_info", info_end - 3, "cut in the last tensor info"),
                          ("truncated_in_padding", info_end + 1, "cut in the padding before the data"),
                          ("truncated_in_data", len(base) - len(data) + 64 + len(d_h) - 1, "the last tensor's last byte missing"),
                          ("truncated_in_last_padding", len(base) - len(data) + 64 + len(d_h),
                           "cut in the padding after the last tensor (every tensor whole)")]:
        add(name, what, base[:n])
    return out


def describe_parts(parts, i, vtype):
    """(description, next index) of one value from a ReaderField's parts, as the reference read them."""
    vtype = V(int(vtype))
    if vtype == V.STRING:
        return {"value": bytes(parts[i + 1]).decode("utf-8")}, i + 2
    if vtype == V.ARRAY:
        etype = V(int(parts[i][0]))
        count = int(parts[i + 1][0])
        i += 2
        elems, raw = [], b""
        for _ in range(count):
            start = i
            d, i = describe_parts(parts, i, etype)
            elems.append(d)
            raw += b"".join(bytes(p.tobytes()) for p in parts[start:i])
        d = {"count": count, "elem": etype.name}
        if count <= SHORT_ARRAY or etype == V.ARRAY:
            d["values"] = elems
        else:
            d["sha256"] = sha256(raw)
        return d, i
    arr = parts[i]
    if vtype in (V.FLOAT32, V.FLOAT64):
        return {"bits": arr.tobytes()[::-1].hex()}, i + 1
    if vtype == V.BOOL:
        return {"value": bool(arr[0])}, i + 1
    return {"value": int(arr[0])}, i + 1


# Types galvani dequantizes (io/gguf.hpp); their dequantized values are part of what is read.
GALVANI_DEQUANT = {Q.F32, Q.F16, Q.BF16, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.Q8_0, Q.Q2_K, Q.Q3_K, Q.Q4_K, Q.Q5_K, Q.Q6_K}


def gguf_verdict(path):
    try:
        r = gguf.GGUFReader(path)
        metadata = []
        for key, f in r.fields.items():
            if key.startswith("GGUF."):
                continue
            f.contents()  # gguf-py's own decoding of the value (strings are decoded lazily)
            vtype = V(int(f.types[0]))
            d, end = describe_parts(f.parts, 3, vtype)
            assert end == len(f.parts)
            metadata.append({"key": key, "type": vtype.name, **d})
        tensors = []
        for t in r.tensors:
            raw = bytes(np.asarray(t.data).tobytes())
            assert len(raw) == t.n_bytes
            ne = [int(x) for x in t.shape]
            d = {"name": t.name, "type": t.tensor_type.name, "ne": ne, "shape": ne[::-1],
                 "offset": int(t.data_offset) - int(r.data_offset), "nbytes": int(t.n_bytes), "sha256": sha256(raw)}
            if t.tensor_type in GALVANI_DEQUANT:
                vals = gguf.quants.dequantize(np.frombuffer(raw, np.uint8), t.tensor_type).astype(np.float32)
                d["dequant_sha256"] = sha256(vals.tobytes())
            tensors.append(d)
        return {"accepted": True, "version": int(r.fields["GGUF.version"].parts[0][0]), "alignment": int(r.alignment),
                "data_start": int(r.data_offset), "metadata": metadata, "tensors": tensors}
    except Exception as e:  # noqa: BLE001 — any refusal is the verdict
        return {"accepted": False, "error": f"{type(e).__name__}: {e}"[:300]}


# ====================================================================================== main

def write_corpus(folder, variants, verdict_of, reference):
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    names = [n for n, _, _ in variants]
    assert len(set(names)) == len(names), "variant names must be unique"
    files = OrderedDict()
    for name, what, blob in variants:
        path = os.path.join(folder, name)
        with open(path, "wb") as f:
            f.write(blob)
        files[name] = {"what": what, **verdict_of(path, blob)}
    doc = {"generator": "tools/gen_differential_safetensors_gguf.py", "reference": reference, "files": files}
    with open(os.path.join(folder, "verdicts.json"), "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1, ensure_ascii=False)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(folder, n)) for n in os.listdir(folder))
    accepted = sum(v["accepted"] for v in files.values())
    print(f"{folder}: {len(files)} files ({accepted} accepted), {total} bytes")


def main():
    np.seterr(all="ignore")
    write_corpus(os.path.join(OUT, "safetensors"), st_variants(), st_verdict, f"safetensors {safetensors.__version__}")
    tmpdir = os.path.join(OUT, ".tmp")
    os.makedirs(tmpdir, exist_ok=True)
    try:
        g = gguf_variants(tmpdir)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    from importlib.metadata import version
    write_corpus(os.path.join(OUT, "gguf"), g, lambda path, blob: gguf_verdict(path), f"gguf {version('gguf')}")


if __name__ == "__main__":
    sys.exit(main())
