"""Read-back checks of written files, by ending: is the file whole? (``medseg.files`` calls them).

Each check returns a short reason the file is incomplete, or None. They read headers and trailers,
not the voxels, except for PNG (PIL verifies its chunks and CRCs and decodes it; masks and overlays
are small). npz (and torch's zip checkpoints): the central directory and member extents.
"""

from __future__ import annotations

import gzip
import re
import struct
import zipfile
import zlib
from pathlib import Path

from medseg.files import Verify, reason
from medseg.io._common import ending
from medseg.io._nifti import nifti_shortfall
from medseg.io.write import quiet_stderr


def _nifti(compressed: bool) -> Verify:
    def check(path: Path) -> str | None:
        try:
            with (gzip.open(path, "rb") if compressed else path.open("rb")) as stream:
                if len(stream.read(348)) < 348:
                    return "shorter than a NIfTI header"
        except (OSError, EOFError, zlib.error) as exc:
            return f"corrupt compressed data ({exc})"
        return nifti_shortfall(path, compressed)

    return check


def _png(path: Path) -> str | None:
    from PIL import Image as PILImage

    try:
        with PILImage.open(path) as picture:
            picture.verify()
        with PILImage.open(path) as picture:
            picture.load()
    except Exception as exc:  # PIL raises many types for a damaged file
        return f"damaged PNG ({exc})"
    return None


def _npz(path: Path) -> str | None:
    """The central directory (written last) is there and every member fits in the file.

    Not a CRC test of the data (``testzip``: +0.36 s for a 512x512x100 mask): a short write cuts
    the end of the file, which is what this catches.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
        return f"damaged zip archive ({exc})"
    size = path.stat().st_size
    if not members:
        return "an empty archive"
    ends = max(m.header_offset + len(m.filename) + 30 + m.compress_size for m in members)
    return None if ends <= size else f"truncated: members end at byte {ends}, the file holds {size}"


def _itk_size(path: Path) -> tuple[int, int]:
    """(voxel count, bytes per voxel) from SimpleITK's header read."""
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.ReadImageInformation()
    voxels = 1
    for n in reader.GetSize():
        voxels *= n
    bytes_per = {sitk.sitkUInt8: 1, sitk.sitkInt8: 1, sitk.sitkUInt16: 2, sitk.sitkInt16: 2,
                 sitk.sitkFloat32: 4, sitk.sitkUInt32: 4, sitk.sitkInt32: 4}.get(reader.GetPixelID(), 8)
    return voxels * reader.GetNumberOfComponents(), bytes_per


def _header_split(data: bytes, marker: bytes) -> int | None:
    at = data.find(marker)
    return None if at < 0 else at + len(marker)


def _mha(path: Path) -> str | None:
    voxels, per = _itk_size(path)
    data = path.read_bytes()[:65536]
    start = re.search(rb"ElementDataFile\s*=\s*LOCAL\r?\n", data)
    if start is None:
        return "no data section in the MetaImage header"
    compressed = re.search(rb"CompressedDataSize\s*=\s*(\d+)", data[: start.end()])
    expected = start.end() + (int(compressed.group(1)) if compressed else voxels * per)
    size = path.stat().st_size
    return None if size >= expected else f"truncated: {size} of {expected} bytes"


def _nrrd(path: Path) -> str | None:
    voxels, per = _itk_size(path)
    with path.open("rb") as handle:
        head = handle.read(65536)
    start = _header_split(head, b"\n\n")
    if start is None:
        return "no end of the NRRD header"
    size = path.stat().st_size
    if re.search(rb"encoding:\s*(gzip|gz)", head[:start]):
        with path.open("rb") as handle:
            handle.seek(-4, 2)
            if struct.unpack("<I", handle.read(4))[0] != (voxels * per) % 2**32 or size - start < 18:
                return "truncated gzip data"
        return None
    expected = start + voxels * per
    return None if size >= expected else f"truncated: {size} of {expected} bytes"


_CHECKS = {".nii.gz": _nifti(True), ".nii": _nifti(False), ".png": _png, ".npz": _npz, ".mha": _mha,
           ".nrrd": _nrrd}


def verify_for(path: str | Path) -> Verify | None:
    """The read-back check for ``path``'s ending, or None (then only size > 0 is checked)."""
    check = _CHECKS.get(ending(Path(path)))
    if check is None:
        return None

    def safe(temp: Path) -> str | None:
        try:
            with quiet_stderr():  # ITK's readers print their complaints there
                return check(temp)
        except (OSError, RuntimeError, ValueError, EOFError, zlib.error) as exc:  # RuntimeError: ITK
            return f"unreadable: {reason(exc)}"

    return safe
