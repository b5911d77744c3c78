"""CVPR24 "Segment Anything in Medical Images on Laptop" style .npz files.

Keys: ``imgs`` (2D (H, W) or (H, W, 3); 3D (D, H, W) = (z, y, x)), optional ``gts`` (labels on the
same grid), ``boxes`` and ``spacing``. The npz stores spacing in array order (z, y, x); medseg's
Geometry uses ITK order (x, y, z), so it is reversed on reading. Files are opened without pickle,
so object arrays (e.g. boxes stored as dicts) are never loaded here. The .npy headers inside the zip
are read first, so an array declared beyond the size limit (``medseg.io.limits``) is never loaded.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from medseg.io._common import check_not_empty, fail, one_line
from medseg.io.finite import check_finite
from medseg.io.image import Geometry, Image
from medseg.io.limits import check_declared_size

_IMAGE_KEY = "imgs"
_LABEL_KEY = "gts"
_SPACING_KEY = "spacing"


def _declared_shape(archive: zipfile.ZipFile, key: str) -> tuple[int, ...] | None:
    """Shape in the .npy header of ``key`` inside the archive, read without loading the array."""
    name = f"{key}.npy"
    if name not in archive.namelist():
        return None
    with archive.open(name) as stream:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            return np.lib.format.read_array_header_1_0(stream)[0]
        if version == (2, 0):
            return np.lib.format.read_array_header_2_0(stream)[0]
    return None  # other versions: np.load judges them


def _check_sizes(path: Path, keys: tuple[str, ...]) -> None:
    """Refuse arrays whose declared size is beyond the limit, before any is loaded."""
    try:
        with zipfile.ZipFile(path) as archive:
            shapes = [_declared_shape(archive, key) for key in keys]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise fail(path, f"cannot read the npz file: {one_line(exc)}") from None
    for shape in shapes:
        if shape is not None:
            check_declared_size(path, shape)


def _load(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The arrays stored under ``keys`` (those present) in the npz file at ``path``."""
    _check_sizes(path, keys)
    try:
        with np.load(path, allow_pickle=False) as archive:
            found = {key: np.asarray(archive[key]) for key in keys if key in archive.files}
            found["__keys__"] = np.asarray(sorted(archive.files))
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise fail(path, f"cannot read the npz file: {one_line(exc)}") from None
    return found


def _is_rgb(array: np.ndarray) -> bool:
    """CVPR24 convention: a 3-axis array whose last axis has length 3 is an (H, W, 3) picture."""
    return array.ndim == 3 and array.shape[-1] == 3


def _image_array(arrays: dict[str, np.ndarray], path: Path) -> np.ndarray:
    if _IMAGE_KEY not in arrays:
        keys = ", ".join(arrays["__keys__"]) or "none"
        raise fail(path, f"no '{_IMAGE_KEY}' array in the npz file (keys found: {keys})")
    array = check_not_empty(arrays[_IMAGE_KEY], path)
    if array.ndim in (2, 3):
        return array
    raise fail(path, f"'{_IMAGE_KEY}' has shape {array.shape}; 4D/multi-channel volumes are not supported "
               "(expected (H, W), (H, W, 3) or (D, H, W))")


def _geometry(arrays: dict[str, np.ndarray], dim: int, meta: dict[str, str]) -> Geometry:
    """Geometry from the optional (z, y, x) ``spacing``; ignored (noted in meta) if unusable."""
    if _SPACING_KEY not in arrays:
        return Geometry.identity(dim)
    spacing = np.asarray(arrays[_SPACING_KEY], dtype=float).ravel()
    if spacing.size != dim or not np.all(np.isfinite(spacing)) or not np.all(spacing > 0):
        meta["spacing_note"] = f"ignored spacing {spacing.tolist()} (need {dim} positive values)"
        return Geometry.identity(dim)
    return Geometry.identity(dim, tuple(float(v) for v in spacing[::-1]))


def read_npz(path: Path) -> Image:
    """Read the image of a CVPR24-style npz file.

    Args:
        path: An existing .npz file with an ``imgs`` array.

    Returns:
        Image: 3D ``imgs`` (D, H, W) as a (z, y, x) volume with spacing converted from the file's
        (z, y, x) to ITK (x, y, z); 2D ``imgs`` as (y, x) or (y, x, 3). Modality None; ``meta``
        lists the keys present.

    Raises:
        MedsegError: Unreadable file, no ``imgs``, or an unsupported shape.
    """
    arrays = _load(path, (_IMAGE_KEY, _SPACING_KEY))
    array = _image_array(arrays, path)
    dim = 2 if array.ndim == 2 or _is_rgb(array) else 3
    check_finite(array, path)
    meta = {"npz_keys": ",".join(arrays["__keys__"])}
    return Image(array, _geometry(arrays, dim, meta), modality=None, path=path, meta=meta)


def read_npz_labels(path: Path | str) -> np.ndarray | None:
    """The ground-truth labels ``gts`` of a CVPR24-style npz file, or None if it has none.

    Args:
        path: An existing .npz file.

    Returns:
        Integer labels on the image grid: (z, y, x) for volumes, (y, x) for 2D images; None if
        the file has no ``gts`` array.

    Raises:
        MedsegError: Unreadable file, or ``gts`` does not match the grid of ``imgs``.
    """
    path = Path(path)
    if not path.is_file():
        raise fail(path, "no such file")
    arrays = _load(path, (_IMAGE_KEY, _LABEL_KEY))
    if _LABEL_KEY not in arrays:
        return None
    labels = arrays[_LABEL_KEY]
    if _IMAGE_KEY in arrays:
        image = arrays[_IMAGE_KEY]
        grid = image.shape[:2] if _is_rgb(image) else image.shape
        if labels.shape != grid:
            raise fail(path, f"'{_LABEL_KEY}' has shape {labels.shape} but 'imgs' has grid {grid}")
    return labels
