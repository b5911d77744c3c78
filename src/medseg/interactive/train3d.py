"""Training of the 3D correction network on simulated correction states (``medseg.interactive.states3d``).

Data: the interactive model's training volumes (``medseg.interactive.data.TRAIN_SOURCES``; nothing evaluated),
every labelled structure of at least ``MIN_VOXELS`` voxels, each sample a structure's neighbourhood (flipped,
gamma-changed, and on a share of samples thinned to every 2nd or 3rd slice, as thick-slice MR and CT are).
Loss: binary cross-entropy + soft Dice on the crop's grid. Arrays are (z, y, x).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from medseg.interactive.states3d import state
from medseg.modeling.correction3d import Correction3D, Correction3DConfig
from medseg.predict.correct3d import to_grid

# (dataset, case, share of samples): the volumes of the 2D interactive model's training sources
VOLUMES = (("colin27", "aal", 0.65), ("spine", "ct_vert", 0.15), ("spine", "ct_subreg", 0.15),
           ("dcmqi_liver", "liver", 0.05))
MIN_VOXELS = 30
AROUND = (8, 16, 16)  # the neighbourhood kept round a structure for a sample (z, y, x voxels)
ERROR_WEIGHT = 4.0  # the BCE's extra weight on the input mask's wrong voxels (loss_fn)


@dataclass
class Volume:
    name: str
    image: np.ndarray  # (z, y, x) uint8, windowed as a session windows it
    labels: np.ndarray  # (z, y, x) int
    structures: list[int]
    boxes: dict[int, tuple[slice, slice, slice]]
    weight: float


def load_volumes(volumes=VOLUMES) -> list[Volume]:
    from medseg.data.loaders import load_labelled
    from medseg.predict.segment import windowed

    out = []
    for dataset, case, weight in volumes:
        c = load_labelled(dataset, [case])[0]
        image = np.clip(np.round(windowed(c.image, "auto")[0]), 0, 255).astype(np.uint8)
        labels = np.asarray(c.labels).astype(np.int32)
        objects = ndimage_boxes(labels)
        keep = [v for v, (box, n) in objects.items() if n >= MIN_VOXELS]
        out.append(Volume(f"{dataset}/{case}", image, labels, keep, {v: objects[v][0] for v in keep}, weight))
    return out


def ndimage_boxes(labels: np.ndarray) -> dict[int, tuple[tuple[slice, slice, slice], int]]:
    from scipy import ndimage

    counts = np.bincount(labels.ravel())
    found = ndimage.find_objects(labels)
    return {v + 1: (b, int(counts[v + 1])) for v, b in enumerate(found) if b is not None}


def _neighbourhood(vol: Volume, label: int, rng: np.random.Generator):
    box = vol.boxes[label]
    sl = tuple(slice(max(0, b.start - a), min(n, b.stop + a))
               for b, a, n in zip(box, AROUND, vol.labels.shape, strict=True))
    image, labels = vol.image[sl].astype(np.float32), vol.labels[sl]
    if rng.random() < 0.3:
        step = int(rng.integers(2, 4))
        start = int(rng.integers(step))
        image, labels = image[start::step], labels[start::step]
    for axis in (1, 2):
        if rng.random() < 0.5:
            image, labels = np.flip(image, axis), np.flip(labels, axis)
    if rng.random() < 0.5:
        image = 255.0 * (image / 255.0) ** rng.uniform(0.7, 1.5)
    return np.ascontiguousarray(image), np.ascontiguousarray(labels)


def sample(volumes: list[Volume], grid: tuple[int, int, int], rng: np.random.Generator
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """One (inputs (4, *grid), target (1, *grid)) pair from a random structure."""
    weights = np.array([v.weight for v in volumes])
    while True:
        vol = volumes[rng.choice(len(volumes), p=weights / weights.sum())]
        label = int(rng.choice(vol.structures))
        image, labels = _neighbourhood(vol, label, rng)
        truth = labels == label
        if truth.sum() < 8:
            continue
        mask, clicks, box = state(truth, labels, image, rng)
        x = to_grid(mask[box], image[box], clicks, box, grid)
        t = torch.from_numpy(truth[box].astype(np.float32))[None, None]
        y = F.interpolate(t, size=grid, mode="trilinear", align_corners=False)[0]
        return x, y


def loss_fn(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None,
            error_weight: float = ERROR_WEIGHT) -> torch.Tensor:
    """BCE + soft Dice; with the input ``mask`` given, the BCE weighs its wrong voxels ``error_weight`` + 1 times
    (most of a crop is right already, and copying it would otherwise be nearly all the loss can learn)."""
    weight = None if mask is None or not error_weight else 1 + error_weight * (mask - target).abs()
    bce = F.binary_cross_entropy_with_logits(logits, target, weight=weight)
    p = torch.sigmoid(logits).flatten(1)
    t = target.flatten(1)
    dice = 1 - (2 * (p * t).sum(1) + 1) / (p.sum(1) + t.sum(1) + 1)
    return bce + dice.mean()


def train(out: Path, steps: int, batch: int = 4, lr: float = 2e-3, seed: int = 0,
          config: Correction3DConfig | None = None, error_weight: float = ERROR_WEIGHT, log=print,
          stop_at: int | None = None) -> Correction3D:
    """Train from scratch; writes ``out`` (state dict + config) every 200 steps and at the end, and a log. The
    learning rate follows one cycle over ``steps``; ``stop_at`` ends the run after that step."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    volumes = load_volumes()
    model = Correction3D(config)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.05)
    start, running = time.perf_counter(), []
    last = min(steps, stop_at or steps)
    for step in range(1, last + 1):
        pairs = [sample(volumes, model.config.grid, rng) for _ in range(batch)]
        x, y = torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])
        loss = loss_fn(model(x), y, x[:, 1:2], error_weight)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        running.append(float(loss.detach()))
        if step % 50 == 0 or step == last:
            log(f"step {step} loss {np.mean(running[-50:]):.4f} lr {sched.get_last_lr()[0]:.2e} "
                f"{time.perf_counter() - start:.0f} s")
        if step % 200 == 0 or step == last:
            torch.save({"config": model.config.to_dict(), "state_dict": model.state_dict()}, out)
    return model
