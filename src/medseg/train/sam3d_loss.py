"""SAM3D's loss: Dice + cross-entropy at each deep-supervision stage, weights 1, 1/2, 1/4 normalised,
the ground truth downsampled (nearest: every other voxel in-plane) to each stage's resolution."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from medseg.train.sam3d_data import IGNORE

STAGE_WEIGHTS = (1.0, 0.5, 0.25)


def stage_weights(n: int) -> list[float]:
    w = [STAGE_WEIGHTS[i] if i < len(STAGE_WEIGHTS) else STAGE_WEIGHTS[-1] / 2 ** (i - 2) for i in range(n)]
    return [x / sum(w) for x in w]


def downsample_labels(labels: torch.Tensor, factor: int) -> torch.Tensor:
    """(B, D, H, W) labels -> (B, D, H/f, W/f) by nearest neighbour (the voxel at each block's centre)."""
    if factor == 1:
        return labels
    off = factor // 2
    return labels[..., off::factor, off::factor]


def dice_ce(logits: torch.Tensor, labels: torch.Tensor, smooth: float = 1e-5) -> torch.Tensor:
    """Soft Dice over the foreground classes present in the window (batch Dice, as nnU-Net) + cross-entropy;
    IGNORE voxels skipped.

    Args:
        logits: (B, K, D, H, W); labels: (B, D, H, W) int64 in 0..K-1 or IGNORE.
    """
    valid = labels != IGNORE
    target = labels.clamp(min=0)
    ce = F.cross_entropy(logits, target, reduction="none")
    ce = (ce * valid).sum() / valid.sum().clamp(min=1)
    probs = logits.softmax(1)
    onehot = F.one_hot(target, logits.shape[1]).permute(0, 4, 1, 2, 3).to(probs.dtype)
    mask = valid[:, None].to(probs.dtype)
    dims = (0, 2, 3, 4)
    inter = (probs * onehot * mask).sum(dims)
    denom = ((probs + onehot) * mask).sum(dims)
    dice = (2 * inter + smooth) / (denom + smooth)
    # Dice only over the foreground classes present in the window: an absent class's Dice is ~0 whatever
    # the model does (smooth / (predicted mass + smooth)), so averaging it in pushed every class towards
    # background (12 brain structures, windows holding one or two of them: nothing learnt in 784 steps);
    # cross-entropy still punishes an absent class's false positives.
    present = (onehot[:, 1:] * mask).sum(dims) > 0
    if not present.any():
        return ce
    return ce + (1 - dice[1:][present].mean())


def deep_supervision_loss(outputs: list[torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
    """Weighted sum over stages; ``outputs[0]`` has the labels' resolution, each next one half of it."""
    weights = stage_weights(len(outputs))
    total = outputs[0].new_zeros(())
    for out, w in zip(outputs, weights, strict=True):
        factor = labels.shape[-1] // out.shape[-1]
        total = total + w * dice_ce(out, downsample_labels(labels, factor))
    return total
