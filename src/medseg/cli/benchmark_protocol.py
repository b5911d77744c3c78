"""`medseg benchmark-protocol`: run a published prompting protocol on a dataset and write a report."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from medseg.cli.evaluate import NSD_TOLERANCE, parse_labels
from medseg.errors import MedsegError
from medseg.validate import whole

NAME = "benchmark-protocol"
HELP = "Drive a model with prompts simulated from ground truth (box2d, box3d, interactive, sammed3d)."
PROTOCOLS = ("box2d", "box3d", "interactive", "sammed3d")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--protocol", required=True, choices=PROTOCOLS)
    p.add_argument("--data", required=True, help="nnU-Net raw dataset folder (dataset.json) or CVPR24 npz folder")
    p.add_argument("--model", default=None, help="model name (see `medseg info`)")
    p.add_argument("--checkpoint", default=None, help="checkpoint file (overrides the packaged one)")
    p.add_argument("--out", default="out/benchmark",
                   help="run folder: results.jsonl, predictions, report. An existing run with the same settings "
                        "is continued (finished cases kept, results.jsonl appended, the report rewritten); one "
                        "with other settings is refused")
    p.add_argument("--seed", type=whole("--seed", 0, 2**32 - 1), default=0)
    p.add_argument("--limit", type=whole("--limit", 1), default=None, metavar="N", help="only the first N cases")
    p.add_argument("--labels", help="comma-separated structures to prompt (default: all)")
    p.add_argument("--jitter", type=whole("--jitter", 0), default=0, metavar="PX",
                   help="box2d: max box jitter in pixels")
    p.add_argument("--slices", type=whole("--slices", 0), default=0, metavar="N",
                   help="box2d on volumes: prompt N slices per case, scored in 2D (default: all, scored in 3D)")
    p.add_argument("--clicks", type=whole("--clicks", 0, 1000), default=5,
                   help="interactive / sammed3d: number of clicks")
    p.add_argument("--no-box", action="store_true", help="interactive: clicks only, no initial 3D box")
    p.add_argument("--planes", type=int, default=1, choices=(1, 3),
                   help="box3d / interactive / sammed3d: 3 = each object also along y and x on near-isotropic "
                        "volumes, the voxels two axes hold kept, corrections along all three (docs/3d.md)")
    p.add_argument("--no-refine", action="store_true",
                   help="box3d / interactive / sammed3d: the objects keep the model's border, not drawn again by the "
                        "scan's edges (medseg.predict.refine; docs/3d.md)")
    p.add_argument("--nsd-tolerance", type=NSD_TOLERANCE, default=2.0, metavar="MM")
    p.add_argument("--montage", type=whole("--montage", 0, 1000), default=8, metavar="N", help="tiles in montage.png")


def run(args: argparse.Namespace) -> int:
    from medseg.evaluate.datasets import open_dataset
    from medseg.evaluate.protocols import ProtocolConfig
    from medseg.evaluate.runner import all_rows, run_protocol

    _check_out(Path(args.out), Path(args.data))
    dataset = open_dataset(args.data)
    cfg = ProtocolConfig(args.protocol, args.seed, args.jitter, args.clicks, not args.no_box,
                         args.nsd_tolerance, slices=args.slices, planes=args.planes,
                         refine=not args.no_refine)
    out = Path(args.out)
    records = run_protocol(dataset, lambda: _predictor(args), cfg, out, parse_labels(args.labels), args.limit,
                           model=args.model or "default")
    rows = all_rows(records)
    if not rows:
        raise MedsegError(f"no structure of {args.data} was scored; check --labels")
    from medseg.evaluate.report import write_report

    command = _command(args)
    title = f"{args.protocol} on {dataset.root.name} ({args.model or 'default model'})"
    summary = write_report(out, rows, title, command, montage_tiles(dataset, records, out, args.montage))
    print(summary.read_text().split("| structure", 1)[0].strip().splitlines()[0])
    print("\n".join(line for line in summary.read_text().splitlines() if line.startswith("|")))
    print(f"report: {summary}")
    return 0


def _command(args: argparse.Namespace) -> str:
    """The command line that reproduces this run (every option that differs from its default)."""
    from medseg.evaluate.runner import portable_path

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    defaults = vars(parser.parse_args(["--protocol", args.protocol, "--data", args.data]))
    parts = [f"medseg {NAME}", "--protocol", args.protocol, "--data", portable_path(args.data, shell=True)]
    for key, value in vars(args).items():
        if key.startswith("_") or key in ("protocol", "data", "command") or value == defaults.get(key, value):
            continue
        flag = "--" + key.replace("_", "-")
        parts += [flag] if value is True else [flag, shlex.quote(str(value))]
    return " ".join(parts)


def _predictor(args: argparse.Namespace):
    from medseg.predict.predictor import load_predictor

    return load_predictor(args.model, args.checkpoint, without_torch=False)  # a card's box decoder included


def montage_tiles(dataset, records: list[dict], out: Path, count: int) -> list[dict]:
    """Up to ``count`` tiles, one per (case, structure), cycling over structures first."""
    import numpy as np

    from medseg.evaluate.compare import read_labels
    from medseg.evaluate.datasets import load_case
    from medseg.evaluate.report import tile_for
    from medseg.predict.segment import windowed

    picks, seen = [], set()
    for record in records:
        for row in record["rows"]:
            if row["label"] not in seen and len(picks) < count:
                seen.add(row["label"])
                picks.append((record["case"], row))
    cases = {c.name: c for c in dataset.cases}
    tiles = []
    for name, row in picks:
        image, gt, _ = load_case(dataset, cases[name])
        data, _ = windowed(image, "auto")
        pred = read_labels(out / "predictions" / f"{name}.nii.gz").labels
        label = row["label"]
        truth, guess = gt == label, pred == label
        if "slice" in row:
            z = row["slice"]
            data, truth, guess = data[z], truth[z], guess[z]
        if data.ndim == 3 and not image.is_volume:
            data = data.mean(axis=-1)
        tiles.append(tile_for(np.asarray(data), truth, guess, f"{name} {row.get('name', label)} "
                              f"Dice {row['dice']:.2f}"))
    return tiles


def _check_out(out: Path, data: Path) -> None:
    """The run folder is not a file, nor the dataset folder or inside it (predictions never go into the data)."""
    if out.exists() and not out.is_dir():
        raise MedsegError(f"--out {out} is a file; give a run folder")
    if data.is_dir() and out.resolve().is_relative_to(data.resolve()):
        raise MedsegError(f"--out {out} is the --data folder {data} or inside it; choose another run folder")
