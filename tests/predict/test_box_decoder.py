"""Predictor.box_decoder: box-only prompts go to the other decoder, prompts with points stay (fake engines)."""

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


def test_boxes_go_to_the_box_decoder_and_points_stay():
    clicks, boxes = CountingEngine(), CountingEngine()
    p = Predictor(FakeSAM(), engine=clicks, box_decoder=Predictor(FakeSAM(), engine=boxes))
    image = np.zeros((128, 128), np.uint8)
    image[40:80, 40:80] = 255
    p.set_image(image)
    assert p.predict(box=[30, 30, 90, 90]).masks.sum() == 40 * 40
    assert (clicks.decodes, boxes.decodes) == (0, 1)
    p.predict(box=[30, 30, 90, 90], points=[[60, 60]])
    p.predict(points=[[60, 60]])
    assert boxes.decodes == 1 and clicks.decodes == 2
    assert boxes.encode_calls == 0  # it decodes the embedding it is given


def test_a_numpy_box_decoder_gets_a_numpy_embedding():
    engine = NumpyEngine()
    p = Predictor(FakeSAM(), engine=CountingEngine(), box_decoder=Predictor(None, engine=engine))
    p.set_image(np.zeros((64, 64), np.uint8))
    assert isinstance(p.embedding, torch.Tensor)
    mask = p.predict(box=[8, 8, 23, 23]).masks[0]
    assert engine.decodes == 1 and mask[9:23, 9:23].all() and mask.sum() <= 17 * 17
