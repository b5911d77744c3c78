"""Losses: values at the extremes and gradients."""

from __future__ import annotations

import torch

from medseg.train.losses import LossWeights, dice_loss, focal_loss, hard_dice, hard_iou, segmentation_loss


def target() -> torch.Tensor:
    t = torch.zeros(2, 1, 32, 32)
    t[0, 0, 4:12, 4:12] = 1
    t[1, 0, 10:30, 2:20] = 1
    return t


def test_perfect_and_inverted_predictions():
    t = target()
    good, bad = (t * 2 - 1) * 20, (1 - 2 * t) * 20
    assert dice_loss(good, t) < 1e-3 and dice_loss(bad, t) > 0.99
    assert torch.allclose(hard_dice(good, t), torch.ones(2)) and torch.allclose(hard_iou(bad, t), torch.zeros(2))
    assert focal_loss(good, t) < 1e-6 < focal_loss(bad, t)


def test_hard_scores_of_half_overlap():
    t = torch.zeros(1, 1, 4, 4)
    t[..., :2] = 1
    logits = torch.full((1, 1, 4, 4), -1.0)
    logits[..., 1:3] = 1.0
    assert abs(hard_dice(logits, t).item() - 0.5) < 1e-6 and abs(hard_iou(logits, t).item() - 1 / 3) < 1e-6


def test_segmentation_loss_terms_and_gradient():
    t = target()
    logits = torch.zeros_like(t, requires_grad=True)
    iou = torch.full((2, 1), 0.5, requires_grad=True)
    terms = segmentation_loss(logits, iou, t, LossWeights(focal=1.0))
    assert set(terms) == {"total", "dice", "bce", "focal", "iou"}
    expected = terms["dice"] + terms["bce"] + terms["focal"] + terms["iou"]
    assert torch.allclose(terms["total"], expected)
    terms["total"].backward()
    assert logits.grad.abs().sum() > 0 and iou.grad.abs().sum() > 0
    # logits 0 are not > 0, so the hard IoU is 0 and the IoU head is pulled towards 0
    assert abs(terms["iou"].item() - 0.25) < 1e-6
