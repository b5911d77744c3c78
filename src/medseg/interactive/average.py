"""Average decoder files of runs started from the same weights (a "model soup", Wortsman et al. 2022).

    python -m medseg.interactive.average OUT.pt RUN1/decoder.pt RUN2/decoder.pt [--weights 20,14]

Parallel runs on a shared machine each get their share of the cores; runs fine-tuned briefly from the
same start stay in one basin, where their weight average behaves like one run with the batches of both.
Weights default to equal; the output is fp16 like its inputs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from medseg.build import load_state_dict
from medseg.errors import MedsegError
from medseg.train.checkpoint import atomic_save


def average(files: list[Path], weights: list[float] | None = None) -> dict[str, torch.Tensor]:
    states = [load_state_dict(f) for f in files]
    keys = set(states[0])
    if any(set(s) != keys for s in states):
        raise MedsegError("decoder files to average must hold the same weights")
    w = torch.tensor(weights or [1.0] * len(states), dtype=torch.float64)
    w = w / w.sum()
    out = {}
    for k in states[0]:
        if states[0][k].is_floating_point():
            out[k] = sum(float(wi) * s[k].double() for wi, s in zip(w, states, strict=True)).to(states[0][k].dtype)
        else:
            out[k] = states[0][k].clone()
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("files", nargs="+")
    ap.add_argument("--weights", default=None, help="comma list, one per file (default equal)")
    args = ap.parse_args(argv)
    weights = [float(v) for v in args.weights.split(",")] if args.weights else None
    atomic_save(average([Path(f) for f in args.files], weights), Path(args.out))


if __name__ == "__main__":
    main()
