"""From a prior mask (the warped atlas label) to the promptable model's mask, slice by slice.

Each axial slice (z) the prior touches is prompted with the prior's box on that slice, widened by
``margin`` pixels; ``"box+mask"`` also passes the prior slice as the mask prompt (logits +-``MASK_LOGIT``
on the decoder's 256x256 low-res grid). The model's mask is kept inside the widened box. ``"atlas"``
keeps the prior itself; ``"intensity"`` moves it to the scan's edges by its intensities
(``medseg.text.intensity``, no model). Which refinement is used by default is measured (``benchmarks/results/text``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from medseg.predict.predictor import Prediction
from medseg.predict.propagate import SliceResult

REFINES = ("atlas", "intensity", "box", "box+mask")
MASK_LOGIT = 6.0
LOW_RES = 256

Decode = Callable[..., Prediction]


def widened_box(mask: np.ndarray, margin: float) -> np.ndarray | None:
    """(4,) float32 (x0, y0, x1, y1) around a (H, W) mask, widened by ``margin`` px and kept on the slice."""
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return None
    h, w = mask.shape
    return np.array([max(xs.min() - margin, 0), max(ys.min() - margin, 0),
                     min(xs.max() + margin, w - 1), min(ys.max() + margin, h - 1)], np.float32)


def low_res_prior(mask: np.ndarray) -> np.ndarray:
    """(1, 256, 256) logits of a (H, W) bool mask in the decoder's low-res frame (longest side 256, padded)."""
    h, w = mask.shape
    scale = LOW_RES / max(h, w)
    sh, sw = max(int(round(h * scale)), 1), max(int(round(w * scale)), 1)
    rows = np.minimum(((np.arange(sh) + 0.5) / scale).astype(int), h - 1)
    cols = np.minimum(((np.arange(sw) + 0.5) / scale).astype(int), w - 1)
    out = np.full((1, LOW_RES, LOW_RES), -MASK_LOGIT, np.float32)
    out[0, :sh, :sw] = np.where(mask[np.ix_(rows, cols)], MASK_LOGIT, -MASK_LOGIT)
    return out


def refine_slices(decode: Decode, prior: np.ndarray, refine: str = "box",
                  margin: float = 3.0, image: np.ndarray | None = None) -> dict[int, SliceResult]:
    """Per-slice results for one structure.

    Args:
        decode: ``decode(z, box=..., mask_input=...)`` -> Prediction for slice z (a VolumeSession's).
        prior: (z, y, x) bool prior mask on the volume grid.
        refine: one of :data:`REFINES`.
        margin: box widening, pixels.
        image: (z, y, x) the scan's voxels, needed by ``"intensity"``.

    Returns:
        z -> SliceResult for every slice the prior touches.
    """
    if refine not in REFINES:
        raise ValueError(f"refine must be one of {REFINES}, got {refine!r}")
    if refine == "intensity":
        if image is None:
            raise ValueError("refine 'intensity' needs the scan's image")
        from medseg.text.intensity import refine_by_intensity

        prior, refine = refine_by_intensity(prior, image), "atlas"
    out = {}
    for z in np.nonzero(prior.any(axis=(1, 2)))[0]:
        z = int(z)
        box = widened_box(prior[z], margin)
        if refine == "atlas":
            out[z] = SliceResult(prior[z].copy(), low_res_prior(prior[z]), float("nan"), box)  # no model IoU
            continue
        mask_input = low_res_prior(prior[z]) if refine == "box+mask" else None
        pred = decode(z, box=box, mask_input=mask_input)
        mask = pred.masks[0].copy()
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        keep = np.zeros_like(mask)
        keep[y0:y1 + 1, x0:x1 + 1] = True
        out[z] = SliceResult(mask & keep, pred.low_res_logits[0:1], float(pred.iou[0]), box)
    return out
