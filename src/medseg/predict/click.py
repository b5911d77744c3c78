"""A lone positive click -> a 2D mask, with a box-trained model.

LiteMedSAM was trained with boxes: a click on its own gives a mask of a few pixels (mean 2D Dice 0.013
on 12 Colin27 AAL structures, clicks at each structure's deepest pixel on three slices). So a click is
answered with box proposals: square boxes of growing size centred on the click, each decoded from its box
alone (beside a box, the click lowers LiteMedSAM's Dice). Among the masks that hold the click, the one with
the best score of ``medseg.predict.click_choice`` answers: a linear score, fitted on the training sources, of
the model's predicted IoU, how the mask sits in its box, how it changes between proposals and how well its
border follows the image's edges. In 3D the three planes through the click choose together
(``medseg.predict.extent.joint_choice``). Before (2026-12-03 .. 12-04) the answer was the first proposal
whose box + click mask was enclosed, climbing on while the next one was rated higher; a correction's region
(``climb=False``) still takes that first enclosed mask, the local part under the click.

Measured: ``scripts/fit_click_choice.py`` (2D, every proposal of every object's slices) and
``benchmarks/interactive_eval.py`` (the 3D protocol), see docs/interactive.md.

A click-trained decoder (the ``litemedsam-interactive`` card, ``Predictor.click_trained``) answers the
click itself: ``direct=True`` decodes the lone point (single-mask output) without proposals.
"""

from __future__ import annotations

import numpy as np

from medseg.predict.correct import click_depth
from medseg.predict.propagate import Decode, SliceResult

GROWTH = 1.4  # ratio between the half-widths of consecutive proposals
SMALLEST = 4.0  # half-width in pixels of the first proposal
MARGIN = 2  # pixels a mask must keep from its proposal's border to count as enclosed
# A correction's region (``climb=False``) starts at proposals of this half-width in model pixels (a box of two
# embedding cells): on a 512 slice SMALLEST is 2 model pixels, half a cell. RIDER CT, the 12 corrections of
# benchmarks/bench_serve.py in process: the same masks, 202 -> 166 decodes, median 438 -> 376 ms a click (Intel Xeon,
# 2 cores); the held-out 3D protocol is unchanged click for click.
CORRECTION_SMALLEST = 4.0
# A correction's proposals are decoded in full but upscaled (``Predictor.predict(only=...)``) only within a square
# PARTIAL times as wide as the proposal around the click: a mask that leaves its box shows there, so the choice of
# the first enclosed mask is the same, and the upscaling was about 40 % of a whole-slice decode (ONNX Runtime profile,
# 2026-12-05: 20.3 -> 12.0 ms). A mask that left every box (the fallback) is decoded again whole. Only a part of a mask
# lying apart from the rest beyond that square would go unseen.
PARTIAL = 2.0
MIN_AREA = 4
# When no proposal's mask holds the click (a click on a structure's border, a dark voxel inside it, or at the scan's
# edge, where the clipped boxes' masks stop short of it), the masks that come within NEAR pixels of the click answer,
# joined to it by the disc around the click that reaches them. Before, such a lone click gave an empty object: 3 of 68
# random clicks inside training structures (spine CT, pycerr pat_1-3, Colin27 AAL; benchmarks/results/interactive/
# near_click.md).
NEAR = 3.0


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
                  direct: bool = False, climb: bool = True, image: np.ndarray | None = None,
                  smallest: float = 0.0) -> SliceResult:
    """Segment the object under a positive click at (x, y) on slice z of (H, W) ``shape``.

    With ``direct`` (a click-trained model) the click alone is decoded. Otherwise box proposals are tried:
    given the slice's 0..255 ``image``, every proposal is decoded from its box alone and the best-scored one
    whose mask holds the click answers (``medseg.predict.click_choice``); without it, the earlier rule
    (``_climbing``); ``climb=False`` (a correction's region: the local part under the click) keeps the first
    enclosed mask of box + click proposals. ``smallest``: proposals of a smaller half-width (pixels) are skipped
    (the climbing rule; at least the largest is tried).
    """
    point, label = np.array([[x, y]], np.float32), np.array([1])
    if direct:
        pred = decode(z, points=point, point_labels=label)
        return SliceResult(pred.masks[0], pred.low_res_logits[:1], float(pred.iou[0]), None)
    if climb and image is not None:
        return _chosen(decode, z, x, y, shape, image)
    return _climbing(decode, z, x, y, shape, climb, smallest)


def _chosen(decode: Decode, z: int, x: float, y: float, shape: tuple[int, int], image: np.ndarray) -> SliceResult:
    ranked = choices(decode, z, x, y, shape, image)
    if not ranked:  # nothing under the click
        return empty_result(shape)
    return max(ranked, key=lambda c: c[1])[0]


def empty_result(shape: tuple[int, int]) -> SliceResult:
    """Nothing under the click: an empty mask, zero logits."""
    return SliceResult(np.zeros(shape, bool), np.zeros((1, 256, 256), np.float32), 0.0, None)


def choices(decode: Decode, z: int, x: float, y: float, shape: tuple[int, int],
            image: np.ndarray) -> list[tuple[SliceResult, float]]:
    """Every box proposal around the click whose mask holds it, decoded from its box alone, with its score
    (``medseg.predict.click_choice``), smallest proposal first."""
    from medseg.predict.click_choice import SliceStats, feature_rows, scores

    col, row = min(int(round(x)), shape[1] - 1), min(int(round(y)), shape[0] - 1)
    results = []
    for half in half_widths(shape):
        box = proposal_box(x, y, half, shape)
        pred = decode(z, box=box)
        results.append(SliceResult(pred.masks[0], pred.low_res_logits[:1], float(pred.iou[0]), box))
    if not any(r.mask[row, col] for r in results):
        results = [joined(r, col, row) for r in results]
        if not any(r.mask[row, col] for r in results):
            return []
    rows = feature_rows([r.mask for r in results], [r.iou for r in results], [r.box for r in results],
                        [enclosed(r.mask, r.box) for r in results], SliceStats(image))
    score = scores(rows)
    return [(r, float(score[i])) for i, r in enumerate(results) if r.mask[row, col]]


def joined(res: SliceResult, col: int, row: int, near: float | None = None) -> SliceResult:
    """``res`` with its mask joined to the pixel (col, row) by the disc around it that reaches the mask, when the
    mask comes within ``near`` (default NEAR) pixels of it; else ``res`` unchanged."""
    if not res.mask.any():
        return res
    distance = click_depth(res.mask, col, row, True)
    if distance > (NEAR if near is None else near):
        return res
    yy, xx = np.ogrid[: res.mask.shape[0], : res.mask.shape[1]]
    mask = res.mask | ((yy - row) ** 2 + (xx - col) ** 2 <= distance**2 + 1e-6)
    return SliceResult(mask, res.logits, res.iou, res.box)


def _climbing(decode: Decode, z: int, x: float, y: float, shape: tuple[int, int], climb: bool = True,
              smallest: float = 0.0) -> SliceResult:
    """The rule before the fitted choice (kept for the coronal and sagittal planes of a 2D box, where the box
    path measured it, and, with ``climb=False``, for a correction's region): box + click proposals, the first
    enclosed mask, climbing on while the next proposal encloses a mask holding the click that the model rates
    higher; else the best-rated mask holding it."""
    point, label = np.array([[x, y]], np.float32), np.array([1])
    col, row = min(int(round(x)), shape[1] - 1), min(int(round(y)), shape[0] - 1)
    fallback: SliceResult | None = None
    last: SliceResult | None = None
    found: SliceResult | None = None
    halves = half_widths(shape)
    for half in [h for h in halves if h >= smallest] or halves[-1:]:
        box = proposal_box(x, y, half, shape)
        # a correction's region needs the mask only around its box (``PARTIAL``); a fallback is decoded whole below
        only = {} if climb else {"only": proposal_box(x, y, PARTIAL * half, shape)}
        pred = decode(z, box=box, points=point, point_labels=label, **only)
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
        if climb:
            return fallback
        pred = decode(z, box=fallback.box, points=point, point_labels=label)  # a mask beyond its box: all of it
        return SliceResult(pred.masks[0], pred.low_res_logits[:1], float(pred.iou[0]), fallback.box)
    assert last is not None  # half_widths() is never empty
    return SliceResult(np.zeros(shape, bool), last.logits, 0.0, None)  # nothing under the click
