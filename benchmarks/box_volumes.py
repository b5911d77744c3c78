"""3D Dice of tight boxes on real structures: a tight 3D box (``VolumeSession.add_box3d``) and a tight 2D box on the
structure's largest slice, propagated (``VolumeSession.add_box``; its z-extent from the coronal and sagittal planes
through its mask, ``medseg.predict.extent``, as a lone click's).

Structures: training and dev (those of ``benchmarks/training_clicks.py``: spine CT L2-L4, every 8th Colin27 AAL
structure, pycerr pat_1-3; PyRadiomics brain1, brain2, lung1), held out (RIDER, pycerr pat_4, spine MR C5-C7,
PyRadiomics breast1 and lung2, the six Harvard-Oxford subcortical structures on MNI152), and with ``--wide`` the 31
structures of ``training_clicks.py --wide`` (cortex parcels, MNI152 grey and white matter). pycerr (CC BY-NC 3.0) and
PyRadiomics data: measurement only. ``litemedsam``, atlas route off. ``--no-refine`` keeps the model's border (the
boxes' objects are not drawn again by ``medseg.predict.refine``). Dice per structure and prompt written to ``--out``
(JSON) and summarised.

    PYTHONPATH=src .venv/bin/python benchmarks/box_volumes.py --encodes DIR --out OUT.json [--wide] [--no-refine]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from interactive_eval import HO_SUBCORTICAL, load  # noqa: E402
from training_clicks import CASES, DEV_LESIONS, WIDE, structures  # noqa: E402

from medseg.evaluate.protocols import box3d_of  # noqa: E402

HELD_OUT = (("rider_lung", "seg_manual", (1,)), ("radiomics_phantom", "pat_4", (1,)), ("spine", "mr_vert", (5, 6, 7)),
            ("pyradiomics", "breast1", (1,)), ("pyradiomics", "lung2", (1,)),
            ("atlases", "harvard_oxford", HO_SUBCORTICAL))


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / max(a.sum() + b.sum(), 1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--encodes", type=Path, default=None, help="folder keeping slice embeddings between runs")
    ap.add_argument("--wide", action="store_true", help="the 31 structures of training_clicks.py --wide instead")
    ap.add_argument("--no-refine", action="store_true", help="the boxes' objects keep the model's border")
    args = ap.parse_args()
    p = load("litemedsam", None, {}, "auto", args.encodes)
    out: dict[str, dict[str, float]] = {}
    groups = {"wide": WIDE} if args.wide else {"training and dev": (*CASES, *DEV_LESIONS), "held out": HELD_OUT}
    keys: dict[str, list[str]] = {name: [] for name in groups}
    for name, cases in groups.items():
        for key, session, truth in structures(p, cases):
            session.refine = not args.no_refine
            box3d = session.object_mask(session.add_box3d(*box3d_of(truth)))
            session.reset()
            z = int(np.argmax(truth.sum(axis=(1, 2))))
            ys, xs = np.nonzero(truth[z])
            box2d = session.object_mask(session.add_box(z, (xs.min(), ys.min(), xs.max(), ys.max())))
            out[key] = {"box3d": dice(box3d.astype(bool), truth), "box2d": dice(box2d.astype(bool), truth)}
            keys[name].append(key)
            print(key, {k: round(v, 3) for k, v in out[key].items()}, flush=True)
            args.out.write_text(json.dumps(out, indent=1))
    for name, ks in keys.items():
        means = {k: np.mean([out[key][k] for key in ks]) for k in ("box3d", "box2d")}
        print(f"{name} ({len(ks)}): tight 3D box {means['box3d']:.3f}, propagated 2D box {means['box2d']:.3f}")


if __name__ == "__main__":
    main()
