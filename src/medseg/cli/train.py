"""`medseg train`: fine-tune a model on your own data (see medseg.train)."""

from __future__ import annotations

import argparse

from medseg.errors import MedsegError
from medseg.validate import option, whole

NAME = "train"
HELP = "fine-tune a model on a dataset (nnU-Net raw, CVPR24 npz, or image/mask pictures)"


def _rule(flag: str, field: str | None = None):
    """The argparse type of ``--flag``: the rules of TrainConfig's field (medseg.train.config.NUMBERS)."""
    from medseg.train.config import NUMBERS

    return option(f"--{flag}", **NUMBERS[field or flag.replace("-", "_")])


def add_arguments(p: argparse.ArgumentParser) -> None:
    from medseg.train.config import MODES

    p.add_argument("--data", required=True, help="dataset folder")
    p.add_argument("--mode", required=True, help=f"what to train: {', '.join(MODES)}")
    p.add_argument("--out", required=True, help="output folder (model.pt, last.pt, log.csv, curves.png)")
    p.add_argument("--model", default="litemedsam", help="model to start from (default litemedsam)")
    p.add_argument("--checkpoint", default=None, help="weights to start from (default: the packaged ones)")
    p.add_argument("--epochs", type=_rule("epochs"), default=1)
    p.add_argument("--max-steps", type=_rule("max-steps"), default=None, help="total steps (overrides --epochs)")
    p.add_argument("--lr", type=_rule("lr"), default=None, help="peak learning rate (default 1e-4; sam3d 3e-3)")
    p.add_argument("--batch-size", type=_rule("batch-size"), default=None,
                   help="objects per step and process (default 4; sam3d: windows per step, default 2)")
    p.add_argument("--prompts", default="box,point", help="comma list of box, point, mask (default box,point)")
    p.add_argument("--rounds", type=_rule("rounds"), default=2,
                   help="prompting rounds per step (later ones add error clicks)")
    p.add_argument("--val-fraction", type=_rule("val-fraction"), default=0.2)
    p.add_argument("--val-every", type=_rule("val-every"), default=0,
                   help="validate every N steps (default: each epoch)")
    p.add_argument("--save-every", type=_rule("save-every"), default=50,
                   help="write last.pt every N steps")
    p.add_argument("--slices-per-case", type=_rule("slices-per-case"), default=8,
                   help="2D slices sampled per 3D case")
    p.add_argument("--focal", type=_rule("focal", "focal_weight"), default=0.0,
                   help="weight of a focal loss beside Dice + BCE (default 0)")
    p.add_argument("--no-augment", action="store_true", help="no flips/intensity/affine augmentation")
    p.add_argument("--nproc", type=whole("--nproc", 1, 256, example=2), default=1,
                   help="processes (PyTorch DDP via torchrun; gloo on CPU)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--seed", type=_rule("seed"), default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    from medseg.train.sam3d_cli import add_arguments as add_sam3d

    add_sam3d(p)


def config_from_args(args: argparse.Namespace):
    from medseg.train.config import TrainConfig

    return TrainConfig(
        data=args.data, out=args.out, mode=args.mode, model=args.model, checkpoint=args.checkpoint,
        epochs=args.epochs, max_steps=args.max_steps, lr=1e-4 if args.lr is None else args.lr,
        batch_size=4 if args.batch_size is None else args.batch_size,
        prompts=tuple(p.strip() for p in args.prompts.split(",") if p.strip()), rounds=args.rounds,
        val_fraction=args.val_fraction, val_every=args.val_every, save_every=args.save_every,
        slices_per_case=args.slices_per_case, augment=not args.no_augment, focal_weight=args.focal, resume=args.resume,
        seed=args.seed, progress=not args.quiet,
    ).validate()


def run(args: argparse.Namespace) -> int:
    if args.mode == "sam3d":
        from medseg.train.sam3d_cli import run as run_sam3d

        return run_sam3d(args)
    cfg = config_from_args(args)
    if args.nproc > 1:
        from medseg.train import distributed

        _check_before_launch(cfg)
        return distributed.launch(args.nproc, worker_argv(args))
    from medseg.train.trainer import train

    result = train(cfg)
    if not result.main_process:
        return 0
    best = "" if result.best_val_dice is None else f", best validation Dice {result.best_val_dice:.3f}"
    print(f"trained {result.steps} steps in {result.seconds:.0f} s ({result.seconds_per_step:.2f} s/step){best}; "
          f"model: {result.model_path}")
    return 0


def worker_argv(args: argparse.Namespace) -> list[str]:
    """The parsed options as a ``medseg train`` command line for each worker process (without --nproc)."""
    argv = []
    for action, value in (("data", args.data), ("mode", args.mode), ("out", args.out), ("model", args.model),
                          ("checkpoint", args.checkpoint), ("epochs", args.epochs), ("max-steps", args.max_steps),
                          ("lr", args.lr), ("batch-size", args.batch_size), ("prompts", args.prompts),
                          ("rounds", args.rounds), ("val-fraction", args.val_fraction),
                          ("val-every", args.val_every), ("save-every", args.save_every),
                          ("slices-per-case", args.slices_per_case), ("seed", args.seed), ("focal", args.focal)):
        if value is not None:
            argv += [f"--{action}", str(value)]
    for flag, on in (("--no-augment", args.no_augment), ("--resume", args.resume), ("--quiet", args.quiet)):
        if on:
            argv.append(flag)
    return argv


def _check_before_launch(cfg) -> None:
    """Fail fast, in one process with a one-line error, on the bad input every worker would hit."""
    from pathlib import Path

    from medseg.train.checkpoint import read_last
    from medseg.train.datasets import open_training_data

    if cfg.resume:
        read_last(Path(cfg.out).expanduser() / "last.pt", cfg)
    elif (Path(cfg.out).expanduser() / "last.pt").exists():
        raise MedsegError(f"--out {cfg.out} holds a previous run (last.pt); add --resume or choose another folder")
    open_training_data(cfg.data, cfg.val_fraction, cfg.slices_per_case, cfg.seed)
