"""Training configuration: one dataclass, validated before any data or model is loaded."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from medseg.errors import MedsegError
from medseg.validate import number

MODES = ("full", "decoder", "adapter", "lora", "sam3d")  # sam3d: medseg.train.sam3d_trainer
PROMPT_KINDS = ("box", "point", "mask")


# The rules of every numeric field (medseg.validate.number); the command line's options check the same.
NUMBERS: dict[str, dict] = {
    "epochs": {"integer": True, "minimum": 1}, "max_steps": {"integer": True, "minimum": 1},
    "lr": {"positive": True, "maximum": 1, "example": "1e-4"}, "weight_decay": {"minimum": 0, "maximum": 1},
    "batch_size": {"integer": True, "minimum": 1, "example": 4}, "rounds": {"integer": True, "minimum": 1},
    "val_fraction": {"minimum": 0, "below": 1, "example": 0.2}, "val_every": {"integer": True, "minimum": 0},
    "save_every": {"integer": True, "minimum": 1, "example": 50}, "seed": {"integer": True, "minimum": 0,
                                                                         "maximum": 2**32 - 1},
    "slices_per_case": {"integer": True, "minimum": 1, "example": 8},
    "adapter_dim": {"integer": True, "minimum": 1, "maximum": 4096},
    "lora_rank": {"integer": True, "minimum": 1, "maximum": 4096}, "focal_weight": {"minimum": 0, "maximum": 100},
    "iou_weight": {"minimum": 0, "maximum": 100}, "box_jitter": {"minimum": 0, "maximum": 1},
}
CLI_NAMES = ("epochs", "max_steps", "lr", "batch_size", "rounds", "val_fraction", "val_every", "save_every",
             "slices_per_case", "seed")


@dataclass
class TrainConfig:
    """What to train, on what, for how long.

    Attributes:
        data: dataset folder (nnU-Net raw, CVPR24 npz files, or images/ + masks/ PNG pairs).
        out: output folder for model.pt, last.pt, log.csv, curves.png.
        mode: "full" (image encoder + mask decoder, as MedSAM), "decoder" (mask decoder only, cached
            embeddings), "adapter" (bottleneck adapters in every encoder block + decoder, as SAM-Med2D),
            "lora" (low-rank updates of the encoder attention qkv/proj + decoder).
        model: model card name to start from.
        checkpoint: weights to start from (default: the card's packaged checkpoint).
        epochs: passes over the training objects (ignored when max_steps is set).
        max_steps: total optimiser steps, overriding epochs.
        lr: peak learning rate (AdamW, linear warm-up then cosine decay).
        batch_size: objects per step and process.
        prompts: first-round prompt kinds drawn from (box, point); "mask" feeds each later round the
            previous round's logits as a mask prompt.
        rounds: prompting rounds per step; rounds after the first add a click from the error region.
        val_fraction: share of cases (or of objects, for a single-case dataset) held out for validation.
        val_every: validate every N steps (0: once per epoch and at the end).
        save_every: write last.pt every N steps (and at the end or on interruption).
        seed: seeds the split, prompts, augmentation and initialisation.
        resume: continue from out/last.pt.
        slices_per_case: 2D slices sampled from each 3D case (slices holding labels, evenly spread).
        adapter_dim: bottleneck width of the adapters.
        lora_rank: rank of the LoRA updates.
        focal_weight: weight of the focal loss (0 = off) beside Dice + BCE.
        iou_weight: weight of the MSE on the predicted IoU.
        box_jitter: box sides move by up to this fraction of the box size (and at most 20 pixels).
        augment: flips, intensity and small affine (not in decoder mode, whose embeddings are fixed).
        progress: show a tqdm progress bar.
    """

    data: str
    out: str
    mode: str = "decoder"
    model: str = "litemedsam"
    checkpoint: str | None = None
    epochs: int = 1
    max_steps: int | None = None
    lr: float = 1e-4
    weight_decay: float = 0.01
    batch_size: int = 4
    prompts: tuple[str, ...] = ("box", "point")
    rounds: int = 2
    val_fraction: float = 0.2
    val_every: int = 0
    save_every: int = 50
    seed: int = 0
    resume: bool = False
    slices_per_case: int = 8
    adapter_dim: int = 32
    lora_rank: int = 4
    focal_weight: float = 0.0
    iou_weight: float = 1.0
    box_jitter: float = 0.1
    augment: bool = True
    progress: bool = True
    extra: dict = field(default_factory=dict)

    def validate(self) -> TrainConfig:
        """Check values; one-line MedsegError naming the bad one."""
        if self.mode not in MODES:
            raise MedsegError(f"unknown mode '{self.mode}'; choose one of {', '.join(MODES)}")
        bad = [p for p in self.prompts if p not in PROMPT_KINDS]
        if bad or not self.prompts:
            raise MedsegError(f"--prompts {','.join(self.prompts)}: use a comma list of {', '.join(PROMPT_KINDS)}")
        if not set(self.prompts) & {"box", "point"}:
            raise MedsegError("--prompts needs box or point (mask prompts only refine later rounds)")
        for name, rules in NUMBERS.items():
            value = getattr(self, name)
            if value is not None or name != "max_steps":
                number(value, f"--{name.replace('_', '-')}" if name in CLI_NAMES else f"TrainConfig.{name}", **rules)
        for name in ("resume", "augment", "progress"):
            if not isinstance(getattr(self, name), bool):
                raise MedsegError(f"TrainConfig.{name} {getattr(self, name)!r}: must be True or False")
        self._check_out()
        return self

    def _check_out(self) -> None:
        """--out is a folder of its own: not a file, not --data nor inside it (outputs never touch the data)."""
        out, data = Path(self.out).expanduser(), Path(self.data).expanduser()
        if out.exists() and not out.is_dir():
            raise MedsegError(f"--out {out} is a file; give a folder for model.pt, last.pt, log.csv, curves.png")
        if data.is_dir() and out.resolve().is_relative_to(data.resolve()):
            raise MedsegError(f"--out {out} is the --data folder {data} or inside it; choose another folder")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["prompts"] = list(self.prompts)
        return d

    def architecture_key(self) -> dict:
        """What a resumed checkpoint must agree on: the network and the trainable extras."""
        return {"model": self.model, "mode": self.mode,
                "adapter_dim": self.adapter_dim if self.mode == "adapter" else None,
                "lora_rank": self.lora_rank if self.mode == "lora" else None}
