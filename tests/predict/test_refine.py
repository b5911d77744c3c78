"""The random walker that draws a click object's border again (medseg.predict.refine), on synthetic volumes."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from medseg.predict import refine
from medseg.predict.refine import refined, walk


def _ball(shape=(9, 48, 48), centre=(4, 24, 24), radius=(3.5, 12, 12)) -> np.ndarray:
    zz, yy, xx = np.ogrid[: shape[0], : shape[1], : shape[2]]
    return ((zz - centre[0]) / radius[0]) ** 2 + ((yy - centre[1]) / radius[1]) ** 2 + (
        (xx - centre[2]) / radius[2]) ** 2 <= 1


def _eroded(mask: np.ndarray, px: int) -> np.ndarray:
    plane = np.zeros((3, 3, 3), bool)
    plane[1] = ndimage.generate_binary_structure(2, 1)
    return ndimage.binary_erosion(mask, plane, iterations=px)


def _as_slices(mask: np.ndarray) -> dict[int, np.ndarray]:
    return {z: mask[z] for z in range(mask.shape[0]) if mask[z].any()}


def _stack(masks: dict[int, np.ndarray], shape) -> np.ndarray:
    out = np.zeros(shape, bool)
    for z, m in masks.items():
        out[z] = m
    return out


def _dice(a, b) -> float:
    return 2 * (a & b).sum() / (a.sum() + b.sum())


def test_walk_takes_the_side_of_the_edge():
    image = np.zeros((1, 1, 10))
    image[..., 6:] = 100.0  # an edge between voxels 5 and 6
    fg, bg = np.zeros_like(image, bool), np.zeros_like(image, bool)
    fg[..., 0], bg[..., 9] = True, True
    prob = walk(image, fg, bg)
    assert (prob[0, 0, :6] > 0.9).all() and (prob[0, 0, 6:] < 0.1).all()


def test_border_moves_out_to_the_structure_edge():
    truth = _ball()
    volume = np.where(truth, 180, 60).astype(np.float32) + np.random.default_rng(0).normal(0, 5, truth.shape)
    small = _eroded(truth, 2) & truth  # the model's mask, 2 px inside the edge
    small[[0, -1]] = False
    out = _stack(refined(volume, _as_slices(small), (1.0, 1.0, 1.0)), truth.shape)
    assert _dice(small, truth) < 0.85
    assert _dice(out, truth) > 0.95
    assert set(np.nonzero(out.any((1, 2)))[0]) <= set(np.nonzero(small.any((1, 2)))[0])  # its slices, no new ones


def test_even_tissue_stays_within_the_band():
    volume = np.full((5, 40, 40), 100.0)
    mask = np.zeros(volume.shape, bool)
    mask[1:4, 12:28, 12:28] = True
    out = _stack(refined(volume, _as_slices(mask), (1.0, 1.0, 1.0)), mask.shape)
    plane = np.zeros((3, 3, 3), bool)
    plane[1] = ndimage.generate_binary_structure(2, 1)
    assert (_eroded(mask, refine.INNER) <= out).all()
    assert (out <= ndimage.binary_dilation(mask, plane, iterations=refine.OUTER)).all()


def test_the_clicks_are_kept():
    truth = _ball()
    volume = np.where(truth, 180, 60).astype(np.float32)
    out = refined(volume, _as_slices(truth), (1.0, 1.0, 1.0), positive=[(4, 24, 40)], negative=[(3, 24, 26)])
    assert out[4][24, 40]  # outside the ball, beyond the band's reach of its edge: in, as clicked
    assert not out[3][24, 26]


def test_nothing_in_nothing_out():
    assert refined(np.zeros((3, 8, 8)), {}, (1.0, 1.0, 1.0)) == {}
