"""``medseg train --mode sam3d``: the options only SAM3D reads, and the run (``sam3d_trainer``)."""

from __future__ import annotations

import argparse

from medseg.engine import ENGINE_NAMES
from medseg.errors import MedsegError
from medseg.validate import option, whole


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("sam3d mode (automatic multi-class 3D segmentation, docs/sam3d.md)")
    g.add_argument("--depth", type=whole("--depth", 2, 256, example=16), default=16,
                   help="slices per 3D window (training and inference; default 16)")
    g.add_argument("--crop", type=whole("--crop", 32, 256, example=128), default=128,
                   help="in-plane training crop in model pixels, of 256 (multiple of 32; default 128)")
    g.add_argument("--minutes", type=option("--minutes", positive=True, maximum=10**6, example=10), default=None,
                   help="stop training after this many minutes (the poly schedule follows the budget)")
    g.add_argument("--augment", type=whole("--augment", 0, 16, example=4), default=0,
                   help="augmented copies of each training volume, encoded like the originals (rotation, "
                        "scaling, blur, gamma, contrast, noise; default 0; docs/sam3d.md)")
    g.add_argument("--engine", default="auto", choices=ENGINE_NAMES, help="engine encoding the slices (default auto)")


def config_from_args(args: argparse.Namespace):
    from medseg.train.sam3d_trainer import Sam3DTrainConfig

    return Sam3DTrainConfig(
        out=args.out, data=args.data, max_steps=args.max_steps, epochs=args.epochs, minutes=args.minutes,
        lr=3e-3 if args.lr is None else args.lr, batch_size=2 if args.batch_size is None else args.batch_size,
        depth=args.depth, crop=args.crop, val_fraction=args.val_fraction, val_every=args.val_every,
        save_every=args.save_every, seed=args.seed, resume=args.resume, progress=not args.quiet,
        engine=args.engine, model=args.model, augment=args.augment,
    ).validate()


def run(args: argparse.Namespace) -> int:
    """Check everything, load the volumes, train; print the parameter count, time and where model.pt is."""
    from pathlib import Path

    from medseg.train.sam3d_cases import load_cases
    from medseg.train.sam3d_trainer import train_sam3d

    if args.model != "litemedsam" or args.checkpoint:
        raise MedsegError("--mode sam3d runs on the packaged litemedsam encoder; drop --model/--checkpoint")
    cfg = config_from_args(args)
    out, data = Path(cfg.out).expanduser(), Path(cfg.data).expanduser()
    if out.exists() and not out.is_dir():
        raise MedsegError(f"--out {out} is a file; give a folder for model.pt, last.pt, log.csv, curves.png")
    if data.is_dir() and out.resolve().is_relative_to(data.resolve()):
        raise MedsegError(f"--out {out} is the --data folder {data} or inside it; choose another folder")
    if not cfg.resume and (out / "last.pt").exists():
        raise MedsegError(f"--out {out} holds a previous run (last.pt); add --resume or choose another folder")
    cases, names = load_cases(cfg.data)
    if args.nproc > 1:
        from medseg.train import distributed
        from medseg.train.sam3d_trainer import encode_cases

        encode_cases(cases, names, cfg)  # once, here: the workers read the cache
        return distributed.launch(args.nproc, worker_argv(args))
    result = train_sam3d(cases, names, cfg)
    if not result.main_process:
        return 0
    best = "" if result.best_val_dice is None else f", best validation Dice {result.best_val_dice:.3f}"
    print(f"SAM3D decoder: {result.parameters:,} parameters; trained {result.steps} steps in "
          f"{result.seconds / 60:.1f} min (slices encoded in {result.encode_seconds:.0f} s){best}; "
          f"model: {result.model_path}")
    return 0


def worker_argv(args: argparse.Namespace) -> list[str]:
    """The options as a ``medseg train --mode sam3d`` command line for each DDP worker (without --nproc):
    the common ones (``medseg.cli.train.worker_argv``) and those only SAM3D reads."""
    from medseg.cli.train import worker_argv as common

    argv = common(args)
    for flag, value in (("minutes", args.minutes), ("depth", args.depth), ("crop", args.crop),
                        ("augment", args.augment), ("engine", args.engine)):
        if value is not None:
            argv += [f"--{flag}", str(value)]
    return argv
