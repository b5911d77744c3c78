"""``write_mask``: label masks to NIfTI / NRRD / MetaImage with their geometry, PNG, or CVPR24 npz.

Writes are atomic: the mask goes to a hidden temporary file in the target folder, which then
replaces the target with ``os.replace``; on any error the temporary file is removed and the target
is left untouched.
"""

from __future__ import annotations

import os
import secrets
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from medseg.io._common import ending, fail, one_line
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


def _write_sitk(labels: np.ndarray, geometry: Geometry, target: Path) -> None:
    image = sitk.GetImageFromArray(labels)
    image.SetSpacing(geometry.spacing)
    image.SetOrigin(geometry.origin)
    image.SetDirection(geometry.direction)
    sitk.WriteImage(image, str(target), useCompression=True)


def _write_png(labels: np.ndarray, geometry: Geometry, target: Path) -> None:
    from PIL import Image as PILImage

    PILImage.fromarray(labels).save(target, format="PNG")


def _write_npz(labels: np.ndarray, geometry: Geometry, target: Path) -> None:
    with target.open("xb") as handle:
        np.savez_compressed(handle, **{NPZ_MASK_KEY: labels})


def _writer(end: str) -> Callable[[np.ndarray, Geometry, Path], None]:
    if end in SITK_WRITE_ENDINGS:
        return _write_sitk
    return _write_png if end == ".png" else _write_npz


def _atomic_write(labels: np.ndarray, geometry: Geometry, path: Path, end: str) -> None:
    """Write to a hidden temporary file next to ``path`` (same ending), then ``os.replace`` it."""
    temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp{end}")
    try:
        _writer(end)(labels, geometry, temp)
        os.replace(temp, path)
    except (RuntimeError, OSError, ValueError, zipfile.LargeZipFile) as exc:
        raise fail(path, f"cannot write the mask: {one_line(exc)}") from None
    finally:
        temp.unlink(missing_ok=True)


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
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise fail(path, f"cannot create the output folder: {one_line(exc)}") from None
    _atomic_write(labels, geometry, path, end)
    return path
