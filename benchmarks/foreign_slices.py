"""How familiar each slice of a lone click's object is to its seed slice, against how much of it is true.

For every structure of ``benchmarks/training_clicks.py`` and the dev lesions (PyRadiomics brain1, brain2, lung1), one
click at the deepest voxel (``litemedsam``, atlas route off), the object as it was before stop 48's trim
(``extent.FAMILIAR`` set to 0 here). Per slice besides the seed: its offset from the seed, its mask's area, the share of
its pixels that are true, and the share within ``extent.SPREAD`` robust SD of the seed slice's median (the rule's
"familiar" share; under ``extent.FAMILIAR`` the slice is foreign). Written to ``--out`` (JSON) with a summary.

    PYTHONPATH=src .venv/bin/python benchmarks/foreign_slices.py --encodes DIR --out OUT.json   # about 4 min
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

from medseg.evaluate.protocols import cvpr25_click  # noqa: E402
from medseg.predict import extent  # noqa: E402
from medseg.predict.volume import VolumeSession  # noqa: E402


def slices_of(session: VolumeSession, truth: np.ndarray) -> list[dict]:
    (x, y, z), _ = cvpr25_click(np.zeros_like(truth), truth)
    mask = session.object_mask(session.add_point(x, y, z, positive=True, new_object=True)).astype(bool)
    data = session._volume().data
    seed = data[z][mask[z]].astype(np.float32)
    median = float(np.median(seed))
    spread = extent.SPREAD * (1.4826 * float(np.median(np.abs(seed - median))) + 1.0)
    rows = []
    for k in np.flatnonzero(mask.any(axis=(1, 2))):
        if k == z:
            continue
        pixels = data[k][mask[k]].astype(np.float32)
        rows.append({"z": int(k), "dz": int(k - z), "area": int(mask[k].sum()),
                     "true": round(float((mask[k] & truth[k]).sum() / mask[k].sum()), 3),
                     "familiar": round(float(np.mean(np.abs(pixels - median) <= spread)), 3)})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--encodes", type=Path, default=None, help="folder keeping slice embeddings between runs")
    args = ap.parse_args()
    extent.FAMILIAR = 0.0  # the objects untrimmed
    p = load("litemedsam", None, {}, "auto", args.encodes)
    out = {}
    for key, session, truth in structures(p, (*CASES, *DEV_LESIONS)):
        out[key] = slices_of(session, truth)
        args.out.write_text(json.dumps(out, indent=0))
    rows = [r for v in out.values() for r in v]
    foreign = [r for r in rows if r["familiar"] < 0.1]
    mostly_true = [r["familiar"] for r in rows if r["true"] > 0.5]
    print(f"{len(out)} structures, {len(rows)} slices besides the seeds; {len(foreign)} foreign (familiar < 0.1), "
          f"their true share at most {max((r['true'] for r in foreign), default=0):.2f}; lowest familiar share on a "
          f"slice more than half true {min(mostly_true):.3f}")


if __name__ == "__main__":
    main()
