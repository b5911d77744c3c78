"""2D Dice of a lone click: the plain point prompt against medseg's box proposals (medseg.predict.click).

Clicks sit at each object's deepest pixel (farthest from its border), where a user would click:
125 stardist nuclei, and 12 Colin27 AAL structures on three slices each (where the structure is
largest and at a quarter and three quarters of its z-range). A tight box from the ground truth is the
reference. Prints a markdown table and writes it to benchmarks/results/click_dice.md.

    .venv/bin/python scripts/eval_click.py          # about 5 min on 2 cores
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from medseg.build import build_model
from medseg.data import sample
from medseg.io import read_image
from medseg.predict.click import segment_click
from medseg.predict.extent import deepest_pixel
from medseg.predict.predictor import Predictor
from medseg.predict.segment import windowed
from medseg.preprocess.window import apply_window, choose_window

AAL = [f"{s}_{side}" for s in ("Hippocampus", "Amygdala", "Caudate", "Putamen", "Pallidum", "Thalamus")
       for side in "LR"]
OUT = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "click_dice.md"


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = a.sum() + b.sum()
    return float(2 * np.logical_and(a, b).sum() / total) if total else 1.0


def score(predictor: Predictor, truth: np.ndarray, image: np.ndarray) -> dict[str, float]:
    """Dice of the plain click, the box proposals and a tight box, for one object on the current slice."""
    row, col = deepest_pixel(truth)
    point = predictor.predict(points=np.array([[col, row]], np.float32), point_labels=np.array([1]),
                              multimask=True)
    proposals = segment_click(lambda _z, **kw: predictor.predict(**kw), 0, col, row, truth.shape, image=image)
    ys, xs = np.nonzero(truth)
    box = predictor.predict(box=np.array([xs.min(), ys.min(), xs.max(), ys.max()], np.float32))
    return {"point": dice(point.best(), truth), "proposals": dice(proposals.mask, truth),
            "tight box": dice(box.masks[0], truth)}


def nuclei(predictor: Predictor) -> list[dict[str, float]]:
    import tifffile

    image = read_image(sample.path("nuclei", "img2d.tif"))
    labels = tifffile.imread(sample.path("nuclei", "mask2d.tif"))
    choice = choose_window(image.array, image.modality, "auto", picture=True)
    picture = apply_window(image.array, choice)
    predictor.set_image(picture)
    return [score(predictor, labels == k, picture) for k in np.unique(labels) if k != 0]


def colin27(predictor: Predictor) -> list[dict[str, float]]:
    data, _ = windowed(read_image(sample.path("colin27", "ch2.nii.gz")), "auto")
    aal, ids = read_image(sample.path("colin27", "aal.nii.gz")).array, sample.aal_labels()
    jobs: dict[int, list[np.ndarray]] = {}
    for name in AAL:
        gt = aal == ids[name]
        zs = np.nonzero(gt.any(axis=(1, 2)))[0]
        for z in {int(np.argmax(gt.sum(axis=(1, 2)))), int(zs[len(zs) // 4]), int(zs[3 * len(zs) // 4])}:
            jobs.setdefault(z, []).append(gt[z])
    rows = []
    for z, truths in sorted(jobs.items()):
        predictor.set_image(data[z])
        rows += [score(predictor, t, data[z]) for t in truths]
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args()
    predictor = Predictor(build_model())
    results = {"stardist nuclei": nuclei(predictor), "Colin27 AAL (12 structures x 3 slices)": colin27(predictor)}
    keys = ["point", "proposals", "tight box"]
    lines = ["| data | objects | " + " | ".join(f"{k} Dice (mean)" for k in keys) + " |", "|---|---|---|---|---|"]
    for name, rows in results.items():
        lines.append(f"| {name} | {len(rows)} | " + " | ".join(f"{np.mean([r[k] for r in rows]):.3f}" for k in keys)
                     + " |")
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        OUT.write_text("# A lone click, LiteMedSAM, 2D\n\n`.venv/bin/python scripts/eval_click.py`. Click at each "
                       "object's deepest pixel. `point`: the click alone (best of three masks by predicted IoU); "
                       "`proposals`: medseg's box proposals around the click (`medseg.predict.click`); `tight "
                       "box`: the object's bounding box from the ground truth, for reference.\n\n" + text + "\n")
        print(f"written: {OUT}")


if __name__ == "__main__":
    main()
