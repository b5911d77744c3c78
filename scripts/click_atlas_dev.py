"""How medseg.text.pointed's settings were chosen, on training data only: Colin27 T1 with its 12 AAL deep grey
structures, the default atlas pack (FSL MNI152 + Harvard-Oxford) registered to it.

- ``--bump W [W ...]``: the CVPR25 3D protocol (first click at the deepest voxel, 10 clicks) with atlas corrections
  of width W x (distance to the border + one voxel); ``--bump 0`` corrects the atlas objects with the model's region
  edits instead. Mean Dice after 1 / 5 / 10 clicks (the model runs only for ``0``).
- ``--gate``: 30 clicks uniform in each structure; the atlas's answer's mean Dice for the clicks each rule of the gate
  would refuse.

    PYTHONPATH=src .venv/bin/python scripts/click_atlas_dev.py --bump 0.7 1 1.3 2 --gate
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np

DEEP = ("Thalamus", "Caudate", "Putamen", "Pallidum", "Hippocampus", "Amygdala")


def bump_sweep(case, labels: list[int], widths: list[float]) -> None:
    from medseg.evaluate.protocols import ProtocolConfig, run_case
    from medseg.predict.predictor import load_predictor
    from medseg.text import pointed

    predictor = load_predictor("litemedsam")
    cfg = ProtocolConfig(protocol="interactive", clicks=10, with_box=False)
    original, found = pointed.structure_at, pointed.structure_at
    for width in widths:
        pointed.BUMP = width or 1.0
        # width 0: atlas objects without their prior, so their corrections are the model's region edits
        pointed.structure_at = original if width else (
            lambda *a, **k: None if (f := found(*a, **k)) is None else dataclasses.replace(f, prior=None))
        rows = [[s["dice"] for s in run_case("interactive", predictor, case.image, case.labels, [lab], cfg,
                                             np.random.default_rng(0)).rows[0]["steps"]] for lab in labels]
        mean = np.mean(rows, axis=0)
        print(f"bump {width:g}: 1 / 5 / 10 clicks {mean[0]:.3f} / {mean[4]:.3f} / {mean[9]:.3f}", flush=True)
    pointed.structure_at = original


def gate_study(case, labels: list[int]) -> None:
    from medseg.text import pointed
    from medseg.text.intensity import refine_by_intensity
    from medseg.text.routes import Router
    from medseg.text.vocabulary import Resolved

    route = Router().routes[0]
    warped = route.warped(case.image)
    rng = np.random.default_rng(0)
    found, rows = {}, []
    for lab in labels:
        truth = case.labels == lab
        voxels = np.argwhere(truth)
        for i in rng.choice(len(voxels), 30, replace=False):
            z, y, x = (int(v) for v in voxels[i])
            value = int(warped.labels[z, y, x])
            entry = next((e for e in route.vocabulary.entries.values() if value in e.values), None) if value else None
            if entry is None or entry.key not in pointed.POINTED:
                continue
            if value not in found:
                resolved = Resolved(entry.name, entry.name, ((entry.key, entry.side),), "click")
                found[value] = refine_by_intensity(route.prior(case.image, resolved), case.image.array)
            mask = found[value]
            edge = any(not mask[z + dz, y + dy, x + dx] for dz, dy, dx in
                       ((1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, 0, 1), (0, 0, -1)))
            rows.append((bool(mask[z, y, x]), edge, pointed._typical(case.image.array, mask, z, y, x),
                         2 * (mask & truth).sum() / (mask.sum() + truth.sum())))
    answered = [r for r in rows if r[0] and r[2]]
    groups = {"all on a deep structure of the atlas": rows,
              "answered, a neighbour outside the moved structure": [r for r in answered if r[1]],
              "answered, all neighbours inside": [r for r in answered if not r[1]],
              "not in the moved structure (refused)": [r for r in rows if not r[0]],
              "atypical intensity (refused)": [r for r in rows if r[0] and not r[2]]}
    for name, part in groups.items():
        print(f"{name}: {len(part)} clicks, atlas Dice {np.mean([r[3] for r in part]) if part else float('nan'):.3f}")


def main() -> None:
    from medseg.data.loaders import load_labelled

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bump", type=float, nargs="*", default=[])
    ap.add_argument("--gate", action="store_true")
    args = ap.parse_args()
    case = load_labelled("colin27")[0]
    labels = [k for k, v in case.names.items() if v.split("_")[0] in DEEP]
    if args.bump:
        bump_sweep(case, labels, args.bump)
    if args.gate:
        gate_study(case, labels)


if __name__ == "__main__":
    main()
