"""Validation Dice in model space: each held-out object with a tight box and with one central click."""

from __future__ import annotations

import torch

from medseg.modeling.sam import PromptableSAM
from medseg.train.datasets import TrainingData
from medseg.train.losses import hard_dice
from medseg.train.prompts import central_pixel, tight_box


@torch.no_grad()
def validate(model: PromptableSAM, data: TrainingData, embeddings: torch.Tensor | None,
             kinds: tuple[str, ...] = ("box", "point"), batch: int = 16) -> dict[str, float] | None:
    """Mean Dice over the validation targets per prompt kind; "val_dice" is their mean. None without targets."""
    if not data.val:
        return None
    cache: dict[int, torch.Tensor] = {}
    scores: dict[str, list[float]] = {k: [] for k in kinds}
    for start in range(0, len(data.val), batch):
        items = data.val[start:start + batch]
        for i, _ in items:
            if i not in cache:
                cache[i] = embeddings[i:i + 1] if embeddings is not None else model.encode(data.slices[i].image[None])
        emb = torch.cat([cache[i] for i, _ in items])
        masks = torch.stack([data.target(t)[1] for t in items])
        t = masks[:, None].float()
        for kind in kinds:
            if kind == "box":
                logits, _ = model.decode(emb, boxes=torch.stack([tight_box(m) for m in masks]))
            else:
                coords = torch.stack([central_pixel(m) for m in masks])[:, None]
                logits, _ = model.decode(emb, points=(coords, torch.ones(len(masks), 1, dtype=torch.long)))
            scores[kind].extend(hard_dice(logits, t).tolist())
    out = {f"val_dice_{k}": sum(v) / len(v) for k, v in scores.items()}
    out["val_dice"] = sum(out.values()) / len(out)
    return out
