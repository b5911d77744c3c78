"""A click-trained model in VolumeSession and segment_2d (fake model): the lone click is decoded as it is,
a correction re-decodes its slice from the box, all its clicks and its latest logits, undo stays exact."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from medseg.predict.predictor import Predictor
from medseg.predict.volume import VolumeSession

sys.path.insert(0, str(Path(__file__).parents[1] / "predict"))
from fake_model import FakeEngine, FakeSAM  # noqa: E402

SHAPE = (24, 64, 64)


def sphere(center=(12, 30, 34), radius=8.0) -> np.ndarray:
    z, y, x = np.ogrid[: SHAPE[0], : SHAPE[1], : SHAPE[2]]
    return (z - center[0]) ** 2 + (y - center[1]) ** 2 + (x - center[2]) ** 2 <= radius**2


class RecordingEngine(FakeEngine):
    """FakeEngine that records the prompts of every decode."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[dict] = []

    def decode(self, embeddings, points=None, boxes=None, masks=None, multimask=False):
        self.calls.append({"points": points, "boxes": boxes, "masks": masks})
        return super().decode(embeddings, points, boxes, masks, multimask)


@pytest.fixture
def session() -> VolumeSession:
    rng = np.random.default_rng(0)
    vol = rng.integers(10, 30, SHAPE).astype(np.uint8)
    vol[sphere()] = rng.integers(190, 210, int(sphere().sum()))
    s = VolumeSession(Predictor(FakeSAM(), engine=RecordingEngine(), click_trained=True))
    s.set_volume(vol)
    return s


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / (a.sum() + b.sum()))


def test_predictor_is_click_trained_only_when_told_or_built_with_a_shipped_decoder():
    assert not Predictor(FakeSAM(), engine=FakeEngine()).click_trained
    assert Predictor(FakeSAM(), engine=FakeEngine(), click_trained=True).click_trained


def test_lone_click_is_decoded_without_box_proposals(session):
    session.add_point(34, 30, 12)
    engine = session.predictor.engine
    seed = engine.calls[0]
    assert seed["boxes"] is None and seed["points"] is not None  # the click alone, no proposal box
    # the fake model answers a lone click with the bright pixels within 6 voxels of it (24 in model space)
    assert dice(session.mask == 1, sphere()) > 0.7


def test_correction_redecodes_its_slice_with_box_clicks_and_logits_and_undo_is_exact(session):
    session.add_box3d(25, 21, 4, 43, 39, 20)
    before, encodes = session.mask.copy(), session.encodes
    engine = session.predictor.engine
    n = len(engine.calls)
    session.add_point(34, 30, 15, positive=False)
    redo = engine.calls[n]
    assert redo["boxes"] is not None and redo["masks"] is not None  # box + mask prompt
    assert redo["points"][1].tolist() == [[0]]  # the negative click
    assert not session.mask[15, 30, 34] and before[15, 30, 34]
    assert session.encodes == encodes  # decoder only
    obj = session.state.objects[-1]
    assert 15 in obj.priors  # the next click on slice 15 starts from these logits
    m = len(engine.calls)
    session.add_point(36, 30, 15, positive=False)
    assert engine.calls[m]["points"][1].tolist() == [[0, 0]]  # both clicks of the slice
    assert np.array_equal(engine.calls[m]["masks"].numpy()[0], obj.priors[15])
    assert session.undo() and session.undo()
    assert np.array_equal(session.mask, before)
    assert not session.state.objects[-1].priors
