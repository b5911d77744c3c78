"""Simulated correction states for the 3D correction network: a structure's truth, a wrong mask, clicks.

A training sample is what the network sees when a user clicks: the current mask (the truth spoiled the ways
LiteMedSAM's click objects go wrong: too wide or narrow in-plane, slices too many or too few at the ends, a
neighbouring structure or similar tissue taken in, a part missed, shifted, a blob apart, or nearly nothing), the
clicks so far (the first inside the structure, earlier corrections in what was wrong) and the new click at the
deepest voxel of the largest error (CVPR25's rule) or anywhere in an error. The target is the truth in the crop
(``medseg.predict.correct3d.crop_box``), which is built from the mask and clicks only, as at inference.
Arrays are (z, y, x).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from medseg.predict.correct3d import Click, crop_box

CROSS2D = ndimage.generate_binary_structure(3, 1) * np.array([0, 1, 0])[:, None, None].astype(bool)


def _inplane(mask: np.ndarray, r: int) -> np.ndarray:
    if r > 0:
        return ndimage.binary_dilation(mask, CROSS2D, iterations=r)
    if r < 0:
        out = ndimage.binary_erosion(mask, CROSS2D, iterations=-r)
        return out if out.any() else mask
    return mask


def _z_ends(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Slices added past an end (the end slice's mask, grown or shrunk) or dropped from it."""
    zs = np.flatnonzero(mask.any((1, 2)))
    out = mask.copy()
    for end, step in ((zs[0], -1), (zs[-1], 1)):
        u = rng.random()
        if u < 0.4:
            shape = mask[end]
            for k in range(1, int(rng.integers(1, 5)) + 1):
                z = end + step * k
                if not 0 <= z < len(mask):
                    break
                shape = _inplane(shape[None], int(rng.integers(-1, 2)))[0]
                out[z] |= shape
        elif u < 0.6 and len(zs) > 3:
            k = int(rng.integers(1, max(2, len(zs) // 4) + 1))
            out[(slice(end, end + k) if step < 0 else slice(end - k + 1, end + 1))] = False
    return out


def _similar(truth: np.ndarray, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Tissue like the structure's around it, connected to it, within a few voxels."""
    values = image[truth]
    med, spread = np.median(values), values.std() + 1.0
    near = ndimage.binary_dilation(truth, iterations=int(rng.integers(2, 9)))
    alike = near & (np.abs(image - med) < spread * rng.uniform(0.5, 2.0))
    labels, _ = ndimage.label(alike | truth)
    keep = np.unique(labels[truth])
    return np.isin(labels, keep[keep > 0])


def _half(truth: np.ndarray, click: tuple[int, int, int], rng: np.random.Generator) -> np.ndarray:
    """The truth without the part beyond a random plane (the click's side kept)."""
    pts = np.argwhere(truth)
    normal = rng.normal(size=3)
    normal /= np.linalg.norm(normal)
    proj = pts @ normal
    cut = np.quantile(proj, rng.uniform(0.3, 0.8))
    side = np.dot(click, normal) <= cut
    keep = (proj <= cut) if side else (proj > cut)
    out = np.zeros_like(truth)
    out[tuple(pts[keep].T)] = True
    return out


def spoiled(truth: np.ndarray, labels: np.ndarray, image: np.ndarray, click: tuple[int, int, int],
            rng: np.random.Generator) -> np.ndarray:
    """A wrong mask for ``truth`` (bool); ``labels`` the other structures, ``image`` 0..255, ``click`` (z, r, c)."""
    if rng.random() < 0.08:  # nearly nothing: a few voxels round the click
        out = np.zeros_like(truth)
        r = int(rng.integers(1, 4))
        z, y, x = click
        out[max(0, z - 1):z + 2, max(0, y - r):y + r + 1, max(0, x - r):x + r + 1] = True
        return out
    m = truth.copy()
    if rng.random() < 0.3:
        m = _half(m, click, rng)
    if rng.random() < 0.3:
        m |= _similar(truth, image, rng)
    if rng.random() < 0.3:
        ring = ndimage.binary_dilation(truth, iterations=2) & ~truth
        others = np.unique(labels[ring & (labels > 0)])
        if len(others):
            other = labels == rng.choice(others)
            if rng.random() < 0.5:
                other &= ndimage.binary_dilation(truth, iterations=int(rng.integers(3, 10)))
            m |= other
    m = _inplane(m, int(rng.integers(-2, 4)))
    if rng.random() < 0.6:
        m = _z_ends(m, rng)
    if rng.random() < 0.2:
        shift = (int(rng.integers(-1, 2)), int(rng.integers(-3, 4)), int(rng.integers(-3, 4)))
        m = ndimage.shift(m, shift, order=0)
    if rng.random() < 0.15:
        pts = np.argwhere(ndimage.binary_dilation(truth, iterations=6) & ~ndimage.binary_dilation(truth, iterations=2))
        if len(pts):
            z, y, x = pts[rng.integers(len(pts))]
            r = int(rng.integers(1, 4))
            m[max(0, z - 1):z + 2, max(0, y - r):y + r + 1, max(0, x - r):x + r + 1] = True
    return m if m.any() else truth


def _pick(region: np.ndarray, rng: np.random.Generator, deepest: bool) -> tuple[int, int, int] | None:
    if not region.any():
        return None
    if deepest:
        depth = ndimage.distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1, 1:-1]
        return tuple(int(v) for v in np.unravel_index(int(np.argmax(depth)), depth.shape))
    pts = np.argwhere(region)
    return tuple(int(v) for v in pts[rng.integers(len(pts))])


def new_click(mask: np.ndarray, truth: np.ndarray, rng: np.random.Generator, deepest: bool) -> Click | None:
    """CVPR25's next click (the deepest voxel of the largest error component) or one anywhere in an error."""
    error = mask != truth
    if not error.any():
        return None
    if deepest:
        comps, n = ndimage.label(error)
        error = comps == 1 + int(np.argmax(np.bincount(comps.ravel())[1:]))
    z, r, c = _pick(error, rng, deepest)
    return z, r, c, bool(truth[z, r, c])


def state(truth: np.ndarray, labels: np.ndarray, image: np.ndarray, rng: np.random.Generator
          ) -> tuple[np.ndarray, list[Click], tuple[slice, slice, slice]] | None:
    """(current mask, clicks with the newest last, crop) for one simulated correction of ``truth``."""
    first = _pick(truth, rng, deepest=rng.random() < 0.5)
    mask = spoiled(truth, labels, image, first, rng)
    clicks: list[Click] = [(*first, True)]
    for _ in range(int(rng.choice(5, p=(0.3, 0.25, 0.2, 0.15, 0.1)))):
        positive = rng.random() < 0.5
        wrong = (truth & ~mask) if positive else (mask & ~truth)
        pick = _pick(wrong, rng, False) or _pick(truth if positive else
                                                 ndimage.binary_dilation(truth, iterations=3) & ~truth, rng, False)
        if pick is not None:
            clicks.append((*pick, positive))
    if rng.random() < 0.85:
        nxt = new_click(mask, truth, rng, deepest=rng.random() < 0.75)
        if nxt is not None:
            clicks.append(nxt)
    return mask, clicks, crop_box(mask, clicks, truth.shape)
