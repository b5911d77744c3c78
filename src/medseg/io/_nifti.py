"""What a single-file NIfTI (.nii, .nii.gz) really holds, checked around SimpleITK's read.

ITK's NIfTI reader fills a truncated file with zeros without complaint, turns NaN and Inf voxels into
0, and ignores non-finite scaling fields. So medseg reads the header itself:

- before SimpleITK reads the data, the file size is compared with what the header promises
  (``nifti_shortfall``), so a tiny file with a huge header is refused without allocating. For .nii.gz
  the gzip trailer (uncompressed size mod 2**32) is checked first; only when it disagrees
  (truncation, or a multi-member gzip) is the file decompressed once more to count its bytes;
- the scaling fields are judged (``nifti_scaling_problem``): scl_slope 0 or NaN means "no scaling"
  (the NIfTI rule; nibabel writes NaN for unset), an infinite slope or, with a slope, a non-finite
  scl_inter would make every voxel non-finite and is refused;
- float voxel data is scanned for NaN/Inf in the file itself (``nifti_nonfinite``), in chunks.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

_CHUNK = 1 << 22
_FLOAT_TYPES = {16: "f4", 64: "f8"}  # NIfTI datatype codes of real floats


@dataclass(frozen=True)
class NiftiHeader:
    """The fields of a NIfTI-1/2 header that medseg checks itself."""

    order: str  # "<" or ">"
    datatype: int
    voxels: int
    bitpix: int
    offset: int
    slope: float
    inter: float

    @property
    def expected_size(self) -> int:
        return self.offset + self.voxels * self.bitpix // 8


def _parse(header: bytes) -> NiftiHeader | None:
    """The header of a single-file NIfTI-1/2 (either byte order), or None if not parseable."""
    for order in "<>":
        if len(header) >= 348 and struct.unpack(order + "i", header[:4])[0] == 348 and header[344:347] == b"n+1":
            dim = struct.unpack(order + "8h", header[40:56])
            datatype, bitpix = struct.unpack(order + "2h", header[70:74])
            offset = int(struct.unpack(order + "f", header[108:112])[0])
            slope, inter = struct.unpack(order + "2f", header[112:120])
        elif len(header) >= 540 and struct.unpack(order + "i", header[:4])[0] == 540 and header[4:7] == b"n+2":
            datatype, bitpix = struct.unpack(order + "2h", header[12:16])
            dim = struct.unpack(order + "8q", header[16:80])
            offset = struct.unpack(order + "q", header[168:176])[0]
            slope, inter = struct.unpack(order + "2d", header[176:192])
        else:
            continue
        if not 1 <= dim[0] <= 7 or bitpix <= 0:
            return None
        voxels = math.prod(max(int(n), 1) for n in dim[1 : dim[0] + 1])
        return NiftiHeader(order, datatype, voxels, bitpix, offset, slope, inter)
    return None


def _open(path: Path, compressed: bool) -> BinaryIO:
    return gzip.open(path, "rb") if compressed else path.open("rb")


def read_header(path: Path, compressed: bool) -> NiftiHeader | None:
    """The parsed header of ``path``, or None if it is not a single-file NIfTI medseg can parse."""
    try:
        with _open(path, compressed) as stream:
            return _parse(stream.read(540))
    except (OSError, EOFError, zlib.error):
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

    Reads the header and the file size only (the gzip trailer for .nii.gz), never the voxels, so it
    can run before SimpleITK allocates anything.

    Args:
        path: A .nii or .nii.gz file.
        compressed: True for .nii.gz.

    Returns:
        A short reason ("truncated: ...") or None. Headers it cannot parse are not judged.
    """
    try:
        with _open(path, compressed) as stream:
            header = _parse(stream.read(540))
        if header is None:
            return None
        expected = header.expected_size
        size = _gzip_size(path, expected) if compressed else path.stat().st_size
    except (OSError, EOFError, zlib.error) as exc:
        return f"corrupt compressed data ({exc})"
    if size < expected:
        return f"truncated: the header promises {expected} bytes, the file holds {size}"
    return None


def nifti_scaling_problem(header: NiftiHeader) -> str | None:
    """Why the scaling fields would make every voxel NaN/Inf, or None if they are usable."""
    slope, inter = header.slope, header.inter
    if math.isnan(slope) or slope == 0:
        return None  # no scaling: the NIfTI rule for 0, nibabel's "unset" for NaN
    if math.isinf(slope):
        return f"the header's scl_slope is {slope}; every voxel would be infinite"
    if not math.isfinite(inter):
        return f"the header's scl_inter is {inter} (with scl_slope {slope}); every voxel would be NaN/Inf"
    return None


def nifti_nonfinite(path: Path, compressed: bool, header: NiftiHeader) -> int:
    """Count the NaN/Inf voxels stored in a float NIfTI file (0 for other pixel types).

    Args:
        path: A complete .nii or .nii.gz file (``nifti_shortfall`` found nothing missing).
        compressed: True for .nii.gz (decompressed once more, in 4 MiB chunks).
        header: Its parsed header.

    Returns:
        How many stored values are NaN or ±Inf.
    """
    code = _FLOAT_TYPES.get(header.datatype)
    if code is None:
        return 0
    dtype = np.dtype(header.order + code)
    remaining = header.voxels * dtype.itemsize
    step = _CHUNK - _CHUNK % dtype.itemsize
    count = 0
    with _open(path, compressed) as stream:
        stream.seek(header.offset)
        while remaining > 0 and (chunk := stream.read(min(step, remaining))):
            usable = len(chunk) - len(chunk) % dtype.itemsize
            values = np.frombuffer(chunk[:usable], dtype=dtype)
            count += values.size - int(np.count_nonzero(np.isfinite(values)))
            remaining -= len(chunk)
    return count
