"""3D box from the three planes through a click (pure geometry, synthetic masks)."""

from __future__ import annotations

import numpy as np

from medseg.predict.extent import Plane, box_from_planes, deepest_pixel, extent, familiar_range, planes


def test_extent_rows_and_columns():
    m = np.zeros((10, 20), bool)
    m[2:5, 7:12] = True
    assert extent(m, 0) == (2, 4) and extent(m, 1) == (7, 11)
    assert extent(np.zeros((3, 3), bool), 0) is None


def test_box_unites_planes_and_holds_the_click():
    box = box_from_planes((10, 20), (30, 40), ((8, 22), (5, 15)), ((28, 41), (4, 12)), (15, 35, 9))
    assert box == ((8, 22), (28, 41), (4, 15))


def test_a_leaking_plane_is_left_out():
    # the sagittal mask is 100 px wide where the axial one is 10: it took a neighbour
    box = box_from_planes((10, 20), (30, 40), ((9, 21), (5, 15)), ((0, 100), (0, 60)), (15, 35, 9))
    assert box == ((9, 21), (30, 40), (5, 15))


def test_no_plane_gives_a_few_slices_around_the_click():
    box = box_from_planes((10, 20), (30, 40), None, None, (15, 35, 9), reach=3)
    assert box[2] == (6, 12)


def test_anisotropic_plane_is_resampled_and_mapped_back():
    vol = np.zeros((10, 8, 6), np.uint8)
    vol[4:6, 3, 2:4] = 200
    coronal, sagittal = planes(2, 3, (1.0, 1.0, 2.5))
    assert coronal == Plane("y", 3, 2.5) and sagittal.axis == "x"
    img = coronal.image(vol)
    assert img.shape == (25, 6)
    rows = extent(img > 100, 0)
    lo, hi = coronal.rows_to_z(rows, 10)
    assert lo <= 4 and hi >= 5 and hi - lo <= 3


def test_deepest_pixel_is_the_centre_of_a_square():
    m = np.zeros((11, 11), bool)
    m[2:9, 2:9] = True
    assert deepest_pixel(m) == (5, 5)


def _square(shape, rows, cols):
    m = np.zeros(shape, bool)
    m[rows[0]:rows[1] + 1, cols[0]:cols[1] + 1] = True
    return m


def test_overlap_of_ranges():
    from medseg.predict.extent import overlap

    assert overlap((0, 9), (0, 9)) == 1.0
    assert overlap((0, 9), (5, 14)) == 5 / 15
    assert overlap((0, 4), (6, 9)) == 0.0
    assert overlap(None, (0, 3)) == 0.0


def test_the_planes_choose_the_structure_they_agree_on():
    from types import SimpleNamespace

    from medseg.predict.extent import Plane, joint_choice

    # axial (64 x 64): a 10-px structure rated 1.0, and a 40-px spill-over rated a little higher (1.5)
    small = SimpleNamespace(mask=_square((64, 64), (27, 36), (27, 36)))
    large = SimpleNamespace(mask=_square((64, 64), (12, 51), (12, 51)))
    coronal, sagittal = Plane("y", 32, 1.0), Plane("x", 32, 1.0)
    # the coronal and sagittal planes (rows = z) see the 10-px structure over slices 20-29
    cor = [(_square((50, 64), (20, 29), (27, 36)), 1.0, coronal)]
    sag = [(_square((50, 64), (20, 29), (27, 36)), 1.0, sagittal)]
    seed, rx, ry, rz = joint_choice([(small, 1.0), (large, 1.5)], cor, sag, (32, 32, 25), depth=50)
    assert seed is small and rx == (27, 36) and ry == (27, 36) and rz == (20, 29)
    # without the other planes the higher-rated mask wins, and the box keeps z around the click
    seed, rx, _, rz = joint_choice([(small, 1.0), (large, 1.5)], [], [], (32, 32, 25), depth=50)
    assert seed is large and rx == (12, 51) and rz == (20, 30)


def test_familiar_range_ends_before_the_first_foreign_slice_each_way():
    """A lesion of intensity 200 (+-3) on slices 3..5 of a box whose masks also hold slices 2 and 6..7: slice 6 holds
    lung-dark pixels (20), so the range ends at 5 and slice 7 goes with it; slice 2's mask is half lesion (familiar
    enough: 50 % within the spread), so it stays."""
    rng = np.random.default_rng(0)
    volume = rng.normal(200, 3, (9, 10, 10)).clip(0, 255).astype(np.uint8)
    volume[6:] = 20
    volume[2, :5] = 20
    masks = {z: np.ones((10, 10), bool) for z in range(2, 8)}
    assert familiar_range(masks, volume.__getitem__, 4, (1, 8)) == (1, 5)
    volume[2] = 20  # now foreign below too
    assert familiar_range(masks, volume.__getitem__, 4, (1, 8)) == (3, 5)


def test_familiar_range_keeps_a_heterogeneous_structure_and_needs_a_seed_mask():
    """A structure whose seed slice spans dark and bright pixels has a wide spread: its other slices are familiar.
    Without a seed mask of at least four pixels the range is left as it is."""
    volume = np.zeros((5, 10, 10), np.uint8)
    volume[:, :, :5] = 40
    volume[:, :, 5:] = 220
    volume[3] = 130
    masks = {z: np.ones((10, 10), bool) for z in range(5)}
    assert familiar_range(masks, volume.__getitem__, 2, (0, 4)) == (0, 4)
    tiny = {z: m.copy() for z, m in masks.items()}
    tiny[2] = np.zeros((10, 10), bool)
    tiny[2][0, :3] = True
    assert familiar_range(tiny, volume.__getitem__, 2, (0, 4)) == (0, 4)
