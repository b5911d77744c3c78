"""Train the interactive model: ``python -m medseg.interactive.train --out DIR`` (see docs/interactive.md).

Builds the training slices (``medseg.interactive.data``), encodes them once with LiteMedSAM's frozen
encoder (fp16 cache ``DIR/embeddings.pt``, reused when slices and weights match), then trains the prompt
encoder and mask decoder with SAM-Med2D's interactive recipe (``medseg.interactive.recipe``). Writes
``DIR/decoder.pt`` (fp16 prompt encoder + mask decoder, the file the ``litemedsam-interactive`` card
ships), ``DIR/decoder_fp32.pt`` (the same in fp32, for the parity check), ``DIR/log.csv``, ``DIR/curves.png``
and ``DIR/summary.json`` (settings, data, time, validation
click Dice). Validation objects (every VAL_EVERY-th object of each source) are never trained on.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from medseg.files import append_line, write_text
from medseg.interactive.data import HELD_OUT, Source, objects, training_sources
from medseg.interactive.recipe import click_dice, train_step
from medseg.train.checkpoint import atomic_save
from medseg.train.trainer import schedule

VAL_EVERY = 12
VAL_MAX = 48  # validation objects per source at most
COLUMNS = ["step", "kind", "loss", "dice0", "dice1", "dice2", "dice3", "dice4", "dice5", "lr", "seconds"]
DECODER_PREFIXES = ("prompt_encoder.", "mask_decoder.")


def decoder_state(model, half: bool = True) -> dict[str, torch.Tensor]:
    """The prompt encoder + mask decoder weights (fp16 with ``half``), as the shipped file holds them."""
    return {k: (v.half() if half and v.is_floating_point() else v).clone()
            for k, v in model.state_dict().items() if k.startswith(DECODER_PREFIXES)}


def embed_all(model, sources: list[Source], out: Path, engine: str, progress: bool) -> torch.Tensor:
    """(N, 256, 64, 64) fp16 embeddings of every slice, from ``out/embeddings.pt`` when its key matches."""
    from medseg.engine import get_engine

    slices = [s for src in sources for s in src.slices]
    digest = hashlib.sha256(str(model.checkpoint_sha256).encode())
    for s in slices:
        digest.update(s.key.encode())
        digest.update(s.image.numpy().tobytes())
    key, path = digest.hexdigest(), out / "embeddings.pt"
    if path.is_file():
        cached = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(cached, dict) and cached.get("key") == key:
            return cached["embeddings"]
    runner = get_engine(model, engine)
    embs = [runner.encode(s.image[None]).half() for s in tqdm(slices, desc="embeddings", disable=not progress)]
    embeddings = torch.cat(embs)
    atomic_save({"key": key, "embeddings": embeddings}, path)
    return embeddings


def split_objects(sources: list[Source]) -> tuple[list[list[tuple[int, int]]], list[tuple[int, int]]]:
    """Per source, its training objects as (global slice index, label); and the validation objects."""
    train, val, offset = [], [], 0
    for src in sources:
        objs = [(i + offset, v) for i, v in objects(src.slices)]
        held = set(objs[::VAL_EVERY][:VAL_MAX])
        train.append([o for o in objs if o not in held])
        val += sorted(held)
        offset += len(src.slices)
    return train, val


def batch(items, slices, embeddings) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    emb = embeddings[[i for i, _ in items]].float()
    gt = torch.stack([slices[i].labels == v for i, v in items])
    valid = torch.stack([slices[i].valid for i, _ in items])
    return emb, gt, valid


def validate(model, slices, embeddings, val, clicks: int = 5, chunk: int = 16) -> np.ndarray:
    """(objects, clicks) click Dice of the validation objects."""
    out = [click_dice(model, *batch(val[k:k + chunk], slices, embeddings), clicks) for k in range(0, len(val), chunk)]
    return np.concatenate(out) if out else np.zeros((0, clicks))


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description="train the interactive (click) decoder of litemedsam-interactive")
    ap.add_argument("--out", required=True, help="output folder (embeddings.pt, decoder.pt, log.csv, curves.png)")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--batch-size", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=4, help="prompting rounds per step (first prompt + corrections)")
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-seed", type=int, default=None, help="seed of the slices and augmentation (default --seed)")
    ap.add_argument("--minutes", type=float, default=None, help="stop (and save) after this much training time")
    ap.add_argument("--no-val", action="store_true", help="skip the validation before and after training")
    ap.add_argument("--scale", type=float, default=1.0, help="x the slices per plane of every source")
    ap.add_argument("--only", default=None, help="comma list of dataset/case sources (default: all)")
    ap.add_argument("--deployed", type=float, default=0.0,
                    help="share of the steps whose first prompt LiteMedSAM's decoder answers, as medseg deploys "
                         "the model (recipe.deployed_first); 0: every round trained")
    ap.add_argument("--init", default=None,
                    help="start from this decoder file (prompt encoder + mask decoder, e.g. the shipped one) instead "
                         "of LiteMedSAM's")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--engine", default="auto", help="engine encoding the slices (default auto)")
    ap.add_argument("--save-every", type=int, default=50)
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    from medseg.build import build_model

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    only = tuple(args.only.split(",")) if args.only else None
    data_seed = args.seed if args.data_seed is None else args.data_seed
    sources = training_sources(data_seed, args.scale, only=only)
    model = build_model("litemedsam")
    if args.init:
        from medseg.build import load_decoder

        load_decoder(model, Path(args.init))
    embeddings = embed_all(model, sources, out, args.engine, not args.quiet)
    embed_seconds = time.perf_counter() - started
    slices = [s for src in sources for s in src.slices]
    train_objs, val = split_objects(sources)
    weights = np.array([src.weight if objs else 0.0 for src, objs in zip(sources, train_objs, strict=True)])
    weights = weights / weights.sum()

    for name, p in model.named_parameters():
        p.requires_grad = name.startswith(DECODER_PREFIXES)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=args.lr, weight_decay=0.01)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule(args.steps * args.rounds))
    rng = np.random.default_rng(args.seed)
    frozen = None
    if args.deployed > 0:
        frozen = build_model("litemedsam").eval()
        frozen.requires_grad_(False)
    before = None if args.no_val else validate(model, slices, embeddings, val)

    text = io.StringIO(newline="")
    csv.writer(text).writerow(COLUMNS)
    write_text(out / "log.csv", text.getvalue())
    train_start = time.perf_counter()
    for step in tqdm(range(1, args.steps + 1), desc="train", disable=args.quiet):
        t0 = time.perf_counter()
        picks = rng.choice(len(sources), size=args.batch_size, p=weights)
        items = [train_objs[s][int(rng.integers(len(train_objs[s])))] for s in picks]
        row = train_step(model, optimizer, scheduler, *batch(items, slices, embeddings), args.rounds, rng,
                         frozen, args.deployed)
        row.update(step=step, lr=scheduler.get_last_lr()[0], seconds=time.perf_counter() - t0)
        line = io.StringIO(newline="")
        csv.DictWriter(line, COLUMNS, extrasaction="ignore").writerow(
            {k: (f"{v:.5g}" if isinstance(v, float) else v) for k, v in row.items()})
        append_line(out / "log.csv", line.getvalue().rstrip("\r\n"))
        out_of_time = args.minutes is not None and time.perf_counter() - train_start > 60 * args.minutes
        if step % args.save_every == 0 or step == args.steps or out_of_time:
            atomic_save(decoder_state(model), out / "decoder.pt")
        if out_of_time:
            break
    atomic_save(decoder_state(model, half=False), out / "decoder_fp32.pt")  # for the fp16 parity check
    train_seconds = time.perf_counter() - train_start
    after = None if args.no_val else validate(model, slices, embeddings, val)
    summary = {
        "command": "python -m medseg.interactive.train " + " ".join(sys.argv[1:] if argv is None else argv),
        "settings": vars(args), "sources": {src.name: len(src.slices) for src in sources},
        "train_objects": {src.name: len(o) for src, o in zip(sources, train_objs, strict=True)},
        "val_objects": len(val), "held_out_for_evaluation": list(HELD_OUT),
        "embed_seconds": round(embed_seconds, 1), "train_seconds": round(train_seconds, 1),
        "steps_done": step, "seconds_per_step": round(train_seconds / max(step, 1), 3), "threads": args.threads,
        "val_click_dice_before": None if before is None else [round(float(v), 4) for v in before.mean(0)],
        "val_click_dice_after": None if after is None else [round(float(v), 4) for v in after.mean(0)],
    }
    write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    plot(out / "log.csv", out / "curves.png", summary)
    return summary


def plot(log: Path, png: Path, summary: dict) -> None:
    """Training Dice per round (running mean) and the validation click Dice before/after."""
    import matplotlib

    from medseg.files import write_file
    from medseg.io.verify import verify_for

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(log, newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r.get("step")]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    steps = [int(r["step"]) for r in rows]
    k = max(1, len(rows) // 20)
    for col in ("dice0", "dice1", "dice2", "dice3", "loss"):
        vals = [float(r[col]) if r.get(col) else math.nan for r in rows]
        if all(math.isnan(v) for v in vals):
            continue
        smooth = [float(np.nanmean(vals[max(0, i - k + 1):i + 1])) for i in range(len(vals))]
        (ax1 if col != "loss" else ax1.twinx()).plot(steps, smooth, label=col, lw=1,
                                                     color=None if col != "loss" else "grey")
    ax1.set(xlabel="step", ylabel=f"training Dice per round (running mean of {k})", ylim=(0, 1))
    ax1.legend(loc="lower right")
    if summary.get("val_click_dice_after"):
        clicks = range(1, len(summary["val_click_dice_after"]) + 1)
        ax2.plot(clicks, summary["val_click_dice_before"], marker="o", label="LiteMedSAM")
        ax2.plot(clicks, summary["val_click_dice_after"], marker="o", label="trained")
        ax2.set(xlabel="clicks (first at the deepest pixel, then CVPR25 corrections)", ylabel="validation Dice")
    else:  # a run stopped before its final validation: training Dice of the last round by first prompt
        for kind in sorted({r["kind"] for r in rows}):
            part = [(int(r["step"]), float(r["dice3"] or r["dice1"] or r["dice0"])) for r in rows if r["kind"] == kind]
            if part:
                ax2.plot(*zip(*part, strict=True), marker=".", lw=0.8, label=f"first prompt {kind}: last round")
        ax2.set(xlabel="step", ylabel="training Dice after the corrections")
    ax2.set(ylim=(0, 1))
    ax2.legend()
    fig.tight_layout()
    try:
        write_file(png, lambda temp: fig.savefig(temp, dpi=100, format="png"), verify_for(png))
    finally:
        plt.close(fig)


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
