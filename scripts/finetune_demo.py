"""Fine-tune LiteMedSAM's mask decoder with point prompts on part of a real dataset; test on the rest.

LiteMedSAM was trained with boxes only, so one click is a weak prompt for it. This script:

1. reads real sample data (``medseg fetch-data``), windowed as ``medseg segment`` does, and splits the
   objects: ``nuclei`` = the 125 stardist nuclei (512x512 fluorescence) split in halves by instance
   (seeded); ``colin27`` = the AAL structures on four axial slices of the Colin27 T1, trained on the left
   hemisphere (``*_L``) and tested on the right (``*_R``);
2. writes the training objects as an images/ + masks/ dataset;
3. measures held-out Dice with one central click and with the tight box, before training;
4. runs ``medseg train --mode decoder --prompts point,box`` on the training objects (the image embeddings
   are computed once; 20 % of the training objects validate and pick model.pt);
5. measures the same held-out Dice with the fine-tuned OUT/run/model.pt and writes its section of the table.

Usage (the committed table came from exactly these):
    .venv/bin/python scripts/finetune_demo.py --dataset nuclei --out out/finetune_demo \
        --table benchmarks/results/finetune_points.md
    .venv/bin/python scripts/finetune_demo.py --dataset colin27 --out out/finetune_colin27 \
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


def held_out_dice(model_name: str | None, cases: list[tuple[np.ndarray, np.ndarray, list[int]]]) -> dict:
    """Per-object Dice on the original grid with one central click and with the tight box.

    Args:
        model_name: None for the packaged LiteMedSAM, or a model.pt path.
        cases: (picture 0..255 (H, W), labels (H, W), held-out label values) per slice.
    """
    from medseg.build import build_model
    from medseg.predict.predictor import Predictor

    predictor = Predictor(build_model(model_name), engine="eager")
    out = {"point": [], "box": []}
    for picture, labels, ids in cases:
        predictor.set_image(picture)
        for i in ids:
            gt = labels == i
            ys, xs = np.nonzero(gt)
            box = [xs.min(), ys.min(), xs.max(), ys.max()]
            out["point"].append(dice(predictor.predict(points=central_click(gt)).masks[0], gt))
            out["box"].append(dice(predictor.predict(box=box).masks[0], gt))
    return out


def nuclei(seed: int) -> tuple[list, list, dict]:
    """One 512x512 picture; instances split in halves. Returns (train cases, test cases, description)."""
    import tifffile

    from medseg.data import sample
    from medseg.io import read_image
    from medseg.predict.segment import windowed

    picture, _ = windowed(read_image(sample.path("nuclei", "img2d.tif")), "auto")
    picture = np.round(picture).astype(np.uint8)
    instances = tifffile.imread(sample.path("nuclei", "mask2d.tif")).astype(np.int64)
    ids = [int(i) for i in np.unique(instances) if i]
    order = np.random.default_rng(seed).permutation(ids)
    train_ids, test_ids = sorted(order[: len(ids) // 2].tolist()), sorted(order[len(ids) // 2:].tolist())
    about = {"title": "stardist fluorescence nuclei (512x512, 125 instances)",
             "split": f"instances split with seed {seed}: {len(train_ids)} for training, {len(test_ids)} held out "
                      "(same image, so the decoder must generalise to new objects, not a new scan)"}
    return [("nuclei", picture, instances, train_ids)], [(picture, instances, test_ids)], about


def colin27(seed: int, slices: tuple[int, ...] = (60, 70, 78, 86), min_pixels: int = 30) -> tuple[list, list, dict]:
    """Colin27 T1 axial slices; AAL *_L structures for training, *_R held out."""
    from medseg.data import sample
    from medseg.io import read_image
    from medseg.predict.segment import windowed

    volume, _ = windowed(read_image(sample.path("colin27", "ch2.nii.gz")), "auto")
    atlas = read_image(sample.path("colin27", "aal.nii.gz")).array.astype(np.int64)
    names = {v: k for k, v in sample.aal_labels().items()}
    train, test, n_train, n_test = [], [], 0, 0
    for z in slices:
        picture = np.round(volume[z]).astype(np.uint8)
        values, counts = np.unique(atlas[z], return_counts=True)
        present = [int(v) for v, c in zip(values, counts, strict=True) if v and c >= min_pixels]
        left = [v for v in present if names.get(v, "").endswith("_L")]
        right = [v for v in present if names.get(v, "").endswith("_R")]
        train.append((f"z{z}", picture, atlas[z], left))
        test.append((picture, atlas[z], right))
        n_train, n_test = n_train + len(left), n_test + len(right)
    about = {"title": f"Colin27 T1 + AAL atlas, axial slices {', '.join(map(str, slices))}",
             "split": f"{n_train} left-hemisphere structure slices (*_L) for training, {n_test} right-hemisphere "
                      f"ones (*_R) held out (at least {min_pixels} pixels each)"}
    return train, test, about


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", choices=("nuclei", "colin27"), default="nuclei")
    ap.add_argument("--out", default="out/finetune_demo")
    ap.add_argument("--table", default=None, help="write (or replace) this dataset's section of a Markdown file")
    ap.add_argument("--steps", type=int, default=160)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on 2 shared cores)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from medseg.cli.main import main as medseg_main

    train_cases, test_cases, about = (nuclei if args.dataset == "nuclei" else colin27)(args.seed)
    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    (out / "data" / "images").mkdir(parents=True)
    (out / "data" / "masks").mkdir()
    for name, picture, labels, ids in train_cases:
        PILImage.fromarray(picture).save(out / "data" / "images" / f"{name}.png")
        keep = np.where(np.isin(labels, ids), labels, 0).astype(np.uint8)
        PILImage.fromarray(keep).save(out / "data" / "masks" / f"{name}.png")

    before = held_out_dice(None, test_cases)
    argv = ["train", "--data", str(out / "data"), "--mode", "decoder", "--out", str(out / "run"),
            "--prompts", "point,box", "--rounds", "1", "--max-steps", str(args.steps), "--batch-size",
            str(args.batch_size), "--lr", str(args.lr), "--val-fraction", "0.2", "--val-every", "40",
            "--seed", str(args.seed), "--quiet"]
    t0 = time.perf_counter()
    status = medseg_main(argv)
    minutes = (time.perf_counter() - t0) / 60
    if status:
        raise SystemExit(status)
    after = held_out_dice(str(out / "run" / "model.pt"), test_cases)
    rows = [r for r in (out / "run" / "log.csv").read_text().splitlines()[1:] if r.split(",")[2]]
    step_seconds = float(np.median([float(r.split(",")[5]) for r in rows]))
    report = {"dataset": args.dataset, **about, "train_objects": sum(len(c[3]) for c in train_cases),
              "held_out_objects": len(before["box"]), "steps": args.steps, "batch_size": args.batch_size,
              "lr": args.lr, "threads": args.threads, "minutes_total": minutes,
              "median_seconds_per_step": step_seconds, "command": "medseg " + " ".join(argv),
              "script": f"scripts/finetune_demo.py --dataset {args.dataset} --out {args.out}",
              **{f"{when}_{k}": float(np.mean(v)) for when, d in (("before", before), ("after", after))
                 for k, v in d.items()}}
    (out / "report.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    if args.table:
        write_section(Path(args.table), args.dataset, section(report, before, after))


HEADER = ("# Fine-tuning LiteMedSAM for point prompts on real data (held-out objects)\n\n"
          "LiteMedSAM was trained with boxes only. Each section fine-tunes its mask decoder (`medseg train "
          "--mode decoder --prompts point,box`) on some objects and measures Dice on objects never seen in "
          "training, on the original grid; one click = the pixel deepest inside the object, box = its tight box.\n")


def write_section(path: Path, key: str, text: str) -> None:
    """Replace the section marked ``<!-- key -->`` (or append it) in a Markdown file."""
    sections = {}
    if path.is_file():
        for part in path.read_text().split("<!-- ")[1:]:
            name, body = part.split(" -->", 1)
            sections[name] = body
    sections[key] = "\n" + text
    path.write_text(HEADER + "".join(f"\n<!-- {k} -->{v}" for k, v in sorted(sections.items())))


def section(r: dict, before: dict, after: dict) -> str:
    def cell(v: list[float]) -> str:
        return f"{np.mean(v):.3f} (median {np.median(v):.3f})"

    return "\n".join([
        f"## {r['title']}",
        "",
        f"Split: {r['split']}. 20 % of the training objects validate and choose model.pt.",
        "",
        f"Training: decoder mode (image embeddings computed once, frozen encoder), prompts point,box (one "
        f"kind per step: a random foreground click or a jittered box), {r['steps']} steps x batch "
        f"{r['batch_size']}, AdamW lr {r['lr']}, {r['threads']} torch thread(s) on 2 CPU cores shared with "
        f"other jobs. Wall time of `medseg train` (model build, embeddings, training, validation): "
        f"{r['minutes_total']:.1f} min; median {r['median_seconds_per_step']:.2f} s per step.",
        "",
        f"| prompt ({r['held_out_objects']} held-out objects) | LiteMedSAM (before) | fine-tuned (after) |",
        "|---|---|---|",
        f"| single point | {cell(before['point'])} | {cell(after['point'])} |",
        f"| box | {cell(before['box'])} | {cell(after['box'])} |",
        "",
        f"Reproduce: `.venv/bin/python {r['script']} --table benchmarks/results/finetune_points.md`, which runs",
        "",
        f"    {r['command']}",
        "",
    ])


if __name__ == "__main__":
    main()
