"""Prompt simulation: shapes and geometry on synthetic masks (no model)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medseg.train.prompts import (
    Prompts,
    central_pixel,
    error_clicks,
    first_prompts,
    jittered_box,
    tight_box,
)


def square(y0: int, y1: int, x0: int, x1: int, size: int = 64) -> torch.Tensor:
    m = torch.zeros(size, size, dtype=torch.bool)
    m[y0:y1, x0:x1] = True
    return m


def test_tight_box_is_xy_inclusive():
    assert tight_box(square(10, 20, 30, 45)).tolist() == [30, 10, 44, 19]


def test_jittered_box_stays_in_image_and_near_object():
    rng = np.random.default_rng(0)
    m = square(2, 30, 40, 63)
    for _ in range(50):
        x0, y0, x1, y1 = jittered_box(m, rng, jitter=0.2).tolist()
        assert 0 <= x0 <= x1 <= 63 and 0 <= y0 <= y1 <= 63
        assert abs(x0 - 40) <= 0.2 * 23 + 1e-4 and abs(y1 - 29) <= 0.2 * 28 + 1e-4
    assert jittered_box(m, rng, jitter=0.0).tolist() == tight_box(m).tolist()


def test_first_prompts_shapes_and_positions():
    rng = np.random.default_rng(1)
    masks = torch.stack([square(5, 15, 5, 15), square(30, 50, 20, 60), square(0, 3, 0, 3)])
    p = first_prompts(masks, "point", rng)
    assert p.boxes is None and p.coords.shape == (3, 1, 2) and p.labels.tolist() == [[1], [1], [1]]
    for m, (x, y) in zip(masks, p.coords[:, 0].long().tolist(), strict=True):
        assert m[y, x]
    b = first_prompts(masks, "box", rng)
    assert b.boxes.shape == (3, 4) and b.points is None
    with pytest.raises(ValueError):
        first_prompts(masks, "text", rng)


def test_error_clicks_follow_the_error_kind():
    rng = np.random.default_rng(2)
    gt = torch.stack([square(10, 30, 10, 30)] * 3)
    pred = torch.stack([torch.zeros(64, 64, dtype=torch.bool),  # all missed -> positive click in gt
                        square(10, 30, 10, 30) | square(40, 60, 40, 60),  # extra blob -> negative click there
                        square(10, 30, 10, 30)])  # perfect -> positive click in gt
    coords, labels = error_clicks(pred, gt, rng)
    assert coords.shape == (3, 2) and labels.tolist() == [1, 0, 1]
    (x0, y0), (x1, y1), (x2, y2) = coords.long().tolist()
    assert gt[0, y0, x0] and not gt[1, y1, x1] and pred[1, y1, x1] and gt[2, y2, x2]


def test_error_clicks_respect_valid_area():
    rng = np.random.default_rng(3)
    gt = square(10, 20, 10, 20)[None]
    pred = (square(10, 20, 10, 20) | square(0, 64, 50, 64))[None]
    valid = square(0, 64, 0, 56)[None]
    for _ in range(20):
        coords, label = error_clicks(pred, gt, rng, valid)
        assert label.item() == 0 and coords[0, 0].item() < 56


def test_add_clicks_accumulates():
    p = Prompts(boxes=torch.zeros(2, 4))
    p = p.add_clicks(torch.ones(2, 2), torch.tensor([1, 0]))
    p = p.add_clicks(torch.zeros(2, 2), torch.tensor([0, 1]))
    assert p.coords.shape == (2, 2, 2) and p.labels.tolist() == [[1, 0], [0, 1]] and p.boxes is not None


def test_central_pixel_is_deep_inside():
    x, y = central_pixel(square(10, 31, 20, 41)).tolist()
    assert (x, y) == (30, 20)
