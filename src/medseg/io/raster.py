"""2D picture formats: PNG and JPEG with Pillow, TIFF with tifffile.

Every reader returns grey pictures as (y, x) and colour ones as (y, x, 3) RGB (alpha dropped), with a
2D identity Geometry: spacing (1, 1), origin (0, 0). Pixel types are kept (uint16 stays uint16).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medseg.errors import MedsegError
from medseg.io._common import check_not_empty, drop_alpha, fail, one_line
from medseg.io.finite import check_finite
from medseg.io.image import Geometry, Image
from medseg.io.limits import check_declared_size
from medseg.io.quiet import silenced

_AS_IS_MODES = ("L", "I", "F", "I;16", "I;16L", "I;16B", "RGB")
_TO_RGBA_MODES = ("P", "PA", "RGBA", "LA", "RGBa", "La")


def _pil_array(picture, path: Path) -> np.ndarray:
    """Pixels of a Pillow image as (y, x) grey or (y, x, 3) RGB."""
    if picture.mode == "1":
        picture = picture.convert("L")
    if picture.mode == "LA":
        return np.asarray(picture)[..., 0]
    if picture.mode not in _AS_IS_MODES:
        picture = picture.convert("RGBA" if picture.mode in _TO_RGBA_MODES else "RGB")
    array = np.asarray(picture)
    return drop_alpha(array, path) if array.ndim == 3 else array


def _finish(array: np.ndarray, path: Path, meta: dict[str, str]) -> Image:
    array = check_not_empty(np.ascontiguousarray(array), path)
    check_finite(array, path)
    if array.dtype == bool:
        array = array.astype(np.uint8)
    if not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    return Image(array, Geometry.identity(2), modality=None, path=path, meta=meta)


def read_pil(path: Path) -> Image:
    """Read a PNG or JPEG picture (the first frame of an animated one).

    Pillow's decompression-bomb check (a warning, then an error at 2x its own limit) is replaced by
    medseg's limit (``medseg.io.limits``), checked on the declared size before the pixels are decoded.

    Args:
        path: An existing .png, .jpg or .jpeg file.

    Returns:
        Image with a (y, x) grey or (y, x, 3) RGB array and a 2D identity geometry.

    Raises:
        MedsegError: The file is not a picture Pillow can decode.
    """
    from PIL import Image as PILImage  # here, not at import: 6 ms of every command's start

    meta: dict[str, str] = {}
    with silenced():  # holds the lock: Pillow's limit is global, restored before another read
        bomb_limit, PILImage.MAX_IMAGE_PIXELS = PILImage.MAX_IMAGE_PIXELS, None  # medseg's limit instead
        try:
            with PILImage.open(path) as picture:
                check_declared_size(path, picture.size, len(picture.getbands()))
                picture.load()
                frames = getattr(picture, "n_frames", 1)
                if frames > 1:
                    meta["frames_note"] = f"{frames} frames in the file; read the first"
                array = _pil_array(picture, path)
        except (OSError, ValueError, SyntaxError, PILImage.DecompressionBombError) as exc:
            raise fail(path, f"cannot read the picture: {one_line(exc)}") from None
        finally:
            PILImage.MAX_IMAGE_PIXELS = bomb_limit
    return _finish(array, path, meta)


def _tiff_to_2d(array: np.ndarray, axes: str, path: Path) -> np.ndarray:
    """Reduce a tifffile series with ``axes`` (e.g. 'YX', 'YXS', 'SYX', 'QYX') to (y, x[, 3])."""
    if "S" in axes:
        array = np.moveaxis(array, axes.index("S"), -1)
        axes = axes.replace("S", "") + "S"
    extra = [i for i, axis in enumerate(axes) if axis not in "YXS"]
    if any(array.shape[i] != 1 for i in extra):
        raise fail(path, f"TIFF stacks are not supported (axes {axes}, shape {array.shape}); "
                   "give one 2D grey or RGB picture, or a volume as .nii.gz / .nrrd / .mha")
    array = array.reshape([n for i, n in enumerate(array.shape) if i not in extra])
    return drop_alpha(array, path) if axes.endswith("S") else array


def read_tiff(path: Path) -> Image:
    """Read a 2D TIFF picture with tifffile, keeping its pixel type (e.g. uint16).

    Args:
        path: An existing .tif or .tiff file with one grey or RGB(A) picture.

    Returns:
        Image with a (y, x) grey or (y, x, 3) RGB array and a 2D identity geometry.

    Raises:
        MedsegError: The file cannot be decoded, or holds a stack / multi-channel image.
    """
    import tifffile  # here, not at import: 9 ms of every command's start

    try:
        with silenced(), tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            check_declared_size(path, series.shape)
            array, axes = series.asarray(), series.axes
    except MedsegError:
        raise
    except Exception as exc:  # tifffile raises many types on corrupt files
        raise fail(path, f"cannot read the TIFF: {one_line(exc)}") from None
    return _finish(_tiff_to_2d(np.asarray(array), axes, path), path, {})
