"""A refused negative click on a lone click's object takes the choice's next reading that leaves it out
(``VolumeSession._rechosen``; fake model, synthetic volume)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from medseg.predict import propagate as prop
from medseg.predict.click import empty_result
from medseg.predict.volume import VolumeSession
from medseg.prompts import Box3D, Point

sys.path.insert(0, str(Path(__file__).parent))
from fake_model import fake_predictor  # noqa: E402
from test_correct3d import CountingPainter  # noqa: E402

SHAPE = (24, 48, 80)
BIG, SMALL = Box3D(8, 12, 4, 66, 36, 20), Box3D(8, 12, 4, 32, 36, 20)


def two_blocks() -> np.ndarray:
    """One bright slab in noise: x 10-30 (the structure) runs on into x 31-62 (its neighbour, as bright)."""
    vol = np.random.default_rng(0).integers(10, 30, SHAPE).astype(np.uint8)
    vol[6:19, 16:33, 10:63] = 200
    return vol


def session_with(hypotheses, monkeypatch) -> tuple[VolumeSession, int]:
    """A click object at x 20 read as the big box (both blocks), its other readings ``hypotheses``; every correction
    region refused by the rules (as one removing more than a correction may)."""
    monkeypatch.setattr("medseg.predict.volume_corrections.within_limits", lambda *a, **k: False)
    s = VolumeSession(fake_predictor(), progress=False)
    s.set_volume(two_blocks())
    s.refine = False
    s.correction_net = CountingPainter()
    label = s._box3d_object("point", BIG, 12, prop.config("default"), (Point(20, 24, 12, True),),
                            prompt_clicks=False, hypotheses=hypotheses)
    return s, label


def test_a_refused_negative_click_takes_the_next_reading_that_leaves_it_out_and_undo_is_exact(monkeypatch):
    empty = empty_result(SHAPE[1:])
    s, obj = session_with(((empty, Box3D(8, 12, 4, 60, 36, 20)), (empty, SMALL)), monkeypatch)
    before = s.object_mask(obj) > 0
    assert before[12, 24, 55] and before[12, 24, 20]
    s.add_point(55, 24, 12, positive=False, obj=obj)  # the neighbour: the first reading that leaves it out is SMALL
    after = s.object_mask(obj) > 0
    assert s.correction_net.calls == 0
    assert not after[:, :, 33:].any() and after[12, 24, 20]
    assert np.array_equal(after[:, :, :31], before[:, :, :31])  # the structure as before
    o = s._object(obj)
    assert o.hypotheses == () and o.clicks[12][-1] == Point(55, 24, 12, False)
    s.undo()
    assert np.array_equal(s.object_mask(obj) > 0, before)


def test_without_a_reading_that_leaves_the_click_out_the_network_answers(monkeypatch):
    empty = empty_result(SHAPE[1:])
    s, obj = session_with(((empty, Box3D(8, 12, 4, 60, 36, 20)),), monkeypatch)  # holds the click at x 55
    s.add_point(55, 24, 12, positive=False, obj=obj)
    assert s.correction_net.calls == 1


def test_a_reading_must_hold_the_positive_clicks_on_the_clicked_slice(monkeypatch):
    empty = empty_result(SHAPE[1:])
    s, obj = session_with(((empty, Box3D(8, 12, 4, 24, 36, 20)), (empty, SMALL)), monkeypatch)
    s.add_point(28, 24, 12, positive=True, obj=obj)  # inside the mask: nothing changes, the click is kept
    s.add_point(55, 24, 12, positive=False, obj=obj)
    after = s.object_mask(obj) > 0
    # the first reading leaves out the positive click at x 28: the next one (SMALL) is taken
    assert s.correction_net.calls == 0 and after[12, 24, 28] and not after[:, :, 33:].any()


def test_a_reading_must_hold_every_positive_click_in_z_too(monkeypatch):
    """A reading whose slices stop short of a positive click leaves that click out (SAM-Med3D's clicks on RIDER, seed 2:
    a reading of 11 slices, taken past a positive click below them, lost 0.32 Dice)."""
    empty = empty_result(SHAPE[1:])
    s, obj = session_with(((empty, Box3D(8, 12, 10, 32, 36, 20)), (empty, SMALL)), monkeypatch)
    s.add_point(20, 24, 6, positive=True, obj=obj)  # inside the mask on slice 6: nothing changes, the click is kept
    s.add_point(55, 24, 12, positive=False, obj=obj)
    after = s.object_mask(obj) > 0
    assert s.correction_net.calls == 0 and not after[:, :, 33:].any()
    assert after[6, 24, 20] and after[9, 24, 20]  # SMALL was taken, not the reading of slices 10-20


def test_a_reading_about_as_large_as_the_object_is_not_taken(monkeypatch):
    """A reading that leaves the click out but keeps more than SHRINK of the object's box: a local error, the
    network's (brain2 of PyRadiomics: such a reading lost 0.09 Dice where the network gained)."""
    empty = empty_result(SHAPE[1:])
    s, obj = session_with(((empty, Box3D(8, 12, 4, 50, 36, 20)),), monkeypatch)
    s.add_point(55, 24, 12, positive=False, obj=obj)
    assert s.correction_net.calls == 1
