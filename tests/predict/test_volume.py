"""VolumeSession: cache, propagation, corrections, undo, clipping and errors (fake model), and real-data
floors on Colin27 AAL structures (LiteMedSAM)."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from medseg.errors import MedsegError
from medseg.predict.correct import FOLLOW_MEMO, FollowMemo, box_span
from medseg.predict.embedding_cache import MIB
from medseg.predict.volume import VolumeSession

sys.path.insert(0, str(Path(__file__).parent))
from fake_model import fake_predictor  # noqa: E402

SHAPE = (24, 64, 64)  # (z, y, x)


def sphere(center=(12, 30, 34), radius=8.0, shape=SHAPE) -> np.ndarray:
    z, y, x = np.ogrid[: shape[0], : shape[1], : shape[2]]
    cz, cy, cx = center
    return (z - cz) ** 2 + (y - cy) ** 2 + (x - cx) ** 2 <= radius**2


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / (a.sum() + b.sum()))


@pytest.fixture
def volume() -> np.ndarray:
    rng = np.random.default_rng(0)
    vol = rng.integers(10, 30, SHAPE).astype(np.uint8)
    vol[sphere()] = rng.integers(190, 210, int(sphere().sum()))
    return vol


@pytest.fixture
def session(volume) -> VolumeSession:
    s = VolumeSession(fake_predictor())
    s.set_volume(volume)
    return s


def test_box3d_segments_the_sphere_encoding_only_its_slices(session):
    label = session.add_box3d(25, 21, 4, 43, 39, 20)
    assert label == 1
    truth = sphere()
    assert dice(session.mask == 1, truth) > 0.95
    assert session.mask.dtype == np.uint8 and session.mask.shape == SHAPE
    assert session.encodes == 17 and sorted(session.cache.encoded) == list(range(4, 21))


def test_second_object_on_encoded_slices_costs_no_encodes(session):
    session.add_box3d(25, 21, 4, 43, 39, 20)
    before = session.encodes
    session.add_box3d(25, 21, 8, 34, 39, 16)
    assert session.encodes == before
    assert set(np.unique(session.mask)) == {0, 1, 2}


def test_later_object_wins_where_objects_overlap(session):
    session.add_box3d(25, 21, 4, 43, 39, 20)
    session.add_box3d(25, 21, 10, 34, 39, 14)
    m = session.mask
    assert (m[12, 30, 30] == 2) and (m[12, 30, 40] == 1) and (m[6, 30, 34] == 1)
    assert session.object_mask(1)[12, 30, 30]


def test_2d_box_propagates_until_the_structure_ends(session):
    session.add_box(12, (25, 21, 43, 39), propagate=True)
    assert dice(session.mask == 1, sphere()) > 0.95
    # the sphere spans slices 4..20; at most one slice beyond each end is encoded, plus the coronal and
    # sagittal planes that gave the z-range
    axial = [k for k in session.cache.encoded if isinstance(k, int)]
    assert min(axial) >= 3 and max(axial) <= 21
    assert sorted(k.axis for k in session.cache.encoded if not isinstance(k, int)) == ["x", "y"]


def test_baseline_2d_box_runs_on_until_a_slice_is_empty(session):
    # the fake model sees bright noise on slices without the sphere: the baseline rule leaks into them
    session.add_box(12, (25, 21, 43, 39), propagate=True, propagation="baseline")
    got = session.mask == 1
    assert (got & sphere()).sum() / sphere().sum() > 0.99
    assert got[:4].any() and got[21:].any()


def test_2d_box_without_propagation_stays_on_its_slice(session):
    session.add_box(12, (25, 21, 43, 39), propagate=False)
    assert np.nonzero(session.mask.any(axis=(1, 2)))[0].tolist() == [12]
    assert session.encodes == 1


def test_single_point_segments_in_3d(session):
    session.add_point(34, 30, 12)
    assert dice(session.mask == 1, sphere()) > 0.9
    obj = session.state.objects[-1]
    # read off the side planes (the sphere spans 4..20); the fake model fills its box, so the side planes'
    # proposal cut at slice 19 scores about as high as the one enclosing the sphere
    assert obj.kind == "point" and obj.track.z_lo == 4 and obj.track.z_hi in (19, 20)


def test_single_point_on_an_anisotropic_volume(volume):
    """Side planes of a volume with 3x thicker slices are resampled to square pixels and mapped back."""
    from medseg.io.image import Geometry, Image

    s = VolumeSession(fake_predictor())
    s.set_volume(Image(volume, Geometry.identity(3, (1.0, 1.0, 3.0))))
    s.add_point(34, 30, 12)
    obj = s.state.objects[-1]
    assert abs(obj.track.z_lo - 4) <= 1 and abs(obj.track.z_hi - 20) <= 1
    assert dice(s.mask == 1, sphere()) > 0.9


def test_correction_changes_its_slice_and_undo_restores_exactly(session):
    session.add_box3d(25, 21, 4, 43, 39, 20)
    before, encodes = session.mask.copy(), session.encodes
    session.add_point(34, 30, 15, positive=False)
    after = session.mask
    assert not after[15, 30, 34] and before[15, 30, 34]
    assert session.encodes == encodes  # decoder only
    assert session.undo()
    assert np.array_equal(session.mask, before)
    assert session.undo() and not session.mask.any()
    assert not session.undo()


def test_reset_is_undoable_and_keeps_the_cache(session):
    session.add_box3d(25, 21, 4, 43, 39, 20)
    kept, encodes = session.mask.copy(), session.encodes
    session.reset()
    assert not session.mask.any() and session.encodes == encodes and len(session.cache) == 17
    session.undo()
    assert np.array_equal(session.mask, kept)


def test_clear_forgets_objects_and_history_but_keeps_the_cache(session):
    session.add_box3d(25, 21, 4, 43, 39, 20)
    encodes = session.encodes
    session.clear()
    assert not session.mask.any() and not session.undo() and session.encodes == encodes


def test_a_given_mask_is_an_object_that_clicks_correct_and_undo_removes(session):
    given = sphere()
    label = session.add_mask(given.astype(np.uint8), name="given")
    assert label == 1 and np.array_equal(session.mask == 1, given)
    session.add_point(34, 30, 12, positive=False)
    assert not session.mask[12, 30, 34] and session.mask[6:18].any()
    assert session.undo() and np.array_equal(session.mask == 1, given)
    assert session.undo() and not session.mask.any()
    with pytest.raises(MedsegError, match="differs from the volume"):
        session.add_mask(given[:3])


def test_memory_budget_evicts_and_still_segments(volume):
    s = VolumeSession(fake_predictor(), budget_mib=3 * 64 * 64 * 4 / MIB)  # room for 3 fake embeddings
    s.set_volume(volume)
    s.add_box3d(25, 21, 4, 43, 39, 20)
    assert len(s.cache) == 3 and s.cache.evictions == 14
    assert dice(s.mask == 1, sphere()) > 0.95


def test_box_partly_outside_is_clipped_and_reported(session):
    session.add_box3d(25, 21, -5, 43, 80, 30)
    assert session.messages == ["box 25,21,-5,43,80,30 reaches outside the volume; clipped to 25,21,0,43,63,23"]
    assert session.encodes == 24


@pytest.mark.parametrize("box, words", [
    ((30, 30, 5, 30, 40, 10), "zero extent"),
    ((40, 30, 5, 30, 40, 10), "inverted"),
    ((70, 70, 5, 90, 90, 10), "entirely outside"),
    ((10, 10, 30, 20, 20, 40), "entirely outside"),
])
def test_bad_3d_boxes_are_one_line_errors(session, box, words):
    with pytest.raises(MedsegError, match=words) as err:
        session.add_box3d(*box)
    assert "\n" not in str(err.value) and not session.state.objects and session.encodes == 0


def test_bad_points_and_slices_are_errors(session):
    with pytest.raises(MedsegError, match="outside the image"):
        session.add_point(70, 10, 5)
    with pytest.raises(MedsegError, match="slice 24 is out of range"):
        session.add_point(10, 10, 24)
    with pytest.raises(MedsegError, match="slice -1 is out of range"):
        session.add_box(-1, (1, 1, 10, 10))
    with pytest.raises(MedsegError, match="positive"):
        session.add_point(34, 30, 12, positive=False)
    assert session.encodes == 0


def test_consistency_rule_segments_the_sphere(session):
    from medseg.predict.propagate import Propagation

    session.add_box3d(25, 21, 4, 43, 39, 20, propagation=Propagation(consistency=True))
    assert dice(session.mask == 1, sphere()) > 0.95


def test_default_prompts_every_slice_of_a_3d_box_with_the_box(session):
    """The default rule anchors each slice to the 3D box; the baseline follows the previous mask's box."""
    box = np.array([25, 21, 43, 39], np.float32)
    session.add_box3d(25, 21, 4, 43, 39, 20)
    slices = session.state.objects[-1].slices
    assert sorted(slices) == list(range(4, 21))
    assert all(np.array_equal(r.box, box) for r in slices.values())
    session.add_box3d(25, 21, 4, 43, 39, 20, propagation="baseline")
    baseline = session.state.objects[-1].slices
    assert not all(np.array_equal(r.box, box) for r in baseline.values())


def test_click_where_the_model_sees_nothing_takes_what_a_walk_from_it_reaches(session):
    """A positive click on background the model cannot segment adds what a random walker from the click and the object
    gives the object (medseg.predict.walked): connected to the click, within 2 d + 2 of the click (d: the click's
    distance to the slice's mask), on the slices around it."""
    from scipy import ndimage

    from medseg.predict.walked import REACH

    session.add_box3d(25, 21, 4, 43, 39, 20)
    before = session.object_mask(1) > 0
    session.add_point(10, 10, 12, positive=True)
    after = session.object_mask(1) > 0
    added = after & ~before
    d = ndimage.distance_transform_edt(~before[12])[10, 10]
    reach = REACH * d + 2
    z, y, x = np.ogrid[: SHAPE[0], : SHAPE[1], : SHAPE[2]]
    ball = (z - 12) ** 2 + (y - 10) ** 2 + (x - 10) ** 2 <= reach**2
    assert 20 < d < 25 and after[12, 10, 10] and not (before & ~after).any()
    assert not (added & ~ball).any()
    assert ndimage.label(added)[0][12, 10, 10] and ndimage.label(added)[1] == 1  # one part, holding the click
    # on even background far from the object the walk keeps near the click (measured: 35 voxels on slices 9-14);
    # before stop 52 the alike voxels of the whole ball reaching the object, before stop 45 a 29-pixel disc
    assert len(np.flatnonzero(added.any(axis=(1, 2)))) >= 3 and 9 <= added.sum() < 200


def test_negative_click_where_the_model_finds_too_much_flips_a_small_disc(session):
    """A negative click whose model region would take more than half the slice's mask, and whose grown region more
    than half the object (a click at a sphere's centre: its ball is the sphere), removes a disc of radius 3."""
    label = session.add_mask(sphere().astype(np.uint8))
    session.add_point(34, 30, 12, positive=False)
    removed = sphere() & ~(session.mask == label)
    assert removed.sum() == 29 and removed[12].sum() == 29  # the 29 pixels within radius 3, on the click's slice


def test_grown_region_keeps_to_alike_connected_voxels_within_the_ball():
    from medseg.predict.correct import GROW_TOL, grown_region

    vol = np.full((12, 40, 40), 20.0, np.float32)
    vol[:, 10:30, 10:30] = 200.0  # a bright block ...
    vol[:, 10:30, 19:21] = 200.0 + 2 * GROW_TOL  # ... cut in two by a wall much brighter than it
    masks = {z: np.zeros((40, 40), bool) for z in range(12)}
    for z in range(4, 8):
        masks[z][10:30, 10:14] = True  # the object: the block's left edge on slices 4..7
    spacing = (1.0, 1.0, 3.0)  # (x, y, z): slices 3 mm apart
    out = grown_region(vol, masks, 6, 20, 17, True, spacing)  # 4 px right of the object: a ball of 4 mm
    grown = np.stack([out.get(z, np.zeros((40, 40), bool)) for z in range(12)])
    z, y, x = np.ogrid[:12, :40, :40]
    ball = ((z - 6) * 3.0) ** 2 + (y - 20) ** 2 + (x - 17) ** 2 <= 4.0**2
    expected = ball & (vol == 200.0)
    expected[:, :, 19:] = False  # the wall is not alike, the block beyond it (x 21, in the ball) not connected
    for zz in range(4, 8):
        expected[zz] &= ~masks[zz]  # the object's own voxels are not added
    assert grown[6, 20, 17] and np.array_equal(grown, expected)
    assert set(out) == {5, 6, 7}  # the slices 3 mm away hold the ball's 2.6 px cross-sections


def test_grown_region_of_a_negative_click_stays_inside_the_object_and_its_ball():
    from medseg.predict.correct import grown_region

    vol = np.full((10, 30, 30), 20.0, np.float32)
    vol[:, 5:25, 15:25] = 120.0  # the object covers a dark part (x 5..14) and a grey one (x 15..24)
    masks = {z: np.zeros((30, 30), bool) for z in range(10)}
    for z in range(2, 8):
        masks[z][5:25, 5:25] = True
    out = grown_region(vol, masks, 5, 15, 9, False, (1.0, 1.0, 1.0))  # in the dark part, 4 voxels from the border
    grown = np.stack([out.get(z, np.zeros((30, 30), bool)) for z in range(10)])
    z, y, x = np.ogrid[:10, :30, :30]
    ball = (z - 5) ** 2 + (y - 15) ** 2 + (x - 9) ** 2 <= 3.0**2  # the nearest voxel outside: slice 8, 3 away
    inside = np.stack([masks[k] for k in range(10)])
    assert np.array_equal(grown, ball & inside & (vol == 20.0))


@pytest.fixture
def two_blobs() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A volume with blob A (x 14..26) and blob B (x 41..51), both on slices ~6..18."""
    a, b = sphere((12, 30, 20), 6.0), sphere((12, 30, 46), 5.0)
    rng = np.random.default_rng(1)
    vol = rng.integers(10, 30, SHAPE).astype(np.uint8)
    vol[a | b] = 200
    return vol, a, b


def test_negative_click_removes_a_region_on_every_slice_it_reaches(two_blobs):
    vol, a, b = two_blobs
    s = VolumeSession(fake_predictor())
    s.set_volume(vol)
    s.add_box3d(13, 23, 5, 52, 37, 19)  # takes both blobs
    assert dice(s.mask == 1, a | b) > 0.95
    encodes = s.encodes
    s.add_point(46, 30, 12, positive=False)
    assert dice(s.mask == 1, a) > 0.95 and not (s.mask[b] == 1).any()  # gone from slices 7..17
    assert s.encodes == encodes  # decoder only
    s.undo()
    assert dice(s.mask == 1, a | b) > 0.95


def test_a_follow_decoded_again_is_remembered_bit_for_bit(two_blobs):
    """A click again after undo decodes no follow box twice; its masks equal a session's that remembers nothing."""
    vol = two_blobs[0]
    runs = []
    for size in (0, FOLLOW_MEMO):
        s = VolumeSession(fake_predictor())
        s.set_volume(vol)
        s._follows = FollowMemo(size)
        s.add_box3d(13, 23, 5, 52, 37, 19)
        masks = []
        for x, y, z, positive in ((46, 30, 12, False), (46, 30, 12, False), (20, 30, 10, False)):
            s.add_point(x, y, z, positive=positive)
            masks.append(s.mask.copy())
            s.undo()
        runs.append((masks, s._follows.hits))
    assert runs[0][1] == 0 and runs[1][1] >= 5  # the second click's follow: every slice it reached (measured 10)
    assert all(np.array_equal(a, b) for a, b in zip(runs[0][0], runs[1][0], strict=True))


def test_follow_memo_keys_on_slice_crop_and_box_and_forgets_the_oldest():
    calls = []

    def decode(z, box, only):
        calls.append(z)
        mask = np.zeros((1, 20, 30), bool)
        mask[0, 2 + z:9, 3:25] = True  # reaches beyond the box: only its part inside comes back
        return SimpleNamespace(masks=mask)

    memo = FollowMemo(2)
    box = np.array([4.0, 3.0, 12.5, 8.0], np.float32)
    first = memo.finder(decode, None)(1, box)
    assert first.any() and not first[:, 14:].any() and not first[:2].any()
    assert np.array_equal(memo.finder(decode, None)(1, box), first) and calls == [1]
    memo.finder(decode, (0, 0, 10, 10))(1, box)  # another crop: decoded
    memo.finder(decode, None)(2, box)  # another slice: decoded; the memo's oldest (slice 1, no crop) goes
    memo.finder(decode, None)(1, box)
    assert calls == [1, 1, 2, 1] and memo.hits == 1


def test_positive_click_adds_a_missed_region_through_the_volume(two_blobs):
    vol, a, b = two_blobs
    s = VolumeSession(fake_predictor())
    s.set_volume(vol)
    s.add_box3d(13, 23, 5, 27, 37, 19)  # blob A only
    assert dice(s.mask == 1, a) > 0.95
    s.add_point(46, 30, 12, positive=True)
    assert dice(s.mask == 1, a | b) > 0.95
    assert s.state.objects[-1].edits[-1].positive


def _drum_and_bar(bar_x: int, bar_r2: int, seed: int) -> tuple[VolumeSession, np.ndarray, np.ndarray]:
    """A session on a bright drum (radius 5 at x 20, y 30, slices 6..18) beside a bright bar through every slice (at
    x ``bar_x``, squared radius ``bar_r2``), in noise of ``seed``: (session, drum, bar)."""
    z, y, x = np.ogrid[: SHAPE[0], : SHAPE[1], : SHAPE[2]]
    drum = ((y - 30) ** 2 + (x - 20) ** 2 <= 25) & (z >= 6) & (z <= 18)
    bar = np.broadcast_to((y - 30) ** 2 + (x - bar_x) ** 2 <= bar_r2, SHAPE)
    vol = np.random.default_rng(seed).integers(10, 30, SHAPE).astype(np.uint8)
    vol[drum | bar] = 200
    s = VolumeSession(fake_predictor())
    s.set_volume(vol)
    return s, drum, bar


def test_a_3d_box_objects_correction_follows_near_the_click_within_the_boxs_slices():
    """A bright bar (radius 3: 29 pixels a slice) through every slice beside a drum A on slices 6..18, boxed on slices
    5..19: a positive click on the bar adds it within ceil(sqrt(29 / pi)) = 4 slices of the click and within the box's
    slices (before: on all 24 slices); a click below the box reaches up from its own slice, not down."""
    s, _, bar = _drum_and_bar(46, 9, 2)
    s.add_box3d(13, 23, 5, 27, 37, 19)  # drum A only
    for click_z, reached in ((12, range(8, 17)), (17, range(13, 20)), (2, range(2, 7))):
        s.add_point(46, 30, click_z, positive=True)
        added = (s.mask == 1) & bar
        assert np.flatnonzero(added.any(axis=(1, 2))).tolist() == list(reached)
        assert added[list(reached)].sum() == bar[list(reached)].sum()  # the bar whole on those slices
        s.undo()


def test_a_region_apart_from_a_click_objects_mask_inside_its_box_follows_only_the_boxs_slices():
    """A click object on a drum (slices 6..18) whose 3D box (slices 5..19) also covers a bright bar through every
    slice, apart from the drum: a positive click on the bar inside the box adds it on the box's slices alone (before:
    on all 24, as PyRadiomics lung1's second click followed a vessel past the nodule)."""
    from medseg.predict import propagate as prop
    from medseg.prompts import Box3D, Point

    s, drum, bar = _drum_and_bar(32, 4, 3)
    s.click_atlas = False
    label = s._box3d_object("point", Box3D(13, 23, 5, 36, 37, 19), 12, prop.DEFAULT, (Point(20, 30, 12),),
                            prompt_clicks=False)
    assert dice(s.object_mask(label).astype(bool), drum) > 0.9 and not (s.object_mask(label).astype(bool) & bar).any()
    s.add_point(32, 30, 12, positive=True, obj=label)
    added = s.object_mask(label).astype(bool) & bar
    assert np.flatnonzero(added.any(axis=(1, 2))).tolist() == list(range(5, 20))
    assert added[5:20].sum() == bar[5:20].sum()


def test_a_lone_clicks_object_ends_before_slices_of_foreign_intensity():
    """A click object's 3D box over slices 2..22 around a bright drum (slices 6..18) with grey plates (intensity 110)
    on slices 3..5 and 19..21 under it: the box's masks take the plates in (the model segments what is bright in the
    box), and the object ends where their intensity differs from the seed slice's (medseg.predict.extent); plates of
    the drum's own intensity stay, as a structure reaching further would."""
    from medseg.predict import propagate as prop
    from medseg.prompts import Box3D, Point

    for plate, kept in ((110, range(6, 19)), (200, range(3, 22))):
        s, drum, _ = _drum_and_bar(60, 0, 4)
        vol = s.image.array.copy()
        vol[3:6, 26:35, 16:25] = plate
        vol[19:22, 26:35, 16:25] = plate
        s.set_volume(vol)
        label = s._box3d_object("point", Box3D(13, 23, 2, 27, 37, 22), 12, prop.DEFAULT, (Point(20, 30, 12),),
                                prompt_clicks=False)
        mask = s.object_mask(label).astype(bool)
        assert np.flatnonzero(mask.any(axis=(1, 2))).tolist() == list(kept)
        obj = s._object(label)
        assert (obj.track.z_lo, obj.track.z_hi) == (kept[0], kept[-1]) if plate != 200 else (2, 22)
        assert dice(mask, drum) > 0.9 if plate != 200 else mask[3:6].sum() == 3 * 81


def test_a_propagated_2d_boxs_object_ends_before_slices_of_foreign_intensity():
    """A 2D box on the drum's slice 12, propagated: its z-extent comes from the side planes too, and the grey plates
    past the drum's ends (intensity 110) are left out as for a lone click."""
    s, drum, _ = _drum_and_bar(60, 0, 4)
    vol = s.image.array.copy()
    vol[3:6, 26:35, 16:25] = 110
    vol[19:22, 26:35, 16:25] = 110
    s.set_volume(vol)
    label = s.add_box(12, (14, 24, 26, 36))
    mask = s.object_mask(label).astype(bool)
    assert not mask[:6].any() and not mask[19:].any() and dice(mask, drum) > 0.9


def test_box_span():
    disc = np.zeros((40, 40), bool)
    disc[10:20, 10:20] = True  # 100 pixels: equivalent radius 5.64 px
    assert box_span(disc, 20, (10, 30), (1.0, 1.0, 1.0)) == (14, 26)
    assert box_span(disc, 20, (18, 22), (1.0, 1.0, 1.0)) == (18, 22)  # the box's slices bound it
    assert box_span(disc, 20, (10, 30), (0.5, 0.5, 3.0)) == (19, 21)  # mm: 2.82 mm over 3 mm slices
    assert box_span(disc, 3, (10, 30), (1.0, 1.0, 1.0)) == (3, 9)  # a click below the box: from its slice up


def test_positive_click_on_an_empty_object_starts_it_again(session):
    session.add_point(5, 5, 12)  # background: nothing to segment under this click
    assert not session.object_mask(1).any()
    session.add_point(34, 30, 12)
    assert dice(session.mask == 1, sphere()) > 0.9 and len(session.state.objects) == 1
    session.undo()
    assert not session.mask.any() and len(session.state.objects) == 1


def test_negative_click_near_the_end_of_a_click_object_cuts_it_there(session):
    """A click object's z-extent is an estimate: a negative click toward its end removes that slice and those
    beyond it (``correct.z_cut``); one near the seed slice, or on a 3D box's object, edits a region instead."""
    session.add_point(34, 30, 12)
    obj = session.state.objects[-1]
    before = session.object_mask(1).copy()
    top = max(obj.masks)
    assert obj.seed_z == 12 and top >= 18 and before[18, 30, 34]
    session.add_point(34, 30, 18, positive=False)  # 3/4 of the way to the end; slices 18.. hold ~5% of it
    after = session.object_mask(1)
    assert not after[18:].any() and np.array_equal(after[:18], before[:18])
    assert session.undo() and np.array_equal(session.object_mask(1), before)
    session.add_point(34, 30, 13, positive=False)  # next to the seed slice: a region edit, no cut
    assert session.object_mask(1)[14:].any() and not session.object_mask(1)[13, 30, 34]


def test_negative_click_on_a_box_object_never_cuts(session):
    session.add_box3d(25, 21, 4, 43, 39, 20)
    before = session.object_mask(1).copy()
    session.add_point(34, 30, 18, positive=False)
    after = session.object_mask(1)
    # a region edit (since stop 45 the grown ball around the click, which reaches slices 16-20: 46 -> 32 voxels past
    # slice 18), not a cut, which would empty slices 18 on
    assert not after[18, 30, 34] and after[18].any() and after[19:].sum() > before[19:].sum() / 2


def test_z_cut_rule():
    from medseg.predict.correct import z_cut

    masks = {z: np.ones((4, 4), bool) for z in range(10, 21)}  # seed 12: slices 13..20 above it
    assert z_cut(masks, 12, (10, 20), 17, 1, 1) == []  # 5/8 of the way up, but 4 of 11 slices hold too many voxels
    masks = {z: np.ones((4, 4), bool) if z < 17 else np.eye(4, dtype=bool) for z in range(10, 21)}
    assert z_cut(masks, 12, (10, 20), 17, 1, 1) == [17, 18, 19, 20]  # now 16 of 128 voxels
    assert z_cut(masks, 12, (10, 20), 17, 0, 1) == []  # not on the mask
    assert z_cut(masks, 12, (10, 20), 14, 1, 1) == []  # only 1/4 of the way
    assert z_cut(masks, 12, (10, 20), 10, 1, 1) == [10]  # downward: the last slice
    assert z_cut(masks, 12, (10, 20), 12, 1, 1) == []  # the seed slice
    assert z_cut(masks, 12, (10, 30), 17, 1, 1) == []  # 5/18 of the way to the end of the first extent
    assert z_cut(masks, 12, (12, 20), 10, 1, 1) == [10]  # below an extent that starts at the seed slice
    short = {z: np.ones((4, 4), bool) for z in range(7, 11)}  # a 4-slice object, seed 9: each slice holds 1/4
    assert z_cut(short, 9, (7, 10), 7, 1, 1) == [7]  # the first extent's end slice alone: cut whatever its share
    del short[7]
    assert z_cut(short, 9, (7, 10), 8, 1, 1) == []  # the next one is not the extent's end: no walk toward the seed
    assert z_cut(short, 9, (7, 10), 10, 1, 1) == []  # the end, but the seed's neighbour: a false rim, not a false slice
    thin = {z: np.ones((4, 4), bool) if z != 13 else np.eye(4, dtype=bool) for z in range(10, 14)}
    assert z_cut(thin, 12, (10, 13), 13, 1, 1) == []  # 4 of 52 voxels, but the seed's neighbour (since stop 51)


def test_positive_click_past_the_end_is_limited_by_the_nearest_slice():
    """A positive click on a slice the object does not reach: its region is measured against the object's
    largest slice (MAX_ADD times its area), so a large bright structure there is not taken in whole; the click
    then adds the alike voxels in the ball around it that reaches the object (``grown_region``)."""
    from scipy import ndimage

    s = VolumeSession(fake_predictor())
    rng = np.random.default_rng(0)
    volume = rng.integers(10, 30, SHAPE).astype(np.uint8)
    volume[sphere()] = 200
    volume[21:24, 10:50, 10:50] = 200  # a large bright block on the slices just past the sphere
    s.set_volume(volume)
    s.add_box3d(25, 21, 4, 43, 39, 19)
    before = s.object_mask(1).copy() > 0
    assert not before[21:].any()
    s.add_point(30, 30, 22, positive=True)
    added = (s.object_mask(1) > 0) & ~before
    radius = ndimage.distance_transform_edt(~before)[22, 30, 30]
    z, y, x = np.ogrid[: SHAPE[0], : SHAPE[1], : SHAPE[2]]
    ball = (z - 22) ** 2 + (y - 30) ** 2 + (x - 30) ** 2 <= radius**2
    block = np.zeros(SHAPE, bool)
    block[21:24, 10:50, 10:50] = True  # (the sphere's bright rim voxel in the ball, at z 19, is not connected to it)
    assert added[22, 30, 30] and np.array_equal(added, ball & block)  # 95 voxels, not the block's 4,800
    assert added.sum() < 200


def test_largest_area_and_the_positive_limit_on_empty_slices():
    from medseg.predict.correct import MAX_ADD, largest_area, within_limits

    assert largest_area({10: 0, 12: 50, 15: 80}) == 80 and largest_area({}) == 0
    part, empty = np.ones((10, 10), bool), np.zeros((10, 10), bool)
    assert not within_limits(part, empty, True, reference=int(100 / MAX_ADD) - 1)
    assert within_limits(part, empty, True, reference=50) and within_limits(part, empty, True)
    assert not within_limits(part, empty, False, reference=1000)  # removals: unchanged


def test_positive_click_outside_a_click_objects_box_grows_it_and_undo_restores(two_blobs):
    vol, a, b = two_blobs
    s = VolumeSession(fake_predictor())
    s.set_volume(vol)
    s.add_point(20, 30, 12)  # blob A: the click object's box holds it alone
    before, encodes = s.mask.copy(), s.encodes
    limits = s.state.objects[-1].track.limits.copy()
    assert dice(s.mask == 1, a) > 0.9 and limits[2] < 41
    s.add_point(46, 30, 12, positive=True)  # blob B, outside that box
    obj = s.state.objects[-1]
    assert obj.track.limits[2] >= 50 and obj.track.limits[0] == limits[0]  # the box grew to take B in
    assert dice(s.mask == 1, a | b) > 0.9 and s.encodes == encodes
    s.undo()
    assert np.array_equal(s.mask, before) and np.array_equal(s.state.objects[-1].track.limits, limits)


def test_grown_box_rule():
    from medseg.predict.correct import grown_box

    box = np.array([10, 10, 19, 19], np.float32)  # 10 x 10
    region = np.zeros((64, 64), bool)
    region[12:18, 20:30] = True
    assert grown_box(box, (0, 9), 25, 15, 5, region).tolist() == [10, 10, 29, 19]
    assert grown_box(box, (0, 9), 15, 15, 5, region) is None  # the click is inside the box
    assert grown_box(box, (0, 9), 25, 15, 12, region) is None  # beyond the object's slices
    assert grown_box(box, (0, 9), 25, 15, 5, None) is None and grown_box(box, (0, 9), 25, 15, 5, region & False) is None
    far = np.zeros((64, 64), bool)
    far[50:60, 50:60] = True
    assert grown_box(box, (0, 9), 55, 55, 5, far) is None  # 50 x 50: more than 4 times the box


def _region_under_click(rows: slice, cols: slice):
    """A stand-in for ``segment_click``: the model's region under a correction click is this rectangle."""

    def region(decode, z, x, y, shape, *args, **kwargs):
        from medseg.predict.propagate import SliceResult

        mask = np.zeros(shape, bool)
        mask[rows, cols] = True
        return SliceResult(mask, np.zeros((1, 256, 256), np.float32), 0.9, None)

    return region


@pytest.mark.parametrize("positive", [True, False])
def test_correction_region_stays_within_a_band_twice_the_clicks_depth(session, monkeypatch, positive):
    """The protocol (and a user) clicks in the middle of an error, so a click at distance d from the mask's border
    says the error is about 2d thick: the region edit keeps to the pixels within BAND * d + 1 of the border, on
    the click's side (``correct.banded``), rather than the whole of what the model segments under the click."""
    import medseg.predict.volume_corrections as corrections
    from medseg.predict.correct import BAND, depth_from_border

    session.add_box3d(25, 21, 4, 43, 39, 20)
    before = session.object_mask(1).copy()
    cols = slice(43, 61) if positive else slice(34, 43)  # beside the sphere's disc (x 26..42 on slice 12) / in it
    monkeypatch.setattr(corrections, "segment_click", _region_under_click(slice(26, 35), cols))
    x = 45 if positive else 40  # 2-3 pixels from the border, outside / inside
    session.add_point(x, 30, 12, positive=positive)
    changed = session.object_mask(1) ^ before
    assert changed[12, 30, x] and not np.delete(changed, 12, axis=0).any()  # on the clicked slice only
    depth = depth_from_border(before[12].astype(bool), positive)
    d = depth[30, x]  # about 3
    assert 2 <= d <= 3 and depth[changed[12]].max() <= BAND * d + 1
    rectangle = np.zeros(before.shape[1:], bool)
    rectangle[26:35, cols] = True
    assert changed[12].sum() < (rectangle & (~before[12] if positive else before[12].astype(bool))).sum()


def test_positive_edit_followed_past_the_objects_end_stops_within_the_clicks_depth(monkeypatch):
    """A bright prism on slices 2..21, an object holding it only on slices 8..14 and up to x 33 (a given mask: a 3D
    box's corrections keep to its slices); a positive click 2 pixels right of the mask on slice 14 adds the missed part
    there within d + 1 = 3 of the border, and its follow beyond the object's ends keeps within that depth in 3D (three
    slices past each end, then the follow stops), where before it added the whole prism on every slice to the prism's
    ends."""
    import medseg.predict.volume_corrections as corrections

    vol = np.full(SHAPE, 20, np.uint8)
    vol[2:22, 20:41, 20:41] = 200
    s = VolumeSession(fake_predictor())
    s.set_volume(vol)
    s.refine = False  # the fake model's mask, cut at the box's x 34 (the walker would move it toward the prism's edge)
    s.add_box3d(20, 20, 8, 34, 40, 14)
    s.refine = True
    given = s.object_mask(1).astype(bool)
    s.clear()
    s.add_mask(given)
    before = s.object_mask(1).astype(bool)
    assert np.flatnonzero(before.any(axis=(1, 2))).tolist() == list(range(8, 15))
    assert np.flatnonzero(before[14].any(axis=0)).max() == 33
    monkeypatch.setattr(corrections, "segment_click", _region_under_click(slice(20, 41), slice(34, 41)))
    s.add_point(35, 30, 14, positive=True)
    changed = s.object_mask(1).astype(bool) & ~before
    assert changed[14, 30, 34:37].all() and not changed[14, :, 37:].any()
    assert np.flatnonzero(changed.any(axis=(1, 2))).tolist() == list(range(5, 18))
    assert changed[15, 30, 35] and not changed[15, :, 36:].any()  # lift 1: within sqrt(8) of slice 14's mask
    assert changed[17, 30, 33] and not changed[17, :, 34:].any()  # lift 3: its projection only


def test_depth_from_border_and_banded():
    from medseg.predict.correct import banded, depth_from_border

    mask = np.zeros((20, 20), bool)
    mask[5:15, 5:15] = True
    inside, outside = depth_from_border(mask, False), depth_from_border(mask, True)
    assert inside[9, 9] == 5 and inside[5, 9] == 1 and inside[0, 0] == 0
    assert outside[9, 17] == 3 and outside[9, 10] == 0 and outside[9, 19] == 5
    part = np.zeros_like(mask)
    part[9, 15:20] = True
    assert banded(part, mask, True, 2.0).nonzero()[1].tolist() == [15, 16]
    assert np.array_equal(banded(part, np.zeros_like(mask), True, 2.0), part)  # no mask on the slice: no band
    edge = np.zeros((6, 6), bool)
    edge[:, :3] = True  # a mask touching the image's edge: the edge is a border too
    assert depth_from_border(edge, False)[2, 0] == 1


def test_band_3d_reaches_past_the_objects_end_as_far_as_the_click_is_deep():
    """On a slice the object does not reach, the band is measured in 3D through the object's nearest slice: a
    positive edit from a click d pixels deep may add what lies within d + 1 of the object in 3D, not whole regions
    on slices past its end (pycerr pat_3: one such click followed its region through 18 false slices)."""
    from medseg.predict.correct import band_3d, banded

    square = np.zeros((20, 20), bool)
    square[5:15, 5:15] = True
    masks = {3: square, 4: square}
    part = np.zeros_like(square)
    part[9, 15:20] = True  # 1..5 pixels to the right of the square
    assert np.array_equal(band_3d(part, masks, 4, True, 3.5, 1.0), banded(part, square, True, 3.5))
    assert band_3d(part, masks, 5, True, 3.5, 1.0).nonzero()[1].tolist() == [15, 16, 17]  # lift 1: within 3.35
    assert band_3d(part, masks, 6, True, 3.5, 1.0).nonzero()[1].tolist() == [15, 16]  # lift 2: within 2.87
    assert band_3d(part, masks, 7, True, 3.5, 1.0).nonzero()[1].tolist() == [15]  # lift 3: within 1.80
    assert not band_3d(part, masks, 8, True, 3.5, 1.0).any()  # lift 4 > 3.5
    assert band_3d(part, masks, 1, True, 3.5, 1.0).nonzero()[1].tolist() == [15, 16]  # before its start, too
    assert not band_3d(part, masks, 5, True, 3.5, 3.6).any()  # 3 mm slices of 0.83 mm pixels: one is too far
    assert np.array_equal(band_3d(part, {}, 5, True, 3.0, 1.0), part)  # no object yet: nothing to measure from


def test_banded_and_click_depth_on_crops_equal_the_whole_slice():
    from medseg.predict.correct import banded, click_depth, depth_from_border

    rng = np.random.default_rng(3)
    for _ in range(40):
        mask = np.zeros((60, 70), bool)
        for _ in range(int(rng.integers(1, 4))):
            y, x, r = rng.integers(0, 60), rng.integers(0, 70), rng.integers(2, 15)
            yy, xx = np.ogrid[:60, :70]
            mask |= (yy - y) ** 2 + (xx - x) ** 2 <= r * r
        part = rng.random((60, 70)) < 0.3
        positive = bool(rng.integers(0, 2))
        part = part & ~mask if positive else part & mask
        width = float(rng.uniform(0.5, 9))
        whole = depth_from_border(mask, positive)
        assert np.array_equal(banded(part, mask, positive, width), part & (whole <= width))
        ys, xs = np.nonzero(~mask if positive else mask)
        if len(ys):
            k = int(rng.integers(0, len(ys)))
            assert click_depth(mask, int(xs[k]), int(ys[k]), positive) == pytest.approx(whole[ys[k], xs[k]])


def test_a_lone_clicks_object_holds_the_click_when_its_box_alone_misses_it(session):
    """The seed slice is decoded from the click's 3D box alone; when that mask misses the clicked pixel, the
    click's chosen mask seeds the object instead, so the user's click is always inside what it made."""
    from dataclasses import replace

    session.click_atlas = False
    decode = session._decode
    x, y, z = 29, 30, 12  # off the sphere's centre (x 34): its 3D box is not centred on the click, proposals are

    def missing_the_click(zz, **prompts):
        pred = decode(zz, **prompts)
        box = prompts.get("box")
        if zz == z and box is not None and prompts.get("points") is None and abs((box[0] + box[2]) / 2 - x) > 2:
            masks = pred.masks.copy()
            masks[:, y - 2:y + 3, x - 2:x + 3] = False  # the 3D box's decode: a hole under the click
            pred = replace(pred, masks=masks)
        return pred

    session._decode = missing_the_click
    label = session.add_point(x, y, z)
    mask = session.object_mask(label) == label
    assert mask[z, y, x] and dice(mask, sphere()) > 0.9


def test_a_lone_click_beside_every_proposals_mask_is_joined_to_it(session):
    """No proposal's mask holds the click (it lies in a small hole of the structure, as on a dark voxel or at the
    scan's edge): the masks within medseg.predict.click.NEAR pixels answer, joined to the click, not an empty object."""
    from dataclasses import replace

    session.click_atlas = False
    decode = session._decode
    x, y, z = 29, 30, 12

    def holed(zz, **prompts):
        pred = decode(zz, **prompts)
        masks = pred.masks.copy()
        masks[:, y - 1:y + 2, x - 1:x + 2] = False  # every decode: a 3 x 3 hole under the click
        return replace(pred, masks=masks)

    session._decode = holed
    label = session.add_point(x, y, z)
    mask = session.object_mask(label) == label
    assert mask[z, y, x] and dice(mask, sphere()) > 0.9


def drum_with_rim() -> tuple[np.ndarray, np.ndarray]:
    """(volume, the drum's mask): a drum on slices 6..18 at (y 30, x 20), bright inside radius 5 (200), a darker rim
    out to radius 7 (120), on noise (10-30)."""
    z, y, x = np.ogrid[: SHAPE[0], : SHAPE[1], : SHAPE[2]]
    r2 = (y - 30) ** 2 + (x - 20) ** 2
    slab = (z >= 6) & (z <= 18)
    core, whole = (r2 <= 25) & slab, (r2 <= 49) & slab
    vol = np.random.default_rng(5).integers(10, 30, SHAPE).astype(np.uint8)
    vol[whole] = 120
    vol[core] = 200
    return vol, whole


def test_a_lone_clicks_border_is_drawn_again_by_the_scans_edges():
    """A drum (slices 6..18) with a darker rim (radius 5 to 7, intensity 120) the fake model takes in part of (it
    keeps what is bright after 4x pooling): with ``refine`` the lone click's object reaches the drum's outer edge
    (medseg.predict.refine), on the same slices; the corrections after it edit that border, and undo is exact."""
    vol, whole = drum_with_rim()
    masks = {}
    for refine in (False, True):
        s = VolumeSession(fake_predictor())
        s.set_volume(vol)
        s.click_atlas, s.refine = False, refine
        label = s.add_point(20, 30, 12)
        masks[refine] = s.object_mask(label).astype(bool)
    assert dice(masks[False], whole) < 0.95  # measured 0.928: the model's border runs inside the rim
    assert dice(masks[True], whole) > 0.98  # measured 1.0
    assert (masks[True].any(axis=(1, 2)) == masks[False].any(axis=(1, 2))).all()  # its slices, no new ones
    before = s.mask.copy()
    s.add_point(20, 30, 12, positive=False, obj=label)  # a negative click in its middle: an edit of the drawn border
    assert (s.mask != before).any() and s.object_mask(label)[12, 30, 26]  # the rim stays
    s.undo()
    assert (s.mask == before).all()


def test_a_boxs_border_is_drawn_again_but_a_box_kept_on_its_slice_stays_the_models():
    """The drum with the darker rim, prompted by a tight 3D box and by a propagated 2D box: with ``refine`` both
    objects reach the drum's outer edge (medseg.predict.refine) on the same slices. A 2D box kept on its slice
    (``propagate=False``, the MedSAM 2D protocol) and a 3D box by the CVPR24 rule (a reference's reproduction) are the
    model's masks either way."""
    vol, whole = drum_with_rim()
    masks = {}
    for refine in (False, True):
        s = VolumeSession(fake_predictor())
        s.set_volume(vol)
        s.refine = refine
        masks["box3d", refine] = s.object_mask(s.add_box3d(12, 22, 6, 28, 38, 18)).astype(bool)
        masks["box", refine] = s.object_mask(s.add_box(12, (12, 22, 28, 38))).astype(bool)
        masks["slice", refine] = s.object_mask(s.add_box(12, (12, 22, 28, 38), propagate=False)).astype(bool)
        masks["cvpr24", refine] = s.object_mask(s.add_box3d(12, 22, 6, 28, 38, 18, propagation="baseline")).astype(bool)
    for kind in ("box3d", "box"):
        assert dice(masks[kind, False], whole) < 0.95, kind  # measured 0.928: the model's border inside the rim
        assert dice(masks[kind, True], whole) > 0.98, kind  # measured 1.0
        assert (masks[kind, True].any(axis=(1, 2)) == masks[kind, False].any(axis=(1, 2))).all(), kind
    for kind in ("slice", "cvpr24"):
        assert (masks[kind, True] == masks[kind, False]).all() and masks[kind, True].any(), kind
