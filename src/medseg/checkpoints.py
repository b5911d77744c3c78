"""Find and verify checkpoint files (no torch import, so `medseg info` stays fast)."""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
from pathlib import Path

from medseg.errors import MedsegError
from medseg.registry import ModelCard

CHECKPOINT_ENV = "MEDSEG_CHECKPOINT"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def packaged_checkpoint(card: ModelCard) -> Path:
    """Locate the card's checkpoint inside its installed package; verify size and sha256."""
    src = card.checkpoint
    if src is None:
        raise MedsegError(f"model '{card.name}' has no packaged checkpoint; pass --checkpoint PATH")
    # importlib.metadata finds the file without importing the package: its code imports timm,
    # which is deliberately not installed (it would pull a CUDA torch).
    try:
        dist = importlib.metadata.distribution(src.distribution)
    except importlib.metadata.PackageNotFoundError:
        raise MedsegError(f"the {card.name} checkpoint is not installed; run: {src.install}") from None
    path = Path(str(dist.locate_file(src.resource)))
    if not path.is_file():
        raise MedsegError(f"the {card.name} checkpoint is missing at {path}; run: {src.install}")
    if path.stat().st_size != src.size or sha256_of(path) != src.sha256:
        raise MedsegError(f"checkpoint {path} does not match the expected size/sha256; reinstall: {src.install}")
    return path


def resolve_checkpoint(card: ModelCard, checkpoint: str | os.PathLike | None) -> Path:
    """--checkpoint, then $MEDSEG_CHECKPOINT, then the packaged file."""
    chosen = checkpoint or os.environ.get(CHECKPOINT_ENV)
    if chosen:
        path = Path(chosen).expanduser()
        if not path.is_file():
            raise MedsegError(f"checkpoint not found: {path}")
        return path
    return packaged_checkpoint(card)
