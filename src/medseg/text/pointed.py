"""The structure under a click: a new object's first click on a brain MR that lands in a deep grey structure of
the atlas route is answered with that structure (``VolumeSession.click_atlas``, on by default).

Why: LiteMedSAM was trained with boxes, and the deep grey nuclei of a T1 MR are its weak spot (faint borders;
even a tight ground-truth box gives them 0.37-0.67, docs/3d.md). A lone click there, answered by box proposals,
reached 3D Dice 0.275 on the held-out Harvard-Oxford structures, while the atlas route (docs/text.md) already
knows these structures: registered to the scan and moved to its intensities, the Colin27 AAL atlas gives the same
six structures 0.61-0.85 (``benchmarks/results/interactive/click_atlas.md``).

Rules (general, none fitted to an evaluation case):

- only routes of kind ``"atlas"``, which refuse 2D images, CT and scans whose registration to the template fails
  (spine MR, a knee, a head CT: the model answers the click as before);
- only the compact subcortical grey structures of :data:`POINTED`; a click on cortex, white matter, a ventricle or
  the cerebellum keeps the model's answer (atlas parcels of the cortex are conventions, not edges in the image);
- the click must lie in the structure as moved to the scan's intensities, and the mean of its 3 x 3 x 3
  neighbourhood within 3 robust standard deviations of the structure's median intensity: a click on a lesion darker
  or brighter than the structure keeps the model's answer. Measured on Colin27 with the default pack (training
  data; ``scripts/click_atlas_dev.py --gate``), 360 clicks uniform in 12 deep structures, 317 on a deep structure of
  the atlas: 281 answered, the atlas's Dice 0.679 for the 227 whose six neighbours lie in the moved structure and
  0.577 for the 54 next to its border (a first rule, requiring the neighbours inside, left those to the model, whose
  lone click there is weaker: SAM-Med3D protocol on Colin27, 0.000-0.381 on three of four structures); 36 refused,
  whose atlas answer would have had 0.595 (not in the moved structure) and 0.681 (atypical intensity): the price of
  the lesion guard.

The object it makes is of kind ``"atlas"`` and carries the structure's name and its :class:`Prior`. A correction
click on it is one more input to the same intensity step (``corrected``): a bump on the spatial prior around the
click, so the scan's intensities still draw the border. The model's region edits on these structures lost Dice
(Colin27, 12 deep structures, 1 / 5 / 10 clicks: 0.715 / 0.713 / 0.706; the bumps: 0.715 / 0.745 / 0.759).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from medseg.errors import MedsegError
from medseg.io.image import Image
from medseg.text.intensity import Click, refine_by_intensity
from medseg.text.vocabulary import Resolved

POINTED = frozenset({"thalamus", "caudate", "putamen", "pallidum", "hippocampus", "amygdala", "accumbens"})
# a correction's bump: BUMP x (the click's distance to the border + the finest spacing) wide. Chosen on Colin27 with
# the Harvard-Oxford pack (training data; 12 deep structures, 1 / 5 / 10 clicks; scripts/click_atlas_dev.py --bump):
# 0.7 -> 0.715 / 0.739 / 0.754, 1.0 -> 0.715 / 0.745 / 0.759, 1.3 -> 0.715 / 0.738 / 0.743, 2.0 -> 0.715 / 0.653 / 0.639
BUMP = 1.0
TYPICAL = 3.0  # robust standard deviations from the structure's median the click's neighbourhood may lie


@dataclass(frozen=True, eq=False)
class Prior:
    """What an atlas object's corrections move: the structure's warped atlas label and the clicks so far.

    Attributes:
        label: bool (z, y, x) the atlas's structure on the scan grid, before the intensity step.
        clicks: the corrections, each a bump on the spatial prior (``medseg.text.intensity.Click``).
    """

    label: np.ndarray
    clicks: tuple[Click, ...] = ()


@dataclass
class Pointed:
    """The structure under a click.

    Attributes:
        route: the atlas route that served it.
        resolved: its name (``resolved.name``: "left thalamus").
        prior: its warped atlas label (no clicks yet).
        mask: bool (z, y, x) the structure on the scan grid, moved to the scan's intensities.
    """

    route: Any
    resolved: Resolved
    prior: Prior
    mask: np.ndarray


def might_serve(image: Image) -> bool:
    """Cheap first test, before any atlas is loaded: a 3D volume that is not CT."""
    from medseg.text.atlas_route import refusal

    return refusal(image) is None


def warm(router: Any, image: Image) -> None:
    """Make (or read from the cache) the registration of every atlas route that serves ``image``; a failure is
    remembered by the route and reported when a prompt needs it."""
    for route in router.routes:
        if getattr(route, "kind", None) == "atlas":
            try:
                route.warped(image)  # a route that cannot serve the scan says so here
            except MedsegError:
                pass


def structure_at(router: Any, image: Image, x: float, y: float, z: int) -> Pointed | None:
    """The :data:`POINTED` structure of an atlas route under voxel (x, y, z), or None (the model answers).

    A route that cannot serve the scan (refused, registration failed) is skipped; its registration is made once
    per scan and cached (``AtlasRoute.warped``).
    """
    col, row = int(round(x)), int(round(y))
    for route in router.routes:
        if getattr(route, "kind", None) != "atlas":
            continue
        try:
            warped = route.warped(image)  # checks that the route serves the scan (AtlasRoute.accepts) first
        except MedsegError:
            continue
        value = int(warped.labels[z, row, col])
        entry = next((e for e in route.vocabulary.entries.values() if value in e.values), None) if value else None
        if entry is None or entry.key not in POINTED:
            return None
        resolved = Resolved(entry.name, entry.name, ((entry.key, entry.side),), "click")
        label = route.prior(image, resolved)
        mask = refine_by_intensity(label, image.array)
        ok = bool(mask[z, row, col]) and _typical(image.array, mask, z, row, col)
        return Pointed(route, resolved, Prior(label), mask) if ok else None
    return None


def corrected(prior: Prior, mask: np.ndarray, volume: np.ndarray, spacing: tuple[float, float, float],
              voxel: tuple[int, int, int], positive: bool) -> tuple[Prior, np.ndarray]:
    """An atlas object corrected by a click: (its prior with the click, the new (z, y, x) bool mask).

    The click becomes a Gaussian bump on the spatial prior of the intensity step (``refine_by_intensity``), as wide
    as BUMP x (its distance to the object's border + the finest spacing), in mm; the step then runs again with every
    click so far, so the scan's intensities still place the border, and the clicked voxel lands on its side.

    Args:
        prior: the object's Prior.
        mask: its current (z, y, x) bool mask.
        volume: the scan's voxels.
        spacing: (z, y, x) mm.
        voxel: the click (z, y, x).
        positive: a missed part (True) or a wrong one.
    """
    distance = _border_distance(mask, spacing, voxel, positive)
    width = BUMP * (distance + min(spacing))
    click = Click(voxel, positive, tuple(width / s for s in spacing))
    prior = Prior(prior.label, prior.clicks + (click,))
    return prior, refine_by_intensity(prior.label, volume, clicks=prior.clicks)


def _border_distance(mask: np.ndarray, spacing: tuple[float, float, float], voxel: tuple[int, int, int],
                     positive: bool, reach: int = 40) -> float:
    """mm from the voxel to the mask's border on its side (to the nearest mask voxel from outside, to the nearest
    voxel outside from inside), looked for within ``reach`` voxels (that far when nothing is nearer)."""
    from scipy import ndimage

    box = tuple(slice(max(c - reach, 0), c + reach + 1) for c in voxel)
    part = mask[box]
    side = ~part if positive else part
    if side.all():
        return reach * min(spacing)
    at = tuple(c - b.start for c, b in zip(voxel, box, strict=True))
    return float(ndimage.distance_transform_edt(side, sampling=spacing)[at])


def _typical(volume: np.ndarray, mask: np.ndarray, z: int, row: int, col: int) -> bool:
    """The mean of the click's 3 x 3 x 3 neighbourhood lies within TYPICAL robust standard deviations (1.4826 x the
    median absolute deviation) of the structure's median intensity: a lesion inside a structure, darker or brighter
    than it, is not the structure (deep inside, the atlas's spatial prior alone keeps it in the refined mask); the
    median and its deviation hold while a lesion fills less than half the structure."""
    around = volume[max(z - 1, 0):z + 2, max(row - 1, 0):row + 2, max(col - 1, 0):col + 2]
    values = np.asarray(volume[mask], np.float64)
    median = float(np.median(values))
    spread = 1.4826 * float(np.median(np.abs(values - median)))
    scale = max(spread, 1e-3 * (float(values.max()) - float(values.min())), 1e-6)
    return abs(float(np.mean(around)) - median) <= TYPICAL * scale

