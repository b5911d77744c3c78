"""The SAM3D training loop: steps, poly schedule, validation by case, model.pt / last.pt, log and curves.

With several processes (``--nproc``, torchrun) the decoder is wrapped in DistributedDataParallel: each
rank draws its own windows (generator seeded by seed and rank), gradients are averaged, and the step
time that drives a ``minutes`` budget is the slowest rank's, so every rank stops at the same step.
Rank 0 alone validates and writes model.pt, last.pt, the log and the curves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from medseg.checkpoints import load_torch_file
from medseg.errors import MedsegError
from medseg.train.checkpoint import atomic_save
from medseg.train.history import History
from medseg.train.sam3d_loss import deep_supervision_loss


class Loop:
    """One training run (built by ``train_sam3d``); ``run()`` trains, validates and writes the files."""

    def __init__(self, cfg, out: Path, decoder, prepared, val, names: dict[int, str], identity: dict,
                 inputs: dict, info=None) -> None:
        from medseg.train.distributed import DistInfo
        from medseg.train.sam3d_trainer import steps_per_epoch

        self.cfg, self.out, self.decoder, self.prepared, self.val = cfg, out, decoder, prepared, val
        self.names, self.identity, self.inputs = names, identity, inputs
        self.info = info or DistInfo()
        world = self.info.world
        self.runner = torch.nn.parallel.DistributedDataParallel(decoder) if world > 1 else decoder
        self.total = cfg.max_steps or cfg.epochs * steps_per_epoch(prepared, cfg.depth, cfg.batch_size * world)
        self.optimizer = torch.optim.AdamW(decoder.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.rng = np.random.default_rng(cfg.seed if world == 1 else [cfg.seed, self.info.rank])
        self.step, self.seconds, self.best = 0, 0.0, -1.0
        self.last_val: dict[str, float] = {}
        if cfg.resume:
            self._restore()

    # ---------------------------------------------------------------- checkpoints

    def _arch(self) -> dict:
        return {"config": self.decoder.config.to_dict(), "classes": {int(k): v for k, v in self.names.items()},
                "depth": self.cfg.depth, "encoder": self.identity}

    def _restore(self) -> None:
        path = self.out / "last.pt"
        if not path.is_file():
            raise MedsegError(f"--resume: no checkpoint {path}; run once without --resume first")
        state = load_torch_file(path, "--resume: checkpoint")
        if not isinstance(state, dict) or state.get("format") != "medseg-sam3d-last/1":
            raise MedsegError(f"--resume: {path} is not a SAM3D training checkpoint")
        if state["arch"] != self._arch():
            raise MedsegError(f"--resume: {path} was trained with other classes, depth or decoder widths")
        self.decoder.load_state_dict(state["decoder"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.rng.bit_generator.state = state["numpy_rng"]
        torch.set_rng_state(state["torch_rng"])
        self.step, self.seconds, self.best = int(state["step"]), float(state["seconds"]), float(state["best"])
        if self.info.rank > 0:  # last.pt holds rank 0's generator; the others draw their own windows
            self.rng = np.random.default_rng([self.cfg.seed, self.info.rank, self.step])

    def save_last(self) -> None:
        if not self.info.main:
            return
        atomic_save({"format": "medseg-sam3d-last/1", "arch": self._arch(), "step": self.step,
                     "seconds": self.seconds, "best": self.best, "decoder": self.decoder.state_dict(),
                     "optimizer": self.optimizer.state_dict(), "numpy_rng": self.rng.bit_generator.state,
                     "torch_rng": torch.get_rng_state()}, self.out / "last.pt")

    def export(self, info: dict) -> None:
        from medseg.predict.automatic import model_state
        from medseg.train.sam3d_trainer import config_dict

        atomic_save(model_state(self.decoder, self.names, self.identity, self.inputs, self.cfg.depth,
                                config_dict(self.cfg), info, half=self.cfg.half), self.out / "model.pt")

    # ---------------------------------------------------------------- steps

    def progress(self) -> float:
        steps = self.step / self.total
        budget = self.seconds / (60 * self.cfg.minutes) if self.cfg.minutes else 0.0
        return max(steps, budget)

    def train_step(self) -> float:
        from medseg.train.sam3d_trainer import batch, poly

        for group in self.optimizer.param_groups:
            group["lr"] = self.cfg.lr * poly(self.progress())
        emb, grey, labels = batch(self.prepared, self.cfg, self.rng)
        self.decoder.train()
        loss = deep_supervision_loss(self.runner(emb, grey, deep=True), labels)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.step += 1
        return float(loss.item())

    def validate(self) -> None:
        """Mean Dice over classes on the held-out whole volumes (on their own grids); model.pt if best."""
        from medseg.evaluate.metrics import dice
        from medseg.predict.automatic import sliding_window
        from medseg.predict.orient import orientation

        if not self.val or not self.info.main:
            return
        per_class: dict[str, list[float]] = {}
        for case, prep in self.val:
            truth = orientation(case.image.geometry.direction).canonical(case.labels)
            pred = sliding_window(self.decoder, len(prep.labels), truth.shape[1:],
                                  lambda zs, p=prep: (p.embeddings[zs], p.grey[zs]), self.cfg.depth)
            for value, name in self.names.items():
                per_class.setdefault(name, []).append(dice(pred == value, truth == value))
        self.last_val = {k: float(np.mean(v)) for k, v in per_class.items()}
        score = float(np.mean(list(self.last_val.values())))
        self.history.append({"step": self.step, "val_dice": score})
        if score > self.best:
            self.best = score
            self.export({"step": self.step, "val_dice": score, "val_dice_per_class": self.last_val})

    def run(self) -> None:
        from medseg.train import distributed
        from medseg.train.sam3d_trainer import step_clock

        clock, main = step_clock(self.cfg), self.info.main
        if main:
            self.out.mkdir(parents=True, exist_ok=True)
            self.history = History(self.out, self.cfg.resume, self.step)
        val_every = self.cfg.val_every or self.total
        bar = tqdm(total=self.total, initial=self.step, desc="train sam3d", disable=not (self.cfg.progress and main))
        try:
            while self.step < self.total and self.progress() < 1.0:
                t0 = clock()
                loss = self.train_step()
                took = clock() - t0
                if self.info.world > 1:  # the slowest rank's time, and the mean loss
                    took = distributed.max_over_ranks(took, self.info)
                    loss = distributed.mean_over_ranks([loss], self.info)[0]
                self.seconds += took
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.3f}")
                if main:
                    self.history.append({"step": self.step, "loss": loss,
                                         "lr": self.optimizer.param_groups[0]["lr"], "seconds": took})
                if self.step % val_every == 0 and self.step < self.total:
                    self.validate()
                if self.step % self.cfg.save_every == 0:
                    self.save_last()
        except KeyboardInterrupt:
            self.save_last()
            raise
        finally:
            bar.close()
        self.save_last()
        self.validate()
        if main and not self.val:
            self.export({"step": self.step})
        if main:
            self.history.plot(self.out / "curves.png")
        distributed.barrier(self.info)
