"""Fit the weights of the lone-click choice (medseg.predict.click_choice) and compare the choice with the old rule.

For each object of a source, on up to three axial slices (where it is largest, at a quarter and at three quarters
of its z-range) and on the coronal and sagittal planes through its deepest voxel, a click at the deepest pixel;
every box proposal around it (``medseg.predict.click``) decoded by LiteMedSAM from its box alone; the features of
``click_choice.feature_rows`` and each mask's Dice. The weights maximise the mean over sources (each weighted
equally) of the expected Dice of a softmax choice among the proposals holding the click (Adam, 400 steps,
L2 1e-3 on standardised features, seed 0); the standardisation is folded into the printed weights.

    PYTHONPATH=src python scripts/fit_click_choice.py --out OUT            # training sources: fit, ~40 min
    PYTHONPATH=src python scripts/fit_click_choice.py --out OUT --step 8   # every 8th structure: ~6 min
    PYTHONPATH=src python scripts/fit_click_choice.py --out OUT --held-out # also score the held-out sets

Training sources are those of the interactive model (``medseg.interactive.data.TRAIN_SOURCES``, the training
half of the nuclei); held-out: Harvard-Oxford on the FSL MNI152 template, RIDER, pycerr pat_1-4 (CC BY-NC:
evaluation only), the spine MR, the held-out nuclei. Writes ``OUT/weights.json`` and ``OUT/report.md``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from medseg.predict.click import enclosed, half_widths, proposal_box
from medseg.predict.click_choice import FEATURES, SliceStats, feature_rows, scores
from medseg.predict.extent import Plane, deepest_pixel

TRAIN = (("colin27", "aal"), ("mni152", "tissue"), ("spine", "ct_vert"), ("spine", "ct_subreg"),
         ("dcmqi_liver", "liver"), ("nuclei", "train"))
HELD_OUT = (("atlases", "harvard_oxford"), ("rider_lung", "seg_manual"), ("radiomics_phantom", "pat_1"),
            ("radiomics_phantom", "pat_2"), ("radiomics_phantom", "pat_3"), ("radiomics_phantom", "pat_4"),
            ("spine", "mr_vert"), ("spine", "mr_subreg"), ("nuclei", "held"))


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = a.sum() + b.sum()
    return float(2 * np.logical_and(a, b).sum() / total) if total else 1.0


def slices(dataset: str, case: str, step: int):
    """(image 0..255, truth) pairs of one source."""
    from scipy import ndimage

    from medseg.interactive.data import nuclei_split

    if dataset == "nuclei":
        picture, instances, train, held = nuclei_split(0)
        for i in (train if case == "train" else held)[::step]:
            yield picture, instances == i
        return
    from medseg.data.loaders import load_labelled
    from medseg.predict.segment import windowed

    c = load_labelled(dataset, [case])[0]
    volume = np.asarray(windowed(c.image, "auto")[0][:])
    sx, sy, sz = c.image.geometry.spacing
    for lab in [v for v in np.unique(c.labels) if v][::step]:
        gt = c.labels == lab
        if gt.sum() < 30:
            continue
        zs = np.nonzero(gt.any((1, 2)))[0]
        areas = gt.reshape(len(gt), -1).sum(1)
        for z in sorted({int(np.argmax(areas)), int(zs[len(zs) // 4]), int(zs[3 * len(zs) // 4])}):
            yield volume[z], gt[z]
        depth = ndimage.distance_transform_edt(np.pad(gt, 1))[1:-1, 1:-1, 1:-1]
        _, y, x = np.unravel_index(int(np.argmax(depth)), gt.shape)
        for plane in (Plane("y", int(y), sz / sx), Plane("x", int(x), sz / sy)):
            yield plane.image(volume), plane.image(gt.astype(np.float32)) > 0.5


def proposals(predictor, image: np.ndarray, truth: np.ndarray) -> dict | None:
    """Features, Dice and whether each proposal's mask holds the click, for one object on one slice."""
    if truth.sum() < 12:
        return None
    row, col = deepest_pixel(truth)
    predictor.set_image(np.clip(image, 0, 255).astype(np.uint8))
    masks, ious, boxes = [], [], []
    for half in half_widths(truth.shape):
        box = proposal_box(col, row, half, truth.shape)
        pred = predictor.predict(box=box)
        masks.append(pred.masks[0])
        ious.append(float(pred.iou[0]))
        boxes.append(box)
    rows = feature_rows(masks, ious, boxes, [enclosed(m, b) for m, b in zip(masks, boxes, strict=True)],
                        SliceStats(image))
    return {"x": rows, "dice": np.array([dice(m, truth) for m in masks]),
            "holds": np.array([bool(m[row, col]) for m in masks])}


def collect(predictor, sources, step: int) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for dataset, case in sources:
        name = f"{dataset}/{case}"
        items = out[name] = []
        for image, truth in tqdm(list(slices(dataset, case, step)), desc=name, unit="slice"):
            item = proposals(predictor, image, truth)
            if item is not None and item["holds"].any():
                items.append(item)
    return out


def fit(data: dict[str, list[dict]], steps: int = 400, l2: float = 1e-3, seed: int = 0) -> dict[str, float]:
    """Weights on the raw features maximising the source-balanced expected Dice of a softmax choice."""
    import torch

    torch.manual_seed(seed)
    items = [(name, it) for name, its in data.items() for it in its]
    width = max(len(it["dice"]) for _, it in items)
    x = torch.zeros(len(items), width, len(FEATURES))
    d = torch.zeros(len(items), width)
    ok = torch.zeros(len(items), width, dtype=torch.bool)
    for i, (_, it) in enumerate(items):
        n = len(it["dice"])
        x[i, :n], d[i, :n], ok[i, :n] = torch.tensor(it["x"]), torch.tensor(it["dice"]), torch.tensor(it["holds"])
    counts = {name: len(its) for name, its in data.items()}
    w = torch.tensor([1.0 / counts[name] for name, _ in items])
    w = w / w.sum()
    flat = x[ok]
    mu, sd = flat.mean(0), flat.std(0) + 1e-6
    net = torch.nn.Linear(len(FEATURES), 1)
    opt = torch.optim.Adam(net.parameters(), lr=0.03)
    for _ in range(steps):
        s = (net((x - mu) / sd).squeeze(-1) * 5).masked_fill(~ok, -1e4)
        loss = -(w * (torch.softmax(s, 1) * d).sum(1)).sum() + l2 * (net.weight ** 2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    folded = (net.weight.detach()[0] / sd).numpy()
    return {name: round(float(v), 4) for name, v in zip(FEATURES, folded, strict=True)}


def chosen_dice(items: list[dict], weights: dict[str, float]) -> float:
    picks = []
    for it in items:
        s = np.where(it["holds"], scores(it["x"], weights), -np.inf)
        picks.append(it["dice"][int(np.argmax(s))])
    return float(np.mean(picks)) if picks else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--step", type=int, default=1, help="every N-th structure / nucleus (1: all)")
    ap.add_argument("--held-out", action="store_true", help="also score the choice on the held-out sets")
    args = ap.parse_args()
    from medseg.build import build_model
    from medseg.predict.click_choice import WEIGHTS
    from medseg.predict.predictor import Predictor

    start = time.perf_counter()
    predictor = Predictor(build_model("litemedsam"))
    train = collect(predictor, TRAIN, args.step)
    weights = fit(train)
    held = collect(predictor, HELD_OUT, args.step) if args.held_out else {}
    lines = ["| source | slices | fitted here | shipped (click_choice.WEIGHTS) | best proposal (oracle) |",
             "|---|---|---|---|---|"]
    for name, items in {**train, **held}.items():
        oracle = np.mean([it["dice"][it["holds"]].max() for it in items]) if items else float("nan")
        tag = "" if name in held else " (training)"
        lines.append(f"| {name}{tag} | {len(items)} | {chosen_dice(items, weights):.3f} | "
                     f"{chosen_dice(items, WEIGHTS):.3f} | {oracle:.3f} |")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "weights.json").write_text(json.dumps(weights, indent=1) + "\n")
    report = (f"# Lone-click choice: mean Dice of the chosen proposal\n\n`scripts/fit_click_choice.py --step "
              f"{args.step}`, {time.perf_counter() - start:.0f} s.\n\n" + "\n".join(lines) + "\n")
    (args.out / "report.md").write_text(report)
    print(report)
    print(json.dumps(weights))


if __name__ == "__main__":
    main()
