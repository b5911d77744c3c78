"""medseg.predict.rim: a positive click on a high-contrast object's rim moves its border out to the click's level."""

from __future__ import annotations

import numpy as np

from medseg.predict.rim import RADIUS, rim_edit


def blurred_ball(shape=(9, 64, 64), radius=12.0, rim=6.0, noise=0.0):
    """A ball of 100 on 0 whose edge falls linearly over ``rim`` pixels (a partial-volume rim), its distance map."""
    zz, yy, xx = np.ogrid[:shape[0], :shape[1], :shape[2]]
    dist = np.sqrt(((zz - shape[0] // 2) * 3.0) ** 2 + (yy - 32.0) ** 2 + (xx - 32.0) ** 2)
    image = 100.0 * np.clip((radius + rim / 2 - dist) / rim, 0.0, 1.0)
    if noise:
        image = image + np.random.default_rng(0).normal(0.0, noise, shape)
    return image.astype(np.float32), dist


def masks_of(volume: np.ndarray) -> dict[int, np.ndarray]:
    return {z: volume[z] for z in range(volume.shape[0]) if volume[z].any()}


def test_a_click_on_the_rim_moves_the_border_out_to_its_level_near_it():
    image, dist = blurred_ball()
    mask = dist <= 11.0  # the model's border: inside the rim (levels 0.67 and up)
    click = (4, 32, 32 + 13)  # (z, row, col): 2 px outside the mask, level 0.33
    added = rim_edit(image, masks_of(mask), click[0], click[1], click[2], (1.0, 1.0, 3.0))
    assert added and added[4][32, 45]
    out = np.zeros_like(mask)
    for z, part in added.items():
        out[z] = part
    assert not (out & mask).any()
    assert image[out].min() >= image[4, 31:34, 44:47].mean() - 1e-3  # nothing below the click's level
    assert dist[out].max() <= 11.0 + 2 * 2 + 1 + 1  # within 2 x 2 + 1 px of the mask (the ball's z is 3 mm a slice)
    zz, yy, xx = np.nonzero(out)
    assert (np.sqrt(((zz - 4) * 3.0) ** 2 + (yy - 32.0) ** 2 + (xx - 45.0) ** 2) <= RADIUS).all()
    assert set(np.unique(zz)) == {1, 2, 3, 4, 5, 6, 7} == set(masks_of(mask))  # the object's slices (9 mm at most)
    assert out[4, 32, 19] == 0  # the far side of the ball is beyond the 10 mm reach


def test_the_edit_leaves_no_hole_between_the_object_and_what_it_gains():
    image, dist = blurred_ball()
    image[4, 32, 44] = 0.0  # a dark pixel of the band, between the mask and the click
    added = rim_edit(image, masks_of(dist <= 11.0), 4, 32, 45, (1.0, 1.0, 3.0))
    assert added[4][32, 45] and added[4][32, 44]


def test_the_rule_stays_out_of_what_is_not_a_rim():
    image, dist = blurred_ball()
    masks = masks_of(dist <= 11.0)
    spacing = (1.0, 1.0, 3.0)
    assert rim_edit(image, masks, 4, 32, 32 + 16, spacing) is None  # 5 px out, past REACH (4)
    assert rim_edit(image, masks, 4, 32, 32 + 15, spacing) is None  # level ~0.03: the background, not the rim
    assert rim_edit(image, masks, 4, 32, 32, spacing) is None  # on the mask: nothing to add
    flat, _ = blurred_ball(noise=60.0)  # the object barely stands out of its noise
    assert rim_edit(flat, masks, 4, 32, 32 + 13, spacing) is None
    # a neighbour as bright as the object beside it is not a rim: a click on it is left to the region edit
    bright = image.copy()
    bright[:, 28:37, 44:50] = 100.0
    assert rim_edit(bright, masks, 4, 32, 32 + 13, spacing) is None


def test_a_session_answers_a_rim_click_with_the_rule_and_undoes_it_exactly():
    import sys
    from pathlib import Path

    from medseg.io.image import Geometry, Image
    from medseg.predict.volume import VolumeSession

    sys.path.insert(0, str(Path(__file__).parent))
    from fake_model import fake_predictor

    image, dist = blurred_ball(shape=(24, 64, 64), radius=10.0, rim=8.0)  # 1 mm voxels: three planes allowed
    for planes in (1, 3):
        session = VolumeSession(fake_predictor())
        session.set_volume(Image((image * 2).astype(np.int16), Geometry.identity(3)))
        session.planes = planes
        session.refine = False
        label = session.add_box3d(16, 16, 2, 48, 48, 20)
        before = session.object_mask(label).astype(bool)
        row = 32
        col = int(np.flatnonzero(before[12, row]).max()) + 2  # 2 px outside the object, on the rim
        assert 0.1 < image[12, row, col] / 100 < 0.9
        session.add_point(col, row, 12, obj=label)
        after = session.object_mask(label).astype(bool)
        grown = after & ~before
        # the rule: 108 voxels on one axis, 182 on three (each axis's own edit, the majority kept); the region under the
        # click (the rule off): 22, down to level 0.20
        assert after[12, row, col] and grown.sum() > 60 and not (before & ~after).any()
        level = image[12, row - 1:row + 2, col - 1:col + 2].mean()
        assert image[grown].min() >= level - (1e-3 if planes == 1 else 5.0)  # at the click's level, or about it
        session.undo()
        assert np.array_equal(session.object_mask(label).astype(bool), before)
