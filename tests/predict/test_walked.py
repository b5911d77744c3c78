"""medseg.predict.walked: a positive click's missed part found by a random walker from the click and the object."""

from __future__ import annotations

import numpy as np
import pytest

from medseg.predict.walked import REACH, walked_region

SPACING = (1.0, 1.0, 3.0)


def blob(shape=(7, 64, 64)):
    """A bright ellipsoid (200) on a dark background (50), sharp-edged; its (z, y, x) mask."""
    zz, yy, xx = np.ogrid[:shape[0], :shape[1], :shape[2]]
    inside = (((zz - shape[0] // 2) * 3.0) / 9.0) ** 2 + ((yy - 32.0) / 12.0) ** 2 + ((xx - 32.0) / 20.0) ** 2 <= 1.0
    image = np.where(inside, 200.0, 50.0) + np.random.default_rng(0).normal(0.0, 4.0, shape)
    return image.astype(np.float32), inside


def masks_of(volume: np.ndarray) -> dict[int, np.ndarray]:
    return {z: volume[z] for z in range(volume.shape[0]) if volume[z].any()}


def stacked(parts: dict[int, np.ndarray], shape) -> np.ndarray:
    out = np.zeros(shape, bool)
    for z, part in parts.items():
        out[z] = part
    return out


def test_a_click_deep_in_a_missed_part_takes_it_up_to_the_edge():
    image, truth = blob()
    mask = truth.copy()
    mask[:, :, 32:] = False  # the object holds the left half only
    added = walked_region(image, masks_of(mask), 3, 32, 42, SPACING)  # 10 px into the missed half
    out = stacked(added, image.shape)
    assert out[3, 32, 42] and not (out & mask).any()
    assert not (out & ~truth).any()  # the edge stops it: nothing of the background
    missed = truth & ~mask
    reach = REACH * 10 + 2  # pixels from the mask
    near = missed.copy()
    near[:, :, 32 + int(reach):] = False
    assert (out & near).sum() > 0.8 * (near & (np.abs(np.arange(7) - 3) <= 2)[:, None, None]).sum()


def test_on_even_tissue_it_stays_within_reach_of_the_object():
    image = np.full((5, 64, 64), 100.0, np.float32) + np.random.default_rng(1).normal(0.0, 2.0, (5, 64, 64))
    yy, xx = np.ogrid[:64, :64]
    disc = (yy - 32.0) ** 2 + (xx - 26.0) ** 2 <= 36.0
    mask = np.zeros((5, 64, 64), bool)
    mask[1:4] = disc
    added = walked_region(image, masks_of(mask), 2, 32, 37, SPACING)  # 5 px outside the disc
    out = stacked(added, image.shape)
    assert out[2, 32, 37]
    from scipy import ndimage

    distance = ndimage.distance_transform_edt(~disc)
    assert distance[out.any(axis=0)].max() <= REACH * 5 + 2
    zz, yy3, xx3 = np.nonzero(out)
    assert (np.sqrt(((zz - 2) * 3.0) ** 2 + (yy3 - 32.0) ** 2 + (xx3 - 37.0) ** 2) <= REACH * 5 + 2).all()


def test_a_click_on_a_slice_without_the_object_is_left_to_the_other_fallback():
    image, truth = blob()
    mask = truth.copy()
    mask[5:] = False
    assert walked_region(image, masks_of(mask), 6, 32, 32, SPACING) is None


@pytest.mark.parametrize("planes", [1, 3])
def test_a_session_answers_a_refused_region_with_the_walk_and_undoes_it_exactly(monkeypatch, planes):
    import sys
    from pathlib import Path

    from medseg.io.image import Geometry, Image
    from medseg.predict import volume_corrections as corrections
    from medseg.predict.click import empty_result
    from medseg.predict.volume import VolumeSession

    sys.path.insert(0, str(Path(__file__).parent))
    from fake_model import fake_predictor

    image, truth = blob(shape=(24, 64, 64))
    session = VolumeSession(fake_predictor())
    session.set_volume(Image(image.astype(np.int16), Geometry.identity(3)))
    session.planes = planes
    session.refine = False
    label = session.add_box3d(10, 18, 9, 32, 46, 15)  # the left half of the ellipsoid's box
    before = session.object_mask(label).astype(bool)
    assert before.any()
    # the model finds no region under the click: the fallback answers
    monkeypatch.setattr(corrections, "segment_click", lambda _decode, _z, _x, _y, shape, *a, **k: empty_result(shape))
    col = int(np.flatnonzero(before[12, 32]).max()) + 8
    assert truth[12, 32, col] and not before[12, 32, col]
    session.add_point(col, 32, 12, obj=label)
    after = session.object_mask(label).astype(bool)
    grown = after & ~before
    assert after[12, 32, col] and grown.sum() > 100 and not (before & ~after).any()
    assert (grown & truth).sum() > 0.9 * grown.sum()
    # the walk takes 1,335 of the 1,513 missed voxels (one and three axes alike); the intensity fallback it stands
    # in front of, inside the ball that reaches the object's border, 950
    assert (grown & truth).sum() > 0.8 * (truth & ~before).sum()
    session.undo()
    assert np.array_equal(session.object_mask(label).astype(bool), before)
