"""Spacing-aware overlap and surface metrics for 2D and 3D masks.

Masks are boolean arrays in array order, (z, y, x) or (y, x); spacing is given in ITK order (x, y[, z])
as ``Image.geometry.spacing`` holds it and reversed here.

* Dice = 2 |P ∩ G| / (|P| + |G|).
* Surface distances come from DeepMind's ``surface-distance`` (the reference implementation of
  Nikolov et al. 2018): the surface is made of contour segments (2D) or surface elements (3D) on the
  voxel-corner grid, each weighted by its length / area in mm, so anisotropic spacing does not bias
  the result towards the finely sampled directions.
* NSD at tolerance t mm: (area of P's surface within t of G's + area of G's within t of P's) /
  (area of P's surface + area of G's), i.e. ``compute_surface_dice_at_tolerance``.
* HD95: max of the two directed, area-weighted 95th percentiles of the surface distances
  (``compute_robust_hausdorff(.., 95)``).

Empty masks (documented convention, tested):

* both empty: Dice 1, NSD 1, HD95 0 (a correct "nothing here");
* exactly one empty: Dice 0, NSD 0, HD95 = inf (no surface to measure to). Aggregates report the
  mean HD95 over the finite values and count the infinite ones separately; JSON writes inf as null.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass

import numpy as np

from medseg.errors import MedsegError

DEFAULT_NSD_TOLERANCE_MM = 2.0


@dataclass(frozen=True)
class Scores:
    """Metrics of one structure in one case. hd95 is in mm (inf when exactly one mask is empty)."""

    dice: float
    nsd: float
    hd95: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def array_spacing(spacing_xyz: tuple[float, ...] | None, ndim: int) -> tuple[float, ...]:
    """Spacing in array order (z, y, x) / (y, x) from ITK order (x, y[, z]); unit spacing for None."""
    if spacing_xyz is None:
        return (1.0,) * ndim
    if len(spacing_xyz) != ndim:
        raise MedsegError(f"spacing {tuple(spacing_xyz)} has {len(spacing_xyz)} values for a {ndim}D mask")
    if not all(math.isfinite(s) and s > 0 for s in spacing_xyz):
        raise MedsegError(f"spacing {tuple(spacing_xyz)} must be positive")
    return tuple(float(s) for s in reversed(spacing_xyz))


def dice(pred: np.ndarray, gt: np.ndarray) -> float:
    """Dice of two boolean masks of one shape; 1.0 when both are empty."""
    pred, gt = _pair(pred, gt)
    total = int(pred.sum()) + int(gt.sum())
    if total == 0:
        return 1.0
    return 2.0 * int(np.logical_and(pred, gt).sum()) / total


def surface_distances(pred: np.ndarray, gt: np.ndarray, spacing_xyz: tuple[float, ...] | None = None) -> dict:
    """DeepMind's surface-distance record of two non-empty masks (distances in mm and surfel areas).

    Args:
        pred, gt: boolean masks, (z, y, x) or (y, x), same shape, both non-empty.
        spacing_xyz: voxel size in mm in ITK order (x, y[, z]), e.g. ``Image.geometry.spacing``.
    """
    from surface_distance import metrics as sd

    pred, gt = _pair(pred, gt)
    if not pred.any() or not gt.any():
        raise ValueError("surface distances need two non-empty masks")
    spacing = array_spacing(spacing_xyz, pred.ndim)
    with warnings.catch_warnings():  # it calls scipy.ndimage.filters / .morphology (deprecated aliases)
        warnings.simplefilter("ignore", DeprecationWarning)
        return sd.compute_surface_distances(gt, pred, spacing)


def nsd(pred: np.ndarray, gt: np.ndarray, tolerance_mm: float = DEFAULT_NSD_TOLERANCE_MM,
        spacing_xyz: tuple[float, ...] | None = None) -> float:
    """Normalised surface Dice at ``tolerance_mm``; see the module docstring for empty masks."""
    return score(pred, gt, spacing_xyz, tolerance_mm).nsd


def hd95(pred: np.ndarray, gt: np.ndarray, spacing_xyz: tuple[float, ...] | None = None) -> float:
    """95th-percentile symmetric Hausdorff distance in mm; see the module docstring for empty masks."""
    return score(pred, gt, spacing_xyz).hd95


def score(pred: np.ndarray, gt: np.ndarray, spacing_xyz: tuple[float, ...] | None = None,
          tolerance_mm: float = DEFAULT_NSD_TOLERANCE_MM) -> Scores:
    """Dice, NSD at ``tolerance_mm`` and HD95 of one structure.

    Args:
        pred, gt: boolean masks, (z, y, x) or (y, x), same shape.
        spacing_xyz: voxel size in mm in ITK order (x, y[, z]); None means 1 mm.
        tolerance_mm: NSD tolerance in mm.
    """
    pred, gt = _pair(pred, gt)
    has_pred, has_gt = bool(pred.any()), bool(gt.any())
    if not has_pred and not has_gt:
        return Scores(1.0, 1.0, 0.0)
    if not has_pred or not has_gt:
        return Scores(0.0, 0.0, math.inf)
    from surface_distance import metrics as sd

    distances = surface_distances(pred, gt, spacing_xyz)
    surface_dice = float(sd.compute_surface_dice_at_tolerance(distances, tolerance_mm))
    h95 = float(sd.compute_robust_hausdorff(distances, 95))
    return Scores(dice(pred, gt), surface_dice, h95)


def score_labels(pred: np.ndarray, gt: np.ndarray, labels: list[int], spacing_xyz: tuple[float, ...] | None = None,
                 tolerance_mm: float = DEFAULT_NSD_TOLERANCE_MM) -> dict[int, Scores]:
    """Scores of each label value of two label maps on one grid."""
    pred, gt = np.asarray(pred), np.asarray(gt)
    if pred.shape != gt.shape:
        raise MedsegError(f"prediction shape {pred.shape} differs from ground truth shape {gt.shape}")
    return {label: score(pred == label, gt == label, spacing_xyz, tolerance_mm) for label in labels}


def mean_scores(rows: list[dict]) -> dict[str, float | int | None]:
    """Means of dice / nsd / hd95 over rows; hd95 over finite values, with ``hd95_infinite`` counted."""
    if not rows:
        return {"dice": None, "nsd": None, "hd95": None, "hd95_infinite": 0}
    finite = [r["hd95"] for r in rows if r["hd95"] is not None and math.isfinite(r["hd95"])]
    return {
        "dice": float(np.mean([r["dice"] for r in rows])),
        "nsd": float(np.mean([r["nsd"] for r in rows])),
        "hd95": float(np.mean(finite)) if finite else None,
        "hd95_infinite": len(rows) - len(finite),
    }


def _pair(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, gt = np.asarray(pred, bool), np.asarray(gt, bool)
    if pred.shape != gt.shape:
        raise MedsegError(f"prediction shape {pred.shape} differs from ground truth shape {gt.shape}")
    return pred, gt
