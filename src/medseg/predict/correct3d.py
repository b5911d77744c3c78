"""A 3D correction by the correction network (``medseg.modeling.correction3d``): crop, inputs, run, paste back.

The crop is the box of the current mask and every click, widened by a quarter of its size (at least ``MARGIN``
voxels in-plane and ``MARGIN_Z`` slices) and clipped to the volume; the network sees it resampled to its grid.
Coordinates: arrays (z, y, x); clicks as (z, row, col) voxel indices with their sign.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.nn import functional as F

MARGIN = 4  # voxels in-plane, at least, around the mask and clicks
MARGIN_Z = 2  # slices, at least
MIN_SIDE = 12  # a crop's in-plane side at least (small objects keep some surroundings)
MIN_DEPTH = 5
SIGMA = 1.5  # click maps: Gaussian width in grid voxels

Click = tuple[int, int, int, bool]  # (z, row, col, positive)


def crop_box(mask: np.ndarray, clicks: Sequence[Click], shape: tuple[int, int, int]) -> tuple[slice, slice, slice]:
    """The crop (z, y, x slices) around ``mask`` (z, y, x) bool and ``clicks``."""
    points = [(z, r, c) for z, r, c, _ in clicks]
    found = np.argwhere(mask) if mask.any() else np.zeros((0, 3), int)
    if len(found):
        lo, hi = found.min(0), found.max(0)
        if points:
            lo, hi = np.minimum(lo, np.min(points, 0)), np.maximum(hi, np.max(points, 0))
    else:
        lo, hi = np.min(points, 0), np.max(points, 0)
    out = []
    for axis, (a, b) in enumerate(zip(lo, hi, strict=True)):
        size = b - a + 1
        least, floor = (MARGIN_Z, MIN_DEPTH) if axis == 0 else (MARGIN, MIN_SIDE)
        pad = max(least, int(np.ceil(size / 4)), (floor - size + 1) // 2)
        out.append(slice(max(0, int(a) - pad), min(shape[axis], int(b) + pad + 1)))
    return tuple(out)


def to_grid(mask: np.ndarray, image: np.ndarray, clicks: Sequence[Click], box: tuple[slice, slice, slice],
            grid: tuple[int, int, int]) -> torch.Tensor:
    """(4, *grid) float inputs: the crop of ``image`` (0..255, z-scored in the crop), of ``mask``, and the
    positive and negative clicks as Gaussians on the grid. ``image`` and ``mask`` are the crop's arrays."""
    img = torch.from_numpy(np.ascontiguousarray(image, np.float32))
    img = (img - img.mean()) / (img.std() + 1e-3)
    both = torch.stack([img, torch.from_numpy(np.ascontiguousarray(mask, np.float32))])[None]
    both = F.interpolate(both, size=grid, mode="trilinear", align_corners=False)[0]
    size = [s.stop - s.start for s in box]
    axes = [(torch.arange(g, dtype=torch.float32) + 0.5) * n / g - 0.5 for g, n in zip(grid, size, strict=True)]
    maps = torch.zeros((2, *grid))
    for z, r, c, positive in clicks:
        local = (z - box[0].start, r - box[1].start, c - box[2].start)
        d2 = sum(((ax - p) * g / n).square().reshape([-1 if i == k else 1 for i in range(3)])
                 for k, (ax, p, g, n) in enumerate(zip(axes, local, grid, size, strict=True)))
        maps[0 if positive else 1] = torch.maximum(maps[0 if positive else 1], torch.exp(-d2 / (2 * SIGMA ** 2)))
    return torch.cat([both, maps])


def from_grid(logits: torch.Tensor, box: tuple[slice, slice, slice]) -> np.ndarray:
    """(*grid) logits -> the crop's (z, y, x) bool mask (logits resampled to the crop, > 0)."""
    size = tuple(s.stop - s.start for s in box)
    up = F.interpolate(logits[None, None].float(), size=size, mode="trilinear", align_corners=False)[0, 0]
    return (up > 0).numpy()


def corrected(model, volume, mask: np.ndarray, clicks: Sequence[Click]) -> np.ndarray:
    """The whole volume's corrected mask (z, y, x) bool: ``model`` on the crop around ``mask`` and ``clicks``;
    ``volume`` gives windowed 0..255 voxels by slicing (an array or ``WindowedVolume``). Voxels outside the
    crop are off (the crop holds all of ``mask``).

    Only what the network changes is taken: where its answer equals the mask's own round trip through the grid
    (resampled there and back), the mask keeps its voxels, so borders finer than the grid are not lost to
    resampling at every click."""
    box = crop_box(mask, clicks, tuple(volume.shape))
    x = to_grid(mask[box], np.asarray(volume[box]), clicks, box, model.config.grid)
    with torch.no_grad():
        logits = model(x[None])[0, 0]
    answer = from_grid(logits, box)
    round_trip = from_grid(x[1] - 0.5, box)
    out = np.zeros(mask.shape, bool)
    out[box] = np.where(answer != round_trip, answer, mask[box])
    return out

