"""Segmentation losses on model-space logits: Dice + BCE (+ focal), and MSE on the predicted IoU.

Logits and targets are (B, 1, H, W) or (B, H, W) floats; targets are 0/1.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F


def dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """1 - soft Dice per object, averaged over the batch."""
    prob = torch.sigmoid(logits).flatten(1)
    t = target.flatten(1)
    inter = (prob * t).sum(1)
    return (1 - (2 * inter + eps) / (prob.sum(1) + t.sum(1) + eps)).mean()


def focal_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0) -> torch.Tensor:
    """Sigmoid focal loss (Lin et al.), mean over pixels."""
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = torch.exp(-bce)
    weight = alpha * target + (1 - alpha) * (1 - target)
    return (weight * (1 - p_t) ** gamma * bce).mean()


def hard_iou(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B,) IoU of the thresholded prediction (logit > 0) with the target; 1 when both are empty."""
    pred = (logits > 0).flatten(1).float()
    t = target.flatten(1)
    inter = (pred * t).sum(1)
    union = pred.sum(1) + t.sum(1) - inter
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


def hard_dice(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B,) Dice of the thresholded prediction with the target; 1 when both are empty."""
    pred = (logits > 0).flatten(1).float()
    t = target.flatten(1)
    total = pred.sum(1) + t.sum(1)
    return torch.where(total > 0, 2 * (pred * t).sum(1) / total.clamp(min=1), torch.ones_like(total))


@dataclass(frozen=True)
class LossWeights:
    dice: float = 1.0
    bce: float = 1.0
    focal: float = 0.0
    iou: float = 1.0


def segmentation_loss(logits: torch.Tensor, iou_pred: torch.Tensor, target: torch.Tensor,
                      w: LossWeights = LossWeights()) -> dict[str, torch.Tensor]:
    """Loss terms of one prompting round.

    Args:
        logits: (B, 1, H, W) low-res logits.
        iou_pred: (B, 1) predicted IoU.
        target: (B, 1, H, W) 0/1 floats.

    Returns:
        dict with "total", "dice", "bce", "focal", "iou" (the MSE between predicted and actual IoU).
    """
    terms = {"dice": dice_loss(logits, target), "bce": F.binary_cross_entropy_with_logits(logits, target)}
    terms["focal"] = focal_loss(logits, target) if w.focal else logits.new_zeros(())
    terms["iou"] = F.mse_loss(iou_pred[:, 0], hard_iou(logits.detach(), target))
    terms["total"] = w.dice * terms["dice"] + w.bce * terms["bce"] + w.focal * terms["focal"] + w.iou * terms["iou"]
    return terms
