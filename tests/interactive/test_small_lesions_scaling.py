"""benchmarks/small_lesions.py: the scaled case keeps its geometry true (synthetic volume)."""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))

from small_lesions import MARGIN, scaled  # noqa: E402

from medseg.io.image import Geometry, Image  # noqa: E402


def test_scaled_crops_the_lesions_slices_and_grows_the_spacing():
    array = np.random.default_rng(0).normal(0, 100, (60, 64, 64)).astype(np.float32)
    truth = np.zeros(array.shape, bool)
    truth[20:31, 16:48, 24:40] = True  # 32 rows x 16 columns on slices 20..30
    image = Image(array, Geometry((0.8, 0.7, 3.0), (1.0, 2.0, 3.0), (1, 0, 0, 0, 1, 0, 0, 0, 1)))
    out, mask = scaled(image, truth, 0.5)
    assert out.array.shape == (11 + 2 * MARGIN, 32, 32) and mask.shape == out.array.shape
    assert out.geometry.spacing == (1.6, 1.4, 3.0)
    assert np.allclose(out.geometry.origin, (1.0, 2.0, 3.0 + 3.0 * (20 - MARGIN)))  # the first slice kept
    zs, ys, xs = (np.flatnonzero(mask.any(axis=a)) for a in ((1, 2), (0, 2), (0, 1)))
    assert (zs[0], zs[-1]) == (MARGIN, MARGIN + 10)
    assert abs(len(ys) - 16) <= 1 and abs(len(xs) - 8) <= 1  # half the lesion's rows and columns
    same, same_mask = scaled(image, truth, 1.0)
    assert np.array_equal(same.array, array[20 - MARGIN:31 + MARGIN]) and np.array_equal(same_mask, truth[12:39])


def test_scaled_pads_to_the_field_of_view_keeping_world_positions():
    array = np.random.default_rng(0).normal(0, 100, (40, 64, 48)).astype(np.float32)
    truth = np.zeros(array.shape, bool)
    truth[20:25, 30:34, 10:14] = True
    direction = (0, 1, 0, 1, 0, 0, 0, 0, 1)  # x along world y, y along world x
    image = Image(array, Geometry((0.8, 0.7, 3.0), (1.0, 2.0, 3.0), direction))
    out, mask = scaled(image, truth, 0.5, fov=128)
    assert out.array.shape == (5 + 2 * MARGIN, 128, 128) and mask.shape == out.array.shape
    assert out.array[:, 0, 0].min() == array.min()  # padded with the volume's minimum
    # voxel (x=0, y=0, slice 0) of the scaled crop is at padded index (x=52, y=48) and keeps its world position
    crop, _ = scaled(image, truth, 0.5)
    axes = np.reshape(direction, (3, 3))
    moved = np.asarray(out.geometry.origin) + axes[:, 0] * 52 * 1.6 + axes[:, 1] * 48 * 1.4
    assert np.allclose(moved, crop.geometry.origin)
    assert np.array_equal(out.array[:, 48:80, 52:76], crop.array)
