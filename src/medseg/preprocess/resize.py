"""LiteMedSAM's spatial transform: resize the longest side to 256, pad to 256x256, and back.

Coordinates are (X, Y) pixels: X = column, Y = row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F


@dataclass(frozen=True)
class ResizeLongest:
    """Maps an (H, W) image to the padded square model input and back.

    Attributes:
        original: (H, W) of the original slice.
        target: side of the square model input (256).
    """

    original: tuple[int, int]
    target: int = 256

    @property
    def scale(self) -> float:
        return self.target / max(self.original)

    @property
    def scaled(self) -> tuple[int, int]:
        """(h, w) of the resized image before padding."""
        h, w = self.original
        return int(h * self.scale + 0.5), int(w * self.scale + 0.5)

    def image(self, slice_0_255: np.ndarray) -> torch.Tensor:
        """(H, W) or (H, W, 3) values in 0..255 -> (1, 3, T, T) float tensor, min-max normalised.

        Antialiased bilinear resize of the longest side to T, min-max to 0..1, zero pad bottom/right.
        """
        arr = torch.from_numpy(np.ascontiguousarray(slice_0_255, dtype=np.float32))
        arr = arr[None].expand(3, -1, -1) if arr.ndim == 2 else arr.permute(2, 0, 1)
        resized = F.interpolate(arr[None], size=self.scaled, mode="bilinear", align_corners=False,
                                antialias=True)
        lo, hi = resized.min(), resized.max()
        resized = (resized - lo) / torch.clamp(hi - lo, min=1e-8)
        h, w = self.scaled
        return F.pad(resized, (0, self.target - w, 0, self.target - h))

    def coords(self, xy: np.ndarray) -> np.ndarray:
        """(..., 2) (X, Y) pixels (or (..., 4) boxes) in the original -> model space."""
        return np.asarray(xy, dtype=np.float32) * self.scale

    def logits(self, low_res: torch.Tensor) -> torch.Tensor:
        """(B, K, T, T) model-space logits -> (B, K, H, W) on the original grid (crop, bilinear)."""
        h, w = self.scaled
        cropped = low_res[..., :h, :w]
        return F.interpolate(cropped, size=self.original, mode="bilinear", align_corners=False)
