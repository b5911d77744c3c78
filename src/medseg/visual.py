"""Pictures people look at: a slice with the mask drawn over it."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from PIL import ImageDraw, ImageOps
from scipy import ndimage

from medseg.files import Transaction, write_file

COLOURS = [(255, 64, 64), (64, 200, 255), (255, 210, 0), (120, 255, 120), (255, 120, 255), (255, 150, 60)]


def overlay(slice_0_255: np.ndarray, labels: np.ndarray, boxes: list[tuple[float, float, float, float]] = (),
            points: list[tuple[float, float, bool]] = (), alpha: float = 0.35) -> PILImage.Image:
    """Draw labels (filled, with contours), boxes and points over a slice.

    Args:
        slice_0_255: (H, W) or (H, W, 3) values in 0..255.
        labels: (H, W) integer label map.
        boxes: (x0, y0, x1, y1) pixel boxes.
        points: (x, y, positive) clicks; positive green, negative red.
    """
    base = np.clip(slice_0_255, 0, 255).astype(np.uint8)
    rgb = np.repeat(base[..., None], 3, axis=2).astype(np.float32) if base.ndim == 2 else base.astype(np.float32)
    for value in np.unique(labels[labels > 0]):
        colour = np.array(COLOURS[(int(value) - 1) % len(COLOURS)], np.float32)
        region = labels == value
        rgb[region] = (1 - alpha) * rgb[region] + alpha * colour
        edge = region & ~ndimage.binary_erosion(region)
        rgb[edge] = colour
    picture = PILImage.fromarray(rgb.astype(np.uint8))
    draw = ImageDraw.Draw(picture)
    for x0, y0, x1, y1 in boxes:
        draw.rectangle([x0, y0, x1, y1], outline=(0, 255, 0))
    for x, y, positive in points:
        colour = (0, 255, 0) if positive else (255, 0, 0)
        draw.ellipse([x - 3, y - 3, x + 3, y + 3], outline=colour, fill=colour)
    return picture


def radiological(picture: PILImage.Image, direction: tuple[float, ...]) -> PILImage.Image:
    """Flip an axial slice of a volume for display: anterior up, patient left on the image's right.

    Only for volumes whose direction matrix (ITK LPS, row-major 3x3) is diagonal; others are
    returned as they are (array order).
    """
    d = np.asarray(direction, float).reshape(3, 3)
    if not np.allclose(d, np.diag(np.diag(d))):
        return picture
    if d[1, 1] < 0:  # rows run posterior -> anterior; put anterior at the top
        picture = ImageOps.flip(picture)
    if d[0, 0] < 0:  # columns run towards patient right; radiological view has patient left on the right
        picture = ImageOps.mirror(picture)
    return picture


def save_png(picture: PILImage.Image, path: str | os.PathLike[str], tx: Transaction | None = None) -> Path:
    """Write a PNG atomically and checked (``medseg.files``), or stage it into ``tx``."""
    from medseg.io.verify import verify_for

    return write_file(path, lambda temp: picture.save(temp, format="PNG"), verify_for("overlay.png"), tx)
