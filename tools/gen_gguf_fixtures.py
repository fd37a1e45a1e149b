#!/usr/bin/env python3
"""GGUF fixtures for galvani's reader (include/galvani/io/gguf.hpp), written and checked by
the reference: the `gguf` Python package (gguf-py, llama.cpp's own writer and reader).

    ../refenv/bin/python tools/gen_gguf_fixtures.py      # (re)write tests/fixtures/gguf/

Needs numpy and gguf (`pip install gguf`, 0.19.0 here). Deterministic (seeded); about
160 KB in all.

What it writes, under tests/fixtures/gguf/:
  all_types.gguf     gguf.GGUFWriter (GGUF v3): metadata of every value type (each scalar
                     type, strings with non-ASCII text, arrays of every scalar type, of
                     strings, of arrays), and tensors of every type galvani dequantizes —
                     F32 (a 3-d tensor), F16 (with zeros, subnormals, ±inf, NaNs), BF16
                     (random bits), Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 both quantized by
                     gguf.quants.quantize and as random blocks, Q2_K Q3_K Q4_K Q5_K Q6_K as
                     random blocks (gguf.quants has no quantizer for them; every f16 scale
                     is finite), a 4-d Q8_0 tensor — and an IQ4_NL tensor galvani does not
                     dequantize.
  all_types_v2.gguf  the same bytes with the version field set to 2: GGUFWriter writes
                     only v3, and v2 differs from v3 in nothing but that field (v3 added
                     big-endian files).
  align1.gguf        GGUFWriter with general.alignment = 1: tensors at odd offsets, so
                     blocks are read unaligned.
  edge_v2.gguf       hand-built (GGUFWriter cannot write these), v2: an empty string, an
                     empty array, an array of arrays of different element types, a 0-d F32
                     tensor, tensors stored in the data section in the reverse of their
                     info order, and general.alignment = 64. gguf-py reads it.
  expected.json      per valid file: version, alignment, data_start, every metadata key
                     (type, element type, value) and every tensor (type, shape in PyTorch
                     order, ne, offset, nbytes, FNV-1a-64 of the f32 bytes that
                     gguf.quants.dequantize returns for it, the first values' bits);
                     per malformed file: a phrase its error must contain, the tensor or
                     key it must name, and what gguf-py's GGUFReader made of it.
  expected_values.f32  those dequantized values, all tensors back to back (little-endian
                     f32; each tensor's "values_at" is its first element's index).
  malformed/         bad files, one defect each, hand-built from base.gguf (valid: an F32
                     and a Q8_0 tensor), which sits beside them.

The expected values come from reading each written file back with gguf.GGUFReader and
passing each tensor's bytes to gguf.quants.dequantize, so they are what the reference makes
of the file on disk, not of the arrays we meant to write.
"""
import json
import os
import shutil
import struct
import sys

import numpy as np

import gguf
from gguf import GGMLQuantizationType as Q
from gguf import GGUFValueType as V

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "gguf")


from gen_checkpoint_fixtures import fnv1a64  # noqa: E402  (tools/ is on sys.path: the checksum both record)


# Byte offsets of the f16 scale/min fields inside one block (ggml-common.h), so random
# blocks get finite scales.
F16_FIELDS = {
    Q.Q4_0: [0], Q.Q4_1: [0, 2], Q.Q5_0: [0], Q.Q5_1: [0, 2], Q.Q8_0: [0],
    Q.Q2_K: [80, 82], Q.Q3_K: [108], Q.Q4_K: [0, 2], Q.Q5_K: [0, 2], Q.Q6_K: [208],
    Q.IQ4_NL: [0],
}


def random_blocks(rng, qtype, rows, cols):
    """Random bytes for a (rows, cols) tensor of qtype, with finite f16 scales of varied size
    and sign (subnormal to ~10)."""
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    n_blocks = rows * cols // block
    data = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)
    for off in F16_FIELDS[qtype]:
        mag = 10.0 ** rng.uniform(-6, 1, size=n_blocks)
        sign = rng.choice([-1.0, 1.0], size=n_blocks)
        data[:, off:off + 2] = (mag * sign).astype(np.float16).view(np.uint8).reshape(n_blocks, 2)
    return data.reshape(rows, cols // block * size)


# ------------------------------------------------------------------ metadata

def metadata_items():
    """(key, value, GGUFValueType, element type or None), in file order after general.architecture."""
    return [
        ("test.u8", 255, V.UINT8, None),
        ("test.i8", -128, V.INT8, None),
        ("test.u16", 65535, V.UINT16, None),
        ("test.i16", -32768, V.INT16, None),
        ("test.u32", 4294967295, V.UINT32, None),
        ("test.i32", -2147483648, V.INT32, None),
        ("test.f32", 0.1, V.FLOAT32, None),
        ("test.bool_true", True, V.BOOL, None),
        ("test.bool_false", False, V.BOOL, None),
        ("test.string", "Frankenstein — “the modern Prometheus” ✓ 🤗", V.STRING, None),
        ("test.u64", 2**64 - 1, V.UINT64, None),
        ("test.i64", -2**63, V.INT64, None),
        ("test.f64", 1.0 / 3.0, V.FLOAT64, None),
        ("test.array.u8", [0, 1, 255], V.ARRAY, V.UINT8),
        ("test.array.i8", [-128, 0, 127], V.ARRAY, V.INT8),
        ("test.array.u16", [0, 65535], V.ARRAY, V.UINT16),
        ("test.array.i16", [-32768, 32767], V.ARRAY, V.INT16),
        ("test.array.u32", [0, 4294967295], V.ARRAY, V.UINT32),
        ("test.array.i32", [-2147483648, 2147483647, 7], V.ARRAY, V.INT32),
        ("test.array.f32", [0.5, -1.25, 3.4028234663852886e38, 1e-45], V.ARRAY, V.FLOAT32),
        ("test.array.bool", [True, False, True], V.ARRAY, V.BOOL),
        ("test.array.u64", [0, 2**64 - 1], V.ARRAY, V.UINT64),
        ("test.array.i64", [-2**63, 2**63 - 1], V.ARRAY, V.INT64),
        ("test.array.f64", [1e-300, -2.5, 1e300], V.ARRAY, V.FLOAT64),
        ("test.array.nested_i32", [[1, 2], [3]], V.ARRAY, V.ARRAY),
        ("test.array.nested_strings", [["a", "bb"], ["ccc"]], V.ARRAY, V.ARRAY),
        # The keys a tokenizer conversion reads, with the types llama.cpp writes.
        ("tokenizer.ggml.model", "gpt2", V.STRING, None),
        ("tokenizer.ggml.tokens", ["<|endoftext|>", "Ġthe", "", "ü", "<0x0A>", "日本"], V.ARRAY, V.STRING),
        ("tokenizer.ggml.scores", [0.0, -1.5, -2.25, -1e10, 3.0, 0.1], V.ARRAY, V.FLOAT32),
        ("tokenizer.ggml.token_type", [3, 1, 1, 1, 6, 1], V.ARRAY, V.INT32),
        ("tokenizer.ggml.merges", ["Ġ t", "Ġt he"], V.ARRAY, V.STRING),
        ("tokenizer.ggml.bos_token_id", 0, V.UINT32, None),
    ]


def as_f32(x):
    return float(np.float32(x))


def expected_value(value, vtype, sub_type):
    """The value as galvani's gguf_to_json gives it, with f32 values rounded to f32."""
    if vtype == V.FLOAT32:
        return as_f32(value)
    if vtype == V.ARRAY:
        if sub_type == V.FLOAT32:
            return [as_f32(v) for v in value]
        return value
    return value


def describe_value(value, vtype, sub_type):
    d = {"type": vtype.name, "value": expected_value(value, vtype, sub_type)}
    if vtype == V.ARRAY:
        d["element_type"] = sub_type.name
    return d


# ------------------------------------------------------------------ tensors

def valid_tensors(rng):
    """[(name, array, raw_dtype or None)] for GGUFWriter.add_tensor (shapes in numpy order)."""
    out = []
    out.append(("f32", rng.standard_normal((2, 3, 4)).astype(np.float32), None))
    specials = np.array([0x0000, 0x8000, 0x0001, 0x8001, 0x03ff, 0x0400, 0x7bff, 0xfbff,
                         0x7c00, 0xfc00, 0x7e00, 0x7c01, 0xfe01, 0x3c00, 0xbc00, 0x3555], dtype=np.uint16)
    f16 = np.concatenate([specials, rng.integers(0, 65536, size=48, dtype=np.uint16)])
    out.append(("f16", f16.view(np.float16).reshape(4, 16), None))
    bf16 = rng.integers(0, 65536, size=64, dtype=np.uint16)
    bf16[:4] = [0x7f80, 0xff80, 0x7fc1, 0x0001]  # +inf, -inf, a NaN with payload, a subnormal
    out.append(("bf16", bf16.view(np.uint8).reshape(2, 64), Q.BF16))
    for qt in (Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.Q8_0):
        x = rng.standard_normal((4, 64)).astype(np.float32)
        x[0, :32] = 0.0  # an all-zero block (d = 0)
        out.append((qt.name.lower() + ".quantized", gguf.quants.quantize(x, qt), qt))
        out.append((qt.name.lower() + ".random", random_blocks(rng, qt, 3, 64), qt))
    for qt in (Q.Q2_K, Q.Q3_K, Q.Q4_K, Q.Q5_K, Q.Q6_K):
        out.append((qt.name.lower() + ".random", random_blocks(rng, qt, 3, 512), qt))
    # 4-d: numpy shape (2, 1, 3, 32) -> ggml ne [32, 3, 1, 2].
    x4 = rng.standard_normal((2, 1, 3, 32)).astype(np.float32)
    out.append(("q8_0.4d", gguf.quants.quantize(x4, Q.Q8_0), Q.Q8_0))
    out.append(("iq4_nl.unsupported", random_blocks(rng, Q.IQ4_NL, 1, 32), Q.IQ4_NL))
    return out


def write_with_gguf_writer(path, tensors, alignment=None):
    w = gguf.GGUFWriter(path, arch="llama")
    if alignment is not None:
        w.add_custom_alignment(alignment)
    for key, value, vtype, sub in metadata_items():
        w.add_key_value(key, value, vtype, sub_type=sub)
    for name, arr, raw in tensors:
        w.add_tensor(name, arr, raw_dtype=raw)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def small_tensors(rng):
    """A few tensors of odd byte sizes, for align1.gguf."""
    return [
        ("f32.odd", rng.standard_normal((1, 3)).astype(np.float32), None),
        ("q4_0", gguf.quants.quantize(rng.standard_normal((1, 32)).astype(np.float32), Q.Q4_0), Q.Q4_0),
        ("q5_1", gguf.quants.quantize(rng.standard_normal((1, 32)).astype(np.float32), Q.Q5_1), Q.Q5_1),
        ("q3_k", random_blocks(rng, Q.Q3_K, 1, 256), Q.Q3_K),
        ("q6_k", random_blocks(rng, Q.Q6_K, 1, 256), Q.Q6_K),
        ("f16.odd", rng.standard_normal((1, 3)).astype(np.float16), None),
        ("q2_k", random_blocks(rng, Q.Q2_K, 1, 256), Q.Q2_K),
    ]


# ------------------------------------------------------------------ hand-built files

def s(text) -> bytes:
    b = text.encode("utf-8") if isinstance(text, str) else text
    return struct.pack("<Q", len(b)) + b


SCALAR_FMT = {V.UINT8: "<B", V.INT8: "<b", V.UINT16: "<H", V.INT16: "<h", V.UINT32: "<I",
              V.INT32: "<i", V.FLOAT32: "<f", V.BOOL: "<B", V.UINT64: "<Q", V.INT64: "<q",
              V.FLOAT64: "<d"}


def val(vtype, value, sub=None) -> bytes:
    """A value's bytes, without its type tag."""
    if vtype == V.STRING:
        return s(value)
    if vtype == V.ARRAY:
        if sub == V.ARRAY:  # value: [(elem type, [elems]), ...]
            body = b"".join(struct.pack("<I", et) + struct.pack("<Q", len(el)) + b"".join(val(et, e) for e in el)
                            for et, el in value)
        else:
            body = b"".join(val(sub, v) for v in value)
        return struct.pack("<I", sub) + struct.pack("<Q", len(value)) + body
    return struct.pack(SCALAR_FMT[vtype], value)


def kv(key, vtype, value, sub=None) -> bytes:
    return s(key) + struct.pack("<I", vtype) + val(vtype, value, sub)


def tinfo(name, ne, ggml_type, offset) -> bytes:
    """A tensor info; ne in ggml order (ne[0] = row length)."""
    return s(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", d) for d in ne) + \
        struct.pack("<I", ggml_type) + struct.pack("<Q", offset)


def build(kvs, infos, data, version=3, alignment=32, n_tensors=None, n_kv=None, magic=b"GGUF"):
    head = magic + struct.pack("<I", version)
    head += struct.pack("<Q", len(infos) if n_tensors is None else n_tensors)
    head += struct.pack("<Q", len(kvs) if n_kv is None else n_kv)
    head += b"".join(kvs) + b"".join(infos)
    head += b"\0" * ((alignment - len(head) % alignment) % alignment)
    return head + data


def base_parts():
    """The valid file the malformed ones start from: two tensors, 'a' F32 (2, 8) at 0 and
    'b' Q8_0 (1, 32) at 64."""
    a = np.arange(16, dtype=np.float32).tobytes()                      # 64 bytes
    b = gguf.quants.quantize(np.linspace(-1, 1, 32, dtype=np.float32).reshape(1, 32), Q.Q8_0).tobytes()  # 34
    kvs = [kv("general.architecture", V.STRING, "llama"), kv("general.name", V.STRING, "base")]
    infos = [tinfo("a", [8, 2], Q.F32, 0), tinfo("b", [32, 1], Q.Q8_0, 64)]
    data = a + b + b"\0" * 30
    return kvs, infos, data


def edge_v2():
    rng = np.random.default_rng(7)
    x = rng.standard_normal(32).astype(np.float32)
    q = gguf.quants.quantize(x.reshape(1, 32), Q.Q4_1).tobytes()        # 20 bytes
    scalar = struct.pack("<f", 2.5)
    kvs = [
        kv("general.architecture", V.STRING, "llama"),
        kv("general.alignment", V.UINT32, 64),
        kv("edge.empty_string", V.STRING, ""),
        kv("edge.empty_array", V.ARRAY, [], V.INT32),
        kv("edge.mixed_nested", V.ARRAY, [(V.UINT8, [1, 2]), (V.STRING, ["x"]), (V.INT32, [])], V.ARRAY),
    ]
    # 'second' is listed first but stored last; 'scalar' has n_dims 0.
    infos = [tinfo("second", [32], Q.Q4_1, 128), tinfo("scalar", [], Q.F32, 0), tinfo("first", [32], Q.Q4_1, 64)]
    data = scalar + b"\0" * 60 + q + b"\0" * 44 + q
    return build(kvs, infos, data, version=2, alignment=64)


def malformed_cases():
    """{file name: (bytes, phrase, tensor or None, key or None)}"""
    kvs, infos, data = base_parts()
    good = build(kvs, infos, data)
    cases = {}

    def add(name, blob, phrase, tensor=None, key=None):
        cases[name] = (blob, phrase, tensor, key)

    add("empty.gguf", b"", "too short for the magic")
    add("bad_magic.gguf", build(kvs, infos, data, magic=b"GGML"), "bad magic")
    add("version_1.gguf", build(kvs, infos, data, version=1), "GGUF version 1 is not supported")
    add("version_4.gguf", build(kvs, infos, data, version=4), "unsupported GGUF version 4")
    add("big_endian.gguf", good[:4] + struct.pack(">I", 3) + good[8:], "big-endian")
    add("short_header.gguf", good[:12], "the tensor count at byte offset 8 needs 8 bytes")
    # Cut inside the value of the second key (the string "base" loses its last 2 bytes), and
    # inside the second tensor info (its u64 offset loses 6 of its 8 bytes).
    kv1_value = 24 + len(kvs[0]) + len(kvs[1]) - 4
    add("truncated_in_metadata.gguf", good[:kv1_value + 2], "string length 4 at byte offset", key="general.name")
    infos_end = 24 + len(kvs[0]) + len(kvs[1]) + len(infos[0]) + len(infos[1])
    add("truncated_in_tensor_info.gguf", good[:infos_end - 6], "needs 8 bytes, but the file ends 2 bytes later",
        tensor="b")
    data_start = len(good) - len(data)
    add("truncated_data.gguf", good[:data_start + 80], "run past the end of the file", tensor="b")
    add("huge_tensor_count.gguf", build(kvs, infos, data, n_tensors=2**63), "tensor count 9223372036854775808")
    add("huge_kv_count.gguf", build(kvs, infos, data, n_kv=2**62), "metadata key/value count 4611686018427387904")
    add("huge_array_length.gguf",
        build(kvs + [s("x.array") + struct.pack("<IIQ", V.ARRAY, V.INT32, 2**62)], infos, data),
        "array length 4611686018427387904", key="x.array")
    add("key_length_past_eof.gguf", build([struct.pack("<Q", 2**40) + b"general"], [], b""),
        "string length 1099511627776")
    add("string_value_past_eof.gguf",
        build(kvs + [s("x.string") + struct.pack("<IQ", V.STRING, 1000) + b"abc"], infos, data)[:200],
        "string length 1000", key="x.string")
    add("tensor_name_past_eof.gguf",
        build(kvs, [struct.pack("<Q", 5000) + b"a"], b"\0" * 64), "string length 5000")
    add("tensor_out_of_range.gguf", build(kvs, [infos[0], tinfo("b", [32, 1], Q.Q8_0, 4096)], data),
        "run past the end of the file", tensor="b")
    add("misaligned_offset.gguf", build(kvs, [infos[0], tinfo("b", [32, 1], Q.Q8_0, 48)], data),
        "not a multiple of the alignment 32", tensor="b")
    add("overlapping_tensors.gguf", build(kvs, [infos[0], tinfo("b", [32, 1], Q.Q8_0, 32)], data),
        "overlaps tensor 'a'", tensor="b")
    add("n_dims_5.gguf", build(kvs, [tinfo("a", [8, 2, 1, 1, 1], Q.F32, 0), infos[1]], data),
        "n_dims 5 exceeds ggml's limit of 4", tensor="a")
    add("zero_dim.gguf", build(kvs, [tinfo("a", [8, 0], Q.F32, 0), infos[1]], data), "ne[1] = 0", tensor="a")
    add("dims_overflow.gguf", build(kvs, [tinfo("a", [2**32, 2**32], Q.F32, 0), infos[1]], data),
        "element count overflows int64", tensor="a")
    add("huge_tensor.gguf", build(kvs, [tinfo("a", [2**31, 2**30], Q.F32, 0), infos[1]], data),
        "run past the end of the file", tensor="a")
    add("bytes_overflow.gguf", build(kvs, [tinfo("a", [2**32, 2**30], Q.F32, 0), infos[1]], data),
        "overflows 64 bits", tensor="a")
    add("unknown_ggml_type.gguf", build(kvs, [infos[0], tinfo("b", [32, 1], 99, 64)], data),
        "unknown ggml type id 99", tensor="b")
    add("removed_ggml_type.gguf", build(kvs, [infos[0], tinfo("b", [32, 1], 4, 64)], data),
        "unknown ggml type id 4", tensor="b")
    add("unknown_value_type.gguf", build(kvs + [s("x.bad") + struct.pack("<I", 13) + b"\0" * 8], infos, data),
        "unknown value type 13", key="x.bad")
    add("unknown_array_type.gguf",
        build(kvs + [s("x.bad") + struct.pack("<IIQ", V.ARRAY, 20, 1) + b"\0" * 8], infos, data),
        "unknown array element type 20", key="x.bad")
    add("duplicate_key.gguf", build(kvs + [kv("general.name", V.STRING, "again")], infos, data),
        "duplicate metadata key 'general.name'")
    add("duplicate_tensor.gguf", build(kvs, [infos[0], tinfo("a", [32, 1], Q.Q8_0, 64)], data),
        "duplicate tensor name 'a'")
    add("bad_row_size.gguf", build(kvs, [infos[0], tinfo("b", [48, 1], Q.Q8_0, 64)], data),
        "is not a multiple of Q8_0's block size 32", tensor="b")
    add("alignment_not_pow2.gguf", build(kvs + [kv("general.alignment", V.UINT32, 48)], infos, data),
        "not a non-zero power of two", key="general.alignment")
    add("alignment_zero.gguf", build(kvs + [kv("general.alignment", V.UINT32, 0)], infos, data),
        "not a non-zero power of two", key="general.alignment")
    add("alignment_wrong_type.gguf", build(kvs + [kv("general.alignment", V.UINT64, 32)], infos, data),
        "GGUF requires UINT32", key="general.alignment")
    add("bad_utf8_key.gguf", build(kvs + [kv(b"x.caf\xc3", V.UINT8, 1)], infos, data), "not valid UTF-8")
    add("bad_utf8_string.gguf", build(kvs + [kv("x.text", V.STRING, b"\xff\xfe")], infos, data),
        "not valid UTF-8", key="x.text")
    add("bad_utf8_tensor_name.gguf", build(kvs, [infos[0], tinfo(b"b\xc0\xaf", [32, 1], Q.Q8_0, 64)], data),
        "not valid UTF-8")
    add("bool_not_0_or_1.gguf", build(kvs + [s("x.flag") + struct.pack("<IB", V.BOOL, 2)], infos, data),
        "not 0 or 1", key="x.flag")
    deep = struct.pack("<I", V.INT32) + struct.pack("<Q", 0)
    for _ in range(10):
        deep = struct.pack("<I", V.ARRAY) + struct.pack("<Q", 1) + deep
    add("arrays_too_deep.gguf", build(kvs + [s("x.deep") + struct.pack("<I", V.ARRAY) + deep], infos, data),
        "nested deeper than", key="x.deep")
    return good, cases


_VERDICT = """
import sys, numpy as np, gguf
r = gguf.GGUFReader(sys.argv[1])
for f in r.fields.values():
    f.contents()
for t in r.tensors:
    np.asarray(t.data).tobytes()
"""


def gguf_py_verdict(path):
    """What gguf-py's reader makes of a file: 'accepts', 'rejects: <error>', or 'gives up: …'.
    In a child process with 1 GB of address space and 20 s: on a huge count gguf-py loops,
    appending empty reads past the end of the file, until memory runs out."""
    import resource
    import subprocess

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    try:
        p = subprocess.run([sys.executable, "-c", _VERDICT, path], capture_output=True, text=True,
                           timeout=20, preexec_fn=limit)
    except subprocess.TimeoutExpired:
        return "gives up: still reading after 20 s"
    if p.returncode == 0:
        return "accepts"
    last = (p.stderr.strip().splitlines() or ["exit %d" % p.returncode])[-1]
    if "MemoryError" in last or "Unable to allocate" in last:
        return "gives up: runs out of memory"
    return "rejects: " + last[:140]


# ------------------------------------------------------------------ expected values

def describe_file(path, values, metadata):
    """Reads `path` back with gguf.GGUFReader; appends every dequantized tensor to `values`."""
    r = gguf.GGUFReader(path)
    version = int(r.fields["GGUF.version"].parts[0][0])
    tensors = []
    for t in r.tensors:
        entry = {
            "name": t.name,
            "type": t.tensor_type.name,
            "type_id": int(t.tensor_type),
            "ne": [int(d) for d in t.shape],
            "shape": [int(d) for d in reversed(t.shape.tolist())],
            "offset": int(t.data_offset - r.data_offset),
            "nbytes": int(t.n_bytes),
        }
        if t.tensor_type == Q.IQ4_NL:
            entry["dequantize"] = False  # galvani refuses it; no expected values
        else:
            f = np.ascontiguousarray(gguf.quants.dequantize(t.data, t.tensor_type), dtype=np.float32)
            assert list(f.shape) == entry["shape"] or (entry["shape"] == [] and f.size == 1), (t.name, f.shape)
            b = f.tobytes()
            entry["dequantize"] = True
            entry["values_at"] = sum(len(v) for v in values) // 4
            entry["f32_fnv1a64"] = fnv1a64(b)
            entry["first_bits"] = ["%08x" % u for u in f.reshape(-1).view(np.uint32)[:8]]
            values.append(b)
        tensors.append(entry)
    return {"version": version, "alignment": int(r.alignment), "data_start": int(r.data_offset),
            "file_size": os.path.getsize(path), "metadata": metadata, "tensors": tensors}


def main():
    shutil.rmtree(OUT, ignore_errors=True)  # no stale fixture survives a rename
    os.makedirs(os.path.join(OUT, "malformed"), exist_ok=True)
    rng = np.random.default_rng(20240614)
    expected = {"gguf_py_version": getattr(gguf, "__version__", None) or _gguf_version(), "valid": {}, "malformed": {}}
    values = []

    meta = {"general.architecture": {"type": "STRING", "value": "llama"}}
    meta.update({k: describe_value(v, t, sub) for k, v, t, sub in metadata_items()})

    p = os.path.join(OUT, "all_types.gguf")
    write_with_gguf_writer(p, valid_tensors(rng))
    expected["valid"]["all_types.gguf"] = describe_file(p, values, meta)

    with open(p, "rb") as f:
        blob = bytearray(f.read())
    assert struct.unpack_from("<I", blob, 4)[0] == 3
    struct.pack_into("<I", blob, 4, 2)
    p2 = os.path.join(OUT, "all_types_v2.gguf")
    with open(p2, "wb") as f:
        f.write(blob)
    expected["valid"]["all_types_v2.gguf"] = describe_file(p2, values, meta)

    p = os.path.join(OUT, "align1.gguf")
    write_with_gguf_writer(p, small_tensors(rng), alignment=1)
    meta1 = {"general.architecture": meta["general.architecture"],
             "general.alignment": {"type": "UINT32", "value": 1}}
    meta1.update({k: v for k, v in meta.items() if k != "general.architecture"})
    expected["valid"]["align1.gguf"] = describe_file(p, values, meta1)

    p = os.path.join(OUT, "edge_v2.gguf")
    with open(p, "wb") as f:
        f.write(edge_v2())
    expected["valid"]["edge_v2.gguf"] = describe_file(p, values, {
        "general.architecture": {"type": "STRING", "value": "llama"},
        "general.alignment": {"type": "UINT32", "value": 64},
        "edge.empty_string": {"type": "STRING", "value": ""},
        "edge.empty_array": {"type": "ARRAY", "element_type": "INT32", "value": []},
        "edge.mixed_nested": {"type": "ARRAY", "element_type": "ARRAY", "value": [[1, 2], ["x"], []]},
    })

    good, cases = malformed_cases()
    p = os.path.join(OUT, "malformed", "base.gguf")  # the valid starting point (not malformed)
    with open(p, "wb") as f:
        f.write(good)
    assert gguf_py_verdict(p) == "accepts"
    for name, (blob, phrase, tensor, key) in sorted(cases.items()):
        p = os.path.join(OUT, "malformed", name)
        with open(p, "wb") as f:
            f.write(blob)
        expected["malformed"][name] = {"error": phrase, "tensor": tensor, "key": key, "gguf_py": gguf_py_verdict(p)}

    with open(os.path.join(OUT, "expected_values.f32"), "wb") as f:
        f.write(b"".join(values))
    with open(os.path.join(OUT, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, indent=1, ensure_ascii=False)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(d, n)) for d, _, ns in os.walk(OUT) for n in ns)
    print("wrote %s: %d valid files, %d malformed, %d bytes in all" %
          (os.path.relpath(OUT, ROOT), len(expected["valid"]), len(cases), total))
    for name, e in expected["malformed"].items():
        if e["gguf_py"] == "accepts":
            print("  gguf-py accepts malformed/%s" % name)


def _gguf_version():
    try:
        from importlib.metadata import version
        return version("gguf")
    except Exception:  # noqa: BLE001
        return None


if __name__ == "__main__":
    sys.exit(main())
