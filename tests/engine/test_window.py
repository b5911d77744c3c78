"""Windowed decodes (``Predictor.predict(within=...)``): every engine decodes the same cells the same way, the
whole window is the ordinary decode, and nothing is masked beyond the window."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medseg.engine.graphs import CELL, FULL, OUTSIDE, decode_window, paste
from medseg.predict.predictor import WINDOW_MARGIN, Predictor


def test_decode_window_covers_the_region_and_its_margin():
    # model-space box (X0, Y0, X1, Y1) = cells columns 10..20, rows 5..7 (4 px a cell)
    assert decode_window(np.array([40.0, 20, 83, 31]), 2) == (3, 8, 10, 23)
    assert decode_window(np.array([0.0, 0, 255, 255]), 0) is None  # the whole grid: no window
    assert decode_window(np.array([2.0, 250, 9, 255]), 8) == (54, 0, 64, 11)  # clipped to the grid


def test_paste_puts_the_window_in_place():
    logits = np.ones((1, 1, 8, 12), np.float32)
    full = paste(logits, (2, 3, 4, 6))
    assert full.shape == (1, 1, 256, 256)
    assert (full[0, 0, 8:16, 12:24] == 1).all() and (full == 1).sum() == 96 and full.min() == OUTSIDE


def _embedding() -> np.ndarray:
    return np.random.default_rng(5).standard_normal((1, 256, 64, 64)).astype(np.float32)


def test_every_engine_decodes_a_window_alike(random_model):
    """Eager crops the dense embedding after the mask's downscaling, the graphs crop the mask before it: the
    same logits, so the cropping is exact."""
    model, engines, _ = random_model
    emb = _embedding()
    boxes = np.array([[60.0, 40, 120, 90]], np.float32)
    window = decode_window(boxes[0], 4)
    mask = np.random.default_rng(6).standard_normal((1, 1, 256, 256)).astype(np.float32)
    ref_full = engines["eager"].decode(torch.from_numpy(emb), boxes=torch.from_numpy(boxes))
    ref = engines["eager"].decode(torch.from_numpy(emb), boxes=torch.from_numpy(boxes),
                                  masks=torch.from_numpy(mask), window=window)
    for name, engine in engines.items():
        whole = engine.decode(torch.from_numpy(emb), boxes=torch.from_numpy(boxes), window=FULL)
        assert np.allclose(whole[0].numpy(), ref_full[0].numpy(), atol=1e-3), name  # the full window: no change
        logits, iou = engine.decode(torch.from_numpy(emb), boxes=torch.from_numpy(boxes),
                                    masks=torch.from_numpy(mask), window=window)
        assert logits.shape == (1, 1, 256, 256), name
        assert np.allclose(logits.numpy(), ref[0].numpy(), atol=1e-3), name
        assert np.allclose(iou.numpy(), ref[1].numpy(), atol=1e-4), name
        r0, c0, r1, c1 = window
        outside = np.ones((256, 256), bool)
        outside[r0 * CELL:r1 * CELL, c0 * CELL:c1 * CELL] = False
        assert (logits.numpy()[0, 0][outside] == OUTSIDE).all(), name


def test_predict_within_masks_nothing_beyond_the_window(random_model):
    model, engines, _ = random_model
    p = Predictor(model, engine=engines["eager"])
    p.set_embedding(torch.from_numpy(_embedding()), (300, 420))  # model space: 256 / 420 of the pixels
    box = np.array([150.0, 100, 230, 160], np.float32)
    out = p.predict(box=box, within=box)
    assert out.masks.shape == (1, 300, 420)
    scale = 256 / 420
    r0, c0, r1, c1 = decode_window(box * scale, WINDOW_MARGIN)
    ys, xs = np.nonzero(out.masks[0] | True)  # every pixel's low-res position
    cells_y, cells_x = (ys + 0.5) * scale / CELL, (xs + 0.5) * scale / CELL
    far = (cells_y < r0 - 1) | (cells_y > r1 + 1) | (cells_x < c0 - 1) | (cells_x > c1 + 1)
    assert not out.masks[0][ys[far], xs[far]].any()
    with pytest.raises(Exception, match="within"):
        p.predict(box=box, within=[1, 2, 3])


def test_every_engine_crops_the_upscaling_exactly(random_model):
    """``crop``: only some cells are upscaled; their logits are those of the uncropped decode (the upscaling is
    local to each cell), OUTSIDE elsewhere; with a window too, the crop is cut to it."""
    model, engines, _ = random_model
    emb = torch.from_numpy(_embedding())
    boxes = torch.from_numpy(np.array([[60.0, 40, 120, 90]], np.float32))
    crop = (9, 14, 24, 31)
    for name, engine in engines.items():
        for window in (None, (5, 10, 30, 40), (12, 2, 40, 20)):
            ref, ref_iou = engine.decode(emb, boxes=boxes, window=window)
            logits, iou = engine.decode(emb, boxes=boxes, window=window, crop=crop)
            w = FULL if window is None else window
            part = (max(crop[0], w[0]), max(crop[1], w[1]), min(crop[2], w[2]), min(crop[3], w[3]))
            inside = np.zeros((256, 256), bool)
            inside[part[0] * CELL:part[2] * CELL, part[1] * CELL:part[3] * CELL] = True
            assert np.allclose(logits.numpy()[0, 0][inside], ref.numpy()[0, 0][inside], atol=1e-4), (name, window)
            assert (logits.numpy()[0, 0][~inside] == OUTSIDE).all(), (name, window)
            assert np.allclose(iou.numpy(), ref_iou.numpy(), atol=1e-5), (name, window)


def test_predict_only_gives_the_whole_decodes_mask_inside_the_region(random_model):
    model, engines, _ = random_model
    for name, engine in engines.items():
        p = Predictor(model, engine=engine)
        p.set_embedding(torch.from_numpy(_embedding()), (300, 420))
        for box in ([150.0, 100, 230, 160], [0.0, 0, 40, 299], [380.0, 250, 419, 299]):
            box = np.array(box, np.float32)
            whole, part = p.predict(box=box), p.predict(box=box, only=box)
            x0, y0, x1, y1 = (int(v) for v in box)
            a, b = whole.masks[0][y0:y1 + 1, x0:x1 + 1], part.masks[0][y0:y1 + 1, x0:x1 + 1]
            assert (a != b).sum() <= 1, (name, box.tolist())  # exact but for float rounding at a logit of 0
            assert np.allclose(whole.iou, part.iou, atol=1e-5), (name, box.tolist())
    with pytest.raises(Exception, match="only"):
        p.predict(box=box, only=[1, 2, 3])
