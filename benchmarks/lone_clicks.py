"""Lone clicks at random voxels of training structures: does each give an object that holds the click?

The CVPR25 protocol clicks each structure's deepest voxel, where the model nearly always finds something. A user, or
SAM-Med3D's protocol, clicks anywhere inside: on the structure's border, on a dark voxel within it, at the scan's
edge. For each structure, ``--per`` voxels are drawn at random (seed 1) and each is a lone click in a fresh
``VolumeSession`` (``litemedsam``, the atlas route off, so the model answers); the object's size, whether it holds
the click, and its 3D Dice are written to ``--out`` (JSON) and summarised.

Training sources only (``medseg.interactive.data``): the spine CT vertebrae and sub-regions, Colin27 AAL (every 8th
structure), and the pycerr radiomics phantom pat_1-3 (CC BY-NC 3.0: used here for measurement only). ``--held-out``:
the held-out 3D structures of ``benchmarks/interactive_eval.py`` instead (pycerr pat_4 is CC BY-NC 3.0 too).

    PYTHONPATH=src .venv/bin/python benchmarks/lone_clicks.py --out OUT.json   # about 9 min on 2 cores
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from interactive_eval import load  # noqa: E402

from medseg.data.loaders import load_labelled  # noqa: E402
from medseg.predict.volume import VolumeSession  # noqa: E402

# (dataset, case, labels or None for all, clicks per structure)
CASES = (("spine", "ct_vert", None, 3), ("spine", "ct_subreg", None, 2), ("radiomics_phantom", "pat_1", (1,), 3),
         ("radiomics_phantom", "pat_2", (1,), 3), ("radiomics_phantom", "pat_3", (1,), 3),
         ("colin27", "aal", tuple(range(3, 117, 8)), 2))
# --held-out: medseg.interactive.data.HELD_OUT's 3D structures (benchmarks/interactive_eval.py's), never trained on
HELD_OUT = (("atlases", "harvard_oxford", (98, 99, 100, 103, 110, 112), 3), ("rider_lung", "seg_manual", (1,), 5),
            ("radiomics_phantom", "pat_4", (1,), 5), ("spine", "mr_vert", (5, 6, 7), 5))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--per", type=float, default=1.0, help="scale of the clicks per structure")
    ap.add_argument("--held-out", action="store_true", help="the held-out structures instead (check once)")
    args = ap.parse_args()
    predictor = load("litemedsam", None, {}, "auto", None)
    rng = np.random.default_rng(1)
    rows = []
    for dataset, case, labels, n in HELD_OUT if args.held_out else CASES:
        c = load_labelled(dataset, [case])[0]
        session = VolumeSession(predictor, progress=False)
        session.set_volume(c.image)
        session.click_atlas = False
        for lab in labels or [int(v) for v in np.unique(c.labels) if v > 0]:
            truth = c.labels == lab
            voxels = np.argwhere(truth)
            for _ in range(max(1, round(n * args.per))):
                z, y, x = (int(v) for v in voxels[rng.integers(len(voxels))])
                session.reset()
                start = time.perf_counter()
                mask = session.object_mask(session.add_point(x, y, z, positive=True, new_object=True)) > 0
                dice = 2 * np.count_nonzero(mask & truth) / (np.count_nonzero(mask) + np.count_nonzero(truth))
                rows.append({"case": f"{dataset}/{case}", "label": lab, "click": [x, y, z],
                             "voxels": int(mask.sum()), "holds": bool(mask[z, y, x]), "dice": float(dice),
                             "seconds": time.perf_counter() - start})
                print(rows[-1], flush=True)
    Path(args.out).write_text(json.dumps(rows, indent=1))
    mean = np.mean([r["dice"] for r in rows])
    print(f"{len(rows)} clicks: {sum(r['voxels'] == 0 for r in rows)} empty objects, "
          f"{sum(not r['holds'] for r in rows)} not holding the click, mean Dice {mean:.4f}")


if __name__ == "__main__":
    main()
