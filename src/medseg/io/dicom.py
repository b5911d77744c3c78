"""DICOM reading with SimpleITK/GDCM: a series folder, or a single (possibly multi-frame) file.

GDCM applies Rescale Slope/Intercept, so CT comes back in Hounsfield units. A single-frame image
(one file, or a series of one file) is returned as a 2D image; its 3D placement is kept in
``Image.meta`` under ``dicom_origin`` and ``dicom_direction``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from medseg.io._common import fail, one_line
from medseg.io._sitk import array_from_sitk
from medseg.io.image import Geometry, Image

_PREAMBLE = 128
_MAGIC = b"DICM"
_MODALITY_TAG = "0008|0060"


def is_dicom_file(path: Path) -> bool:
    """True if ``path`` is a file carrying the DICOM Part 10 marker ``DICM`` after its 128-byte preamble."""
    try:
        with path.open("rb") as handle:
            head = handle.read(_PREAMBLE + len(_MAGIC))
    except OSError:
        return False
    return head[_PREAMBLE:] == _MAGIC


def _modality(value: str | None) -> str | None:
    value = (value or "").strip().upper()
    return value or None


def _flatten_single_frame(image: sitk.Image, meta: dict[str, str]) -> sitk.Image:
    """A (x, y, 1) slice becomes a 2D image; its 3D origin and direction go to ``meta``."""
    if image.GetDimension() != 3 or image.GetSize()[2] != 1:
        return image
    meta["dicom_origin"] = " ".join(str(float(v)) for v in image.GetOrigin())
    meta["dicom_direction"] = " ".join(str(float(v)) for v in image.GetDirection())
    size = [*image.GetSize()[:2], 0]
    return sitk.Extract(image, size, [0, 0, 0], sitk.ExtractImageFilter.DIRECTIONCOLLAPSETOGUESS)


def _plane_geometry(image: sitk.Image) -> Geometry:
    """2D geometry of a flattened slice; identity direction if the in-plane block is not a rotation."""
    block = np.asarray(image.GetDirection(), dtype=float).reshape(2, 2)
    if not np.allclose(block @ block.T, np.eye(2), atol=1e-6):
        block = np.eye(2)
    return Geometry(
        tuple(float(v) for v in image.GetSpacing()),
        tuple(float(v) for v in image.GetOrigin()),
        tuple(float(v) for v in block.ravel()),
    )


def _to_image(image: sitk.Image, path: Path, modality: str | None, meta: dict[str, str]) -> Image:
    image = _flatten_single_frame(image, meta)
    array, geometry = array_from_sitk(image, path)
    if image.GetDimension() == 2:
        geometry = _plane_geometry(image)
    return Image(array, geometry, modality=modality, path=path, meta=meta)


def read_dicom_file(path: Path) -> Image:
    """Read one DICOM file, single- or multi-frame.

    Args:
        path: A DICOM Part 10 file (any ending).

    Returns:
        Image: multi-frame files as a (z, y, x) volume with the spacing GDCM finds; single frames as
        (y, x) or (y, x, 3) with in-plane spacing. Modality from the Modality tag (0008,0060).

    Raises:
        MedsegError: The file is not a DICOM image GDCM can decode.
    """
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.SetImageIO("GDCMImageIO")
    try:
        image = reader.Execute()
    except RuntimeError as exc:
        raise fail(path, f"cannot read the DICOM image: {one_line(exc)}") from None
    modality = _modality(reader.GetMetaData(_MODALITY_TAG) if reader.HasMetaDataKey(_MODALITY_TAG) else None)
    return _to_image(image, path, modality, {})


def _largest_series(folder: Path, reader: sitk.ImageSeriesReader) -> tuple[list[str], dict[str, str]]:
    """File names of the series with most files in ``folder`` (sorted by GDCM), and notes for meta."""
    try:
        series_ids = reader.GetGDCMSeriesIDs(str(folder))
    except RuntimeError as exc:
        raise fail(folder, f"cannot scan the folder for DICOM series: {one_line(exc)}") from None
    if not series_ids:
        raise fail(folder, "no DICOM series found in this folder (the files must sit directly in it)")
    files = {uid: list(reader.GetGDCMSeriesFileNames(str(folder), uid)) for uid in series_ids}
    uid = max(series_ids, key=lambda u: len(files[u]))
    meta = {"dicom_series_uid": uid, "dicom_files": str(len(files[uid]))}
    if len(series_ids) > 1:
        meta["dicom_series_note"] = (
            f"{len(series_ids)} series in the folder; read the one with most files, {uid} "
            f"({len(files[uid])} files)"
        )
    return files[uid], meta


def read_dicom_series(folder: Path) -> Image:
    """Read the DICOM series in ``folder``; with several series, the one with most files.

    Args:
        folder: A folder holding the DICOM files of one or more series (not searched recursively).

    Returns:
        Image with the (z, y, x) volume in slice order as GDCM sorts it, its geometry, the modality,
        and in ``meta`` the series UID, the file count and, if several series were found, a note.

    Raises:
        MedsegError: No series found, or the series cannot be read.
    """
    reader = sitk.ImageSeriesReader()
    names, meta = _largest_series(folder, reader)
    reader.SetFileNames(names)
    reader.MetaDataDictionaryArrayUpdateOn()
    try:
        image = reader.Execute()
    except RuntimeError as exc:
        raise fail(folder, f"cannot read the DICOM series: {one_line(exc)}") from None
    has_tag = reader.HasMetaDataKey(0, _MODALITY_TAG)
    modality = _modality(reader.GetMetaData(0, _MODALITY_TAG) if has_tag else None)
    return _to_image(image, folder, modality, meta)
