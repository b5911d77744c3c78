"""``read_image``: one entry point, one reader per format, chosen by file ending or folder."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from medseg.io._common import READ_ENDINGS, ending, fail
from medseg.io._sitk import read_sitk_file
from medseg.io.dicom import is_dicom_file, read_dicom_file, read_dicom_series
from medseg.io.image import Image
from medseg.io.npz import read_npz
from medseg.io.raster import read_pil, read_tiff

_READERS: dict[str, Callable[[Path], Image]] = {
    ".nii": read_sitk_file,
    ".nii.gz": read_sitk_file,
    ".nrrd": read_sitk_file,
    ".nhdr": read_sitk_file,
    ".mha": read_sitk_file,
    ".mhd": read_sitk_file,
    ".dcm": read_dicom_file,
    ".png": read_pil,
    ".jpg": read_pil,
    ".jpeg": read_pil,
    ".tif": read_tiff,
    ".tiff": read_tiff,
    ".npz": read_npz,
}
assert set(_READERS) == set(READ_ENDINGS)


def read_image(path: str | os.PathLike[str], series: str | None = None) -> Image:
    """Read a medical image or picture with its geometry.

    Formats, by ending: NIfTI (.nii, .nii.gz), NRRD (.nrrd, .nhdr), MetaImage (.mha, .mhd), DICOM
    (.dcm, or any file with the DICM marker, or a folder holding a series), PNG/JPEG (.png, .jpg,
    .jpeg), TIFF (.tif, .tiff) and CVPR24-style .npz (key ``imgs``).

    Every reader checks the size the header declares against ``medseg.io.limits`` before reading the
    voxels, refuses float images holding NaN/Inf, and keeps third-party warnings off stderr.

    Args:
        path: A file, or a folder holding a DICOM series.
        series: Series Instance UID to read from a DICOM folder with several series (default: the
            one with most files, named in ``meta["dicom_series_note"]``).

    Returns:
        Image whose array is (z, y, x) for volumes, (y, x) for 2D grey and (y, x, 3) for 2D colour
        pictures, with geometry in ITK (x, y[, z]) order. ``modality`` is set for DICOM only.

    Raises:
        MedsegError: Missing, unreadable, truncated or empty file, unsupported ending, a declared size
            beyond the limit, NaN/Inf voxels, a 4D / multi-channel volume, an unevenly spaced DICOM
            series, or ``series`` given for a file / not found. One line naming the file.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        return read_dicom_series(path, series)
    if series is not None:
        raise fail(path, f"a series ({series}) can only be chosen in a folder holding DICOM series")
    if not path.exists():
        raise fail(path, "no such file or folder")
    if not path.is_file():
        raise fail(path, "not a regular file or folder")
    reader = _READERS.get(ending(path))
    if reader is not None:
        return reader(path)
    if is_dicom_file(path):
        return read_dicom_file(path)
    found = f"file ending '{ending(path)}'" if ending(path) else "no file ending"
    raise fail(path, f"unsupported {found} and not a DICOM file; supported: {' '.join(READ_ENDINGS)}, "
               "DICOM files, or a folder holding a DICOM series")
