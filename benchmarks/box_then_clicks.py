"""A tight 3D box, then CVPR25 correction clicks, on the held-out 3D structures: do corrections after a box help?

The workflow of a user who draws a box and then fixes its result: the tight 3D box of each structure
(``VolumeSession.add_box3d``), then up to ``--clicks`` correction clicks, each at the deepest voxel of the largest
error component (positive in a miss, negative in a false positive; ``medseg.evaluate.protocols.cvpr25_click``).
Dice and NSD (2 mm) after the box and after every click, per structure, on the held-out cases of
``benchmarks/interactive_eval.py`` (RIDER lung tumour, pycerr pat_4 (CC BY-NC 3.0: measurement only), the spine MR
C5-C7, six Harvard-Oxford structures on the FSL MNI152 template); ``litemedsam`` (the shipped click card runs as it in
3D). Box objects are the model's, so the atlas route plays no part. Writes OUT/results.json and OUT/README.md.
The same protocol on training and dev structures: ``benchmarks/training_clicks.py --box``.

    PYTHONPATH=src .venv/bin/python benchmarks/box_then_clicks.py --out benchmarks/results/interactive/box_then_clicks
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from interactive_eval import CASES3D, load  # noqa: E402

from medseg.cpu import describe_machine  # noqa: E402
from medseg.data.loaders import load_labelled  # noqa: E402
from medseg.evaluate.protocols import ProtocolConfig, run_case  # noqa: E402
from medseg.files import write_text  # noqa: E402

AT = (0, 1, 3, 5, 10)  # the box, then after 1 / 3 / 5 / 10 clicks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--clicks", type=int, default=10)
    ap.add_argument("--encodes", type=Path, default=None, help="folder keeping slice embeddings between runs")
    ap.add_argument("--report-only", action="store_true", help="write README.md from OUT/results.json")
    ap.add_argument("--no-refine", action="store_true", help="the box's object keeps the model's border")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    file = args.out / "results.json"
    res = json.loads(file.read_text()) if file.is_file() else {"machine": describe_machine(), "rows": {}}
    if not args.report_only:
        if args.encodes is not None:
            args.encodes.mkdir(parents=True, exist_ok=True)
        p = load("litemedsam", None, {}, "auto", args.encodes)
        cfg = ProtocolConfig(protocol="interactive", clicks=args.clicks, with_box=True, click_atlas=False,
                             refine=not args.no_refine)
        for dataset, case, labels in CASES3D:
            c = load_labelled(dataset, [case])[0]
            for lab in labels:
                key = f"{dataset}/{case}/{lab}"
                if key in res["rows"]:
                    continue  # a rerun resumes
                start = time.perf_counter()
                row = run_case("interactive", p, c.image, c.labels, [lab], cfg, np.random.default_rng(0)).rows[0]
                res["rows"][key] = {"name": c.names.get(lab, str(lab)), "dice": [s["dice"] for s in row["steps"]],
                                    "nsd": [s["nsd"] for s in row["steps"]],
                                    "seconds": [s["seconds"] for s in row["steps"]],
                                    "wall": time.perf_counter() - start}
                print(key, [round(d, 3) for d in res["rows"][key]["dice"]], flush=True)
                write_text(file, json.dumps(res, indent=1) + "\n")
    report(res, args.out)


def report(res: dict, out: Path) -> None:
    rows = res["rows"]
    at = [k for k in AT if all(k < len(r["dice"]) for r in rows.values())]
    names = ["box" if k == 0 else f"{k} click{'s' if k > 1 else ''}" for k in at]
    lines = ["# A tight 3D box, then correction clicks (held out)", "",
             f"Written by `benchmarks/box_then_clicks.py` (protocol in its docstring). Machine: {res['machine']}.", "",
             "Dice (NSD) after the tight 3D box and after k CVPR25 correction clicks; `litemedsam`.", "",
             "| structure | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for key, r in rows.items():
        lines.append(f"| {key} {r['name']} | " + " | ".join(f"{r['dice'][k]:.3f} ({r['nsd'][k]:.3f})" for k in at)
                     + " |")
    dice = np.array([[r["dice"][k] for k in at] for r in rows.values()])
    lines.append(f"| **mean of {len(rows)}** | " + " | ".join(f"**{v:.3f}**" for v in dice.mean(axis=0)) + " |")
    worse = [key for key, r in rows.items() if min(r["dice"][1:]) < r["dice"][0] - 0.01]
    lines += ["", f"Structures where some click left Dice more than 0.01 below the box's: {len(worse)} of {len(rows)}"
              + (f" ({', '.join(worse)})" if worse else "") + "."]
    write_text(out / "README.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
