"""Train the 3D correction network (``medseg.modeling.correction3d``) on simulated correction states.

    PYTHONPATH=src .venv/bin/python scripts/train_correction3d.py --out correction3d.pt --steps 2400 --log train.log

The packaged network (``medseg/weights/correction3d.pt``, fp16; provenance beside it):

    PYTHONPATH=src .venv/bin/python scripts/train_correction3d.py --out correction3d.pt --steps 2400 --stop-at 1000 \
        --error-weight 0 --mask-init 3 --log train.log

Data: ``medseg.interactive.train3d.VOLUMES`` (training sources only; nothing evaluated). CPU, 2 threads.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from medseg.interactive.train3d import ERROR_WEIGHT, train
from medseg.modeling.correction3d import Correction3DConfig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=2400, help="the learning-rate schedule's length (one cycle)")
    ap.add_argument("--stop-at", type=int, default=None, help="stop after this step (the schedule stays --steps')")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--error-weight", type=float, default=ERROR_WEIGHT, help="extra BCE weight of wrong voxels")
    ap.add_argument("--mask-init", type=float, default=1.5, help="the mask pass-through weight at the start")
    ap.add_argument("--log", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(2)
    log_file = args.log.open("w") if args.log else None

    def log(line: str) -> None:
        print(line, flush=True)
        if log_file:
            log_file.write(line + "\n")
            log_file.flush()

    stop = f" stop_at={args.stop_at}" if args.stop_at else ""
    log(f"train_correction3d steps={args.steps} batch={args.batch} lr={args.lr} seed={args.seed} "
        f"error_weight={args.error_weight} mask_init={args.mask_init}{stop}")
    train(args.out, args.steps, args.batch, args.lr, args.seed, Correction3DConfig(mask_init=args.mask_init),
          args.error_weight, log=log, stop_at=args.stop_at)


if __name__ == "__main__":
    main()
