"""Where a structure lies in 3D, from one click: its masks on the three planes through the click.

A 2D model sees one slice, so one click or one 2D box says nothing about how far a structure reaches
in z. medseg segments the structure on the coronal and sagittal planes through the click as well (two
extra encodes, with the click proposals of ``medseg.predict.click``) and reads a 3D box off the three
masks: x from the axial and coronal masks, y from the axial and sagittal masks, z from the coronal and
sagittal masks. A plane whose mask is more than twice as wide as the axial mask along their shared axis
has leaked into a neighbour and is left out. The box is then segmented like a user's 3D box, and a lone click's
object ends before the first slice each way whose mask's intensities are foreign to the click's slice
(``familiar_range``): the planes' z-range often reaches past the structure.

Measured on 12 Colin27 AAL structures, one click at each structure's deepest voxel
(scripts/eval_volume.py --prompts point): see benchmarks/results/volume_dice.md.

Planes of anisotropic volumes are resampled to square pixels before encoding, since the model was
trained on images of natural aspect.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

Range = tuple[int, int]


@dataclass(frozen=True)
class Plane:
    """A coronal (axis "y") or sagittal (axis "x") plane, rows along z scaled by ``z_scale``.

    Attributes:
        axis: "y" (coronal: rows z, columns x) or "x" (sagittal: rows z, columns y).
        index: the plane's position along that axis.
        z_scale: rows of the resampled plane per slice (z spacing / in-plane spacing).
    """

    axis: str
    index: int
    z_scale: float

    def image(self, volume: np.ndarray) -> np.ndarray:
        """The plane of a (z, y, x) volume as a 2D image with square pixels."""
        cut = volume[:, self.index, :] if self.axis == "y" else volume[:, :, self.index]
        if abs(self.z_scale - 1.0) > 1e-3:
            from scipy import ndimage  # lazy: importing scipy.ndimage costs ~0.33 s at the cold start of 3D runs

            cut = ndimage.zoom(cut.astype(np.float32), (self.z_scale, 1.0), order=1)
        return np.ascontiguousarray(cut)

    def rows_to_z(self, rows: Range, depth: int) -> Range:
        """Row range of the resampled plane -> slice range of the volume."""
        lo, hi = int(np.floor(rows[0] / self.z_scale)), int(np.ceil(rows[1] / self.z_scale))
        return max(lo, 0), min(hi, depth - 1)


def planes(x: int, y: int, spacing: tuple[float, float, float]) -> tuple[Plane, Plane]:
    """The coronal and sagittal planes through voxel (x, y); spacing in ITK order (x, y, z)."""
    return Plane("y", int(y), spacing[2] / spacing[0]), Plane("x", int(x), spacing[2] / spacing[1])


def extent(mask: np.ndarray, axis: int) -> Range | None:
    """(first, last) index along ``axis`` of a 2D mask (rows: axis 0), or None if empty."""
    idx = np.nonzero(mask.any(axis=1 - axis))[0]
    return (int(idx[0]), int(idx[-1])) if len(idx) else None


def deepest_pixel(mask: np.ndarray) -> tuple[int, int]:
    """(row, col) of the pixel of a non-empty 2D mask farthest from its border."""
    from scipy import ndimage  # lazy: importing scipy.ndimage costs ~0.33 s at the cold start of 3D runs

    depth = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    row, col = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return int(row), int(col)


def _width(r: Range) -> int:
    return r[1] - r[0]


def _union(a: Range, b: Range) -> Range:
    return min(a[0], b[0]), max(a[1], b[1])


def box_from_planes(axial: Range | None, axial_y: Range | None, coronal: tuple[Range, Range] | None,
                    sagittal: tuple[Range, Range] | None, click: tuple[int, int, int],
                    reach: int = 5) -> tuple[Range, Range, Range]:
    """Combine the planes' extents into a 3D box ((x0, x1), (y0, y1), (z0, z1)), holding the click.

    Args:
        axial: x-range of the axial mask, axial_y its y-range (None when the axial mask is empty).
        coronal: (x-range, z-range) of the coronal mask, or None; sagittal: (y-range, z-range) or None.
        click: (x, y, z) voxel.
        reach: slices above and below the click when neither plane gives a z-range.
    """
    x, y, z = click
    ax_x, ax_y = axial or (x, x), axial_y or (y, y)
    cor_ok = coronal is not None and _width(coronal[0]) <= 2 * _width(ax_x) + 4
    sag_ok = sagittal is not None and _width(sagittal[0]) <= 2 * _width(ax_y) + 4
    rx = _union(ax_x, coronal[0]) if cor_ok else ax_x
    ry = _union(ax_y, sagittal[0]) if sag_ok else ax_y
    zs = [p[1] for p, ok in ((coronal, cor_ok), (sagittal, sag_ok)) if ok and p is not None]
    rz = (min(r[0] for r in zs), max(r[1] for r in zs)) if zs else (z - reach, z + reach)
    return _union(rx, (x, x)), _union(ry, (y, y)), _union(rz, (z, z))


AGREE = 2.0  # weight of the planes' agreement against the proposals' own scores (medseg.predict.click_choice)


def overlap(a: Range | None, b: Range | None) -> float:
    """IoU of two inclusive index ranges (0 when either is missing)."""
    if a is None or b is None:
        return 0.0
    inter = min(a[1], b[1]) - max(a[0], b[0]) + 1
    return max(inter, 0) / (max(a[1], b[1]) - min(a[0], b[0]) + 1)


def joint_ranking(axial: list, coronal: list, sagittal: list, click: tuple[int, int, int],
                  depth: int) -> list[tuple[float, object, Range, Range, Range]]:
    """Every triple of proposals for a lone click as (total, axial SliceResult, x-range, y-range, z-range of its 3D
    box), best first, one entry per distinct box (its best triple's). See ``joint_choice``."""
    def planar(items):
        out = [(None, 0.0)]
        for mask, score, plane in items:
            cols, rows = extent(mask, 1), extent(mask, 0)
            if cols is not None:
                out.append(((cols, plane.rows_to_z(rows, depth)), score))
        return out

    cor, sag = planar(coronal), planar(sagittal)
    best: dict[tuple[Range, Range, Range], tuple[float, object]] = {}
    for res, a_score in axial:
        ax_x, ax_y = extent(res.mask, 1), extent(res.mask, 0)
        for c, c_score in cor:
            for s, s_score in sag:
                if (c is None) != (not coronal) or (s is None) != (not sagittal):
                    continue  # a plane with proposals must take one
                agree = (overlap(ax_x, c[0] if c else None) + overlap(ax_y, s[0] if s else None)
                         + overlap(c[1] if c else None, s[1] if s else None))
                total = a_score + c_score + s_score + AGREE * agree
                box = box_from_planes(ax_x, ax_y, c, s, click)
                if box not in best or total > best[box][0]:
                    best[box] = (total, res)
    ranked = sorted(((total, res, *box) for box, (total, res) in best.items()), key=lambda t: -t[0])
    return ranked


def joint_choice(axial: list, coronal: list, sagittal: list, click: tuple[int, int, int],
                 depth: int) -> tuple[object, Range, Range, Range]:
    """Choose one proposal per plane for a lone click, and the 3D box they give.

    Each plane's proposals are scored on their own (``medseg.predict.click.choices``); the masks of one
    structure also agree where the planes meet: the axial and coronal x-ranges, the axial and sagittal
    y-ranges, the coronal and sagittal z-ranges. The triple maximising the sum of the scores plus AGREE x the
    sum of those three range IoUs wins; a plane without proposals counts as absent.

    Args:
        axial: (SliceResult, score) pairs; coronal, sagittal: (mask, score, Plane) triples (may be empty).
        click: (x, y, z) voxel; depth: slices of the volume.

    Returns:
        (the axial SliceResult, x-range, y-range, z-range) of the box (``box_from_planes``).
    """
    _, res, rx, ry, rz = joint_ranking(axial, coronal, sagittal, click, depth)[0]
    return res, rx, ry, rz


# A lone click's choice turns on small things: a click a few pixels away, or an intensity change under one grey level,
# can flip it from the structure to its surroundings (Colin27 AAL 113, one click 0.592 at one of its equally deep
# voxels, 0.016 at another). So the box is also chosen from four positions STEP model pixels beside the click (left,
# right, up, down on its slice) and the corner-wise median of the five boxes kept (VolumeSession._joint_box). Training
# checks, one / five CVPR25 clicks: 21 structures 0.339 / 0.547 -> 0.373 / 0.540, the same 5 x thicker 0.277 / 0.466 ->
# 0.313 / 0.450, 31 more 0.277 / 0.438 -> 0.313 / 0.474 (benchmarks/results/interactive/consensus/README.md).
STEP = 2.0


def beside(x: float, y: float, shape: tuple[int, int]) -> list[tuple[float, float]]:
    """The positions STEP model pixels (of the 256-pixel model frame) left, right, above and below (x, y) that lie on a
    (height, width) slice."""
    h, w = shape
    d = max(1.0, STEP * max(h, w) / 256.0)
    out = [(x + dx, y + dy) for dx, dy in ((d, 0.0), (-d, 0.0), (0.0, d), (0.0, -d))]
    return [(a, b) for a, b in out if 0 <= a <= w - 1 and 0 <= b <= h - 1]


def median_box(boxes: list[tuple[Range, Range, Range]], click: tuple[int, int, int]) -> tuple[Range, Range, Range]:
    """The corner-wise median of 3D boxes ((x0, x1), (y0, y1), (z0, z1)), rounded, grown to hold the click (x, y, z)."""
    corners = np.median(np.array([[r[a][e] for a in range(3) for e in (0, 1)] for r in boxes], float), axis=0)
    c = [int(round(v)) for v in corners]
    return tuple(_union((c[2 * i], c[2 * i + 1]), (click[i], click[i])) for i in range(3))


# A lone click's z-extent comes from the side planes, and every slice of its 3D box is prompted with the box, so the
# masks on slices past the structure's end are as large as true ones (pycerr pat_1: 6,071 pixels, predicted IoU 0.89).
# Their intensities can say it: on a slice past a lesion's end the box's mask holds lung, or white matter, not the
# lesion. A slice is foreign when under FAMILIAR of its mask's pixels lie within SPREAD robust SD (1.4826 x MAD + one
# grey level) of the median of the seed slice's mask, windowed 0..255. Measured on the lone-click objects (a click at
# the deepest voxel) of 6 dev lesions and 18 training structures, 637 slices besides the seeds: the 6 under 0.1 held at
# most 11 % true pixels (PyRadiomics lung1 at both ends, brain1's lowest, two of Colin27 AAL 1's last four, AAL 105's
# first); the lowest share on a slice more than half true was 0.20 (pycerr pat_1's last, 55 % true).
# benchmarks/foreign_slices.py, benchmarks/results/interactive/foreign_ends.md.
FAMILIAR = 0.1
SPREAD = 2.0


def familiar_range(masks: Mapping[int, np.ndarray], slice_of: Callable[[int], np.ndarray], seed_z: int,
                   z_range: Range) -> Range:
    """``z_range`` ended before the first foreign slice on each side of ``seed_z`` (see FAMILIAR above).

    Args:
        masks: slice -> 2D mask of the object (each walk ends at a slice without one).
        slice_of: slice index -> that slice of the windowed (0..255) volume.
        seed_z: the slice of the click; z_range: the object's (first, last) slice.
    """
    seed = masks.get(seed_z)
    if seed is None or np.count_nonzero(seed) < 4:
        return z_range
    values = slice_of(seed_z)[seed].astype(np.float32)
    median = float(np.median(values))
    spread = SPREAD * (1.4826 * float(np.median(np.abs(values - median))) + 1.0)
    lo, hi = z_range
    for step in (1, -1):
        z = seed_z + step
        while lo <= z <= hi and z in masks and masks[z].any():  # the walk ends where the object does
            pixels = slice_of(z)[masks[z]].astype(np.float32)
            if np.mean(np.abs(pixels - median) <= spread) < FAMILIAR:
                lo, hi = (lo, z - 1) if step > 0 else (z + 1, hi)
                break
            z += step
    return lo, hi
