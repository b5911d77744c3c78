"""Validation click Dice of decoder files on a run's validation objects (held back from training).

    python -m medseg.interactive.compare RUN_DIR A.pt B.pt ... [--clicks 5]

RUN_DIR is a training run's folder (its embeddings.pt is reused); the validation objects are those of
``medseg.interactive.train`` with the same seed. No evaluation data is involved: this chooses between
candidates without looking at held-out data.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from medseg.build import build_model, load_decoder
from medseg.interactive.data import training_sources
from medseg.interactive.train import embed_all, split_objects, validate


def main(argv: list[str] | None = None) -> dict[str, list[float]]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("files", nargs="+")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--clicks", type=int, default=5)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    sources = training_sources(args.seed)
    model = build_model("litemedsam")
    embeddings = embed_all(model, sources, Path(args.run), "auto", False)
    slices = [s for src in sources for s in src.slices]
    _, val = split_objects(sources)
    out = {}
    for f in args.files:
        load_decoder(model, Path(f))
        out[f] = [round(float(v), 4) for v in validate(model, slices, embeddings, val, args.clicks).mean(0)]
        print(f, out[f], flush=True)
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
