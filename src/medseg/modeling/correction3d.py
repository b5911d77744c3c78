"""A small 3D network that corrects a segmentation from the scan, the current mask and the clicks.

nnInteractive's inputs on a crop (Isensee et al., 2025): the image, the current mask and one map per click sign,
resampled to a fixed grid, in a small residual 3D U-Net (instance norm, LeakyReLU, as nnU-Net's). Its output is the
corrected mask's logits on that grid. The crop (``medseg.interactive.crop3d``) is the box of the current mask and
the clicks with a margin, so the network sees every object at one scale whatever its size in voxels.

    (4, D, H, W) -> enc C -> enc 2C (1/2) -> enc 4C (1/4) -> bottom 8C (1/8) -> dec 4C -> dec 2C -> dec C -> 1
    logits = that + w * (2 * mask - 1): the current mask passes straight through (w learnt from ``mask_init``), so
    the network starts from "keep the mask" and learns the change, which a CPU's training budget reaches.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

IN_CHANNELS = 4  # image (crop z-scored), current mask, positive clicks, negative clicks


@dataclass(frozen=True)
class Correction3DConfig:
    """Architecture and the grid the crop is resampled to (z, y, x); each side divisible by 8."""

    grid: tuple[int, int, int] = (24, 48, 48)
    channels: int = 8
    mask_init: float = 1.5  # the mask's pass-through weight at the start of training

    def to_dict(self) -> dict:
        return {**asdict(self), "grid": list(self.grid)}


class _Block(nn.Module):
    """conv-norm-LeakyReLU, conv-norm, 1x1x1 shortcut when channels change, LeakyReLU."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(cin, cout, 3, padding=1, bias=False)
        self.norm1 = nn.InstanceNorm3d(cout, affine=True)
        self.conv2 = nn.Conv3d(cout, cout, 3, padding=1, bias=False)
        self.norm2 = nn.InstanceNorm3d(cout, affine=True)
        self.skip = nn.Conv3d(cin, cout, 1, bias=False) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.leaky_relu(self.norm1(self.conv1(x)), 0.01)
        return F.leaky_relu(self.norm2(self.conv2(y)) + self.skip(x), 0.01)


class Correction3D(nn.Module):
    """(B, 4, D, H, W) float inputs on the config's grid -> (B, 1, D, H, W) logits of the corrected mask."""

    def __init__(self, config: Correction3DConfig | None = None) -> None:
        super().__init__()
        self.config = config or Correction3DConfig()
        c = self.config.channels
        widths = (c, 2 * c, 4 * c, 8 * c)
        self.down = nn.ModuleList([_Block(IN_CHANNELS, widths[0])] +
                                  [_Block(widths[i], widths[i + 1]) for i in range(3)])
        self.up = nn.ModuleList([_Block(widths[i + 1] + widths[i], widths[i]) for i in reversed(range(3))])
        self.head = nn.Conv3d(widths[0], 1, 1)
        # the current mask enters the logits directly (a correction starts from it): the network learns the change
        self.mask_weight = nn.Parameter(torch.tensor(float(self.config.mask_init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        prior = self.mask_weight * (2 * x[:, 1:2] - 1)
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else F.max_pool3d(x, 2))
            skips.append(x)
        for block, skip in zip(self.up, reversed(skips[:-1]), strict=True):
            x = F.interpolate(x, size=skip.shape[2:], mode="trilinear", align_corners=False)
            x = block(torch.cat([x, skip], 1))
        return self.head(x) + prior
