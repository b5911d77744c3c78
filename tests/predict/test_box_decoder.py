"""Predictor.box_decoder: every prompt but corrections goes to the other decoder (fake engines)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from medseg.predict.predictor import Predictor

sys.path.insert(0, str(Path(__file__).parent))
from fake_model import FakeEngine, FakeSAM  # noqa: E402


class CountingEngine(FakeEngine):
    def __init__(self) -> None:
        super().__init__()
        self.decodes = 0

    def decode(self, *args, **kwargs):
        self.decodes += 1
        return super().decode(*args, **kwargs)


class NumpyEngine:
    """A decoder on numpy arrays (as the exported graphs run), answering everything inside the box."""

    arrays = True
    input_size = 256

    def __init__(self) -> None:
        self.decodes = 0

    def decode(self, embedding, points, boxes, masks, multimask):
        assert isinstance(embedding, np.ndarray)
        self.decodes += 1
        x0, y0, x1, y1 = boxes[0].astype(int)
        logits = np.full((1, 1, 256, 256), -10.0, np.float32)
        logits[..., y0:y1 + 1, x0:x1 + 1] = 10.0
        return logits, np.array([[0.9]], np.float32)


def test_corrections_stay_and_everything_else_goes_to_the_box_decoder():
    clicks, boxes = CountingEngine(), CountingEngine()
    p = Predictor(FakeSAM(), engine=clicks, box_decoder=Predictor(FakeSAM(), engine=boxes))
    image = np.zeros((128, 128), np.uint8)
    image[40:80, 40:80] = 255
    p.set_image(image)
    assert p.predict(box=[30, 30, 90, 90]).masks.sum() == 40 * 40
    assert (clicks.decodes, boxes.decodes) == (0, 1)
    first = p.predict(box=[30, 30, 90, 90], points=[[60, 60]])  # e.g. a box proposal around a lone click
    assert (clicks.decodes, boxes.decodes) == (0, 2)
    p.predict(points=[[60, 60], [45, 45]], point_labels=[1, 0], mask_input=first.low_res_logits, correction=True)
    assert (clicks.decodes, boxes.decodes) == (1, 2)
    assert boxes.encode_calls == 0  # it decodes the embedding it is given


def test_a_numpy_box_decoder_gets_a_numpy_embedding():
    engine = NumpyEngine()
    p = Predictor(FakeSAM(), engine=CountingEngine(), box_decoder=Predictor(None, engine=engine))
    p.set_image(np.zeros((64, 64), np.uint8))
    assert isinstance(p.embedding, torch.Tensor)
    mask = p.predict(box=[8, 8, 23, 23]).masks[0]
    assert engine.decodes == 1 and mask[9:23, 9:23].all() and mask.sum() <= 17 * 17


def test_a_twin_keeps_the_box_decoder_and_its_own_slice():
    boxes = Predictor(FakeSAM(), engine=CountingEngine())
    p = Predictor(FakeSAM(), engine=CountingEngine(), click_trained=True, box_decoder=boxes)
    twin = p.twin()
    assert twin.box_decoder is boxes and twin.engine is p.engine and twin.click_trained and not twin.direct_clicks
    p.set_image(np.zeros((64, 64), np.uint8))
    assert twin._embedding is None  # a slice set on one is not the other's
