"""Where a mask goes in space: a single-slice DICOM's mask keeps its 3D placement in volume files.

A single DICOM slice is read as a 2D image (the model sees a picture), but it sits somewhere in the
patient: its z origin, 3D direction and slice spacing are kept in ``Image.meta`` by the DICOM reader.
A mask written to NIfTI / NRRD / MetaImage gets that placement back as a (1, y, x) volume, so it
overlays the slice in any viewer; PNG and npz masks stay 2D (they store no geometry).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from medseg.io._common import ending
from medseg.io.image import Geometry, Image
from medseg.io.write import SITK_WRITE_ENDINGS

_PLACEMENT_KEYS = ("dicom_origin", "dicom_direction", "dicom_spacing")


def _floats(text: str, count: int) -> tuple[float, ...] | None:
    try:
        values = tuple(float(v) for v in text.split())
    except ValueError:
        return None
    return values if len(values) == count and np.all(np.isfinite(values)) else None


def slice_placement(image: Image) -> Geometry | None:
    """The 3D geometry of a single-slice DICOM image, ITK (x, y, z); None for any other image."""
    if image.geometry.dim != 2 or not all(key in image.meta for key in _PLACEMENT_KEYS):
        return None
    origin = _floats(image.meta["dicom_origin"], 3)
    direction = _floats(image.meta["dicom_direction"], 9)
    spacing = _floats(image.meta["dicom_spacing"], 3)
    if origin is None or direction is None or spacing is None or min(spacing) <= 0:
        return None
    return Geometry(spacing, origin, direction)


def output_geometry(
    image: Image, labels: np.ndarray, path: str | os.PathLike[str]
) -> tuple[np.ndarray, Geometry]:
    """The mask and geometry to pass to ``write_mask`` for ``image``'s mask written to ``path``.

    Args:
        image: The image the mask was computed on.
        labels: Its mask, (z, y, x) for volumes, (y, x) for 2D images.
        path: The output file; its ending decides whether a single slice keeps its 3D placement.

    Returns:
        For a single-slice DICOM written to .nii/.nii.gz/.nrrd/.mha: the labels as (1, y, x) with the
        slice's 3D origin, direction and spacing. Otherwise ``labels`` and ``image.geometry`` unchanged.
    """
    placement = slice_placement(image)
    if placement is None or ending(Path(path)) not in SITK_WRITE_ENDINGS or np.ndim(labels) != 2:
        return labels, image.geometry
    return np.asarray(labels)[np.newaxis], placement
