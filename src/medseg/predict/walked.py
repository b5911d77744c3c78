"""A positive correction the model's region cannot answer: the missed part found by a random walker from the click.

When the region LiteMedSAM finds under a positive correction click is refused (it would more than double the object
on the slice: ``correct.within_limits``) or holds no region under the click, the edit used to be the voxels near the
click of about its intensity (``correct.grown_region``, inside the ball that reaches the object's border). On a
heterogeneous lesion or a vertebra that adds a few pixels: PyRadiomics brain1's second click, 21 pixels deep in a
missed half of the lesion, added 28 voxels where the truth missed 700 on that slice.

Here the click and the object are the seeds of one random walk (``medseg.predict.refine.walk``, Grady 2006): the
object's masks eroded by one pixel in-plane and the click's 3 x 3 pixels are in; out are the pixels more than
``REACH`` x d + 2 pixels from the object's mask on each slice (d: the click's in-plane distance to its slice's mask),
and everything outside the ball of that radius around the click. Each voxel between goes to the side a walker from it
reaches first, the edges weighted by the scan's intensity steps; the edit is what goes to the object's side outside
its masks, connected to the click. Where an edge closes the missed part the edit stops there; on even tissue far
from the object it keeps near the click (the outside seeds of the ball surround it).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from medseg.predict.propagate import placed
from medseg.predict.refine import walk

REACH = 2.0  # the out seeds lie beyond REACH x (the click's distance to the mask) + 2 pixels of it
# a walk over more voxels than this is not run (None: the intensity fallback answers): its cost grows with them, and
# a click that deep in a missed part is answered by the object's box growing (correct.grown_box) or the next clicks
MAX_VOXELS = 250_000


def walked_region(volume, masks: Mapping[int, np.ndarray], z: int, row: int, col: int,
                  spacing: tuple[float, float, float]) -> dict[int, np.ndarray] | None:
    """The voxels a positive click at (col, row) on slice z adds to the object (module docstring), or None when its
    slice has no mask, the walk would cover more than MAX_VOXELS or leaves the click out.

    Args:
        volume: the windowed (z, y, x) volume (0..255), indexable by a tuple of slices (``WindowedVolume``).
        masks: the object's slices, z -> (H, W) bool; the click lies outside its slice's mask.
        spacing: (x, y, z) in mm.

    Returns:
        z -> (H, W) bool, the added voxels on each slice they reach.
    """
    from scipy import ndimage

    current = masks.get(z)
    if current is None or not current.any():
        return None
    depth, height, width = volume.shape
    sx, sy, sz = (float(v) for v in spacing)
    reach = REACH * float(ndimage.distance_transform_edt(~current)[row, col]) + 2.0  # pixels
    r = int(np.ceil(reach)) + 2
    rz = int(np.floor(reach * min(sx, sy) / sz))
    z0, z1 = max(z - rz, 0), min(z + rz + 1, depth)
    y0, y1 = max(row - r, 0), min(row + r + 1, height)
    x0, x1 = max(col - r, 0), min(col + r + 1, width)
    if (z1 - z0) * (y1 - y0) * (x1 - x0) > MAX_VOXELS:
        return None
    mask = np.zeros((z1 - z0, y1 - y0, x1 - x0), bool)
    for k, m in masks.items():
        if z0 <= k < z1:
            mask[k - z0] = m[y0:y1, x0:x1]
    in_plane = np.zeros((3, 3, 3), bool)
    in_plane[1] = ndimage.generate_binary_structure(2, 1)
    inside = ndimage.binary_erosion(mask, in_plane, iterations=1)
    far = np.ones_like(mask)
    for k in range(z1 - z0):
        if mask[k].any():
            far[k] = ndimage.distance_transform_edt(~mask[k]) > reach
    dz, dy, dx = np.ogrid[z0 - z:z1 - z, y0 - row:y1 - row, x0 - col:x1 - col]
    ball = (dz * sz) ** 2 + (dy * sy) ** 2 + (dx * sx) ** 2 <= (reach * min(sx, sy)) ** 2
    at = (z - z0, row - y0, col - x0)
    inside[at[0], max(at[1] - 1, 0):at[1] + 2, max(at[2] - 1, 0):at[2] + 2] = True
    outside = (far | ~ball) & ~mask & ~inside
    image = np.asarray(volume[z0:z1, y0:y1, x0:x1], np.float32)
    added = (walk(image, inside, outside, (min(sx, sy) / sz) ** 2) > 0.5) & ~mask & ball
    parts, _ = ndimage.label(added)
    if not parts[at]:
        return None
    return placed(parts == parts[at], (z0, y0, x0), (height, width))
