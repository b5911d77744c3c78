"""Small objects decoded from a magnified crop of their slice.

LiteMedSAM sees a slice resized so that its longer side is 256 pixels: a nucleus 20 pixels across on a 512
slice is 10 model pixels, a few cells of the 64 x 64 embedding, and a box that small gives a rough mask. So a
small object (a box whose longer side is under SMALL model pixels) is decoded from a square crop of its slice
around it, SIDE_PER_BOX times the box's longer side, encoded on its own (resized to 256 and min-max normalised
like any slice). The crop's side and corner are snapped to 16 pixels, so that nearby boxes share an encode.

Who zooms: in 3D (``VolumeSession``) an object under TINY model pixels (16: 32 pixels on a 512 slice) decides
once: a 3D box's (or a 2D box's, or a lone click's chosen box's) xy extent, and for a correction the object's current
extent (when the click lies in that crop); all the object's decodes then run in that one crop, so each slice costs
one crop encode. Bigger objects, and the proposals of a lone click (whose choice was fitted on whole slices), stay on
whole slices. In 2D (``medseg segment``) a box under SMALL model pixels (32) and the clicks after it.

Measured (LiteMedSAM, tight boxes; ``tests/realdata/test_zoom_small.py``, ``benchmarks/small_lesions.py``,
``benchmarks/results/interactive/zoom.md``): the 125 stardist nuclei (512 x 512 fluorescence, 10-39 px across)
through ``medseg segment``'s 2D path, mean Dice 0.803 -> 0.876 (the 40 smallest, 10-26 px: 0.717 -> 0.819). In 3D,
five real tumours resampled into a 512 matrix: tight 3D boxes of objects under 16 model pixels gained on 6 of 7
(pycerr pat_2 at 9 px 0.014 -> 0.495), those of 16-32 model pixels lost as often as they gained (RIDER at 49 px
0.843 -> 0.712, pycerr pat_1 at 49 px 0.571 -> 0.784), hence TINY in 3D. A crop of tumours 50 model pixels across
lost Dice in a trial (RIDER 2D 0.845 -> 0.813), hence SMALL.

Prompts go into the crop and results come back on the slice: masks are pasted into the slice, and the low-res
logits (the mask prompts of later decodes) are resampled to the slice's own model frame, so a mask prompt
means the same whichever frame its decode ran in.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

ON = True  # off: every decode on the whole slice (as before 2026-12-05)
SMALL = 32.0  # model pixels: in 2D, a box whose longer side is below this is decoded from a crop
TINY = 16.0  # model pixels: the same in 3D, for every object and its corrections (see VolumeSession)
SIDE_PER_BOX = 4.0  # the crop's side over the box's longer side
MIN_SIDE = 32  # pixels: the smallest crop
OUTSIDE = -20.0  # logits where a frame has no value (as the engines' cropped decodes)

Crop = tuple[int, int, int, int]  # (row0, col0, row1, col1), ends exclusive


@dataclass(frozen=True)
class Zoomed:
    """An embedding-cache key: ``crop`` of the slice (or plane) that ``key`` names."""

    key: Hashable
    crop: Crop


def crop_for(box: Any, shape: tuple[int, int], input_size: int, small: float = SMALL) -> Crop | None:
    """The crop a decode with this (x0, y0, x1, y1) box runs on, on an (H, W) slice; None for the whole slice
    (no box, a box of ``small`` model pixels or more, or a crop that would magnify less than twice)."""
    if box is None or not ON:
        return None
    x0, y0, x1, y1 = (float(v) for v in np.asarray(box, np.float32).reshape(4))
    h, w = shape
    scale = input_size / max(h, w)
    longer = max(x1 - x0, y1 - y0) + 1.0
    if longer * scale >= small:
        return None
    step = MIN_SIDE // 2
    side = max(MIN_SIDE, int(math.ceil(SIDE_PER_BOX * longer / step)) * step)
    if 2 * side > max(h, w):
        return None

    def start(lo: float, hi: float, length: int) -> int:
        s = int(round(((lo + hi) / 2 - side / 2) / step)) * step
        return int(min(max(s, 0), max(length - side, 0)))

    r0, c0 = start(y0, y1, h), start(x0, x1, w)
    return r0, c0, min(r0 + side, h), min(c0 + side, w)


def holds(crop: Crop | None, x: float, y: float) -> bool:
    """Whether pixel (x, y) lies inside the crop."""
    return crop is not None and crop[0] <= y < crop[2] and crop[1] <= x < crop[3]


def _frame_map(crop: Crop, shape: tuple[int, int], input_size: int) -> tuple[float, float, float]:
    """(a, row offset, col offset) with crop-frame index = a * slice-frame index + offset (model pixel centres)."""
    r0, c0, r1, c1 = crop
    s_full = input_size / max(shape)
    s_crop = input_size / max(r1 - r0, c1 - c0)
    a = s_crop / s_full
    return a, 0.5 * a - r0 * s_crop - 0.5, 0.5 * a - c0 * s_crop - 0.5


def _valid(logits: np.ndarray, shape: tuple[int, int], input_size: int) -> np.ndarray:
    """Logits with the frame's padding (beyond the resized image) set to OUTSIDE."""
    s = input_size / max(shape)
    h, w = int(shape[0] * s + 0.5), int(shape[1] * s + 0.5)
    out = np.full_like(logits, OUTSIDE)
    out[..., :h, :w] = logits[..., :h, :w]
    return out


def _resample(logits: np.ndarray, a: float, off_r: float, off_c: float) -> np.ndarray:
    """(..., T, T) logits resampled: output index i reads input index a * i + offset (bilinear)."""
    from scipy import ndimage  # lazy, as elsewhere in predict/

    flat = np.asarray(logits, np.float32).reshape(-1, *logits.shape[-2:])
    out = [ndimage.affine_transform(f, (a, a), (off_r, off_c), order=1, cval=OUTSIDE) for f in flat]
    return np.stack(out).reshape(logits.shape).astype(np.float32)


def to_crop(logits: np.ndarray, crop: Crop, shape: tuple[int, int], input_size: int) -> np.ndarray:
    """Low-res logits of the slice's frame -> the crop's frame."""
    a, off_r, off_c = _frame_map(crop, shape, input_size)
    size = (crop[2] - crop[0], crop[3] - crop[1])
    inner = _resample(_valid(logits, shape, input_size), 1 / a, -off_r / a, -off_c / a)
    return _valid(inner, size, input_size)


def to_slice(logits: np.ndarray, crop: Crop, shape: tuple[int, int], input_size: int) -> np.ndarray:
    """Low-res logits of the crop's frame -> the slice's frame (OUTSIDE beyond the crop)."""
    a, off_r, off_c = _frame_map(crop, shape, input_size)
    size = (crop[2] - crop[0], crop[3] - crop[1])
    return _valid(_resample(_valid(logits, size, input_size), a, off_r, off_c), shape, input_size)


AUTO = "auto"  # decode's crop chosen from the prompt's own box


def decode(predictor, embedding_of: Callable[[Hashable], Any], key: Hashable, shape: tuple[int, int],
           crop: Crop | str | None = AUTO, **prompts):
    """``predictor.predict(**prompts)`` for slice ``key`` of (H, W) ``shape``, from a crop when the box is small.

    ``embedding_of(k)``: the cached embedding of slice ``k`` or of a ``Zoomed`` key. ``crop``: AUTO (from the
    prompt's box, ``crop_for``), None (the whole slice) or a given crop (an object's, for all its decodes). Box,
    points and the ``within`` / ``only`` regions move into the crop; a mask prompt is resampled into it; the
    masks come back pasted into the slice and the low-res logits in the slice's frame.
    """
    size = predictor.input_size
    if isinstance(crop, str):
        crop = crop_for(prompts.get("box"), shape, size)
    points = prompts.get("points")
    if crop is not None and points is not None and len(points):
        if not all(holds(crop, x, y) for x, y in np.asarray(points, np.float32).reshape(-1, 2)):
            crop = None  # a click beyond the crop: the whole slice sees it
    if crop is None:
        predictor.set_embedding(embedding_of(key), shape)
        return predictor.predict(**prompts)
    r0, c0, r1, c1 = crop
    moved = dict(prompts)
    shift = np.array([c0, r0, c0, r0], np.float32)
    for name in ("box", "within", "only"):
        if moved.get(name) is not None:
            moved[name] = np.asarray(moved[name], np.float32).reshape(4) - shift
            if name != "box":  # a region kept to the crop
                moved[name] = np.clip(moved[name], 0, [c1 - c0 - 1, r1 - r0 - 1] * 2)
    if moved.get("points") is not None and len(moved["points"]):
        moved["points"] = np.asarray(moved["points"], np.float32).reshape(-1, 2) - np.array([c0, r0], np.float32)
    if moved.get("mask_input") is not None:
        moved["mask_input"] = to_crop(np.asarray(moved["mask_input"], np.float32), crop, shape, size)
    predictor.set_embedding(embedding_of(Zoomed(key, crop)), (r1 - r0, c1 - c0))
    pred = predictor.predict(**moved)
    masks = np.zeros((pred.masks.shape[0], *shape), bool)
    masks[:, r0:r1, c0:c1] = pred.masks
    return replace(pred, masks=masks, low_res_logits=to_slice(pred.low_res_logits, crop, shape, size))


def on_slice(predictor, image: np.ndarray) -> Callable[..., Any]:
    """A decode function ``(z, **prompts)`` (z ignored) on the slice whose embedding the predictor holds, ``image``
    its 0..255 pixels: small boxes are decoded from crops (encoded once each), and the predictor holds the
    slice's own embedding again after each decode."""
    full, shape = predictor.embedding, tuple(image.shape[:2])
    crops: dict[Crop, Any] = {}

    def embedding_of(key: Hashable) -> Any:
        if not isinstance(key, Zoomed):
            return full
        if key.crop not in crops:
            r0, c0, r1, c1 = key.crop
            crops[key.crop] = predictor.embed(image[r0:r1, c0:c1])
        return crops[key.crop]

    def run(_z: int = 0, **prompts):
        try:
            return decode(predictor, embedding_of, 0, shape, **prompts)
        finally:
            predictor.set_embedding(full, shape)

    return run
