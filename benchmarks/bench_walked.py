"""What the walked correction (``medseg.predict.walked.walked_region``) costs a click, on real objects.

The CVPR25 protocol (five clicks, ``litemedsam``, atlas route off) on the structures where the walk answered
corrections in `benchmarks/results/interactive/walked.md`; every call of ``walked_region`` is timed as it happens:
the click's depth, the voxels walked, milliseconds, the voxels added. PyRadiomics and pycerr data: measurement only.
``--large``: instead, one abdomen-sized synthetic object (an ellipsoid on 240 slices of 512 x 512, its right part
missed) and clicks ever deeper in the missed part: milliseconds and numpy's peak memory.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_walked.py [--large] --encodes DIR
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
from training_clicks import cvpr25_clicks, structures  # noqa: E402

from medseg.cpu import describe_machine  # noqa: E402
from medseg.predict import volume_corrections, walked  # noqa: E402

CASES = (("pyradiomics", "brain1", (1,)), ("spine", "mr_vert", (6, 7)), ("spine", "ct_vert", (21, 23)),
         ("radiomics_phantom", "pat_2", (1,)), ("colin27", "aal", (1, 57)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--encodes", type=Path, default=None, help="folder keeping slice embeddings between runs")
    ap.add_argument("--large", action="store_true", help="one abdomen-sized synthetic object: time and memory")
    args = ap.parse_args()
    print(f"machine: {describe_machine()}")
    if args.large:
        large()
        return
    calls: list[float] = []

    def timed(volume, masks, z, row, col, spacing):
        start = time.perf_counter()
        out = walked.walked_region(volume, masks, z, row, col, spacing)
        calls.append(time.perf_counter() - start)
        added = sum(int(m.sum()) for m in out.values()) if out else "none (fallback)"
        print(f"  click ({col}, {row}, {z}): {1000 * calls[-1]:.1f} ms, adds {added}")
        return out

    volume_corrections.walked_region = timed
    walked_region_warm()
    p = load("litemedsam", None, {}, "auto", args.encodes)
    for key, session, truth in structures(p, CASES):
        print(key)
        cvpr25_clicks(session, truth)
    if calls:
        ms = [1000 * t for t in calls]
        print(f"walked_region: {len(ms)} calls, median {statistics.median(ms):.1f} ms, max {max(ms):.1f} ms")


def walked_region_warm() -> None:
    """One small call first, so scipy's import (about 0.7 s, once a process) is not counted as a click's cost."""
    masks = {0: np.pad(np.ones((4, 4), bool), 4)}
    walked.walked_region(np.zeros((1, 12, 12), np.float32), masks, 0, 6, 9, (1.0, 1.0, 1.0))


def large() -> None:
    import tracemalloc

    walked_region_warm()
    z, y, x = np.ogrid[:240, :512, :512]
    dist = np.sqrt(((z - 120) / 100.0) ** 2 + ((y - 256) / 180.0) ** 2 + ((x - 256) / 200.0) ** 2) * 180.0
    noise = np.random.default_rng(0).normal(0.0, 5.0, dist.shape).astype(np.float32)
    volume = np.where(dist <= 180, 150.0, 60.0).astype(np.float32) + noise
    masks = {k: (dist[k] <= 180) & (x[0] < 300) for k in range(240) if (dist[k] <= 180).any()}
    voxels = sum(int(m.sum()) for m in masks.values())
    print(f"large: object {voxels} voxels on {len(masks)} slices (0.8 x 0.8 x 1.5 mm), its part right of x = 299 "
          "missed")
    for col in (305, 310, 315, 320, 330, 400):
        tracemalloc.start()
        start = time.perf_counter()
        out = walked.walked_region(volume, masks, 120, 256, col, (0.8, 0.8, 1.5))
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        added = sum(int(m.sum()) for m in out.values()) if out else "none (over MAX_VOXELS: the fallback answers)"
        print(f"  click {col - 299} px deep: {1000 * seconds:.1f} ms, numpy peak {peak / 1e6:.1f} MB, adds {added}")


if __name__ == "__main__":
    main()
