"""VolumeSession.add_text with a stand-in route (no registration) and the fake model: a text object is an
ordinary object: named, corrected by clicks, undone exactly; a bad name adds nothing."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from medseg.errors import MedsegError
from medseg.predict.volume import VolumeSession
from medseg.text.routes import Router

sys.path.insert(0, str(Path(__file__).parents[1] / "predict"))
from fake_model import fake_predictor  # noqa: E402
from tests.text.stand_in import BlockRoute  # noqa: E402

SHAPE = (16, 40, 40)


def two_blobs() -> np.ndarray:
    """Left blob = label 1, right blob = label 2 (as an atlas carried onto the scan would give)."""
    labels = np.zeros(SHAPE, np.uint16)
    labels[4:10, 10:20, 5:15] = 1
    labels[5:11, 12:22, 25:35] = 2
    return labels


@pytest.fixture
def session() -> VolumeSession:
    rng = np.random.default_rng(0)
    vol = rng.integers(10, 30, SHAPE).astype(np.uint8)
    route = BlockRoute(two_blobs())
    vol[route.labels > 0] = 200
    s = VolumeSession(fake_predictor())
    s.set_volume(vol)
    s.text_router = Router([route])
    return s


def test_text_object_named_corrected_and_undone(session):
    label = session.add_text("lt caudate")
    assert label == 1 and session.state.objects[0].name == "left caudate" and session.state.objects[0].kind == "text"
    assert np.array_equal(session.mask == 1, session.text_router.routes[0].labels == 1)
    assert "left caudate (exact) via test route" in session.messages[-1]
    before = session.mask.copy()
    session.add_point(12, 14, 6, positive=False, obj=label)
    assert session.mask[6, 14, 12] == 0 and session.mask.sum() < before.sum()
    assert session.undo() and np.array_equal(session.mask, before)


def test_both_sides_stay_whole_and_refinement_is_chosen(session):
    label = session.add_text("both caudate", refine="box")
    mask = session.mask == label
    assert mask[:, :, :20].any() and mask[:, :, 20:].any()  # no connectivity rule dropping a side
    session.text_refine = "box+mask"
    assert session.add_text("right caudate") == 2


def test_bad_name_adds_nothing(session):
    with pytest.raises(MedsegError, match="ambiguous"):
        session.add_text("caudate")
    with pytest.raises(MedsegError, match="empty text prompt"):
        session.add_text("")
    assert session.state.objects == () and not session.undo()
