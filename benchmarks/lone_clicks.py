"""Lone clicks at random voxels of training structures: does each give an object that holds the click?

The CVPR25 protocol clicks each structure's deepest voxel, where the model nearly always finds something. A user, or
SAM-Med3D's protocol, clicks anywhere inside: on the structure's border, on a dark voxel within it, at the scan's
edge. For each structure, ``--per`` voxels are drawn at random (seed 1) and each is a lone click in a fresh
``VolumeSession`` (``litemedsam``, the atlas route off, so the model answers; ``--atlas``: on, as shipped); the
object's size, whether it holds the click, and its 3D Dice are written to ``--out`` (JSON) and summarised per case
(mean Dice, objects over twice / under half their structure's voxels).

Training sources only (``medseg.interactive.data``): the spine CT vertebrae and sub-regions, Colin27 AAL (every 8th
structure), and the pycerr radiomics phantom pat_1-3 (CC BY-NC 3.0: used here for measurement only). ``--held-out``:
the held-out 3D structures of ``benchmarks/interactive_eval.py`` instead (pycerr pat_4 is CC BY-NC 3.0 too).

    PYTHONPATH=src .venv/bin/python benchmarks/lone_clicks.py --out OUT.json [--encodes DIR]   # about 9 min on 2 cores
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from interactive_eval import ATLAS_PACK, load  # noqa: E402

from medseg.data.loaders import load_labelled  # noqa: E402
from medseg.predict.volume import VolumeSession  # noqa: E402
from medseg.text.atlas_route import AtlasRoute  # noqa: E402
from medseg.text.routes import Router  # noqa: E402

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
    ap.add_argument("--atlas", action="store_true",
                    help="the atlas route on, as shipped (the Harvard-Oxford structures with the Colin27 + AAL pack)")
    ap.add_argument("--encodes", type=Path, default=None, help="folder keeping slice embeddings between runs")
    args = ap.parse_args()
    if args.encodes is not None:
        args.encodes.mkdir(parents=True, exist_ok=True)
    predictor = load("litemedsam", None, {}, "auto", args.encodes)
    rng = np.random.default_rng(1)
    rows = []
    for dataset, case, labels, n in HELD_OUT if args.held_out else CASES:
        c = load_labelled(dataset, [case])[0]
        session = VolumeSession(predictor, progress=False)
        session.set_volume(c.image)
        session.click_atlas = args.atlas
        if args.atlas and f"{dataset}/{case}" in ATLAS_PACK:  # the FSL MNI152 template is the default pack's own
            session.text_router = Router([AtlasRoute(ATLAS_PACK[f"{dataset}/{case}"])])
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
                             "voxels": int(mask.sum()), "truth": int(truth.sum()), "holds": bool(mask[z, y, x]),
                             "dice": float(dice),
                             "seconds": time.perf_counter() - start})
                print(rows[-1], flush=True)
    Path(args.out).write_text(json.dumps(rows, indent=1))
    summarise(rows)


def summarise(rows: list[dict]) -> None:
    """Mean Dice per case and overall, and how many objects are over twice / under half their structure."""
    for case in dict.fromkeys(r["case"] for r in rows):
        print(f"{case}: {_line([r for r in rows if r['case'] == case])}")
    print(f"{len(rows)} clicks: {sum(r['voxels'] == 0 for r in rows)} empty objects, "
          f"{sum(not r['holds'] for r in rows)} not holding the click, {_line(rows)}")


def _line(rows: list[dict]) -> str:
    over = sum(r["voxels"] > 2 * r["truth"] for r in rows)
    under = sum(r["voxels"] < 0.5 * r["truth"] for r in rows)
    return f"mean Dice {np.mean([r['dice'] for r in rows]):.4f}, {over} over twice the structure, {under} under half"


if __name__ == "__main__":
    main()
