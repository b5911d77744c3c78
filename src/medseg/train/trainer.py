"""The training loop: data, model and mode, prompting rounds, validation, checkpoints, log, DDP.

Example:
    >>> from medseg.train import TrainConfig
    >>> from medseg.train.trainer import train
    >>> result = train(TrainConfig(data="Dataset001", out="runs/a", mode="decoder", max_steps=200,
    ...                            prompts=("box", "point")))
    >>> result.model_path   # runs/a/model.pt, loadable with medseg.build.build_model
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from medseg.errors import MedsegError
from medseg.train import checkpoint as ckpt
from medseg.train import distributed as ddp
from medseg.train.adapters import prepare
from medseg.train.augment import augment
from medseg.train.config import TrainConfig
from medseg.train.datasets import TrainingData, open_training_data
from medseg.train.embeddings import cached_embeddings
from medseg.train.history import History
from medseg.train.losses import LossWeights
from medseg.train.step import PromptedStep
from medseg.train.validate import validate


@dataclass
class TrainResult:
    out: Path
    model_path: Path
    steps: int
    best_val_dice: float | None
    seconds: float
    seconds_per_step: float
    main_process: bool = True  # False in the other DDP workers


def schedule(total: int, warmup_fraction: float = 0.05):
    """Linear warm-up to the peak learning rate, then cosine decay to 5 % of it."""
    warm = max(1, int(total * warmup_fraction))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        progress = min(1.0, (step - warm) / max(1, total - warm))
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def batch_items(data: TrainingData, step: int, cfg: TrainConfig, info: ddp.DistInfo) -> list[tuple[int, int]]:
    """The targets of one process at one step; a function of (seed, step) only, so resuming is exact."""
    per_step = cfg.batch_size * info.world
    steps_per_epoch = max(1, math.ceil(len(data.train) / per_step))
    epoch, index = divmod(step, steps_per_epoch)
    order = np.random.default_rng([cfg.seed, epoch]).permutation(len(data.train))
    order = np.resize(order, steps_per_epoch * per_step)  # wrap around to fill the last batch
    start = index * per_step + info.rank * cfg.batch_size
    return [data.train[i] for i in order[start:start + cfg.batch_size]]


def make_batch(data: TrainingData, items, embeddings, cfg: TrainConfig, rng: np.random.Generator):
    """(inputs, target (B, 256, 256) bool, valid or None) for a list of targets."""
    masks = torch.stack([data.target(t)[1] for t in items])
    valid = torch.stack([data.slices[t[0]].valid for t in items])
    if embeddings is not None:
        return embeddings[[t[0] for t in items]], masks, valid
    images = torch.stack([data.slices[t[0]].image for t in items])
    if cfg.augment:
        moved_images, moved_masks = augment(images, masks, rng)
        keep = moved_masks.flatten(1).sum(1) >= 4  # an object pushed out of view stays unaugmented
        images = torch.where(keep[:, None, None, None], moved_images, images)
        masks = torch.where(keep[:, None, None], moved_masks, masks)
        valid = None
    return images, masks, valid


def train(cfg: TrainConfig) -> TrainResult:
    """Fine-tune ``cfg.model`` on ``cfg.data``; see TrainConfig. MedsegError for bad input before training."""
    from medseg.build import build_model

    cfg.validate()
    out = Path(cfg.out).expanduser()
    resumed = ckpt.read_last(out / "last.pt", cfg) if cfg.resume else None
    if not cfg.resume and (out / "last.pt").exists():
        raise MedsegError(f"--out {out} holds a previous run (last.pt); add --resume or choose another folder")
    data = open_training_data(cfg.data, cfg.val_fraction, cfg.slices_per_case, cfg.seed)
    info = ddp.setup()
    try:
        return _run(cfg, out, data, resumed, info, build_model)
    finally:
        ddp.teardown(info)


@dataclass
class Session:
    """Everything one training process holds (built by ``open_session``)."""

    cfg: TrainConfig
    out: Path
    data: TrainingData
    info: ddp.DistInfo
    model: torch.nn.Module
    runner: torch.nn.Module  # PromptedStep, wrapped in DistributedDataParallel with several processes
    embeddings: torch.Tensor | None
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    rng: np.random.Generator
    total: int
    steps_per_epoch: int
    first: tuple[str, ...]
    step: int = 0
    best: float = -1.0
    history: History | None = None

    def train_step(self) -> tuple[float, float]:
        """One optimiser step; returns (loss, Dice of the last round) averaged over processes."""
        items = batch_items(self.data, self.step, self.cfg, self.info)
        inputs, masks, valid = make_batch(self.data, items, self.embeddings, self.cfg, self.rng)
        kind = self.first[int(self.rng.integers(len(self.first)))]
        terms = self.runner(inputs, masks, valid, kind)
        self.optimizer.zero_grad(set_to_none=True)
        terms["total"].backward()
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        loss, dice = ddp.mean_over_ranks([terms["total"].item(), terms["dice_last"].item()], self.info)
        return loss, dice

    def validate_and_keep(self) -> None:
        """Validate (rank 0); export model.pt when the validation Dice is the best so far."""
        scores = validate(self.model, self.data, self.embeddings, self.first)
        if scores is None:
            return
        self.history.append({"step": self.step, **scores})
        if scores["val_dice"] > self.best:
            self.best = scores["val_dice"]
            ckpt.export_model(self.model, self.cfg, self.out / "model.pt", {"step": self.step, **scores})

    def save_last(self) -> None:
        ckpt.save_last(self.out / "last.pt", self.cfg, self.model, self.optimizer, self.scheduler, self.step,
                       self.rng, self.best)


def open_session(cfg: TrainConfig, out: Path, data: TrainingData, resumed: dict | None, info: ddp.DistInfo,
                 build_model) -> Session:
    """Build the model for the mode, embeddings, optimiser and schedule; restore last.pt when resuming."""
    torch.manual_seed(cfg.seed)
    out.mkdir(parents=True, exist_ok=True)
    model = build_model(cfg.model, cfg.checkpoint)
    trainable = prepare(model, cfg.mode, cfg.adapter_dim, cfg.lora_rank)
    model.eval()  # BatchNorm statistics stay frozen; SAM has no dropout
    embeddings = None
    if cfg.mode == "decoder":
        embeddings = cached_embeddings(model, data.slices, out, info, cfg.progress and info.main)
    rng = np.random.default_rng([cfg.seed, info.rank])
    step_module = PromptedStep(model, embeddings is not None, cfg.rounds, "mask" in cfg.prompts,
                               LossWeights(focal=cfg.focal_weight, iou=cfg.iou_weight), cfg.box_jitter, rng)
    runner = torch.nn.parallel.DistributedDataParallel(step_module) if info.world > 1 else step_module
    steps_per_epoch = max(1, math.ceil(len(data.train) / (cfg.batch_size * info.world)))
    total = cfg.max_steps or cfg.epochs * steps_per_epoch
    optimizer = torch.optim.AdamW(trainable, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule(total))
    first = tuple(k for k in cfg.prompts if k in ("box", "point"))
    session = Session(cfg, out, data, info, model, runner, embeddings, optimizer, scheduler, rng, total,
                      steps_per_epoch, first)
    if resumed is not None:
        session.step = ckpt.restore(resumed, model, optimizer, scheduler, rng)
        session.best = float(resumed["best"])
        if info.rank > 0:  # last.pt holds rank 0's generator; the others draw their own prompts
            rng.bit_generator.state = np.random.default_rng([cfg.seed, info.rank, session.step]).bit_generator.state
    if info.main:
        session.history = History(out, resumed is not None, session.step)
    return session


@contextlib.contextmanager
def sigterm_as_interrupt():
    """Treat SIGTERM (torchrun stopping its workers, a batch scheduler's time limit) like Ctrl-C."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(cfg: TrainConfig, out: Path, data: TrainingData, resumed: dict | None, info: ddp.DistInfo,
         build_model) -> TrainResult:
    s = open_session(cfg, out, data, resumed, info, build_model)
    val_every = cfg.val_every or s.steps_per_epoch
    if info.main and s.step == 0:
        s.validate_and_keep()
    bar = tqdm(total=s.total, initial=s.step, desc=f"train {cfg.mode}", disable=not (cfg.progress and info.main))
    started, start_step = time.perf_counter(), s.step
    try:
        with sigterm_as_interrupt():
            _loop(s, val_every, bar)
    except KeyboardInterrupt:
        if info.main:
            s.save_last()
        raise
    finally:
        bar.close()
    elapsed = time.perf_counter() - started
    if info.main:
        if not data.val:
            ckpt.export_model(s.model, cfg, out / "model.pt", {"step": s.step})
        s.history.plot(out / "curves.png")
    ddp.barrier(info)
    done = max(1, s.step - start_step)
    best = s.best if s.best >= 0 else None
    return TrainResult(out, out / "model.pt", s.step, best, elapsed, elapsed / done, info.main)


def _loop(s: Session, val_every: int, bar: tqdm) -> None:
    """Steps until the total, with the log, validation and last.pt on rank 0."""
    while s.step < s.total:
        t0 = time.perf_counter()
        loss, dice = s.train_step()
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.3f}", dice=f"{dice:.3f}")
        if s.info.main:
            s.history.append({"step": s.step, "epoch": (s.step - 1) // s.steps_per_epoch, "loss": loss,
                              "dice": dice, "lr": s.scheduler.get_last_lr()[0], "seconds": time.perf_counter() - t0})
            if s.step % val_every == 0 or s.step == s.total:
                s.validate_and_keep()
            if s.step % s.cfg.save_every == 0 or s.step == s.total:
                s.save_last()
