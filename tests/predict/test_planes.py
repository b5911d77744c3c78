"""Three-axis segmentation of a 3D box (medseg.predict.planes, VolumeSession.planes): geometry and session
rules on a fake model; the Dice it brings on real data is in tests/predict/test_volume_realdata.py."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from medseg.errors import MedsegError
from medseg.io.image import Geometry, Image
from medseg.predict.planes import majority, near_isotropic, on_volume, side_box, side_point, transposed
from medseg.predict.volume import VolumeSession
from medseg.prompts import Box3D

sys.path.insert(0, str(Path(__file__).parent))
from fake_model import fake_predictor  # noqa: E402

SHAPE = (24, 40, 48)  # (z, y, x): three different sizes, so a wrong transpose cannot pass


def blob() -> np.ndarray:
    z, y, x = np.ogrid[: SHAPE[0], : SHAPE[1], : SHAPE[2]]
    return ((z - 12) / 7.0) ** 2 + ((y - 18) / 9.0) ** 2 + ((x - 26) / 11.0) ** 2 <= 1.0


def volume() -> np.ndarray:
    rng = np.random.default_rng(1)
    vol = rng.integers(10, 30, SHAPE).astype(np.uint8)
    vol[blob()] = 200
    return vol


def dice(a, b) -> float:
    return float(2 * (a & b).sum() / (a.sum() + b.sum()))


@pytest.mark.parametrize("axis", [1, 2])
def test_a_transpose_and_its_box_point_at_the_same_voxels(axis):
    image = Image(np.arange(np.prod(SHAPE)).reshape(SHAPE), Geometry.identity(3, (0.5, 0.75, 2.0)))
    side, order = transposed(image, axis)
    assert side.array.shape == tuple(SHAPE[a] for a in order)
    assert side.geometry.spacing == tuple(reversed([(2.0, 0.75, 0.5)[a] for a in order]))
    box = Box3D(5.0, 7.0, 3, 30.0, 20.0, 9)
    b = side_box(box, order)
    inside = np.zeros(SHAPE, bool)
    inside[3:10, 7:21, 5:31] = True
    moved = np.zeros(side.array.shape, bool)
    moved[b.z0:b.z1 + 1, int(b.y0):int(b.y1) + 1, int(b.x0):int(b.x1) + 1] = True
    assert np.array_equal(moved.transpose(np.argsort(order)), inside)
    assert np.array_equal(side.array.transpose(np.argsort(order)), image.array)


def test_majority_keeps_voxels_two_of_three_hold():
    a, b, c = (np.zeros(5, bool) for _ in range(3))
    a[[0, 1, 2]] = True
    b[[1, 2, 3]] = True
    c[[2, 3, 4]] = True
    assert majority([a, b, c]).tolist() == [False, True, True, True, False]


def test_near_isotropic_takes_a_quarter_of_difference():
    assert near_isotropic((1.0, 1.0, 1.0)) and near_isotropic((1.5, 1.5, 1.8))
    assert not near_isotropic((0.58, 0.58, 1.25)) and not near_isotropic((0.98, 0.98, 3.0))


def test_three_planes_segment_the_blob_in_one_undo_step():
    s = VolumeSession(fake_predictor())
    s.set_volume(volume())
    s.planes = 3
    label = s.add_box3d(12, 6, 2, 40, 30, 22)
    assert dice(s.mask == label, blob()) > 0.95
    sides = {axis: sub for axis, (sub, _) in s._sides.items()}
    assert sorted(sides) == [1, 2] and sides[1].encodes == 25 and sides[2].encodes == 29
    assert s.cache.encodes == 21 and s.encodes == 21 + 25 + 29  # its own z slices, and the sides' slices
    assert all(not sub.state.objects for sub in sides.values())
    s.add_box3d(12, 6, 2, 40, 30, 22)  # a second object on the same slices: no new encode anywhere
    assert s.encodes == 75
    assert s.undo() and len(s.state.objects) == 1
    assert s.undo() and not s.state.objects and not s.undo()


def test_three_planes_keep_what_two_axes_agree_on():
    box = (12, 6, 2, 40, 30, 22)
    s = VolumeSession(fake_predictor())
    s.set_volume(volume())
    s.planes = 3
    fused = s.object_mask(s.add_box3d(*box)) > 0
    one = VolumeSession(fake_predictor())
    one.set_volume(volume())
    masks = [one.object_mask(one.add_box3d(*box)) > 0]
    for axis in (1, 2):
        sub, order = s._sides[axis]
        b = side_box(Box3D(*box), order)
        masks.append((sub.object_mask(sub.add_box3d(b.x0, b.y0, b.z0, b.x1, b.y1, b.z1)) > 0)
                     .transpose(np.argsort(order)))
    agreed = majority(masks)
    # the majority, then the object's connectivity rule (pieces not joined to its seed slice go)
    assert not (fused & ~agreed).any() and dice(fused, agreed) > 0.8
    assert dice(fused, blob()) > max(dice(m, blob()) for m in masks)  # each axis alone is blockier (fake model)


def test_a_correction_on_a_three_plane_box_and_its_undo():
    s = VolumeSession(fake_predictor())
    s.set_volume(volume())
    s.planes = 3
    label = s.add_box3d(12, 6, 2, 40, 30, 22)
    before = s.mask.copy()
    s.add_point(26, 18, 12, positive=False, obj=label)
    assert before[12, 18, 26] == label and s.mask[12, 18, 26] == 0
    assert s.undo() and np.array_equal(s.mask, before)


def test_a_lone_click_and_a_2d_box_with_three_planes():
    s = VolumeSession(fake_predictor())
    s.set_volume(volume())
    s.planes = 3
    s.click_atlas = False
    clicked = s.add_point(26, 18, 12)  # a lone click's chosen box: three axes, sides that correct as click objects
    assert sorted(s._sides) == [1, 2] and [o.kind for o in s._object(clicked).axes] == ["point"] * 3
    assert dice(s.object_mask(clicked) > 0, blob()) > 0.9
    label = s.add_box(12, (14, 8, 38, 28))  # a propagated 2D box is a 3D box: three axes
    assert len(s._object(label).axes) == 3 and dice(s.object_mask(label) > 0, blob()) > 0.9


def test_anisotropic_voxels_keep_one_axis_and_say_so():
    s = VolumeSession(fake_predictor())
    s.set_volume(Image(volume(), Geometry.identity(3, (0.6, 0.6, 2.5))))
    s.planes = 3
    label = s.add_box3d(12, 6, 2, 40, 30, 22)
    assert s.object_mask(label).any() and not s._sides
    assert s.messages == ["voxels of 0.6 x 0.6 x 2.5 mm are not near-isotropic: object 1 was segmented on its "
                          "z slices only"]


@pytest.mark.parametrize("value", [0, 2, "3", None])
def test_planes_other_than_1_or_3_are_a_one_line_error(value):
    s = VolumeSession(fake_predictor())
    with pytest.raises(MedsegError, match="planes must be 1 or 3"):
        s.planes = value
    assert s.planes == 1


def test_a_box_one_slice_thick_stays_on_its_slice_and_says_so():
    s = VolumeSession(fake_predictor())
    s.set_volume(volume())
    s.planes = 3
    label = s.add_box3d(12, 6, 12, 40, 30, 12)
    assert s.object_mask(label)[12].any() and not s._sides
    assert s.messages == ["object 1: a box one slice thick was segmented on that slice only"]
    thin = s.add_box3d(12, 6, 11, 40, 30, 12)  # two slices: the side sessions get boxes two voxels wide
    assert s.object_mask(thin).any() and sorted(s._sides) == [1, 2]


def test_a_correction_is_made_along_each_axis_and_the_majority_taken_again():
    box = (12, 6, 2, 40, 30, 22)
    s = VolumeSession(fake_predictor())
    s.set_volume(volume())
    s.planes = 3
    label = s.add_box3d(*box)
    s.add_point(26, 18, 12, positive=False, obj=label)
    # the same click given to three sessions of one axis each, in their frames
    one = VolumeSession(fake_predictor())
    one.set_volume(volume())
    masks = [one.object_mask(one.add_point(26, 18, 12, positive=False, obj=one.add_box3d(*box))) > 0]
    for axis in (1, 2):
        image, order = transposed(Image(volume(), Geometry.identity(3)), axis)
        sub = VolumeSession(fake_predictor())
        sub.set_volume(image)
        b = side_box(Box3D(*box), order)
        x, y, z = side_point(26, 18, 12, order)
        side = sub.add_point(x, y, z, positive=False, obj=sub.add_box3d(b.x0, b.y0, b.z0, b.x1, b.y1, b.z1))
        masks.append(on_volume(sub.object_mask(side) > 0, order))
    assert all(not m[12, 18, 26] for m in masks)
    fused = s.object_mask(label) > 0
    agreed = majority(masks)
    # the majority, then the connectivity rule (the fake model's stray pieces go; 0.924 measured)
    assert not (fused & ~agreed).any() and dice(fused, agreed) > 0.9
    assert len(s._object(label).axes) == 3 and all(not sub.state.objects for sub, _ in s._sides.values())
    second = s.add_point(30, 20, 12, positive=False, obj=label)  # the next click starts from each axis's own answer
    assert second == label and len(s._object(label).axes[0].edits) == 2


@pytest.mark.parametrize("axis", [1, 2])
def test_a_click_lands_on_the_same_voxel_of_a_transpose(axis):
    vol = np.arange(np.prod(SHAPE)).reshape(SHAPE)
    image, order = transposed(Image(vol, Geometry.identity(3)), axis)
    x, y, z = side_point(26, 18, 12, order)
    assert image.array[z, int(y), int(x)] == vol[12, 18, 26]
