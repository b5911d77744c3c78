"""A lone positive click -> a 2D mask, with a box-trained model.

LiteMedSAM was trained with boxes: a click on its own gives a mask of a few pixels (mean 2D Dice 0.013
on 12 Colin27 AAL structures, clicks at each structure's deepest pixel on three slices). So a click is
answered with box proposals: square boxes of growing size centred on the click, each decoded together
with the click. The answer is the smallest proposal whose mask holds the click and stays clear of its
box's border (the object is enclosed, not cut by the box), or a larger one while the next proposal still
encloses a mask holding the click with a higher predicted IoU (the first enclosed mask is often a part of
a larger lesion or organ); when none is enclosed, the one with the highest predicted IoU.
Mean 2D Dice with the first enclosed proposal (scripts/eval_click.py, benchmarks/results/click_dice.md),
click alone -> proposals (tight box from the ground truth for reference): Colin27 0.013 -> 0.538 (0.678),
125 stardist nuclei 0.109 -> 0.704 (0.807). Climbing on (benchmarks/results/interactive/click_rule.md):
held-out one-point Dice 0.484 -> 0.524 (mean of five sets), spine MR 0.228 -> 0.410.

A click-trained decoder (the ``litemedsam-interactive`` card, ``Predictor.click_trained``) answers the
click itself: ``direct=True`` decodes the lone point (single-mask output) without proposals.
"""

from __future__ import annotations

import numpy as np

from medseg.predict.propagate import Decode, SliceResult

GROWTH = 1.4  # ratio between the half-widths of consecutive proposals
SMALLEST = 4.0  # half-width in pixels of the first proposal
MARGIN = 2  # pixels a mask must keep from its proposal's border to count as enclosed
MIN_AREA = 4


def half_widths(shape: tuple[int, int]) -> list[float]:
    """Half-widths of the proposals: SMALLEST growing by GROWTH up to half the slice's shorter side."""
    out, s = [], SMALLEST
    while s <= min(shape) / 2:
        out.append(s)
        s *= GROWTH
    return out or [SMALLEST]


def proposal_box(x: float, y: float, half: float, shape: tuple[int, int]) -> np.ndarray:
    """(x0, y0, x1, y1) square of half-width ``half`` around (x, y), clipped to the (H, W) slice."""
    h, w = shape
    return np.array([max(x - half, 0), max(y - half, 0), min(x + half, w - 1), min(y + half, h - 1)], np.float32)


def enclosed(mask: np.ndarray, box: np.ndarray, margin: int = MARGIN) -> bool:
    """Whether a (H, W) mask stays ``margin`` pixels inside the box, except where the box meets the
    slice's edge (an object may touch the image border)."""
    h, w = mask.shape
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    inner = np.zeros_like(mask)
    lo_y, hi_y = (y0 + margin if y0 > 0 else 0), (y1 - margin if y1 < h - 1 else h - 1)
    lo_x, hi_x = (x0 + margin if x0 > 0 else 0), (x1 - margin if x1 < w - 1 else w - 1)
    inner[lo_y:hi_y + 1, lo_x:hi_x + 1] = True
    return not (mask & ~inner).any()


def segment_click(decode: Decode, z: int, x: float, y: float, shape: tuple[int, int],
                  direct: bool = False, climb: bool = True) -> SliceResult:
    """Segment the object under a positive click at (x, y) on slice z of (H, W) ``shape``.

    With ``direct`` (a click-trained model) the click alone is decoded; otherwise box proposals are tried.
    ``climb=False`` keeps the first enclosed mask (a correction's region: the local part under the click).
    """
    point, label = np.array([[x, y]], np.float32), np.array([1])
    if direct:
        pred = decode(z, points=point, point_labels=label)
        return SliceResult(pred.masks[0], pred.low_res_logits[:1], float(pred.iou[0]), None)
    col, row = min(int(round(x)), shape[1] - 1), min(int(round(y)), shape[0] - 1)
    fallback: SliceResult | None = None
    last: SliceResult | None = None
    found: SliceResult | None = None
    for half in half_widths(shape):
        box = proposal_box(x, y, half, shape)
        pred = decode(z, box=box, points=point, point_labels=label)
        res = last = SliceResult(pred.masks[0], pred.low_res_logits[:1], float(pred.iou[0]), box)
        whole = bool(res.mask[row, col]) and res.area >= MIN_AREA and enclosed(res.mask, box)
        if found is not None:
            if not whole or res.iou <= found.iou:
                return found
            found = res  # the larger proposal encloses a better mask: climb on
            continue
        if not res.mask[row, col] or res.area < MIN_AREA:
            continue
        if whole:
            if not climb:
                return res
            found = res
            continue
        if fallback is None or res.iou > fallback.iou:
            fallback = res
    if found is not None:
        return found
    if fallback is not None:
        return fallback
    assert last is not None  # half_widths() is never empty
    return SliceResult(np.zeros(shape, bool), last.logits, 0.0, None)  # nothing under the click
