"""keep_connected (SimpleITK components) against a scipy.ndimage.label reference, and the cold import."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy import ndimage

from medseg.predict.propagate import keep_connected

SHAPE = (6, 20, 24)


def reference(masks, seeds):
    """The kept voxels by scipy.ndimage.label (3x3x3 structure: 26-connectivity) on the whole z-range."""
    nonempty = {z: m for z, m in masks.items() if m.any()}
    if not nonempty or not seeds:
        return dict(masks)
    stack = np.zeros((max(nonempty) + 1, *next(iter(nonempty.values())).shape), bool)
    for z, m in nonempty.items():
        stack[z] = m
    comp, _ = ndimage.label(stack, structure=np.ones((3, 3, 3), bool))
    keep = {int(comp[z, y, x]) for z, y, x in seeds if min(nonempty) <= z <= max(nonempty)} - {0}
    if not keep:
        return dict(masks)
    kept = np.isin(comp, list(keep))
    return {z: kept[z] for z in nonempty if kept[z].any()}


def assert_same(got, want):
    assert sorted(got) == sorted(want)
    for z in want:
        assert got[z].dtype == bool
        np.testing.assert_array_equal(got[z], want[z], err_msg=f"slice {z}")


def random_masks(rng, shape=SHAPE, density=0.1, z0=3):
    """z -> (H, W) bool masks on slices z0 .. z0 + depth - 1, one slice left out and one left empty."""
    depth = shape[0]
    vol = rng.random(shape) < density
    masks = {z0 + i: vol[i] for i in range(depth)}
    del masks[z0 + int(rng.integers(1, depth - 1))]  # a gap in z
    masks[z0 + depth - 1] = np.zeros(shape[1:], bool)  # an empty slice at the end
    return masks


def foreground_seeds(rng, masks, n):
    voxels = [(z, int(y), int(x)) for z, m in masks.items() for y, x in zip(*np.nonzero(m), strict=True)]
    idx = rng.choice(len(voxels), size=min(n, len(voxels)), replace=False)
    return [voxels[i] for i in idx]


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("density", [0.04, 0.1, 0.2])
def test_matches_scipy_on_random_stacks(seed, density):
    rng = np.random.default_rng(seed)
    masks = random_masks(rng, density=density)
    z_range = sorted(masks)
    background = [(z, int(y), int(x)) for z in z_range for y, x in zip(*np.nonzero(~masks[z]), strict=True)]
    seed_sets = [
        [],  # no seeds
        foreground_seeds(rng, masks, 1),
        foreground_seeds(rng, masks, 3),
        [(z_range[0] - 2, 5, 5), (z_range[-1] + 4, 1, 1)],  # outside the z-range only
        [background[int(rng.integers(len(background)))]],  # on background only
        [background[0], (99, 0, 0)] + foreground_seeds(rng, masks, 2),  # a mix
    ]
    for seeds in seed_sets:
        assert_same(keep_connected(masks, seeds), reference(masks, seeds))


def test_no_seed_hits_a_component_returns_the_masks_unchanged():
    rng = np.random.default_rng(0)
    masks = random_masks(rng)
    for seeds in ([], [(-5, 0, 0)], [(100, 3, 3)]):
        out = keep_connected(masks, seeds)
        assert sorted(out) == sorted(masks)
        assert all(out[z] is masks[z] for z in masks)


def test_all_empty_masks():
    masks = {z: np.zeros(SHAPE[1:], bool) for z in range(4)}
    assert_same(keep_connected(masks, [(1, 2, 3)]), reference(masks, [(1, 2, 3)]))


def test_diagonal_contacts_across_slices_are_connected():
    masks = {z: np.zeros(SHAPE[1:], bool) for z in range(10, 16)}
    chain = [(10, 2, 2), (11, 3, 3), (12, 4, 4), (13, 3, 5), (14, 2, 6)]  # touches only by corners
    for z, y, x in chain:
        masks[z][y, x] = True
    masks[12][15, 20] = True  # a separate voxel
    masks[13][10:12, 10:14] = True  # a separate blob
    # sanity: with 6-connectivity the chain would fall apart
    stack = np.stack([masks[z] for z in range(10, 16)])
    assert ndimage.label(stack)[1] > 3
    out = keep_connected(masks, [(10, 2, 2)])
    assert_same(out, reference(masks, [(10, 2, 2)]))
    assert sorted(out) == [10, 11, 12, 13, 14]
    assert {(z, int(y), int(x)) for z, m in out.items() for y, x in zip(*np.nonzero(m), strict=True)} == set(chain)


def test_single_slice():
    rng = np.random.default_rng(3)
    masks = {7: rng.random(SHAPE[1:]) < 0.2}
    seeds = foreground_seeds(rng, masks, 2)
    assert_same(keep_connected(masks, seeds), reference(masks, seeds))


def test_importing_volume_does_not_import_scipy_ndimage():
    code = "import medseg.predict.volume, sys; print('scipy.ndimage' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("seed", range(4))
def test_small_objects_in_large_slices(seed):
    """Components are found in the masks' bounding box: the same result when it is a small part of the slice,
    with seeds inside it and outside it in-plane."""
    rng = np.random.default_rng(seed)
    masks = {z: np.zeros((90, 110), bool) for z in range(2, 9)}
    for z in masks:
        masks[z][30:50, 60:85] = rng.random((20, 25)) < 0.3
    masks[5][80, 5] = True  # a lone voxel far from the others widens the box
    seeds = [*foreground_seeds(rng, masks, 2), (4, 10, 10), (3, 0, 70), (6, 40, 109), (5, 80, 5)]
    for subset in (seeds[:1], seeds[2:4], seeds[2:5], seeds):
        assert_same(keep_connected(masks, subset), reference(masks, subset))


def test_occupied_rows_and_columns_of_a_union():
    from medseg.predict.propagate import occupied, widened_box

    rng = np.random.default_rng(3)
    masks = [rng.random((40, 56)) > 0.995 for _ in range(5)]
    before = [m.copy() for m in masks]
    rows, cols = occupied(masks)
    union = np.any(masks, axis=0)
    ys, xs = np.nonzero(union)
    assert np.array_equal(rows, np.unique(ys)) and np.array_equal(cols, np.unique(xs))
    assert occupied([np.zeros((4, 4), bool)] * 3) is None and occupied([]) is None
    assert all(np.array_equal(m, b) for m, b in zip(masks, before, strict=True))  # the union is a new array
    ys, xs = np.nonzero(masks[0])
    expected = [max(xs.min() - 2.5, 0), max(ys.min() - 2.5, 0), min(xs.max() + 2.5, 55), min(ys.max() + 2.5, 39)]
    assert np.array_equal(widened_box(masks[0], 2.5), np.array(expected, np.float32))


def test_slices_nothing_was_dropped_from_are_the_same_masks():
    a = np.zeros((6, 6), bool)
    a[1:3, 1:3] = True
    b = a.copy()
    b[5, 5] = True  # a separate component, dropped
    out = keep_connected({0: a, 1: b}, [(0, 1, 1)])
    assert out[0] is a and out[1] is not b and not out[1][5, 5] and out[1][1:3, 1:3].all()
