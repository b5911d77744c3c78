"""Seconds per lone click in 3D, with and without the consensus of positions beside it (``click_consensus``).

A new object from CVPR25's first click (the structure's deepest voxel), ``VolumeSession.add_point(new_object=True)``:
- cold: nothing encoded yet (the click's slice, the coronal and sagittal planes through it and through the four
  positions beside it, and the slices of its 3D box are encoded as they are needed);
- warm: the same click again on the same session (the object dropped, every embedding kept): decoder work, the random
  walker and the rules only.
Medians over the structures and repeats; atlas route off. Prints a markdown table and writes it to
benchmarks/results/interactive/consensus/speed.md.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_lone_click.py
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from medseg.cpu import describe_machine
from medseg.data.loaders import load_labelled
from medseg.evaluate.protocols import cvpr25_click
from medseg.files import write_text
from medseg.predict.predictor import load_predictor
from medseg.predict.volume import VolumeSession

OUT = Path(__file__).resolve().parent / "results" / "interactive" / "consensus" / "speed.md"
CASES = (("pyradiomics", "lung1", 1), ("pyradiomics", "brain1", 1), ("spine", "mr_vert", 6), ("colin27", "aal", 37))


def lone_click(predictor, case, label: int, consensus: bool, warm_repeats: int) -> tuple[float, list[float], int]:
    """(cold seconds, warm seconds per repeat, slices and planes encoded) of one lone click."""
    session = VolumeSession(predictor)
    session.set_volume(case.image)
    session.click_atlas = False
    session.click_consensus = consensus
    truth = case.labels == label
    (x, y, z), _ = cvpr25_click(np.zeros_like(truth), truth)
    start = time.perf_counter()
    session.add_point(x, y, z, new_object=True)
    cold = time.perf_counter() - start
    encodes, warm = session.encodes, []
    for _ in range(warm_repeats):
        session.reset()
        start = time.perf_counter()
        session.add_point(x, y, z, new_object=True)
        warm.append(time.perf_counter() - start)
    return cold, warm, encodes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="litemedsam")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    predictor = load_predictor(args.model)
    rows = []
    for consensus in (False, True):
        colds, warms, encodes = [], [], []
        for dataset, name, label in CASES:
            case = load_labelled(dataset, [name])[0]
            cold, warm, enc = lone_click(predictor, case, label, consensus, args.repeats)
            colds.append(cold)
            warms += warm
            encodes.append(enc)
            print(f"{dataset}/{name} {label} consensus {consensus}: cold {cold:.2f} s, warm "
                  f"{np.median(warm):.2f} s, {enc} encodes", flush=True)
        rows.append(f"| {'on' if consensus else 'off'} | {np.median(colds):.2f} | {np.median(warms):.2f} | "
                    f"{int(np.median(encodes))} |")
    engine = getattr(predictor.engine, "name", type(predictor.engine).__name__)
    text = "\n".join([
        f"# Seconds per lone click in 3D ({args.model}), the consensus off and on", "",
        f"Machine: {describe_machine()}; engine {engine}. Written by `benchmarks/bench_lone_click.py`: "
        f"{', '.join(f'{d}/{n} {lab}' for d, n, lab in CASES)}, CVPR25's first click, atlas route off; cold = "
        f"nothing encoded, warm = the same click again with every embedding kept ({args.repeats} repeats).", "",
        "| `click_consensus` | cold, median s | warm, median s | encodes (median) |", "|---|---|---|---|",
        *rows, ""])
    print(text)
    write_text(args.out, text)


if __name__ == "__main__":
    main()
