"""Prompt simulation for training, in model space: (X, Y) pixels of the padded 256x256 input.

- boxes: the object's tight box, each side moved by a random jitter (MedSAM);
- points: a random foreground pixel; later rounds add one click from the error region of the previous
  prediction, positive in a missed part, negative in a false positive (SAM-Med2D's iterative training);
- mask prompts: the previous round's low-res logits (handled by ``medseg.train.step``).

Masks are (B, H, W) bool tensors (rows = Y, columns = X).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Prompts:
    """A batch of prompts in model space.

    Attributes:
        boxes: (B, 4) as (X0, Y0, X1, Y1), or None.
        coords: (B, N, 2) click positions as (X, Y), or None.
        labels: (B, N) 1 = positive, 0 = negative, or None.
    """

    boxes: torch.Tensor | None = None
    coords: torch.Tensor | None = None
    labels: torch.Tensor | None = None

    @property
    def points(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        return None if self.coords is None else (self.coords, self.labels)

    def add_clicks(self, coords: torch.Tensor, labels: torch.Tensor) -> Prompts:
        """A copy with one more click per object: coords (B, 2) as (X, Y), labels (B,)."""
        c, lab = coords[:, None].float(), labels[:, None].long()
        if self.coords is not None:
            c, lab = torch.cat([self.coords, c], 1), torch.cat([self.labels, lab], 1)
        return Prompts(self.boxes, c, lab)


def tight_box(mask: torch.Tensor) -> torch.Tensor:
    """(H, W) bool mask -> (4,) inclusive box (X0, Y0, X1, Y1) as float."""
    ys, xs = torch.nonzero(mask, as_tuple=True)
    if len(ys) == 0:
        raise ValueError("tight_box of an empty mask")
    return torch.stack([xs.min(), ys.min(), xs.max(), ys.max()]).float()


def jittered_box(mask: torch.Tensor, rng: np.random.Generator, jitter: float = 0.1, max_shift: float = 20.0
                 ) -> torch.Tensor:
    """Tight box with each side moved by up to ``jitter`` x the box size (and ``max_shift`` pixels)."""
    box = tight_box(mask)
    h, w = mask.shape
    size = torch.tensor([box[2] - box[0] + 1, box[3] - box[1] + 1] * 2)
    limit = torch.clamp(size * jitter, max=max_shift)
    shift = torch.from_numpy(rng.uniform(-1.0, 1.0, 4)).float() * limit
    box = box + shift
    x0, x1 = sorted((float(box[0].clamp(0, w - 1)), float(box[2].clamp(0, w - 1))))
    y0, y1 = sorted((float(box[1].clamp(0, h - 1)), float(box[3].clamp(0, h - 1))))
    return torch.tensor([x0, y0, x1, y1])


def random_pixel(region: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """(X, Y) of a uniformly drawn pixel of a non-empty (H, W) bool region."""
    ys, xs = torch.nonzero(region, as_tuple=True)
    i = int(rng.integers(len(ys)))
    return torch.stack([xs[i], ys[i]]).float()


def central_pixel(mask: torch.Tensor) -> torch.Tensor:
    """(X, Y) of the pixel deepest inside the mask (largest distance to the background); deterministic."""
    from scipy.ndimage import distance_transform_edt

    depth = distance_transform_edt(np.pad(mask.numpy(), 1))[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return torch.tensor([float(x), float(y)])


def first_prompts(masks: torch.Tensor, kind: str, rng: np.random.Generator, jitter: float = 0.1) -> Prompts:
    """First-round prompts for a batch of (B, H, W) bool masks; kind is "box" or "point"."""
    if kind == "box":
        return Prompts(boxes=torch.stack([jittered_box(m, rng, jitter) for m in masks]))
    if kind == "point":
        coords = torch.stack([random_pixel(m, rng) for m in masks])
        return Prompts().add_clicks(coords, torch.ones(len(masks)))
    raise ValueError(f"unknown first prompt kind '{kind}'")


def error_clicks(pred: torch.Tensor, gt: torch.Tensor, rng: np.random.Generator,
                 valid: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One corrective click per object from the error region of a prediction.

    Args:
        pred: (B, H, W) bool predictions of the previous round.
        gt: (B, H, W) bool targets.
        rng: random generator.
        valid: (B, H, W) bool, where clicks may fall (the unpadded image), or None for everywhere.

    Returns:
        coords (B, 2) as (X, Y) and labels (B,): 1 inside a missed part (false negative), 0 inside a
        false positive. A pixel is drawn uniformly from all errors, so the larger error kind is chosen
        more often; an object without errors gets a positive click on its foreground.
    """
    coords, labels = [], []
    for b in range(len(gt)):
        fn, fp = gt[b] & ~pred[b], pred[b] & ~gt[b]
        if valid is not None:
            fp = fp & valid[b]
        n_fn, n_fp = int(fn.sum()), int(fp.sum())
        if n_fn + n_fp == 0:
            coords.append(random_pixel(gt[b], rng))
            labels.append(1)
        elif rng.integers(n_fn + n_fp) < n_fn:
            coords.append(random_pixel(fn, rng))
            labels.append(1)
        else:
            coords.append(random_pixel(fp, rng))
            labels.append(0)
    return torch.stack(coords), torch.tensor(labels)
