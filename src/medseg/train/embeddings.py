"""Frozen image embeddings for decoder-mode training, computed once and cached in memory and on disk.

The disk cache ``OUTDIR/embeddings.pt`` is keyed by a fingerprint of the weights and of every slice, so a
resumed run or a second process reuses it and a change of data or weights recomputes it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from tqdm import tqdm

from medseg.modeling.sam import PromptableSAM
from medseg.train.checkpoint import atomic_save
from medseg.train.datasets import Slice
from medseg.train.distributed import DistInfo, barrier


def fingerprint(model: PromptableSAM, slices: list[Slice]) -> str:
    digest = hashlib.sha256(str(getattr(model, "checkpoint_sha256", "")).encode())
    for p in model.image_encoder.state_dict().values():
        digest.update(p.detach().float().sum().numpy().tobytes())
    for s in slices:
        digest.update(s.key.encode())
        digest.update(s.image.numpy().tobytes())
    return digest.hexdigest()


def compute(model: PromptableSAM, slices: list[Slice], batch: int = 4, progress: bool = True) -> torch.Tensor:
    """(N, 256, 64, 64) embeddings of the slices' (3, 256, 256) images."""
    out = []
    bar = tqdm(range(0, len(slices), batch), desc="embeddings", disable=not progress, leave=False)
    for start in bar:
        out.append(model.encode(torch.stack([s.image for s in slices[start:start + batch]])))
    return torch.cat(out)


def cached_embeddings(model: PromptableSAM, slices: list[Slice], out: Path, info: DistInfo,
                      progress: bool = True) -> torch.Tensor:
    """Embeddings from ``out/embeddings.pt`` if its fingerprint matches, else computed (by rank 0) and stored."""
    path = out / "embeddings.pt"
    key = fingerprint(model, slices)
    if info.main:
        try:
            cached = torch.load(path, map_location="cpu", weights_only=True) if path.is_file() else None
        except Exception:  # a damaged or foreign cache file: computed afresh and replaced
            cached = None
        if not (isinstance(cached, dict) and cached.get("key") == key):
            atomic_save({"key": key, "embeddings": compute(model, slices, progress=progress)}, path)
    barrier(info)
    return torch.load(path, map_location="cpu", weights_only=True)["embeddings"]
