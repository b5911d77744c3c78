"""Helpers shared by the readers and writers: file endings, one-line errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medseg.errors import MedsegError

SITK_READ_ENDINGS = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")
DICOM_ENDINGS = (".dcm",)
PIL_ENDINGS = (".png", ".jpg", ".jpeg")
TIFF_ENDINGS = (".tif", ".tiff")
NPZ_ENDINGS = (".npz",)
READ_ENDINGS = SITK_READ_ENDINGS + DICOM_ENDINGS + PIL_ENDINGS + TIFF_ENDINGS + NPZ_ENDINGS

_DOUBLE_ENDINGS = (".nii.gz",)
_MAX_REASON = 200


def ending(path: Path) -> str:
    """Lower-case file ending of ``path``, with ``.nii.gz`` kept as one ending ('' if none)."""
    name = path.name.lower()
    for double in _DOUBLE_ENDINGS:
        if name.endswith(double):
            return double
    return Path(name).suffix


def one_line(exc: BaseException) -> str:
    """A short one-line reason from any exception, SimpleITK's multi-line ones included.

    SimpleITK messages start with a source location line, then ``sitk::ERROR:`` or
    ``ITK ERROR: <Class>(0x...):`` and the actual reason, possibly followed by more lines.
    """
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    reason = next((ln for ln in lines if "ERROR:" in ln), lines[-1] if lines else type(exc).__name__)
    for marker in ("sitk::ERROR:", "ITK ERROR:"):
        if marker in reason:
            reason = reason.split(marker, 1)[1].strip()
            if "): " in reason and reason.index("): ") < 60:
                reason = reason.split("): ", 1)[1]
    reason = " ".join(reason.split())
    if len(reason) > _MAX_REASON:
        reason = reason[: _MAX_REASON - 3] + "..."
    return reason or type(exc).__name__


def fail(path: Path | str, message: str) -> MedsegError:
    """A MedsegError whose single line names ``path`` first: ``<path>: <message>``."""
    return MedsegError(" ".join(f"{path}: {message}".split()))


def check_not_empty(array: np.ndarray, path: Path) -> np.ndarray:
    """Raise a MedsegError if ``array`` holds no voxels; return it unchanged otherwise."""
    if array.size == 0:
        raise fail(path, f"the image is empty (array shape {tuple(array.shape)})")
    return array


def drop_alpha(array: np.ndarray, path: Path) -> np.ndarray:
    """Colour/grey pixels in the last axis to (y, x) grey or (y, x, 3) RGB.

    Args:
        array: (y, x, c) pixels with c in 1..4 (grey, grey+alpha, RGB, RGBA).
        path: File the array came from, for the error message.

    Returns:
        (y, x) for c in (1, 2); (y, x, 3) for c in (3, 4).
    """
    channels = array.shape[-1]
    if channels in (1, 2):
        return array[..., 0]
    if channels in (3, 4):
        return array[..., :3]
    raise fail(path, f"{channels} colour channels are not supported (grey, RGB or RGBA work)")

