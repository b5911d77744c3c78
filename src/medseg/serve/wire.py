"""The packed-array body of the nnInteractive v2 protocol, read with every size checked first.

Layout (little-endian), as ``nnInteractive.inference.remote.serialization`` writes it::

    b"NNIA" | version u8 (=1) | codec u8 (1 zstd, 2 lz4) | ndim u8 | dtype_len u8 | dtype ascii
    | shape ndim x i64 | nchunks u32 | per chunk: ulen u64, clen u64, blosc2 frame (clen bytes)

``unpack`` refuses a bad header, a dtype or shape outside the limits, and chunk sizes that do not add
up, before it allocates the output; every refusal is a ``WireError`` (the server answers 400 or 413).
"""

from __future__ import annotations

import struct

import numpy as np

MAGIC = b"NNIA"
VERSION = 1
CODECS = {1: "zstd", 2: "lz4"}
_CHUNK = 1 << 30  # the client's chunk size; blosc2 takes at most 2 GiB per call


class WireError(ValueError):
    """A packed array the server will not read; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def read_header(buf: bytes) -> tuple[np.dtype, tuple[int, ...], int]:
    """(dtype, shape, offset of the chunk table) of a packed array, checking only the header."""
    if len(buf) < 8:
        raise WireError(f"packed array of {len(buf)} bytes is shorter than its 8-byte header")
    magic, version, codec, ndim, name_len = struct.unpack_from("<4sBBBB", buf, 0)
    if magic != MAGIC:
        raise WireError(f"body does not start with {MAGIC!r} (got {magic!r}); send a packed array")
    if version != VERSION:
        raise WireError(f"packed-array version {version} is not supported; medseg reads version {VERSION}")
    if codec not in CODECS:
        raise WireError(f"codec id {codec} is not supported; use 1 (zstd) or 2 (lz4)")
    end = 8 + name_len + 8 * ndim + 4
    if len(buf) < end:
        raise WireError("packed array is cut short inside its header")
    try:
        dtype = np.dtype(buf[8:8 + name_len].decode("ascii"))
    except (UnicodeDecodeError, TypeError, ValueError):
        raise WireError(f"unknown dtype {buf[8:8 + name_len]!r} in the packed-array header") from None
    shape = struct.unpack_from(f"<{ndim}q", buf, 8 + name_len)
    if any(d <= 0 for d in shape):
        raise WireError(f"array shape {list(shape)} has a dimension <= 0")
    return dtype, tuple(int(d) for d in shape), end - 4


def check_array(dtype: np.dtype, shape: tuple[int, ...], what: str, dtypes: frozenset, ndims: tuple[int, ...],
                max_voxels: int, max_bytes: int) -> None:
    """Refuse a declared array before allocating it (WireError with 400, or 413 when too large)."""
    if dtype not in dtypes:
        raise WireError(f"{what} dtype {dtype} is not accepted; use one of {', '.join(sorted(map(str, dtypes)))}")
    if len(shape) not in ndims:
        raise WireError(f"{what} has {len(shape)} dimensions {list(shape)}; expected {' or '.join(map(str, ndims))}")
    voxels = 1
    for d in shape:
        voxels *= d
    if voxels > max_voxels or voxels * dtype.itemsize > max_bytes:
        raise WireError(f"{what} of shape {list(shape)} ({voxels * dtype.itemsize / 2**20:.0f} MiB) exceeds the "
                        f"server limits ({max_voxels} voxels, {max_bytes / 2**20:.0f} MiB)", 413)


def unpack(buf: bytes, what: str, dtypes: frozenset, ndims: tuple[int, ...], max_voxels: int,
           max_bytes: int) -> np.ndarray:
    """The array in a packed body, or WireError; nothing larger than the limits is allocated."""
    import blosc2

    dtype, shape, offset = read_header(buf)
    check_array(dtype, shape, what, dtypes, ndims, max_voxels, max_bytes)
    total = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    (nchunks,) = struct.unpack_from("<I", buf, offset)
    offset += 4
    chunks = []
    declared = 0
    for _ in range(nchunks):
        if offset + 16 > len(buf):
            raise WireError("packed array is cut short inside its chunk table")
        ulen, clen = struct.unpack_from("<QQ", buf, offset)
        offset += 16
        if ulen % dtype.itemsize or ulen > _CHUNK or offset + clen > len(buf):
            raise WireError(f"chunk of {ulen} bytes ({clen} compressed) does not fit the {len(buf)}-byte body")
        chunks.append((offset, ulen, clen))
        declared += ulen
        offset += clen
    if declared != total:
        raise WireError(f"chunks hold {declared} bytes but shape {list(shape)} of {dtype} needs {total}")
    out = np.empty(total // dtype.itemsize, dtype=dtype)
    view = memoryview(buf)
    written = 0
    for start, ulen, clen in chunks:
        frame = view[start:start + clen]
        try:
            nbytes, _, _ = blosc2.get_cbuffer_sizes(frame)
            if nbytes != ulen:
                raise WireError(f"a chunk's blosc2 frame holds {nbytes} bytes, its table says {ulen}")
            blosc2.decompress2(frame, dst=out[written // dtype.itemsize:(written + ulen) // dtype.itemsize])
        except WireError:
            raise
        except Exception as exc:  # blosc2 raises RuntimeError/ValueError on a corrupt frame
            raise WireError(f"a chunk is not a valid blosc2 frame ({type(exc).__name__})") from None
        written += ulen
    return out.reshape(shape)


def pack(arr: np.ndarray) -> bytes:
    """A packed array (zstd, no filter: masks compress best so), readable by the client's unpack_array."""
    import blosc2

    arr = np.ascontiguousarray(arr)
    name = arr.dtype.name.encode("ascii")
    parts = [struct.pack(f"<4sBBBB{len(name)}s", MAGIC, VERSION, 1, arr.ndim, len(name), name),
             struct.pack(f"<{arr.ndim}q", *arr.shape)]
    raw = memoryview(arr).cast("B")
    starts = range(0, max(raw.nbytes, 1), _CHUNK) if raw.nbytes else []
    parts.append(struct.pack("<I", len(starts)))
    for start in starts:
        piece = raw[start:start + _CHUNK]
        frame = blosc2.compress2(piece, typesize=arr.dtype.itemsize, codec=blosc2.Codec.ZSTD, clevel=3,
                                 filters=[blosc2.Filter.NOFILTER])
        parts += [struct.pack("<QQ", len(piece), len(frame)), frame]
    return b"".join(parts)
