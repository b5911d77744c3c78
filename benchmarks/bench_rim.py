"""What the rim rule (``medseg.predict.rim.rim_edit``) costs a correction click, on real objects.

For each structure: the lone click's object (CVPR25 first click, ``litemedsam``, atlas route off), then ``rim_edit``
for a positive click 2 pixels outside its mask on the seed slice (the rule's work whether or not it applies there),
median of ``--repeat`` runs. PyRadiomics and pycerr data: measurement only. ``--large``: instead, one abdomen-sized
synthetic object (an ellipsoid with a 6-pixel rim, 3 pixels inside its edge, on 239 slices of 512 x 512): milliseconds
and numpy's peak memory.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_rim.py [--large] --encodes DIR
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
    ap.add_argument("--large", action="store_true", help="one abdomen-sized synthetic object: time and memory")
    args = ap.parse_args()
    if args.large:
        large(args.repeat)
        return
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


def large(repeat: int) -> None:
    import tracemalloc

    z, y, x = np.ogrid[:300, :512, :512]
    dist = np.sqrt(((z - 150) / 120.0) ** 2 + ((y - 256) / 180.0) ** 2 + ((x - 256) / 200.0) ** 2) * 180.0
    volume = (60 + 90 * np.clip((183 - dist) / 6, 0, 1)).astype(np.float32)  # a 6-pixel rim around radius 180 px
    masks = {k: dist[k] <= 177 for k in range(dist.shape[0]) if (dist[k] <= 177).any()}
    row, col = 256, int(np.flatnonzero(masks[150][256]).max()) + 3
    times, peak, out = [], 0, None
    for _ in range(repeat):
        tracemalloc.start()
        start = time.perf_counter()
        out = rim_edit(volume, masks, 150, row, col, (0.8, 0.8, 1.5))
        times.append(time.perf_counter() - start)
        peak = max(peak, tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    voxels = sum(int(m.sum()) for m in masks.values())
    added = sum(int(m.sum()) for m in out.values()) if out else 0
    print(f"machine: {describe_machine()}")
    print(f"large: {voxels} voxels on {len(masks)} slices; rim_edit median {1000 * statistics.median(times):.1f} ms, "
          f"numpy peak {peak / 1e6:.1f} MB, adds {added} voxels")


if __name__ == "__main__":
    main()
