"""Simulated 3D correction states (synthetic): the clicks agree with the truth and the crop holds mask and clicks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medseg.interactive.states3d import new_click, spoiled, state


def _ball(shape=(20, 40, 40), centre=(10, 20, 20), radius=6.0) -> np.ndarray:
    z, y, x = np.ogrid[: shape[0], : shape[1], : shape[2]]
    return (z - centre[0]) ** 2 + (y - centre[1]) ** 2 + (x - centre[2]) ** 2 <= radius**2


def test_states_click_by_the_truth_and_crop_around_mask_and_clicks():
    truth = _ball()
    labels = truth.astype(np.int32) + 2 * _ball(centre=(10, 20, 31), radius=4.0) * ~truth
    image = np.where(truth, 200.0, 40.0) + np.random.default_rng(0).normal(0, 5, truth.shape)
    rng = np.random.default_rng(1)
    for _ in range(30):
        mask, clicks, box = state(truth, labels, image, rng)
        assert mask.shape == truth.shape and mask.any()
        assert clicks[0][3] and truth[clicks[0][:3]]  # the first click: positive, in the structure
        for z, r, c, positive in clicks:
            assert bool(truth[z, r, c]) == positive
            assert all(s.start <= v < s.stop for s, v in zip(box, (z, r, c), strict=True))
        inside = np.zeros_like(mask)
        inside[box] = True
        assert not (mask & ~inside).any()


def test_spoiled_masks_differ_from_the_truth_and_the_next_click_is_in_an_error():
    truth = _ball()
    rng = np.random.default_rng(2)
    image = np.where(truth, 200.0, 40.0)
    masks = [spoiled(truth, truth.astype(np.int32), image, (10, 20, 20), rng) for _ in range(20)]
    scores = [2 * (m & truth).sum() / (m.sum() + truth.sum()) for m in masks]
    assert min(scores) < 0.9 and np.mean(scores) < 0.95
    for m in masks:
        click = new_click(m, truth, rng, deepest=True)
        if click is not None:
            z, r, c, positive = click
            assert m[z, r, c] != truth[z, r, c] and positive == truth[z, r, c]


@pytest.mark.realdata
def test_training_runs_on_the_training_volumes_and_repeats_exactly(tmp_path):
    """Two steps of the packaged network's command (``src/medseg/weights/correction3d.md``: seed 0, a 2400-step
    schedule, no error weight, mask pass-through 3) on the real training volumes, twice: the same weights both times,
    loadable as the session loads the packaged one. (The full command's first 50 steps reproduced its log's loss,
    0.8463, on 2026-12-07.)"""
    from medseg.build import load_correction_net
    from medseg.interactive.train3d import train
    from medseg.modeling.correction3d import Correction3DConfig

    runs = []
    for name in ("a.pt", "b.pt"):
        lines = []
        train(tmp_path / name, steps=2400, config=Correction3DConfig(mask_init=3.0), error_weight=0.0,
              log=lines.append, stop_at=2)
        assert len(lines) == 1 and lines[0].startswith("step 2 loss") and np.isfinite(float(lines[0].split()[3]))
        runs.append(torch.load(tmp_path / name, weights_only=True)["state_dict"])
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])
    net = load_correction_net(tmp_path / "a.pt")
    assert torch.equal(net.mask_weight, runs[0]["mask_weight"]) and float(net.mask_weight) != 3.0
