"""2D corrections go one way (``medseg.predict.segment.one_way``): a positive click only adds to the mask before it,
a negative one only takes away, whatever else the decoder's new answer changes (fake model)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from medseg.io.image import Geometry, Image
from medseg.predict.predictor import Predictor
from medseg.predict.segment import one_way, segment_2d
from medseg.prompts import Box, ObjectPrompts, Point

sys.path.insert(0, str(Path(__file__).parent))
from fake_model import FakeEngine, FakeSAM  # noqa: E402


class ForgetfulEngine(FakeEngine):
    """A box alone: the bright pixels in it. With clicks: only a 40-pixel square around the last click when it
    is positive, or the box's bright pixels minus that square when it is negative (the box's answer forgotten)."""

    def decode(self, embeddings, points=None, boxes=None, masks=None, multimask=False):
        if points is None:
            return super().decode(embeddings, boxes=boxes)
        (x, y), label = points[0][0, -1].tolist(), int(points[1][0, -1])
        yy, xx = torch.meshgrid(torch.arange(256.0), torch.arange(256.0), indexing="ij")
        square = ((xx - x).abs() <= 20) & ((yy - y).abs() <= 20)
        if not label:
            logits, iou = super().decode(embeddings, boxes=boxes)
            return torch.where(square, -10.0, logits[0, 0])[None, None], iou
        return torch.where(square, 10.0, -10.0)[None, None], torch.tensor([[0.9]])


def test_one_way_adds_for_a_positive_click_and_takes_away_for_a_negative_one():
    before, after = np.zeros((4, 4), bool), np.zeros((4, 4), bool)
    before[:2], after[1:3] = True, True
    assert (one_way(before, after, True) == (before | after)).all()
    assert (one_way(before, after, False) == (before & after)).all()


def test_a_correction_keeps_what_the_click_did_not_ask_to_change():
    array = np.random.default_rng(0).uniform(10, 40, (256, 256)).astype(np.float32)
    array[60:200, 60:200] += 160.0  # one bright square; the box covers its left part
    image = Image(array, Geometry.identity(2))
    predictor = Predictor(FakeSAM(), engine=ForgetfulEngine())
    box = Box(60, 60, 120, 199)
    only_box = segment_2d(predictor, image, [ObjectPrompts(box=box)]).labels == 1
    positive = segment_2d(predictor, image, [ObjectPrompts(box=box, points=[Point(170, 100)])]).labels == 1
    # the decoder's answer holds only the square around the click; the box's mask stays beside it
    assert only_box[100, 90] and positive[100, 90] and positive[100, 170] and not only_box[100, 170]
    assert (positive >= only_box).all()
    negative = segment_2d(predictor, image, [ObjectPrompts(box=box, points=[Point(90, 100, positive=False)])])
    cut = negative.labels == 1
    assert not cut[100, 90] and (cut <= only_box).all() and cut[180, 90]
