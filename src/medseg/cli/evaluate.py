"""`medseg evaluate`: Dice, NSD and HD95 of predictions against ground truth, label by label.

``--json`` and ``--csv`` are checked before any work (``medseg.cli.outputs``: never --pred or --gt
or a file in their folders, an existing file only with ``--overwrite``) and appear together or not
at all (``medseg.files.Transaction``).
"""

from __future__ import annotations

import argparse

from medseg.errors import MedsegError
from medseg.validate import option, parse_number

NAME = "evaluate"
HELP = "Score prediction masks against ground truth (two files, or two folders matched by case name)."

NSD_TOLERANCE = option("--nsd-tolerance", minimum=0, maximum=1000, example=2)  # mm


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pred", required=True, help="prediction mask file or folder")
    p.add_argument("--gt", required=True, help="ground-truth mask file or folder")
    p.add_argument("--labels", help="comma-separated label values (default: every nonzero label present)")
    p.add_argument("--nsd-tolerance", type=NSD_TOLERANCE, default=2.0, metavar="MM",
                   help="NSD tolerance in mm (default 2)")
    p.add_argument("--reference", help="DICOM series folder a SEG / RTSTRUCT refers to (default: found beside it)")
    p.add_argument("--gt-segments", help="comma-separated segment / ROI numbers or names of a DICOM SEG / RTSTRUCT "
                   "ground truth, labelled 1..n in this order (default: all)")
    p.add_argument("--json", help="write {cases, mean} as JSON here")
    p.add_argument("--csv", help="write one row per case and label as CSV here")
    p.add_argument("--overwrite", action="store_true",
                   help="replace existing --json / --csv files (refused without it)")


def parse_labels(text: str | None) -> list[int] | None:
    """``--labels 1,2,3`` as label values (whole numbers 1..2147483647), or None when not given."""
    if text is None:
        return None
    try:
        labels = [parse_number(v, "--labels", integer=True, minimum=1) for v in text.split(",") if v.strip()]
    except MedsegError:
        raise MedsegError(f"--labels {text!r}: must be comma-separated label values, whole numbers >= 1, "
                          "e.g. 1,2,3") from None
    if not labels:
        raise MedsegError(f"--labels {text!r}: must list label values, e.g. 1,2,3")
    return labels


def run(args: argparse.Namespace) -> int:
    from medseg.cli.outputs import check_outputs
    from medseg.evaluate.compare import evaluate_paths, write_csv, write_json
    from medseg.files import Transaction

    check_outputs({"--json": args.json, "--csv": args.csv}, [args.pred, args.gt], args.overwrite)
    segments = [v.strip() for v in args.gt_segments.split(",") if v.strip()] if args.gt_segments else None
    result = evaluate_paths(args.pred, args.gt, parse_labels(args.labels), args.nsd_tolerance, progress=True,
                            reference=args.reference, gt_segments=segments)
    for row in result["cases"]:
        print(f"{row['case']}  label {row['label']}: Dice {row['dice']:.4f}  NSD {row['nsd']:.4f}  "
              f"HD95 {row['hd95']:.2f} mm")
    mean = result["mean"]
    if mean["dice"] is None:
        raise MedsegError("no label to score: both masks are empty; name the labels with --labels")
    hd = "n/a" if mean["hd95"] is None else f"{mean['hd95']:.2f} mm"
    print(f"mean over {len(result['cases'])}: Dice {mean['dice']:.4f}  NSD@{args.nsd_tolerance:g}mm "
          f"{mean['nsd']:.4f}  HD95 {hd}" + (f" ({mean['hd95_infinite']} infinite)" if mean["hd95_infinite"] else ""))
    with Transaction() as tx:  # both files or neither
        written = [f"json: {write_json(result, args.json, tx)}"] if args.json else []
        written += [f"csv: {write_csv(result['cases'], args.csv, tx)}"] if args.csv else []
    for line in written:
        print(line)
    return 0
