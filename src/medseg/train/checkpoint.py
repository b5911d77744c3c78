"""Checkpoint files, written atomically and checked (``medseg.files``: temporary file, fsync, zip test, rename).

- ``model.pt``: {"format", "config": {"model", "mode", "adapter_dim"}, "train", "model": state_dict}; LoRA
  updates merged into plain weights, adapters kept as extra keys. ``medseg.build.build_model(path)`` loads it.
- ``last.pt``: the training model, optimiser, scheduler, step and random state, for ``--resume``.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
from torch import nn

from medseg.checkpoints import load_torch_file
from medseg.errors import MedsegError
from medseg.files import write_file
from medseg.train.adapters import merge_lora
from medseg.train.config import TrainConfig

FORMAT = "medseg-finetuned/1"


def atomic_save(obj: object, path: Path) -> None:
    """torch.save through ``medseg.files.write_file``; the check tests the zip archive torch writes.

    Raises:
        MedsegError: the write failed (disk full, read-only folder ...); ``path`` is untouched.
    """
    from medseg.io.verify import verify_for

    write_file(path, lambda temp: torch.save(obj, temp), verify_for("checkpoint.npz"))


def export_model(model: nn.Module, cfg: TrainConfig, path: Path, info: dict | None = None) -> None:
    """Write the inference checkpoint ``model.pt`` (LoRA merged)."""
    net = merge_lora(copy.deepcopy(model)) if cfg.mode == "lora" else model
    config = {"model": cfg.model, "mode": cfg.mode, "adapter_dim": cfg.adapter_dim if cfg.mode == "adapter" else None}
    atomic_save({"format": FORMAT, "config": config, "train": cfg.to_dict(), "info": info or {},
                 "model": net.state_dict()}, path)


def save_last(path: Path, cfg: TrainConfig, model: nn.Module, optimizer, scheduler, step: int,
              rng: np.random.Generator, best: float) -> None:
    atomic_save({"format": FORMAT, "architecture": cfg.architecture_key(), "step": step, "best": best,
                 "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                 "scheduler": scheduler.state_dict(), "torch_rng": torch.get_rng_state(),
                 "numpy_rng": rng.bit_generator.state}, path)


def read_last(path: Path, cfg: TrainConfig) -> dict:
    """Load last.pt and check it was made by the same architecture and mode (one-line MedsegError)."""
    if not path.is_file():
        raise MedsegError(f"--resume: no checkpoint {path}; run once without --resume first")
    state = load_torch_file(path, "--resume: checkpoint")
    if not isinstance(state, dict) or state.get("format") != FORMAT or "architecture" not in state:
        raise MedsegError(f"--resume: {path} is not a medseg training checkpoint")
    if state["architecture"] != cfg.architecture_key():
        raise MedsegError(f"--resume: {path} was trained as {state['architecture']}, not "
                          f"{cfg.architecture_key()}; use the same --mode and model, or another --out")
    return state


def restore(state: dict, model: nn.Module, optimizer, scheduler, rng: np.random.Generator) -> int:
    """Load a read_last() state into the live objects; returns the step to continue from."""
    try:
        model.load_state_dict(state["model"], strict=True)
    except RuntimeError as exc:
        raise MedsegError(f"--resume: the checkpoint does not fit the model: {str(exc).splitlines()[0]}") from None
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["torch_rng"])
    rng.bit_generator.state = state["numpy_rng"]
    return int(state["step"])
