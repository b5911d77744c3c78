"""A lone click's 3D box is the corner-wise median of its own and of four positions beside it
(``medseg.predict.extent.beside`` / ``median_box``, ``VolumeSession._joint_box``; fake model, synthetic volume)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from medseg.predict.click import empty_result
from medseg.predict.extent import beside, median_box
from medseg.predict.volume import VolumeSession

sys.path.insert(0, str(Path(__file__).parent))
from fake_model import fake_predictor  # noqa: E402


def test_the_positions_beside_a_click_are_two_model_pixels_away_and_on_the_slice():
    assert beside(100.0, 50.0, (256, 256)) == [(102.0, 50.0), (98.0, 50.0), (100.0, 52.0), (100.0, 48.0)]
    assert beside(100.0, 50.0, (512, 384)) == [(104.0, 50.0), (96.0, 50.0), (100.0, 54.0), (100.0, 46.0)]
    assert beside(0.0, 3.0, (64, 64)) == [(1.0, 3.0), (0.0, 4.0), (0.0, 2.0)]  # at least a pixel; none off the slice


def test_the_median_box_outvotes_one_odd_choice_and_holds_the_click():
    same = ((10, 20), (30, 40), (5, 9))
    odd = ((0, 90), (0, 90), (0, 30))  # one position's choice took the surroundings
    assert median_box([odd, same, same, ((11, 21), (30, 41), (5, 10)), same], (15, 35, 7)) == same
    assert median_box([same, ((12, 22), (32, 42), (5, 9))], (15, 35, 7)) == ((11, 21), (31, 41), (5, 9))
    assert median_box([same, same, same], (25, 35, 7)) == ((10, 25), (30, 40), (5, 9))


def _session(monkeypatch, boxes: dict) -> tuple[VolumeSession, list]:
    """A session whose lone-click ranking is ``boxes[(x, y)]`` (one entry each), the calls recorded."""
    s = VolumeSession(fake_predictor(), progress=False)
    s.set_volume(np.random.default_rng(0).integers(10, 30, (12, 64, 64)).astype(np.uint8))
    calls = []
    seed = empty_result((64, 64))

    def ranked(x, y, z):
        calls.append((x, y, z))
        return [(1.0, seed, *boxes[(x, y)])] if (x, y) in boxes else []

    monkeypatch.setattr(s, "_ranked", ranked)
    return s, calls


def test_a_lone_clicks_box_is_the_median_of_five_positions(monkeypatch):
    same = ((20, 30), (20, 30), (3, 8))
    boxes = {(25.0, 25.0): ((0, 63), (0, 63), (0, 11)),  # the click's own choice took everything
             (26.0, 25.0): same, (24.0, 25.0): same, (25.0, 26.0): ((21, 31), (20, 30), (3, 8)), (25.0, 24.0): same}
    s, calls = _session(monkeypatch, boxes)
    _, box, _ = s._joint_box(25.0, 25.0, 5)
    assert len(calls) == 5 and (box.x0, box.x1, box.y0, box.y1, box.z0, box.z1) == (20, 30, 20, 30, 3, 8)
    s.click_consensus = False  # the click's own choice
    _, box, _ = s._joint_box(25.0, 25.0, 5)
    assert (box.x0, box.x1, box.y0, box.y1, box.z0, box.z1) == (0, 63, 0, 63, 0, 11)
