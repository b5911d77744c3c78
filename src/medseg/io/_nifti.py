"""Truncation check for single-file NIfTI (.nii, .nii.gz).

ITK's NIfTI reader fills a truncated file with zeros without complaint, so after a successful read
the file size is compared with what the header promises. For .nii.gz the gzip trailer (uncompressed
size mod 2**32) is checked first; only when it disagrees (truncation, or a multi-member gzip) is the
file decompressed once more to count its bytes.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

_CHUNK = 1 << 22


def _expected_size(header: bytes) -> int | None:
    """Bytes a single-file NIfTI-1/2 needs (vox_offset + voxel data), or None if not parseable."""
    for order in "<>":
        if len(header) >= 348 and struct.unpack(order + "i", header[:4])[0] == 348 and header[344:347] == b"n+1":
            dim = struct.unpack(order + "8h", header[40:56])
            bitpix = struct.unpack(order + "h", header[72:74])[0]
            offset = int(struct.unpack(order + "f", header[108:112])[0])
        elif len(header) >= 540 and struct.unpack(order + "i", header[:4])[0] == 540 and header[4:7] == b"n+2":
            dim = struct.unpack(order + "8q", header[16:80])
            bitpix = struct.unpack(order + "h", header[14:16])[0]
            offset = struct.unpack(order + "q", header[168:176])[0]
        else:
            continue
        if not 1 <= dim[0] <= 7 or bitpix <= 0:
            return None
        voxels = int(np.prod([max(int(n), 1) for n in dim[1 : dim[0] + 1]], dtype=np.int64))
        return offset + voxels * bitpix // 8
    return None


def _gzip_size(path: Path, expected: int) -> int:
    """Uncompressed size of a gzip file; trusts the trailer when it matches ``expected``."""
    with path.open("rb") as handle:
        handle.seek(-4, 2)
        if struct.unpack("<I", handle.read(4))[0] == expected % 2**32:
            return expected
    total = 0
    with gzip.open(path, "rb") as stream:
        while chunk := stream.read(_CHUNK):
            total += len(chunk)
    return total


def nifti_shortfall(path: Path, compressed: bool) -> str | None:
    """Why the NIfTI file at ``path`` is incomplete, or None if it holds all its voxels.

    Args:
        path: A .nii or .nii.gz file that SimpleITK already read.
        compressed: True for .nii.gz.

    Returns:
        A short reason ("truncated: ...") or None. Headers it cannot parse are not judged.
    """
    try:
        if compressed:
            with gzip.open(path, "rb") as stream:
                header = stream.read(540)
        else:
            with path.open("rb") as handle:
                header = handle.read(540)
        expected = _expected_size(header)
        if expected is None:
            return None
        size = _gzip_size(path, expected) if compressed else path.stat().st_size
    except (OSError, EOFError, zlib.error) as exc:
        return f"corrupt compressed data ({exc})"
    if size < expected:
        return f"truncated: the header promises {expected} bytes, the file holds {size}"
    return None
