"""3D Dice of a tight 2D box on each structure's largest slice, propagated (``VolumeSession.add_box``).

The 2D box's z-extent comes from the coronal and sagittal planes through its mask (``medseg.predict.extent``), as a
lone click's does. Structures: the training and dev ones of ``benchmarks/training_clicks.py`` (spine CT L2-L4, every
8th Colin27 AAL structure, pycerr pat_1-3), PyRadiomics brain1, brain2, lung1 (dev), and the held-out RIDER, pycerr
pat_4, spine MR C5-C7, PyRadiomics breast1 and lung2 (pycerr CC BY-NC 3.0 and PyRadiomics: measurement only).
``litemedsam``, atlas route off. Dice per structure written to ``--out`` (JSON) and summarised.

    PYTHONPATH=src .venv/bin/python benchmarks/box2d_volumes.py --encodes DIR --out OUT.json   # about 5 min
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from interactive_eval import load  # noqa: E402
from training_clicks import CASES, DEV_LESIONS, structures  # noqa: E402

HELD_OUT = (("rider_lung", "seg_manual", (1,)), ("radiomics_phantom", "pat_4", (1,)), ("spine", "mr_vert", (5, 6, 7)),
            ("pyradiomics", "breast1", (1,)), ("pyradiomics", "lung2", (1,)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--encodes", type=Path, default=None, help="folder keeping slice embeddings between runs")
    args = ap.parse_args()
    p = load("litemedsam", None, {}, "auto", args.encodes)
    out: dict[str, float] = {}
    for key, session, truth in structures(p, (*CASES, *DEV_LESIONS, *HELD_OUT)):
        z = int(np.argmax(truth.sum(axis=(1, 2))))
        ys, xs = np.nonzero(truth[z])
        mask = session.object_mask(session.add_box(z, (xs.min(), ys.min(), xs.max(), ys.max()))).astype(bool)
        out[key] = float(2 * (mask & truth).sum() / (mask.sum() + truth.sum()))
        print(key, round(out[key], 3), flush=True)
        args.out.write_text(json.dumps(out, indent=1))
    held = [f"{d}/{c}/{lab}" for d, c, labels in HELD_OUT for lab in labels]
    rest = [k for k in out if k not in held]
    print(f"training and dev ({len(rest)}): {np.mean([out[k] for k in rest]):.3f}; "
          f"held out ({len(held)}): {np.mean([out[k] for k in held]):.3f}")


if __name__ == "__main__":
    main()
