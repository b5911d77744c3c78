"""LiteMedSAM's spatial transform: resize the longest side to 256, pad to 256x256, and back.

Coordinates are (X, Y) pixels: X = column, Y = row. Each step exists twice: in PyTorch (``image``,
``logits``) and in numpy (``image_array``, ``logits_array``), so that a run on an exported engine
needs no torch import. The numpy forms apply the same interpolation weights as
``F.interpolate`` (antialiased bilinear down, plain bilinear back) as two small matrix products;
they agree with the PyTorch forms to float rounding (tests/preprocess).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from medseg.cpu import one_blas_thread

if TYPE_CHECKING:
    import torch


def antialias_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) weights of torch's antialiased bilinear resize along one axis.

    Each output sample i is centred at scale * (i + 0.5) in input pixels (scale = n_in / n_out) and
    averages the inputs under a triangle of half-width max(scale, 1), normalised to sum to one.
    """
    scale = n_in / n_out
    support = scale if scale >= 1.0 else 1.0
    invscale = 1.0 / scale if scale >= 1.0 else 1.0
    centre = scale * (np.arange(n_out) + 0.5)
    lo = np.maximum((centre - support + 0.5).astype(np.int64), 0)
    hi = np.minimum((centre + support + 0.5).astype(np.int64), n_in)
    j = np.arange(n_in)[None, :]
    w = np.clip(1.0 - np.abs((j - centre[:, None] + 0.5) * invscale), 0.0, None)
    w *= (j >= lo[:, None]) & (j < hi[:, None])
    return (w / w.sum(axis=1, keepdims=True)).astype(np.float32)


@functools.lru_cache(maxsize=32)
def bilinear_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) weights of torch's bilinear resize (align_corners=False, no antialiasing); read-only, made once
    for each pair of sizes (every decode resizes its logits with them: 0.2 ms a pair)."""
    src = np.maximum((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = i0 + (i0 < n_in - 1)
    frac = np.clip(src - i0, 0.0, 1.0)
    w = np.zeros((n_out, n_in), np.float64)
    rows = np.arange(n_out)
    np.add.at(w, (rows, i0), 1.0 - frac)
    np.add.at(w, (rows, i1), frac)
    out = w.astype(np.float32)
    out.flags.writeable = False
    return out


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
        import torch
        from torch.nn import functional as F

        arr = torch.from_numpy(np.ascontiguousarray(slice_0_255, dtype=np.float32))
        arr = arr[None].expand(3, -1, -1) if arr.ndim == 2 else arr.permute(2, 0, 1)
        resized = F.interpolate(arr[None], size=self.scaled, mode="bilinear", align_corners=False,
                                antialias=True)
        lo, hi = resized.min(), resized.max()
        resized = (resized - lo) / torch.clamp(hi - lo, min=1e-8)
        h, w = self.scaled
        return F.pad(resized, (0, self.target - w, 0, self.target - h))

    def image_array(self, slice_0_255: np.ndarray) -> np.ndarray:
        """``image`` in numpy: (H, W) or (H, W, 3) in 0..255 -> (1, 3, T, T) float32."""
        (h, w), (big_h, big_w) = self.scaled, self.original
        wy, wx = antialias_weights(big_h, h), antialias_weights(big_w, w)
        arr = np.asarray(slice_0_255, dtype=np.float32)
        planes = [arr] if arr.ndim == 2 else [arr[..., c] for c in range(arr.shape[2])]
        resized = np.stack([wy @ p @ wx.T for p in planes])
        lo, hi = resized.min(), resized.max()
        resized = (resized - lo) / max(hi - lo, np.float32(1e-8))
        out = np.zeros((1, 3, self.target, self.target), np.float32)
        out[0, :, :h, :w] = resized  # a grey slice broadcasts to the three channels
        return out

    def coords(self, xy: np.ndarray) -> np.ndarray:
        """(..., 2) (X, Y) pixels (or (..., 4) boxes) in the original -> model space."""
        return np.asarray(xy, dtype=np.float32) * self.scale

    def logits(self, low_res: torch.Tensor) -> torch.Tensor:
        """(B, K, T, T) model-space logits -> (B, K, H, W) on the original grid (crop, bilinear)."""
        from torch.nn import functional as F

        h, w = self.scaled
        cropped = low_res[..., :h, :w]
        return F.interpolate(cropped, size=self.original, mode="bilinear", align_corners=False)

    def logits_array(self, low_res: np.ndarray, region: tuple[int, int, int, int] | None = None,
                     fill: float = -20.0) -> np.ndarray:
        """``logits`` in numpy: (B, K, T, T) float32 -> (B, K, H, W) float32. With ``region`` (row0, col0, row1,
        col1), ends exclusive, only those pixels are computed (the same values) and the rest is ``fill``."""
        (h, w), (big_h, big_w) = self.scaled, self.original
        wy, wx = bilinear_weights(h, big_h), bilinear_weights(w, big_w)
        cropped = np.asarray(low_res, dtype=np.float32)[..., :h, :w]
        with one_blas_thread():  # its busy-waiting threads slowed the next decode 2.7x (medseg.cpu)
            if region is None:
                return wy @ cropped @ wx.T
            r0, c0, r1, c1 = region
            out = np.full((*cropped.shape[:-2], big_h, big_w), fill, np.float32)
            out[..., r0:r1, c0:c1] = wy[r0:r1] @ cropped @ wx[c0:c1].T
            return out
