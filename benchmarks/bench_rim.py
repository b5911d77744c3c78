"""What the rim rule (``medseg.predict.rim.rim_edit``) costs a correction click, on real objects.

For each structure: the lone click's object (CVPR25 first click, ``litemedsam``, atlas route off), then ``rim_edit``
for a positive click 2 pixels outside its mask on the seed slice (the rule's work whether or not it applies there),
median of ``--repeat`` runs. PyRadiomics and pycerr data: measurement only.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_rim.py --encodes DIR
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from interactive_eval import load  # noqa: E402
from training_clicks import structures  # noqa: E402

from medseg.cpu import describe_machine  # noqa: E402
from medseg.evaluate.protocols import cvpr25_click  # noqa: E402
from medseg.predict.rim import rim_edit  # noqa: E402

CASES = (("pyradiomics", "lung1", (1,)), ("pyradiomics", "lung2", (1,)), ("rider_lung", "seg_manual", (1,)),
         ("radiomics_phantom", "pat_4", (1,)))


def rim_pixel(mask: np.ndarray) -> tuple[int, int]:
    """(row, col) of a pixel 2 pixels outside the slice mask, right of its widest row."""
    rows = mask.sum(axis=1)
    row = int(np.argmax(rows))
    return row, int(np.flatnonzero(mask[row]).max()) + 2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--encodes", type=Path, default=None, help="folder keeping slice embeddings between runs")
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    p = load("litemedsam", None, {}, "auto", args.encodes)
    print(f"machine: {describe_machine()}")
    for key, session, truth in structures(p, CASES):
        (x, y, z), _ = cvpr25_click(np.zeros_like(truth), truth)
        label = session.add_point(x, y, z)
        obj = session.state.objects[-1]
        row, col = rim_pixel(obj.masks[z])
        spacing = session._volume().spacing
        times, out = [], None
        for _ in range(args.repeat):
            start = time.perf_counter()
            out = rim_edit(session.image.array, obj.masks, z, row, col, spacing)
            times.append(time.perf_counter() - start)
        voxels = int(session.object_mask(label).sum())
        added = f"adds {sum(int(m.sum()) for m in out.values())} voxels" if out else "not applied"
        print(f"{key}: object {voxels} voxels on {len(obj.masks)} slices; rim_edit median "
              f"{1000 * statistics.median(times):.1f} ms ({added})")


if __name__ == "__main__":
    main()
