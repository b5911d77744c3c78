"""``write_mask``: label masks to NIfTI / NRRD / MetaImage with their geometry, PNG, or CVPR24 npz.

Writes go through ``medseg.files``: a hidden temporary file in the target folder, fsynced and read
back (``medseg.io.verify``), then renamed over the target; on any error nothing is left behind and
the target is untouched. Pass a ``medseg.files.Transaction`` to stage the mask with other outputs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from medseg.files import Transaction, write_file
from medseg.io._common import ending, fail
from medseg.io.image import Geometry

SITK_WRITE_ENDINGS = (".nii", ".nii.gz", ".nrrd", ".mha")
WRITE_ENDINGS = (*SITK_WRITE_ENDINGS, ".png", ".npz")
NPZ_MASK_KEY = "segs"


def _as_labels(mask: np.ndarray, path: Path) -> np.ndarray:
    """``mask`` as uint8 labels; refuse values that are not whole numbers in 0..255."""
    array = np.asarray(mask)
    if array.size == 0:
        raise fail(path, f"the mask is empty (shape {array.shape})")
    if array.dtype.kind not in "biuf":
        raise fail(path, f"mask dtype {array.dtype} is not a label type (use bool or integers)")
    if array.dtype == np.uint8:  # labels already: no copy, no check (a 512x512x100 mask: 8-120 ms)
        return array
    if array.dtype == bool:
        return array.view(np.uint8)
    with np.errstate(invalid="ignore"):
        labels = array.astype(np.uint8)
    if not np.array_equal(labels, array):
        raise fail(path, f"mask values must be whole-number labels 0..255 (got {array.dtype}, "
                   f"min {array.min()}, max {array.max()})")
    return labels


def _check_geometry(labels: np.ndarray, geometry: Geometry, path: Path) -> None:
    """The mask is (y, x) for 2D or (z, y, x) for 3D geometry, and the geometry is well formed."""
    dim = geometry.dim
    if dim not in (2, 3):
        raise fail(path, f"geometry has {dim} dimensions; only 2D and 3D are supported")
    if labels.ndim != dim:
        expected = "(y, x)" if dim == 2 else "(z, y, x)"
        raise fail(path, f"mask has shape {labels.shape} but the geometry is {dim}D; expected a {expected} mask")
    spacing = np.asarray(geometry.spacing, dtype=float)
    if len(geometry.origin) != dim or len(geometry.direction) != dim * dim:
        raise fail(path, f"geometry needs {dim} origin and {dim * dim} direction values")
    if not np.all(np.isfinite(spacing)) or not np.all(spacing > 0):
        raise fail(path, f"geometry spacing {geometry.spacing} must be positive")


def _refuse_input(path: Path, reference_path: str | os.PathLike[str] | None) -> None:
    """Raise if ``path`` is the same file as ``reference_path`` (the input image)."""
    if reference_path is None:
        return
    reference = Path(reference_path).expanduser()
    same = path.resolve() == reference.resolve()
    if not same and path.exists() and reference.exists():
        same = os.path.samefile(path, reference)
    if same:
        raise fail(path, f"refusing to overwrite the input image {reference}; choose another output path")


@contextmanager
def quiet_stderr():
    """Silence file descriptor 2 (ITK's C libraries print their own lines there; the error we raise says it)."""
    sys.stderr.flush()
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def _write_sitk(labels: np.ndarray, geometry: Geometry, target: Path) -> None:
    image = sitk.GetImageFromArray(labels)
    image.SetSpacing(geometry.spacing)
    image.SetOrigin(geometry.origin)
    image.SetDirection(geometry.direction)
    with quiet_stderr():
        sitk.WriteImage(image, str(target), useCompression=True)


def _write_png(labels: np.ndarray, geometry: Geometry, target: Path) -> None:
    from PIL import Image as PILImage

    PILImage.fromarray(labels).save(target, format="PNG")


def _write_npz(labels: np.ndarray, geometry: Geometry, target: Path) -> None:
    with target.open("wb") as handle:
        np.savez_compressed(handle, **{NPZ_MASK_KEY: labels})


def _writer(end: str) -> Callable[[np.ndarray, Geometry, Path], None]:
    if end in SITK_WRITE_ENDINGS:
        return _write_sitk
    return _write_png if end == ".png" else _write_npz


def check_output_path(path: str | os.PathLike[str], reference_path: str | os.PathLike[str] | None = None) -> Path:
    """Fail early (before any work) if ``path`` cannot take a mask: bad ending, a folder, or the input."""
    path = Path(path).expanduser()
    end = ending(path)
    if end not in WRITE_ENDINGS:
        shown = f"'{end}'" if end else "a file without ending"
        raise fail(path, f"cannot write masks as {shown}; use one of {' '.join(WRITE_ENDINGS)}")
    _refuse_input(path, reference_path)
    if path.is_dir():
        raise fail(path, "is a folder; give a file name for the mask")
    return path


def write_mask(
    mask: np.ndarray,
    geometry: Geometry,
    path: str | os.PathLike[str],
    *,
    reference_path: str | os.PathLike[str] | None = None,
    tx: Transaction | None = None,
) -> Path:
    """Write a label mask as uint8, atomically, creating the parent folder.

    Args:
        mask: Integer or bool labels 0..255, (z, y, x) for a 3D geometry or (y, x) for a 2D one
            (also for colour pictures, whose mask has no colour axis).
        geometry: Spacing, origin and direction in ITK (x, y[, z]) order, usually ``Image.geometry``
            of the input. Written exactly to .nii/.nii.gz/.nrrd/.mha (NIfTI keeps it in float32);
            .png (2D only) and .npz (key ``segs``, as CVPR24 submissions) store the labels only.
        path: Output file; its ending picks the format.
        reference_path: The input image; writing over it is refused.
        tx: Stage the mask into this transaction (written at its commit) instead of writing it now.

    Returns:
        The path written.

    Raises:
        MedsegError: Unsupported ending, mask/geometry mismatch, values outside 0..255, output is
            the input, or the write failed. Nothing is written then.
    """
    path = check_output_path(path, reference_path)
    end = ending(path)
    labels = _as_labels(mask, path)
    _check_geometry(labels, geometry, path)
    if end == ".png" and labels.ndim != 2:
        raise fail(path, f"PNG holds 2D masks only (got shape {labels.shape}); use .nii.gz for volumes")
    from medseg.io.verify import verify_for

    write_file(path, lambda temp: _writer(end)(labels, geometry, temp), verify_for(path), tx)
    return path
