"""Seconds per border refinement (``medseg.predict.refine``) of a new 3D object, on real held-out structures.

For each structure: its lone click (CVPR25: the deepest voxel), or with ``--box`` its tight 3D box, with the
refinement off, then ``refined`` on that object's masks, timed (median of 7 runs). Prints a markdown table (machine
described first). ``--large``: instead, one abdomen-sized synthetic object (an ellipsoid 3 px inside its edge on 239
slices of a 300 x 512 x 512 volume, 17.5 million voxels), seconds (median of 3) and the peak of numpy's memory during
the walk (tracemalloc).

    PYTHONPATH=src .venv/bin/python benchmarks/bench_refine.py [--box | --large] [--encodes DIR]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from medseg.cpu import describe_machine
from medseg.data.loaders import load_labelled
from medseg.evaluate.protocols import box3d_of, cvpr25_click
from medseg.predict.refine import refined

CASES = [("rider_lung", "seg_manual", 1), ("radiomics_phantom", "pat_4", 1), ("pyradiomics", "lung2", 1),
         ("pyradiomics", "lung1", 1), ("spine", "mr_vert", 6)]


def main() -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from interactive_eval import load  # the benchmarks' shared, cached predictor

    from medseg.predict.volume import VolumeSession

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--encodes", type=Path, default=None, help="folder keeping slice embeddings between runs")
    ap.add_argument("--box", action="store_true", help="the structures' tight 3D boxes instead of lone clicks")
    ap.add_argument("--large", action="store_true", help="one abdomen-sized synthetic object: seconds and memory")
    args = ap.parse_args()
    if args.large:
        large()
        return
    p = load("litemedsam", None, {}, "auto", args.encodes)
    print(describe_machine())
    print(f"\n{'tight 3D boxes' if args.box else 'lone clicks'}")
    print("\n| structure | object voxels | slices | median s (7 runs) |\n|---|---|---|---|")
    for dataset, case, label in CASES:
        found = load_labelled(dataset, [case])[0]
        session = VolumeSession(p, progress=False)
        session.set_volume(found.image, "auto")
        session.click_atlas, session.refine = False, False
        truth = found.labels == label
        (x, y, z), _ = cvpr25_click(np.zeros_like(truth), truth)
        if args.box:
            obj, clicks = session._object(session.add_box3d(*box3d_of(truth))), []
        else:
            obj, clicks = session._object(session.add_point(x, y, z, new_object=True)), [(z, y, x)]
        volume, spacing = session._volume().data, session._volume().spacing
        times = []
        for _ in range(7):
            start = time.perf_counter()
            refined(volume, obj.masks, spacing, clicks)
            times.append(time.perf_counter() - start)
        voxels = sum(int(m.sum()) for m in obj.masks.values())
        print(f"| {dataset}/{case} {label} | {voxels} | {len(obj.masks)} | {np.median(times):.3f} |", flush=True)


def large() -> None:
    import tracemalloc

    from scipy import ndimage

    z, y, x = np.ogrid[:300, :512, :512]
    truth = ((z - 150) / 120.0) ** 2 + ((y - 256) / 180.0) ** 2 + ((x - 256) / 200.0) ** 2 <= 1
    noise = np.random.default_rng(0).integers(0, 20, truth.shape)
    volume = (np.where(truth, 150, 60) + noise).astype(np.float32)
    masks = {k: ndimage.binary_erosion(truth[k], iterations=3) for k in range(truth.shape[0])}
    masks = {k: m for k, m in masks.items() if m.any()}
    times = []
    for _ in range(3):
        tracemalloc.start()
        start = time.perf_counter()
        out = refined(volume, masks, (0.8, 0.8, 1.5))
        times.append(time.perf_counter() - start)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    voxels = sum(int(m.sum()) for m in masks.values())
    common = sum(int((out[k] & truth[k]).sum()) for k in out)
    dice = 2 * common / (sum(int(m.sum()) for m in out.values()) + truth.sum())
    print(describe_machine())
    print(f"\nlarge: {voxels} voxels on {len(masks)} slices, median {np.median(times):.2f} s (3 runs), numpy peak "
          f"during the walk {peak / 1e9:.2f} GB, Dice to the ellipsoid {dice:.3f}")


if __name__ == "__main__":
    main()
