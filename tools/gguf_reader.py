"""A small, dependency-light GGUF reader with dequantization (numpy only).

GGUF is llama.cpp's single-file checkpoint format. This module reads the header
(key/value metadata and tensor table) and dequantizes tensors stored in ggml's block
formats to float32 numpy arrays. It is written from the format description in ggml
(``ggml/include/gguf.h``, ``ggml/src/ggml-quants.c``) and checked against the ``gguf``
package's own dequantizer by ``tools/check_smollm2.py``.

Block formats supported: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K.

Usage:
    r = GGUFReader("model.gguf")
    r.metadata["llama.block_count"]        # -> 30
    t = r.tensors["blk.0.attn_q.weight"]   # TensorInfo(name, shape, ggml_type, offset)
    w = r.dequantize("blk.0.attn_q.weight")  # np.float32, shape (rows, cols) as in PyTorch

Shapes: GGUF stores dims fastest-varying first (ggml ``ne[0]`` = columns); this reader
returns numpy shapes in the usual row-major order, i.e. reversed, so a Linear weight
comes back as (out_features, in_features), exactly as in a Hugging Face checkpoint.
"""
from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass

import numpy as np

GGUF_MAGIC = b"GGUF"

# gguf metadata value types
_T_UINT8, _T_INT8, _T_UINT16, _T_INT16, _T_UINT32, _T_INT32, _T_FLOAT32, _T_BOOL, \
    _T_STRING, _T_ARRAY, _T_UINT64, _T_INT64, _T_FLOAT64 = range(13)
_SCALAR = {
    _T_UINT8: "<B", _T_INT8: "<b", _T_UINT16: "<H", _T_INT16: "<h", _T_UINT32: "<I",
    _T_INT32: "<i", _T_FLOAT32: "<f", _T_BOOL: "<?", _T_UINT64: "<Q", _T_INT64: "<q",
    _T_FLOAT64: "<d",
}

# ggml tensor types: id -> (name, elements per block, bytes per block)
GGML_TYPES = {
    0: ("F32", 1, 4),
    1: ("F16", 1, 2),
    2: ("Q4_0", 32, 2 + 16),
    3: ("Q4_1", 32, 2 + 2 + 16),
    6: ("Q5_0", 32, 2 + 4 + 16),
    7: ("Q5_1", 32, 2 + 2 + 4 + 16),
    8: ("Q8_0", 32, 2 + 32),
    12: ("Q4_K", 256, 2 + 2 + 12 + 128),
    13: ("Q5_K", 256, 2 + 2 + 12 + 32 + 128),
    14: ("Q6_K", 256, 128 + 64 + 16 + 2),
    30: ("BF16", 1, 2),
}


@dataclass
class TensorInfo:
    name: str
    shape: tuple        # numpy order (reversed ggml ne)
    ggml_type: int
    offset: int         # absolute byte offset in the file

    @property
    def type_name(self) -> str:
        return GGML_TYPES.get(self.ggml_type, (f"type{self.ggml_type}",))[0]

    @property
    def n_elements(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def n_bytes(self) -> int:
        _, blk, size = GGML_TYPES[self.ggml_type]
        return self.n_elements // blk * size


class GGUFReader:
    def __init__(self, path: str):
        self.path = path
        self._f = open(path, "rb")
        self._mm = mmap.mmap(self._f.fileno(), 0, access=mmap.ACCESS_READ)
        self._pos = 0
        if self._mm[:4] != GGUF_MAGIC:
            raise ValueError(f"{path}: not a GGUF file (magic {self._mm[:4]!r})")
        self._pos = 4
        self.version = self._u32()
        if self.version not in (2, 3):
            raise ValueError(f"{path}: unsupported GGUF version {self.version}")
        n_tensors = self._u64()
        n_kv = self._u64()
        self.metadata: dict = {}
        for _ in range(n_kv):
            key = self._str()
            vtype = self._u32()
            self.metadata[key] = self._value(vtype)
        self.kv_end = self._pos          # header bytes [24, kv_end) are the key/value pairs
        self.n_kv = n_kv
        infos = []
        for _ in range(n_tensors):
            name = self._str()
            n_dims = self._u32()
            ne = [self._u64() for _ in range(n_dims)]
            ttype = self._u32()
            off = self._u64()
            infos.append((name, tuple(reversed(ne)), ttype, off))
        align = int(self.metadata.get("general.alignment", 32))
        data_start = (self._pos + align - 1) // align * align
        self.data_offset = data_start
        self.tensors: dict[str, TensorInfo] = {}
        for name, shape, ttype, off in infos:
            ti = TensorInfo(name, shape, ttype, data_start + off)
            if ttype in GGML_TYPES:
                blk = GGML_TYPES[ttype][1]
                if shape[-1] % blk:
                    raise ValueError(f"{name}: row length {shape[-1]} not a multiple of block {blk}")
                if ti.offset + ti.n_bytes > len(self._mm):
                    raise ValueError(f"{name}: data runs past end of file")
            self.tensors[name] = ti

    # -- primitive readers -------------------------------------------------------
    def _unpack(self, fmt):
        v = struct.unpack_from(fmt, self._mm, self._pos)[0]
        self._pos += struct.calcsize(fmt)
        return v

    def _u32(self):
        return self._unpack("<I")

    def _u64(self):
        return self._unpack("<Q")

    def _str(self):
        n = self._u64()
        s = bytes(self._mm[self._pos:self._pos + n]).decode("utf-8", errors="surrogateescape")
        self._pos += n
        return s

    def _value(self, vtype):
        if vtype in _SCALAR:
            return self._unpack(_SCALAR[vtype])
        if vtype == _T_STRING:
            return self._str()
        if vtype == _T_ARRAY:
            etype = self._u32()
            n = self._u64()
            if etype in _SCALAR and etype != _T_BOOL:
                dt = np.dtype(_SCALAR[etype])
                arr = np.frombuffer(self._mm, dtype=dt, count=n, offset=self._pos)
                self._pos += n * dt.itemsize
                return arr.tolist()
            return [self._value(etype) for _ in range(n)]
        raise ValueError(f"unknown GGUF value type {vtype}")

    # -- tensors ------------------------------------------------------------------
    def raw(self, name: str) -> np.ndarray:
        """The tensor's bytes as a uint8 array (no copy)."""
        ti = self.tensors[name]
        return np.frombuffer(self._mm, dtype=np.uint8, count=ti.n_bytes, offset=ti.offset)

    def dequantize(self, name: str) -> np.ndarray:
        ti = self.tensors[name]
        if ti.ggml_type not in GGML_TYPES:
            raise NotImplementedError(f"{name}: ggml type {ti.ggml_type} not supported")
        tname, blk, bsize = GGML_TYPES[ti.ggml_type]
        raw = self.raw(name)
        if tname == "F32":
            out = raw.view(np.float32).copy()
        elif tname == "F16":
            out = raw.view(np.float16).astype(np.float32)
        elif tname == "BF16":
            out = (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
        else:
            blocks = raw.reshape(-1, bsize)
            out = _DEQUANT[tname](blocks).reshape(-1)
        return out.reshape(ti.shape)

    def close(self):
        self._mm.close()
        self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# -- block dequantizers: input (n_blocks, block_bytes) uint8 -> (n_blocks, block_elems) f32


def _f16(blocks, start):
    return blocks[:, start:start + 2].copy().view(np.float16).astype(np.float32)  # (n,1)


def _nibbles(qs):
    # element j (j < 16) is the low nibble of byte j, element j+16 the high nibble
    return np.concatenate([qs & 0x0F, qs >> 4], axis=1)


def _q4_0(b):
    d = _f16(b, 0)
    q = _nibbles(b[:, 2:18]).astype(np.int8) - 8
    return d * q.astype(np.float32)


def _q4_1(b):
    d, m = _f16(b, 0), _f16(b, 2)
    q = _nibbles(b[:, 4:20])
    return d * q.astype(np.float32) + m


def _q5_high(qh_bytes):
    qh = qh_bytes.copy().view("<u4")  # (n,1)
    j = np.arange(32, dtype=np.uint32)
    return ((qh >> j) & 1).astype(np.uint8) << 4  # bit j of qh is the 5th bit of element j


def _q5_0(b):
    d = _f16(b, 0)
    q = (_nibbles(b[:, 6:22]) | _q5_high(b[:, 2:6])).astype(np.int8) - 16
    return d * q.astype(np.float32)


def _q5_1(b):
    d, m = _f16(b, 0), _f16(b, 2)
    q = _nibbles(b[:, 8:24]) | _q5_high(b[:, 4:8])
    return d * q.astype(np.float32) + m


def _q8_0(b):
    d = _f16(b, 0)
    return d * b[:, 2:34].copy().view(np.int8).astype(np.float32)


def _k_scales_mins(s):
    """Unpack the 12-byte 6-bit scales/mins of Q4_K/Q5_K into two (n, 8) arrays."""
    s = s.astype(np.uint8)
    sc = np.empty((s.shape[0], 8), np.uint8)
    mn = np.empty((s.shape[0], 8), np.uint8)
    sc[:, :4] = s[:, 0:4] & 63
    mn[:, :4] = s[:, 4:8] & 63
    sc[:, 4:] = (s[:, 8:12] & 0x0F) | ((s[:, 0:4] >> 6) << 4)
    mn[:, 4:] = (s[:, 8:12] >> 4) | ((s[:, 4:8] >> 6) << 4)
    return sc.astype(np.float32), mn.astype(np.float32)


def _q4_k(b):
    n = b.shape[0]
    d, dmin = _f16(b, 0), _f16(b, 2)
    sc, mn = _k_scales_mins(b[:, 4:16])
    qs = b[:, 16:144].reshape(n, 4, 32)           # 4 chunks of 64 elements
    q = np.stack([qs & 0x0F, qs >> 4], axis=2)     # (n, 4, 2, 32): sub-block 2c, 2c+1
    q = q.reshape(n, 8, 32).astype(np.float32)
    return (d[:, :, None] * sc[:, :, None] * q - dmin[:, :, None] * mn[:, :, None]).reshape(n, 256)


def _q5_k(b):
    n = b.shape[0]
    d, dmin = _f16(b, 0), _f16(b, 2)
    sc, mn = _k_scales_mins(b[:, 4:16])
    qh = b[:, 16:48]                               # (n, 32)
    qs = b[:, 48:176].reshape(n, 4, 32)
    lo = np.stack([qs & 0x0F, qs >> 4], axis=2).reshape(n, 8, 32)
    shifts = np.arange(8, dtype=np.uint8)          # sub-block i uses bit i of qh[l]
    hi = ((qh[:, None, :] >> shifts[None, :, None]) & 1) << 4
    q = (lo | hi).astype(np.float32)
    return (d[:, :, None] * sc[:, :, None] * q - dmin[:, :, None] * mn[:, :, None]).reshape(n, 256)


def _q6_k(b):
    n = b.shape[0]
    ql = b[:, 0:128].reshape(n, 2, 64)
    qh = b[:, 128:192].reshape(n, 2, 32)
    sc = b[:, 192:208].copy().view(np.int8).astype(np.float32).reshape(n, 2, 8)
    d = _f16(b, 208)                               # (n,1)
    q1 = (ql[:, :, :32] & 0x0F) | (((qh >> 0) & 3) << 4)
    q2 = (ql[:, :, 32:] & 0x0F) | (((qh >> 2) & 3) << 4)
    q3 = (ql[:, :, :32] >> 4) | (((qh >> 4) & 3) << 4)
    q4 = (ql[:, :, 32:] >> 4) | (((qh >> 6) & 3) << 4)
    q = np.stack([q1, q2, q3, q4], axis=2).astype(np.int8) - 32   # (n, 2, 4, 32)
    q = q.astype(np.float32).reshape(n, 2, 4, 2, 16)              # 16-element sub-blocks
    # scale index within a half: is + 2*k for quarter k, is = l // 16
    s = sc.reshape(n, 2, 4, 2)
    return (d[:, :, None, None, None] * s[..., None] * q).reshape(n, 256)


_DEQUANT = {
    "Q4_0": _q4_0, "Q4_1": _q4_1, "Q5_0": _q5_0, "Q5_1": _q5_1, "Q8_0": _q8_0,
    "Q4_K": _q4_k, "Q5_K": _q5_k, "Q6_K": _q6_k,
}


def write_f32_gguf(src: GGUFReader, path: str, tensors: dict | None = None):
    """Write a copy of `src` whose tensors are all F32 (dequantized), keeping the metadata
    byte for byte. `tensors` may replace some arrays (numpy shapes, as `dequantize` returns).
    llama.cpp then runs its plain float32 kernels, which is what the check compares against."""
    if src.version != 3:
        raise ValueError("write_f32_gguf copies GGUF v3 metadata only")
    align = int(src.metadata.get("general.alignment", 32))
    names = list(src.tensors)
    tensors = tensors or {}
    arrays = {n: np.ascontiguousarray(tensors[n] if n in tensors else src.dequantize(n),
                                      dtype=np.float32) for n in names}
    head = bytearray()
    head += GGUF_MAGIC + struct.pack("<IQQ", 3, len(names), src.n_kv)
    head += src._mm[24:src.kv_end]
    off = 0
    for n in names:
        a = arrays[n]
        nb = n.encode()
        head += struct.pack("<Q", len(nb)) + nb + struct.pack("<I", a.ndim)
        head += struct.pack(f"<{a.ndim}Q", *reversed(a.shape))
        head += struct.pack("<IQ", 0, off)
        off += (a.nbytes + align - 1) // align * align
    head += b"\0" * (-len(head) % align)
    with open(path, "wb") as f:
        f.write(head)
        for n in names:
            b = arrays[n].tobytes()
            f.write(b + b"\0" * (-len(b) % align))


if __name__ == "__main__":  # print a summary of a GGUF file
    import collections
    import sys

    r = GGUFReader(sys.argv[1])
    print(f"GGUF v{r.version}, {len(r.tensors)} tensors, data at {r.data_offset}")
    for k, v in r.metadata.items():
        s = repr(v)
        if isinstance(v, list):
            s = f"[{len(v)} items] " + repr(v[:5])[:100]
        print(f"  {k} = {s[:160]}")
    types = collections.Counter(t.type_name for t in r.tensors.values())
    print("tensor types:", dict(types))
    for t in list(r.tensors.values())[:12]:
        print(f"  {t.name:32s} {t.type_name:5s} {t.shape}")
