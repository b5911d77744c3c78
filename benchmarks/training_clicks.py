"""3D click protocols on training and dev structures: where correction rules are chosen, before the held-out check.

The CVPR25 protocol (``--protocol interactive``: the first click at the structure's deepest voxel, then each at the
deepest voxel of the largest error) or SAM-Med3D's (``--protocol sammed3d``: uniform in the structure, then uniform in
the error, seed 0), no box, ``litemedsam`` (as the shipped card runs in 3D), the atlas route off so the model answers.
Dice after every click per structure, written to ``--out`` (JSON; a rerun resumes it) and summarised per source.

Structures: the spine CT vertebrae L2-L4, the pycerr radiomics phantom pat_1-3 (CC BY-NC 3.0: used here for
measurement only, never trained on) and every 8th Colin27 AAL structure (1, 9, ..., 113): 21 in all. ``--wide``: 31
others no rule was chosen on, a check afterwards (Colin27 AAL 3, 11, ..., 115 and 5, 13, ..., 109; MNI152 grey and
white matter).

``--thick K``: every volume whose slices are not already thick (under 1.5 x the pixel) is made K times thicker
first, each block of K slices averaged (a thick slice's partial volume; rounded to the source's integer type) and
labelled as its middle slice: Colin27 and the spine CT then stand in for the thick-sliced scans (whole-body CT,
clinical MR) of the held-out lesions, where the pycerr phantoms are the only thick training structures. Structures
left on fewer than two slices are skipped.

    PYTHONPATH=src .venv/bin/python benchmarks/training_clicks.py --out OUT.json   # about 6 min on 2 cores
    PYTHONPATH=src .venv/bin/python benchmarks/training_clicks.py --thick 5 --out OUT.json   # about 3 min
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from interactive_eval import load  # noqa: E402

from medseg.data.loaders import load_labelled  # noqa: E402
from medseg.evaluate.protocols import ProtocolConfig, cvpr25_click, run_case  # noqa: E402
from medseg.predict.volume import VolumeSession  # noqa: E402

# (dataset, case, labels or None for every label under 100)
CASES = (("spine", "ct_vert", None), ("radiomics_phantom", "pat_1", (1,)), ("radiomics_phantom", "pat_2", (1,)),
         ("radiomics_phantom", "pat_3", (1,)), ("colin27", "aal", tuple(range(1, 117, 8))))
# the PyRadiomics lesions traced while choosing stop 47-48's rules (evaluation only, never trained on)
DEV_LESIONS = (("pyradiomics", "brain1", (1,)), ("pyradiomics", "brain2", (1,)), ("pyradiomics", "lung1", (1,)))
WIDE = (("colin27", "aal", tuple(range(3, 117, 8)) + tuple(range(5, 117, 8))), ("mni152", "tissue", None))


def thick_sliced(image, labels: np.ndarray, k: int):
    """(image, labels) as if scanned in slices ``k`` times thicker: each block of k slices averaged, labelled as its
    middle slice (k odd: the block's centre), the geometry's z spacing and origin moved to match; unchanged when k < 2
    or the slices are already over 1.5 x the pixel."""
    sx, sy, sz = image.geometry.spacing
    if k < 2 or sz > 1.5 * min(sx, sy):
        return image, labels
    n = image.array.shape[0] // k
    blocks = image.array[: n * k].astype(np.float32).reshape(n, k, *image.array.shape[1:]).mean(axis=1)
    if np.issubdtype(image.array.dtype, np.integer):  # stored as the scanner would: whole numbers, the source's type
        blocks = np.round(blocks).astype(image.array.dtype)
    direction = np.array(image.geometry.direction, float).reshape(3, 3)
    origin = np.array(image.geometry.origin, float) + direction @ np.array([0.0, 0.0, (k - 1) / 2 * sz])
    geometry = replace(image.geometry, spacing=(sx, sy, sz * k), origin=tuple(float(v) for v in origin))
    return replace(image, array=blocks, geometry=geometry), labels[k // 2: n * k: k]


def structures(p, cases) -> Iterator[tuple[str, VolumeSession, np.ndarray]]:
    """(key, a session on the structure's volume with no objects, its truth mask) for every structure of ``cases``
    (dataset, case, labels or None), the atlas route off; one session per volume, so its embeddings serve each."""
    for dataset, case, labels in cases:
        found = load_labelled(dataset, [case])[0]
        session = VolumeSession(p, progress=False)
        session.set_volume(found.image, "auto")
        session.click_atlas = False
        for label in labels or [int(v) for v in np.unique(found.labels)[1:] if v < 100]:
            truth = found.labels == label
            if truth.any():
                session.reset()
                yield f"{dataset}/{case}/{label}", session, truth


def cvpr25_clicks(session: VolumeSession, truth: np.ndarray, clicks: int = 5) -> np.ndarray:
    """``clicks`` CVPR25 clicks on one new object of ``session`` (the first at the deepest voxel, then each at the
    deepest voxel of the largest error); its mask after the last."""
    mask, label = np.zeros_like(truth), None
    for _ in range(clicks):
        (x, y, z), positive = cvpr25_click(mask, truth)
        if label is None:
            label = session.add_point(x, y, z)
        else:
            session.add_point(x, y, z, positive=positive, obj=label)
        mask = session.object_mask(label).astype(bool)
    return mask


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--protocol", default="interactive", choices=("interactive", "sammed3d"))
    ap.add_argument("--clicks", type=int, default=5)
    ap.add_argument("--encodes", type=Path, default=None, help="folder keeping slice embeddings between runs")
    ap.add_argument("--box", action="store_true", help="start from the tight 3D box (its Dice first), then the clicks")
    ap.add_argument("--wide", action="store_true", help="the 31 structures of the wider check instead")
    ap.add_argument("--thick", type=int, default=1, help="isotropic volumes made K times thicker first (see above)")
    ap.add_argument("--no-refine", action="store_true", help="new objects keep the model's border")
    ap.add_argument("--no-correction-net", action="store_true",
                    help="refused negative corrections by the rules' fallback (the correction network off)")
    args = ap.parse_args()
    if args.encodes is not None:
        args.encodes.mkdir(parents=True, exist_ok=True)
    p = load("litemedsam", None, {}, "auto", args.encodes)
    cfg = ProtocolConfig(protocol=args.protocol, clicks=args.clicks, with_box=args.box, click_atlas=False,
                         refine=not args.no_refine, correction_net=not args.no_correction_net)
    res = json.loads(args.out.read_text()) if args.out.exists() else {}
    for dataset, case, labels in WIDE if args.wide else CASES:
        c = load_labelled(dataset, [case])[0]
        image, truth = thick_sliced(c.image, c.labels, args.thick)
        for lab in labels or [int(v) for v in np.unique(truth)[1:] if v < 100]:
            key = f"{dataset}/{case}/{lab}"
            if key in res or (truth == lab).any(axis=(1, 2)).sum() < 2:
                continue
            start = time.perf_counter()
            row = run_case(args.protocol, p, image, truth, [lab], cfg, np.random.default_rng(0)).rows[0]
            res[key] = {"dice": [s["dice"] for s in row["steps"]], "s": time.perf_counter() - start}
            print(key, [round(d, 3) for d in res[key]["dice"]], flush=True)
            args.out.write_text(json.dumps(res, indent=1))
    for name in ("spine", "radiomics_phantom", "colin27", "mni152"):
        rows = np.array([v["dice"] for k, v in res.items() if k.startswith(name)])
        if len(rows):
            print(f"{name} ({len(rows)}): mean Dice per click {' / '.join(f'{d:.3f}' for d in rows.mean(axis=0))}")
    rows = np.array([v["dice"] for v in res.values()])
    print(f"all ({len(rows)}): mean Dice per click {' / '.join(f'{d:.3f}' for d in rows.mean(axis=0))}")


if __name__ == "__main__":
    main()
