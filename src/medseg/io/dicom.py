"""DICOM reading with SimpleITK/GDCM: a series folder, or a single (possibly multi-frame) file.

GDCM applies Rescale Slope/Intercept, so CT comes back in Hounsfield units. A single-frame image
(one file, or a series of one file) is returned as a 2D image; its 3D placement is kept in
``Image.meta`` under ``dicom_origin``, ``dicom_direction`` and ``dicom_spacing`` (the slice's spacing
from Spacing Between Slices, else Slice Thickness), for ``medseg.io.output_geometry``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from medseg.io._common import fail, one_line
from medseg.io._dicom_series import choose_series, slice_positions, spacing_problem
from medseg.io._sitk import array_from_sitk
from medseg.io.finite import check_finite
from medseg.io.image import Geometry, Image
from medseg.io.limits import check_declared_size
from medseg.io.quiet import silenced

_PREAMBLE = 128
_MAGIC = b"DICM"
_MODALITY_TAG = "0008|0060"
_SLICE_SPACING_TAGS = ("0018|0088", "0018|0050")  # Spacing Between Slices, Slice Thickness


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


def _slice_spacing(tags: dict[str, str]) -> float:
    """Thickness of a lone slice: Spacing Between Slices, else Slice Thickness, else 1 mm."""
    for key in _SLICE_SPACING_TAGS:
        try:
            value = float(tags.get(key, "").strip())
        except ValueError:
            continue
        if value > 0 and np.isfinite(value):
            return value
    return 1.0


def _flatten_single_frame(image: sitk.Image, meta: dict[str, str], tags: dict[str, str]) -> sitk.Image:
    """A (x, y, 1) slice becomes a 2D image; its 3D origin, direction and spacing go to ``meta``."""
    if image.GetDimension() != 3 or image.GetSize()[2] != 1:
        return image
    spacing = (*image.GetSpacing()[:2], _slice_spacing(tags))
    meta["dicom_origin"] = " ".join(str(float(v)) for v in image.GetOrigin())
    meta["dicom_direction"] = " ".join(str(float(v)) for v in image.GetDirection())
    meta["dicom_spacing"] = " ".join(str(float(v)) for v in spacing)
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


def _to_image(
    image: sitk.Image, path: Path, modality: str | None, meta: dict[str, str], tags: dict[str, str]
) -> Image:
    image = _flatten_single_frame(image, meta, tags)
    array, geometry = array_from_sitk(image, path)
    check_finite(array, path)
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
    with silenced():
        try:
            reader.ReadImageInformation()
            check_declared_size(path, reader.GetSize(), reader.GetNumberOfComponents())
            image = reader.Execute()
        except RuntimeError as exc:
            raise fail(path, f"cannot read the DICOM image: {one_line(exc)}") from None
    modality = _modality(reader.GetMetaData(_MODALITY_TAG) if reader.HasMetaDataKey(_MODALITY_TAG) else None)
    tags = {key: reader.GetMetaData(key) for key in _SLICE_SPACING_TAGS if reader.HasMetaDataKey(key)}
    return _to_image(image, path, modality, {}, tags)


def _first_file_size(path: Path, names: list[str]) -> None:
    """Refuse a series whose declared size (rows x columns x files, from one header) is too large."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(names[0])
    reader.SetImageIO("GDCMImageIO")
    with silenced():
        try:
            reader.ReadImageInformation()
        except RuntimeError as exc:
            raise fail(path, f"cannot read the DICOM series: {one_line(exc)}") from None
    columns, rows = reader.GetSize()[:2]
    check_declared_size(path, (columns, rows, len(names)), reader.GetNumberOfComponents())


def read_dicom_series(folder: Path, series: str | None = None) -> Image:
    """Read a DICOM series in ``folder``: the one asked for, else the one with most files.

    Args:
        folder: A folder holding the DICOM files of one or more series (not searched recursively).
        series: Series Instance UID to read; None picks the series with most files and, if there
            are several, says so in ``meta["dicom_series_note"]``.

    Returns:
        Image with the (z, y, x) volume in slice order as GDCM sorts it, its geometry, the modality,
        and in ``meta`` the series UID, the file count and, if several series were found, a note.

    Raises:
        MedsegError: No series found, an unknown ``series``, a declared size beyond the limit, slices
            not evenly spaced (a missing slice, mixed spacing), or the series cannot be read.
    """
    reader = sitk.ImageSeriesReader()
    with silenced():  # GDCM reports files it cannot parse on stderr
        names, meta = choose_series(folder, reader, series)
    _first_file_size(folder, names)
    reader.SetFileNames(names)
    reader.MetaDataDictionaryArrayUpdateOn()
    with silenced():
        try:
            image = reader.Execute()
        except RuntimeError as exc:
            raise fail(folder, f"cannot read the DICOM series: {one_line(exc)}") from None
    positions = slice_positions(reader, len(names))
    problem = spacing_problem(positions) if positions is not None else None
    if problem:
        raise fail(folder, problem)
    has_tag = reader.HasMetaDataKey(0, _MODALITY_TAG)
    modality = _modality(reader.GetMetaData(0, _MODALITY_TAG) if has_tag else None)
    tags = {key: reader.GetMetaData(0, key) for key in _SLICE_SPACING_TAGS if reader.HasMetaDataKey(0, key)}
    return _to_image(image, folder, modality, meta, tags)
