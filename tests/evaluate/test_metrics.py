"""Metric checks on shapes whose answers can be worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from medseg.errors import MedsegError
from medseg.evaluate.metrics import array_spacing, dice, mean_scores, score, score_labels


def cube(shape=(20, 20, 20), shift: int = 0, axis: int = 2, n: int = 10, at: int = 5) -> np.ndarray:
    """An n^3 cube at voxel `at`, moved `shift` voxels along array axis `axis` (0 = z, 2 = x)."""
    mask = np.zeros(shape, bool)
    box = [slice(at, at + n)] * 3
    box[axis] = slice(at + shift, at + shift + n)
    mask[tuple(box)] = True
    return mask


def ball(shape, centre_zyx, radius_mm, spacing_xyz=(1.0, 1.0, 1.0)) -> np.ndarray:
    """Voxels whose centres lie within radius_mm of centre_zyx (voxel indices) in physical space."""
    zz, yy, xx = np.indices(shape, dtype=float)
    sx, sy, sz = spacing_xyz
    cz, cy, cx = centre_zyx
    return ((zz - cz) * sz) ** 2 + ((yy - cy) * sy) ** 2 + ((xx - cx) * sx) ** 2 <= radius_mm**2


def test_shifted_cube_exact_values():
    # 10^3 cube against itself moved 2 voxels in x: overlap 8*10*10 -> Dice 0.8. Every surface point lies
    # within 2 mm of the other surface and both x faces (1/3 of the area) lie exactly 2 mm away -> HD95 2.
    s = score(cube(shift=2), cube(), (1.0, 1.0, 1.0), tolerance_mm=2.0)
    assert s.dice == pytest.approx(0.8)
    assert s.hd95 == pytest.approx(2.0)
    assert s.nsd == pytest.approx(1.0)


def test_shifted_cube_nsd_below_the_shift():
    # Continuous surfaces [-.5, 9.5]^3 and the same moved +2 in x, tolerance 0.5 mm: of each 600 mm^2
    # surface, the side faces over the 8 mm overlap coincide (320), the side faces within 0.5 of the
    # other's edge add 4 * 0.5 * 10 = 20, the inner x face has a 0.5 mm rim near the side faces (19):
    # 359 / 600 = 0.598. Surfel discretisation at the cube's edges moves this by < 0.01.
    assert score(cube(shift=2), cube(), tolerance_mm=0.5).nsd == pytest.approx(359 / 600, abs=0.01)


@pytest.mark.parametrize(("axis", "spacing_xyz", "expected"), [
    (2, (0.5, 1.0, 3.0), 1.0),   # x shift of 2 voxels at 0.5 mm
    (1, (0.5, 1.0, 3.0), 2.0),   # y shift at 1 mm
    (0, (0.5, 1.0, 3.0), 6.0),   # z shift at 3 mm
])
def test_anisotropic_shift_follows_itk_spacing_order(axis, spacing_xyz, expected):
    s = score(cube(shift=2, axis=axis), cube(), spacing_xyz, tolerance_mm=expected)
    assert s.hd95 == pytest.approx(expected)
    assert s.nsd == pytest.approx(1.0)
    assert s.dice == pytest.approx(0.8)
    assert score(cube(shift=2, axis=axis), cube(), spacing_xyz, tolerance_mm=0.9 * expected).nsd < 1.0


def test_sphere_against_larger_sphere():
    # Radii 10 and 13 voxels: every surface distance is ~3 mm.
    gt = ball((40, 40, 40), (20, 20, 20), 10)
    pred = ball((40, 40, 40), (20, 20, 20), 13)
    s = score(pred, gt, tolerance_mm=3.5)
    assert s.hd95 == pytest.approx(3.0, abs=0.5)
    assert s.nsd == pytest.approx(1.0)
    assert s.dice == pytest.approx(2 * 10**3 / (10**3 + 13**3), abs=0.01)
    assert score(pred, gt, tolerance_mm=1.0).nsd < 0.1  # no surface point is within 1 mm


def test_anisotropic_spheres_in_physical_space():
    # Radii 10 mm and 12 mm on a 0.8 x 0.8 x 2.5 mm grid: HD95 ~2 mm, within one coarse voxel.
    spacing = (0.8, 0.8, 2.5)
    gt = ball((30, 60, 60), (15, 30, 30), 10, spacing)
    pred = ball((30, 60, 60), (15, 30, 30), 12, spacing)
    s = score(pred, gt, spacing, tolerance_mm=4.0)
    assert 1.5 <= s.hd95 <= 2.5 + 1e-6
    assert s.nsd == pytest.approx(1.0)
    assert s.dice == pytest.approx(2 * 10**3 / (10**3 + 12**3), abs=0.01)
    # Read with the spacing reversed (the classic axis-order bug) the answer changes.
    assert score(pred, gt, tuple(reversed(spacing)), tolerance_mm=4.0).hd95 != pytest.approx(s.hd95)


def test_2d_shifted_square():
    gt = np.zeros((30, 30), bool)
    gt[5:15, 5:15] = True
    pred = np.roll(gt, 3, axis=1)  # 3 pixels in x
    s = score(pred, gt, (0.5, 2.0), tolerance_mm=1.5)
    assert s.dice == pytest.approx(0.7)
    assert s.hd95 == pytest.approx(1.5)
    assert s.nsd == pytest.approx(1.0)


def test_identical_masks():
    gt = ball((20, 20, 20), (10, 10, 10), 5)
    s = score(gt, gt)
    assert (s.dice, s.nsd, s.hd95) == (1.0, 1.0, 0.0)


def test_empty_conventions():
    empty, full = np.zeros((8, 8, 8), bool), cube((8, 8, 8), n=3, at=2)
    both = score(empty, empty)
    assert (both.dice, both.nsd, both.hd95) == (1.0, 1.0, 0.0)
    for pred, gt in ((empty, full), (full, empty)):
        one = score(pred, gt)
        assert (one.dice, one.nsd) == (0.0, 0.0)
        assert math.isinf(one.hd95)
    assert dice(empty, empty) == 1.0


def test_mean_counts_infinite_hd95_apart():
    rows = [{"dice": 1.0, "nsd": 1.0, "hd95": 2.0}, {"dice": 0.0, "nsd": 0.0, "hd95": math.inf}]
    assert mean_scores(rows) == {"dice": 0.5, "nsd": 0.5, "hd95": 2.0, "hd95_infinite": 1}


def test_score_labels_and_errors():
    gt = np.zeros((10, 10), np.uint8)
    gt[2:5, 2:5] = 1
    gt[6:9, 6:9] = 2
    out = score_labels(gt, gt, [1, 2, 3])
    assert [out[k].dice for k in (1, 2, 3)] == [1.0, 1.0, 1.0]
    with pytest.raises(MedsegError, match="differs"):
        score_labels(gt, gt[:5], [1])
    with pytest.raises(MedsegError, match="3 values for a 2D"):
        array_spacing((1.0, 1.0, 1.0), 2)
