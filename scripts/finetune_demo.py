"""Fine-tune LiteMedSAM's mask decoder with point prompts on half of the 125 real nuclei; test on the rest.

LiteMedSAM was trained with boxes only, so one click is a weak prompt for it. This script:

1. reads the stardist nuclei (512x512 fluorescence, 125 instances; ``medseg fetch-data``), windows it as
   ``medseg segment`` does, and splits the instances (seeded) into a training half and a held-out half;
2. writes the picture and the training instances as an images/ + masks/ dataset;
3. measures held-out Dice with one central click and with the tight box, before training;
4. runs ``medseg train --mode decoder --prompts point,box`` on the training half (the image embedding is
   computed once; 20 % of the training instances validate and pick model.pt);
5. measures the same held-out Dice with the fine-tuned OUT/run/model.pt and writes the result table.

Usage (the committed table came from exactly this):
    .venv/bin/python scripts/finetune_demo.py --out out/finetune_demo \
        --table benchmarks/results/finetune_points.md
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image as PILImage
from scipy.ndimage import distance_transform_edt


def central_click(mask: np.ndarray) -> np.ndarray:
    """(x, y) of the pixel deepest inside the mask."""
    depth = distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return np.array([[x, y]], np.float32)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else float(2 * (a & b).sum() / total)


def held_out_dice(model_name: str | None, picture: np.ndarray, instances: np.ndarray, ids: list[int]) -> dict:
    """Per-instance Dice on the original 512x512 grid with one central click and with the tight box."""
    from medseg.build import build_model
    from medseg.predict.predictor import Predictor

    predictor = Predictor(build_model(model_name), engine="eager")
    predictor.set_image(picture)
    out = {"point": [], "box": []}
    for i in ids:
        gt = instances == i
        ys, xs = np.nonzero(gt)
        box = [xs.min(), ys.min(), xs.max(), ys.max()]
        out["point"].append(dice(predictor.predict(points=central_click(gt)).masks[0], gt))
        out["box"].append(dice(predictor.predict(box=box).masks[0], gt))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="out/finetune_demo")
    ap.add_argument("--table", default=None, help="write the Markdown result table here")
    ap.add_argument("--steps", type=int, default=160)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on 2 shared cores)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    import tifffile

    from medseg.cli.main import main as medseg_main
    from medseg.data import sample
    from medseg.io import read_image
    from medseg.predict.segment import windowed

    image = read_image(sample.path("nuclei", "img2d.tif"))
    picture, _ = windowed(image, "auto")
    picture = np.round(picture).astype(np.uint8)
    instances = tifffile.imread(sample.path("nuclei", "mask2d.tif")).astype(np.int64)
    ids = [int(i) for i in np.unique(instances) if i]
    order = np.random.default_rng(args.seed).permutation(ids)
    train_ids, test_ids = sorted(order[: len(ids) // 2].tolist()), sorted(order[len(ids) // 2:].tolist())

    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    (out / "data" / "images").mkdir(parents=True)
    (out / "data" / "masks").mkdir()
    train_labels = np.where(np.isin(instances, train_ids), instances, 0).astype(np.uint8)
    PILImage.fromarray(picture).save(out / "data" / "images" / "nuclei.png")
    PILImage.fromarray(train_labels).save(out / "data" / "masks" / "nuclei.png")

    before = held_out_dice(None, picture, instances, test_ids)
    argv = ["train", "--data", str(out / "data"), "--mode", "decoder", "--out", str(out / "run"),
            "--prompts", "point,box", "--rounds", "1", "--max-steps", str(args.steps), "--batch-size",
            str(args.batch_size), "--lr", str(args.lr), "--val-fraction", "0.2", "--val-every", "40",
            "--seed", str(args.seed), "--quiet"]
    t0 = time.perf_counter()
    status = medseg_main(argv)
    minutes = (time.perf_counter() - t0) / 60
    if status:
        raise SystemExit(status)
    after = held_out_dice(str(out / "run" / "model.pt"), picture, instances, test_ids)
    rows = [r for r in (out / "run" / "log.csv").read_text().splitlines()[1:] if r.split(",")[2]]
    step_seconds = float(np.median([float(r.split(",")[5]) for r in rows]))
    report = {"train_instances": len(train_ids), "held_out_instances": len(test_ids), "steps": args.steps,
              "batch_size": args.batch_size, "lr": args.lr, "threads": args.threads, "minutes_total": minutes,
              "median_seconds_per_step": step_seconds, "command": "medseg " + " ".join(argv),
              **{f"{when}_{k}": float(np.mean(v)) for when, d in (("before", before), ("after", after))
                 for k, v in d.items()}}
    (out / "report.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    if args.table:
        Path(args.table).write_text(table(report, before, after))


def table(r: dict, before: dict, after: dict) -> str:
    def cell(v: list[float]) -> str:
        return f"{np.mean(v):.3f} (median {np.median(v):.3f})"

    lines = [
        "# Fine-tuning LiteMedSAM for point prompts: held-out nuclei",
        "",
        f"Data: the stardist fluorescence nuclei (512x512, 125 instances). Instances split with seed 0: "
        f"{r['train_instances']} for training (of which 20 % validate and choose model.pt), "
        f"{r['held_out_instances']} held out and never seen in training. Same image, so the decoder must "
        "generalise to new objects, not a new scan.",
        "",
        f"Training: decoder mode (image embedding computed once, frozen encoder), prompts point,box "
        f"(one prompt kind per step, random foreground click or jittered box), {r['steps']} steps x "
        f"batch {r['batch_size']}, AdamW lr {r['lr']}, {r['threads']} torch thread(s) on 2 shared CPU cores.",
        f"Wall time of `medseg train` (model build, embedding, training, validation): {r['minutes_total']:.1f} min; "
        f"median {r['median_seconds_per_step']:.2f} s per step.",
        "",
        "Held-out Dice on the original 512x512 grid (mean over instances); one click = the pixel deepest "
        "inside the nucleus, box = tight box:",
        "",
        "| prompt | LiteMedSAM (before) | fine-tuned (after) |",
        "|---|---|---|",
        f"| single point | {cell(before['point'])} | {cell(after['point'])} |",
        f"| box | {cell(before['box'])} | {cell(after['box'])} |",
        "",
        "Reproduce: `.venv/bin/python scripts/finetune_demo.py --out out/finetune_demo "
        "--table benchmarks/results/finetune_points.md`, which runs",
        "",
        f"    {r['command']}",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
