"""The training loop: data, model and mode, prompting rounds, validation, checkpoints, log, DDP.

Example:
    >>> from medseg.train import TrainConfig
    >>> from medseg.train.trainer import train
    >>> result = train(TrainConfig(data="Dataset001", out="runs/a", mode="decoder", max_steps=200,
    ...                            prompts=("box", "point")))
    >>> result.model_path   # runs/a/model.pt, loadable with medseg.build.build_model
"""

from __future__ import annotations

import math
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


def _run(cfg: TrainConfig, out: Path, data: TrainingData, resumed: dict | None, info: ddp.DistInfo,
         build_model) -> TrainResult:
    torch.manual_seed(cfg.seed)
    out.mkdir(parents=True, exist_ok=True)
    model = build_model(cfg.model, cfg.checkpoint)
    trainable = prepare(model, cfg.mode, cfg.adapter_dim, cfg.lora_rank)
    model.eval()  # BatchNorm statistics stay frozen; SAM has no dropout
    embeddings = None
    if cfg.mode == "decoder":
        embeddings = cached_embeddings(model, data.slices, out, info, cfg.progress and info.main)
    rng = np.random.default_rng([cfg.seed, info.rank])
    first = tuple(k for k in cfg.prompts if k in ("box", "point"))
    step_module = PromptedStep(model, embeddings is not None, cfg.rounds, "mask" in cfg.prompts,
                               LossWeights(focal=cfg.focal_weight, iou=cfg.iou_weight), cfg.box_jitter, rng)
    runner = step_module
    if info.world > 1:
        runner = torch.nn.parallel.DistributedDataParallel(step_module)
    per_step = cfg.batch_size * info.world
    total = cfg.max_steps or cfg.epochs * max(1, math.ceil(len(data.train) / per_step))
    steps_per_epoch = max(1, math.ceil(len(data.train) / per_step))
    optimizer = torch.optim.AdamW(trainable, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule(total))
    step, best = 0, -1.0
    if resumed is not None:
        step = ckpt.restore(resumed, model, optimizer, scheduler, rng)
        best = float(resumed["best"])
        if info.rank > 0:  # last.pt holds rank 0's generator; the others draw their own prompts
            rng.bit_generator.state = np.random.default_rng([cfg.seed, info.rank, step]).bit_generator.state
    history = History(out, resumed is not None, step) if info.main else None
    val_every = cfg.val_every or steps_per_epoch

    def evaluate_and_keep(at: int) -> None:
        nonlocal best
        scores = validate(model, data, embeddings, first)
        if scores is None:
            return
        history.append({"step": at, **scores})
        if scores["val_dice"] > best:
            best = scores["val_dice"]
            ckpt.export_model(model, cfg, out / "model.pt", {"step": at, **scores})

    if info.main and step == 0:
        evaluate_and_keep(0)
    bar = tqdm(total=total, initial=step, desc=f"train {cfg.mode}", disable=not (cfg.progress and info.main))
    started, start_step = time.perf_counter(), step
    try:
        while step < total:
            t0 = time.perf_counter()
            items = batch_items(data, step, cfg, info)
            inputs, masks, valid = make_batch(data, items, embeddings, cfg, rng)
            kind = first[int(rng.integers(len(first)))]
            terms = runner(inputs, masks, valid, kind)
            optimizer.zero_grad(set_to_none=True)
            terms["total"].backward()
            optimizer.step()
            scheduler.step()
            step += 1
            loss, dice = ddp.mean_over_ranks([terms["total"].item(), terms["dice_last"].item()], info)
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3f}", dice=f"{dice:.3f}")
            if info.main:
                history.append({"step": step, "epoch": (step - 1) // steps_per_epoch, "loss": loss, "dice": dice,
                                "lr": scheduler.get_last_lr()[0], "seconds": time.perf_counter() - t0})
                if step % val_every == 0 or step == total:
                    evaluate_and_keep(step)
                if step % cfg.save_every == 0 or step == total:
                    ckpt.save_last(out / "last.pt", cfg, model, optimizer, scheduler, step, rng, best)
    except KeyboardInterrupt:
        if info.main:
            ckpt.save_last(out / "last.pt", cfg, model, optimizer, scheduler, step, rng, best)
        raise
    finally:
        bar.close()
    elapsed = time.perf_counter() - started
    if info.main:
        if not data.val:
            ckpt.export_model(model, cfg, out / "model.pt", {"step": step})
        history.plot(out / "curves.png")
    ddp.barrier(info)
    done = max(1, step - start_step)
    return TrainResult(out, out / "model.pt", step, best if best >= 0 else None, elapsed, elapsed / done, info.main)

