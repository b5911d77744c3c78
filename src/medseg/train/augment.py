"""Augmentation in model space for modes that run the image encoder: flips, intensity, small affine.

Images are (B, 3, S, S) in 0..1, masks (B, S, S) integer labels or bool; one random transform per item.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.nn import functional as F


def augment(images: torch.Tensor, masks: torch.Tensor, rng: np.random.Generator,
            max_rotate: float = 10.0, max_scale: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """Random flips, gamma/contrast and a small rotation + scaling (bilinear image, nearest mask)."""
    out_i, out_m = [], []
    for img, m in zip(images, masks, strict=True):
        mf = m.float()
        if rng.random() < 0.5:
            img, mf = img.flip(-1), mf.flip(-1)
        if rng.random() < 0.5:
            img, mf = img.flip(-2), mf.flip(-2)
        gamma = float(np.exp(rng.uniform(-0.3, 0.3)))
        img = img.clamp(0, 1) ** gamma * float(rng.uniform(0.9, 1.1)) + float(rng.uniform(-0.05, 0.05))
        angle = math.radians(rng.uniform(-max_rotate, max_rotate))
        scale = 1.0 + rng.uniform(-max_scale, max_scale)
        c, s = math.cos(angle) / scale, math.sin(angle) / scale
        theta = torch.tensor([[c, -s, 0.0], [s, c, 0.0]], dtype=torch.float32)[None]
        grid = F.affine_grid(theta, (1, 1, *img.shape[-2:]), align_corners=False)
        img = F.grid_sample(img[None], grid, mode="bilinear", align_corners=False)[0]
        mf = F.grid_sample(mf[None, None], grid, mode="nearest", align_corners=False)[0, 0]
        out_i.append(img)
        out_m.append(mf.to(masks.dtype))
    return torch.stack(out_i), torch.stack(out_m)
