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
- the click must lie in the structure as moved to the scan's intensities, and so must its six neighbours (a click on
  the structure's very edge keeps the model's answer), and the mean of its 3 x 3 x 3 neighbourhood must lie within
  3 robust standard deviations of the structure's median intensity: a click on a lesion darker or brighter than
  the structure keeps the model's answer.

The object it makes is of kind ``"atlas"`` and carries the structure's name; corrections edit it as any object.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from medseg.errors import MedsegError
from medseg.io.image import Image
from medseg.text.vocabulary import Resolved

POINTED = frozenset({"thalamus", "caudate", "putamen", "pallidum", "hippocampus", "amygdala", "accumbens"})
TYPICAL = 3.0  # robust standard deviations from the structure's median the click's neighbourhood may lie


@dataclass
class Pointed:
    """The structure under a click.

    Attributes:
        route: the atlas route that served it.
        resolved: its name (``resolved.name``: "left thalamus").
        mask: bool (z, y, x) the structure on the scan grid, moved to the scan's intensities.
    """

    route: Any
    resolved: Resolved
    mask: np.ndarray


def might_serve(image: Image) -> bool:
    """Cheap first test, before any atlas is loaded: a 3D volume that is not CT."""
    from medseg.text.atlas_route import refusal

    return refusal(image) is None


def structure_at(router: Any, image: Image, x: float, y: float, z: int) -> Pointed | None:
    """The :data:`POINTED` structure of an atlas route under voxel (x, y, z), or None (the model answers).

    A route that cannot serve the scan (refused, registration failed) is skipped; its registration is made once
    per scan and cached (``AtlasRoute.warped``).
    """
    from medseg.text.intensity import refine_by_intensity

    col, row = int(round(x)), int(round(y))
    for route in router.routes:
        if getattr(route, "kind", None) != "atlas" or route.accepts(image):
            continue
        try:
            warped = route.warped(image)
        except MedsegError:
            continue
        value = int(warped.labels[z, row, col])
        entry = next((e for e in route.vocabulary.entries.values() if value in e.values), None) if value else None
        if entry is None or entry.key not in POINTED:
            return None
        resolved = Resolved(entry.name, entry.name, ((entry.key, entry.side),), "click")
        mask = refine_by_intensity(route.prior(image, resolved), image.array)
        ok = _inside(mask, z, row, col) and _typical(image.array, mask, z, row, col)
        return Pointed(route, resolved, mask) if ok else None
    return None


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


def _inside(mask: np.ndarray, z: int, row: int, col: int) -> bool:
    """The voxel and its six face neighbours (those inside the volume) are all in ``mask``."""
    for dz, dy, dx in ((0, 0, 0), (1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, 0, 1), (0, 0, -1)):
        at = (z + dz, row + dy, col + dx)
        if all(0 <= v < n for v, n in zip(at, mask.shape, strict=True)) and not mask[at]:
            return False
    return True
