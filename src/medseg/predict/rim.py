"""A positive correction on the rim of a high-contrast object: the border moves out to the click's level.

A lesion on CT or MR shades into its surroundings over a few pixels (the partial-volume rim). LiteMedSAM, and the
random walker after it, put the border near the steepest step; the reference masks of the lung nodules and tumours
medseg is measured on are drawn at the rim's outer side (PyRadiomics lung1: the lone click's object sits 1-2 pixels
inside the truth on every slice). A positive click a few pixels outside such an object, at an intensity between the
object's core and its surroundings, says where the user puts the border: at that level. The region under the click
(``medseg.predict.correct``) adds only the click's neighbourhood (12-14 pixels a click on lung1); this edit moves the
border out to the click's level all around, near the click.

``rim_edit`` answers when all hold (else None, and the region edit answers):
- the click lies at most ``REACH`` pixels outside the mask of its slice;
- the object stands out near the click (within ``RADIUS`` mm of it): its core there (the masks eroded by one pixel
  in-plane) and the ring 3-6 pixels outside its masks differ by at least ``CONTRAST`` robust standard deviations of the
  core;
- the click's level, (intensity - ring median) / (core median - ring median) over its 3 x 3 neighbourhood, lies in
  ``LEVELS``: a partial-volume voxel, not a neighbour as bright (or dark) as the object, nor the background.

The edit is the voxels outside the object within 2 x (the click's distance) + 1 pixels of its mask (in-plane, on the
object's slices only), whose level lies between the click's and ``LEVELS[1]``, within ``RADIUS`` mm of the click, and
connected to the click (through each other or the object); with the holes they leave on a slice filled.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from medseg.predict.correct import click_depth

REACH = 4.0  # pixels
LEVELS = (0.1, 0.9)
CONTRAST = 2.0
RADIUS = 10.0  # mm
RING = (3, 6)  # pixels outside the masks


def rim_edit(image: np.ndarray, masks: Mapping[int, np.ndarray], z: int, row: int, col: int,
             spacing: tuple[float, float, float]) -> dict[int, np.ndarray] | None:
    """The voxels a positive click at (col, row) on slice z adds to the object (module docstring), or None.

    Args:
        image: the (z, y, x) volume in its own units (HU, MR signal), not windowed: a window clips the rim's levels.
        masks: the object's slices, z -> (H, W) bool (slice z not empty, the click outside it).
        spacing: (x, y, z) in mm.

    Returns:
        z -> (H, W) bool, the added voxels of each slice they reach, or None when the rule does not apply.
    """
    from scipy import ndimage

    current = masks.get(z)
    if current is None or not current.any() or current[row, col]:
        return None
    depth = click_depth(current, col, row, True)
    if depth > REACH:
        return None
    width = 2.0 * depth + 1.0
    # everything is measured near the click: the slices and pixels within RADIUS mm of it, the band and ring around them
    sx, sy, sz = (float(v) for v in spacing)
    height, wide = current.shape
    pad = int(np.ceil(width)) + RING[1] + 1
    reach_z, reach_y, reach_x = int(RADIUS // sz), int(RADIUS // sy) + pad, int(RADIUS // sx) + pad
    z0, z1 = max(z - reach_z, 0), min(z + reach_z + 1, image.shape[0])
    y0, y1 = max(row - reach_y, 0), min(row + reach_y + 1, height)
    x0, x1 = max(col - reach_x, 0), min(col + reach_x + 1, wide)
    empty = np.zeros((y1 - y0, x1 - x0), bool)
    mask = np.stack([masks[k][y0:y1, x0:x1] if k in masks else empty for k in range(z0, z1)])
    values = np.asarray(image[z0:z1, y0:y1, x0:x1], dtype=np.float32)
    plane = np.zeros((3, 3, 3), bool)
    plane[1] = ndimage.generate_binary_structure(2, 1)  # in-plane steps only
    core = ndimage.binary_erosion(mask, plane)
    if not core.any():
        core = mask
    ring = ndimage.binary_dilation(mask, plane, iterations=RING[1]) & ~ndimage.binary_dilation(
        mask, plane, iterations=RING[0])
    if not ring.any():
        return None
    inside, outside = float(np.median(values[core])), float(np.median(values[ring]))
    q1, q3 = np.percentile(values[core], [25, 75])
    if inside == outside or abs(inside - outside) < CONTRAST * (q3 - q1) / 1.349:
        return None
    zc, rc, cc = z - z0, row - y0, col - x0
    near_click = values[zc, max(rc - 1, 0):rc + 2, max(cc - 1, 0):cc + 2]
    click_level = (float(near_click.mean()) - outside) / (inside - outside)
    if not LEVELS[0] <= click_level <= LEVELS[1]:
        return None
    level = (values - outside) / (inside - outside)
    zz, yy, xx = np.ogrid[:mask.shape[0], :mask.shape[1], :mask.shape[2]]
    ball = ((zz - zc) * sz) ** 2 + ((yy - rc) * sy) ** 2 + ((xx - cc) * sx) ** 2 <= RADIUS ** 2
    beside = ndimage.distance_transform_edt(~mask, sampling=(1e6, 1.0, 1.0)) <= width  # in-plane, own slices
    added = ~mask & beside & ball & (level >= click_level) & (level <= LEVELS[1])
    added[zc, rc, cc] = True
    parts, _ = ndimage.label(added | mask)
    added &= parts == parts[zc, rc, cc]
    out = {}
    for k in range(added.shape[0]):
        if added[k].any():  # no holes left between the object and what it gains (darker voxels of the band)
            full = np.zeros((height, wide), bool)
            full[y0:y1, x0:x1] = ndimage.binary_fill_holes(added[k] | mask[k]) & ~mask[k] & beside[k]
            out[z0 + k] = full
    return out
