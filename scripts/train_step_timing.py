"""Seconds per training step with 1 and 2 processes (decoder mode, nuclei data of finetune_demo.py).

Needs the dataset that ``scripts/finetune_demo.py`` writes (``OUT/data``) and reuses its embedding cache.
Prints a Markdown table (median over the steps after the first of each run).

    .venv/bin/python scripts/train_step_timing.py --demo out/finetune_demo --steps 12
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path


def run(demo: Path, nproc: int, threads: int, steps: int, batch: int) -> tuple[float, float]:
    out = demo / f"timing_{nproc}p_{threads}t"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    shutil.copy(demo / "run" / "embeddings.pt", out / "embeddings.pt")
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    cmd = [sys.executable, "-m", "medseg.cli.main", "train", "--data", str(demo / "data"), "--mode", "decoder",
           "--out", str(out), "--prompts", "point,box", "--rounds", "1", "--max-steps", str(steps),
           "--batch-size", str(batch), "--val-fraction", "0", "--nproc", str(nproc), "--quiet"]
    subprocess.run(cmd, check=True, env=env)
    with open(out / "log.csv", newline="") as handle:
        seconds = [float(r["seconds"]) for r in csv.DictReader(handle) if r["loss"]][1:]
    per_step = statistics.median(seconds)
    return per_step, nproc * batch / per_step


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--demo", default="out/finetune_demo")
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--batch-size", type=int, default=4)
    args = ap.parse_args()
    rows = ["| processes | threads each | objects per step | s per step (median) | objects per s |",
            "|---|---|---|---|---|"]
    for nproc, threads in ((1, 1), (1, 2), (2, 1)):
        per_step, rate = run(Path(args.demo), nproc, threads, args.steps, args.batch_size)
        rows.append(f"| {nproc} | {threads} | {nproc * args.batch_size} | {per_step:.2f} | {rate:.2f} |")
        print(rows[-1], flush=True)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
