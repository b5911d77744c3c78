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
