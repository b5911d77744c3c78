"""A tiny stand-in for LiteMedSAM with the same encode/decode interface, for fast session tests.

encode: the (1, 3, 256, 256) model input average-pooled to a (1, 1, 64, 64) "embedding".
decode: "bright" pixels (embedding > 0.5, upsampled) inside the box, or near positive points when there
is no box, minus squares around negative points; a mask prompt alone keeps bright pixels under it.
"""

from __future__ import annotations

import threading

import torch
from torch.nn import functional as F

from medseg.engine import Engine
from medseg.predict.predictor import Predictor


class _PromptEncoder:
    input_size = (256, 256)


class FakeSAM:
    """Only what Predictor reads from a model."""

    def __init__(self) -> None:
        self.prompt_encoder = _PromptEncoder()


class FakeEngine(Engine):
    name = "fake"

    def __init__(self) -> None:  # no network: nothing to keep
        self.encode_calls = 0

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        self.encode_calls += 1
        return F.avg_pool2d(images[:, :1], 4)

    def decode(self, embeddings, points=None, boxes=None, masks=None, multimask=False):
        bright = F.interpolate(embeddings, size=(256, 256), mode="nearest")[0, 0] > 0.5
        yy, xx = torch.meshgrid(torch.arange(256.0), torch.arange(256.0), indexing="ij")
        region = torch.zeros(256, 256, dtype=torch.bool)
        if boxes is not None:
            x0, y0, x1, y1 = boxes[0].tolist()
            region |= (xx >= x0) & (xx <= x1) & (yy >= y0) & (yy <= y1)
        if points is not None:
            for (x, y), label in zip(points[0][0].tolist(), points[1][0].tolist(), strict=True):
                near = ((xx - x).abs() <= 24) & ((yy - y).abs() <= 24)
                if label == 1 and boxes is None:
                    region |= near
            for (x, y), label in zip(points[0][0].tolist(), points[1][0].tolist(), strict=True):
                if label == 0:
                    region &= ~(((xx - x).abs() <= 6) & ((yy - y).abs() <= 6))
        if boxes is None and points is None and masks is not None:
            region = masks[0, 0] > 0
        result = bright & region
        logits = torch.where(result, 10.0, -10.0)[None, None]
        score = 0.9 if bool(result.any()) else 0.1
        if multimask:
            return logits.expand(1, 3, 256, 256).clone(), torch.tensor([[0.95 * score, score, 0.97 * score]])
        return logits, torch.tensor([[score]])


def fake_predictor() -> Predictor:
    return Predictor(FakeSAM(), engine=FakeEngine())


class LaneFakeEngine(FakeEngine):
    """FakeEngine with two side-by-side encode lanes (as ONNX Runtime's), counting the lane encodes."""

    def __init__(self) -> None:
        super().__init__()
        self.lane_calls = 0
        self._lock = threading.Lock()

    def open_lanes(self) -> int:
        return 2

    def encode_lane(self, images: torch.Tensor, tag: object = None) -> torch.Tensor:
        with self._lock:
            self.lane_calls += 1
        return F.avg_pool2d(images[:, :1], 4)


def lane_predictor() -> Predictor:
    return Predictor(FakeSAM(), engine=LaneFakeEngine())
