"""Training SAM3D's decoder on frozen LiteMedSAM slice embeddings (``medseg train --mode sam3d``).

>>> result = train_sam3d(cases, names, Sam3DTrainConfig(out="runs/brain", max_steps=300))
>>> result.model_path          # runs/brain/model.pt, for medseg.predict.automatic.load_automatic

Recipe (SAM3D, Bui et al.): the encoder is frozen and run once per slice (cached, ``sam3d_data``); only
the 3D decoder trains, with Dice + cross-entropy under deep supervision (weights 1, 1/2, 1/4), the
learning rate decaying polynomially (``lr * (1 - progress) ** 0.9``; progress is the larger of the step
and, with ``minutes``, the elapsed share of the time budget). AdamW instead of the paper's SGD: it
converges in the few hundred steps a CPU affords. Validation by case (whole held-out volumes, mean
Dice over classes); ``model.pt`` is the best validated decoder (the last one without validation cases).
``last.pt`` (every ``save_every`` steps, at the end and on Ctrl-C) lets ``resume`` continue exactly.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from medseg.errors import MedsegError
from medseg.train.sam3d_augment import MAX_COPIES, augmented_copies
from medseg.train.sam3d_data import PreparedCase, VolumeCase, check_cases, prepare, sample, window_name
from medseg.validate import number

LAST_FORMAT = "medseg-sam3d-last/1"


@dataclass
class Sam3DTrainConfig:
    """Options of a SAM3D training run (see the module docstring).

    Attributes:
        out: output folder (model.pt, last.pt, log.csv, curves.png, embeddings/ unless ``cache``).
        max_steps: optimiser steps (default: ``epochs`` passes, one pass = ceil(Z / depth) windows per case).
        minutes: stop after this much training time (the poly schedule follows it), None: no limit.
        depth: slices per window (training and inference). crop: in-plane crop, model pixels (of 256).
        widths: decoder channels (``Sam3DConfig``). half: store the model file's weights as float16.
        cache: embedding cache folder (default OUT/embeddings).
    """

    out: str
    max_steps: int | None = None
    epochs: int = 1
    minutes: float | None = None
    lr: float = 3e-3
    weight_decay: float = 1e-4
    batch_size: int = 2  # two windows: PyTorch's oneDNN 3D convolutions (see docs/sam3d.md)
    depth: int = 16
    crop: int = 128
    widths: tuple[int, int, int] = (64, 32, 16)
    skips: bool = True
    augment: int = 0  # encoded augmented copies per training case (sam3d_augment)
    val_fraction: float = 0.2
    val_every: int = 0
    save_every: int = 50
    seed: int = 0
    resume: bool = False
    progress: bool = True
    half: bool = True
    engine: str = "auto"
    cache: str | None = None
    model: str = "litemedsam"
    data: str = ""
    extra: dict = field(default_factory=dict)

    def validate(self) -> Sam3DTrainConfig:
        if self.max_steps is not None:
            number(self.max_steps, "--max-steps", integer=True, minimum=1)
        number(self.epochs, "--epochs", integer=True, minimum=1)
        if self.minutes is not None:
            number(self.minutes, "--minutes", positive=True, maximum=10**6)
        number(self.lr, "--lr", positive=True, maximum=1)
        number(self.batch_size, "--batch-size", integer=True, minimum=1, maximum=64)
        number(self.depth, "--depth", integer=True, minimum=2, maximum=256)
        number(self.crop, "--crop", integer=True, minimum=32, maximum=256)
        if self.crop % 32:
            raise MedsegError(f"--crop {self.crop}: a multiple of 32 model pixels (32..256)")
        number(self.val_fraction, "--val-fraction", minimum=0, below=1)
        number(self.save_every, "--save-every", integer=True, minimum=1)
        number(self.augment, "--augment", integer=True, minimum=0, maximum=MAX_COPIES)
        return self


@dataclass
class Sam3DResult:
    model_path: Path
    steps: int
    seconds: float
    encode_seconds: float
    parameters: int
    best_val_dice: float | None
    val_dice: dict[str, float] = field(default_factory=dict)
    main_process: bool = True  # False in DDP workers other than rank 0 (they write nothing)


def step_clock(cfg: Sam3DTrainConfig):
    """What ``minutes`` counts: wall-clock seconds, or with ``extra={"clock": "cpu"}`` this thread's CPU
    seconds (comparisons on a shared machine: with one torch thread a step's compute runs on the caller's
    thread, so other jobs do not change how much training a budget buys)."""
    return time.thread_time if cfg.extra.get("clock") == "cpu" else time.perf_counter


def poly(progress: float, exponent: float = 0.9) -> float:
    return max(0.0, 1.0 - min(progress, 1.0)) ** exponent


def split_cases(cases: list[VolumeCase], fraction: float, seed: int) -> tuple[list[VolumeCase], list[VolumeCase]]:
    """Hold out round(fraction * n) whole cases (at least one when fraction > 0 and n >= 2)."""
    if fraction <= 0 or len(cases) < 2:
        return list(cases), []
    n_val = min(max(1, round(fraction * len(cases))), len(cases) - 1)
    held = set(np.random.default_rng(seed).permutation(len(cases))[:n_val].tolist())
    return [c for i, c in enumerate(cases) if i not in held], [c for i, c in enumerate(cases) if i in held]


def encoder_identity(model: str = "litemedsam") -> dict:
    from medseg.engine.cache import checkpoint_sha256

    return {"model": model, "sha256": checkpoint_sha256(model, None) or ""}


def lazy_encoder(model: str, engine: str, threads: int | None = None):
    """A zero-argument function building the engine's numpy encoder on first need (cache misses only)."""
    made: dict = {}

    def build():
        if "fn" not in made:
            from medseg.build import build_model
            from medseg.engine import get_engine
            from medseg.predict.slice_stack import engine_encoder

            made["fn"] = engine_encoder(get_engine(build_model(model), engine, threads))
        return made["fn"]

    build.lazy = True
    return build


def train_sam3d(cases: list[VolumeCase], names: dict[int, str], cfg: Sam3DTrainConfig,
                encoder=None) -> Sam3DResult:
    """Train a SAM3D decoder on labelled volumes; MedsegError for bad input before any file is written.

    Args:
        cases: volumes with label maps using the values of ``names`` (1..K).
        names: label value -> class name.
        encoder: (B, 3, 256, 256) -> (B, 256, 64, 64) numpy function standing in for the frozen encoder
            (tests); default: ``cfg.model`` on ``cfg.engine``, built only if an embedding is not cached.
    """
    from medseg.modeling.sam3d import Sam3DConfig, Sam3DDecoder, parameter_count
    from medseg.train import distributed
    from medseg.train.sam3d_loop import Loop

    info = distributed.setup()  # one process, or a DDP worker started by ``--nproc`` (torchrun)
    t0 = time.perf_counter()
    data = _prepared(cases, names, cfg, encoder, cfg.progress and info.main)
    encode_seconds = time.perf_counter() - t0
    torch.manual_seed(cfg.seed)
    decoder = Sam3DDecoder(Sam3DConfig(len(names) + 1, tuple(cfg.widths), cfg.skips))
    loop = Loop(cfg, data.out, decoder, data.train, data.val, names, data.identity, data.inputs, info)
    if cfg.progress and info.main:
        ranks = f"; {info.world} processes" if info.world > 1 else ""
        print(f"SAM3D decoder: {parameter_count(decoder):,} parameters; {data.cases} training cases "
              f"(+{data.copies} augmented copies) and {len(data.val)} validation cases; encoder "
              f"{data.identity['model']} frozen{ranks}")
    try:
        loop.run()
    finally:
        distributed.teardown(info)
    return Sam3DResult(data.out / "model.pt", loop.step, loop.seconds, encode_seconds, parameter_count(decoder),
                       loop.best if loop.best >= 0 else None, loop.last_val, info.main)


def encode_cases(cases: list[VolumeCase], names: dict[int, str], cfg: Sam3DTrainConfig, encoder=None) -> None:
    """Check the cases and fill the embedding cache (every case and augmented copy), without training:
    what ``--nproc`` runs once before its workers start, so they only read the cache."""
    _prepared(cases, names, cfg, encoder, cfg.progress)


@dataclass
class _Data:
    out: Path
    train: list[PreparedCase]
    val: list[tuple[VolumeCase, PreparedCase]]
    identity: dict
    inputs: dict
    cases: int
    copies: int


def _prepared(cases, names, cfg: Sam3DTrainConfig, encoder, progress: bool) -> _Data:
    """Checks (MedsegError before any file is written), the split by case, the augmented copies, and
    every volume encoded or read from the cache."""
    cfg.validate()
    out = Path(cfg.out).expanduser()
    if not cfg.resume and (out / "last.pt").exists():
        raise MedsegError(f"--out {out} holds a previous run (last.pt); add --resume or choose another folder")
    modality = check_cases(cases, names)
    labels_used = sorted(names)
    if labels_used != list(range(1, len(labels_used) + 1)):
        raise MedsegError(f"class values {labels_used[:8]} are not 1..{len(labels_used)}; number the classes "
                          "consecutively (dataset.json 'labels')")
    train_cases, val_cases = split_cases(cases, cfg.val_fraction, cfg.seed)
    window = window_name(modality)
    identity = encoder_identity(cfg.model)
    cache = Path(cfg.cache).expanduser() if cfg.cache else out / "embeddings"
    encoder = encoder or lazy_encoder(cfg.model, cfg.engine)
    copies = [a for c in train_cases for a in augmented_copies(c, cfg.augment, cfg.seed)]
    prepared = [prepare(c, window, encoder, identity["sha256"], cache, progress) for c in train_cases + copies]
    val = [(c, prepare(c, window, encoder, identity["sha256"], cache, progress)) for c in val_cases]
    spacing = np.median([c.image.geometry.spacing for c in cases], axis=0).tolist()
    inputs = {"modality": modality, "channels": 1, "window": window, "spacing": spacing}
    return _Data(out, prepared, val, identity, inputs, len(train_cases), len(copies))


def steps_per_epoch(prepared: list[PreparedCase], depth: int, batch: int) -> int:
    return max(1, math.ceil(sum(math.ceil(len(c.labels) / depth) for c in prepared) / batch))


def batch(prepared: list[PreparedCase], cfg: Sam3DTrainConfig, rng: np.random.Generator):
    """(embeddings (B, 256, D, c/4, c/4), grey (B, 1, D, c, c), labels (B, D, c/2, c/2)) tensors."""
    draws = [sample(prepared[rng.integers(len(prepared))], cfg.depth, cfg.crop, rng) for _ in range(cfg.batch_size)]
    return tuple(torch.from_numpy(np.stack([d[i] for d in draws])) for i in range(3))


def config_dict(cfg: Sam3DTrainConfig) -> dict:
    d = asdict(cfg)
    d["widths"] = list(cfg.widths)
    return d
