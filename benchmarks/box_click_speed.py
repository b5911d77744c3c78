"""Milliseconds per correction click after a tight 3D box, on encoded slices.

The median over ten CVPR25 clicks run three times (after a first run that encodes the slices), on the RIDER lung
tumour, pycerr pat_4 (CC BY-NC 3.0: measurement only) and the spine MR C7; ``litemedsam``. Writes a JSON of the
medians and the last run's Dice.

    PYTHONPATH=src .venv/bin/python benchmarks/box_click_speed.py OUT.json [ENCODES_DIR]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from interactive_eval import load  # noqa: E402

from medseg.data.loaders import load_labelled  # noqa: E402
from medseg.evaluate.protocols import ProtocolConfig, run_case  # noqa: E402

CASES = (("rider_lung", "seg_manual", 1), ("radiomics_phantom", "pat_4", 1), ("spine", "mr_vert", 7))


def main() -> None:
    folder = Path(sys.argv[2]) if len(sys.argv) > 2 else None
    p = load("litemedsam", None, {}, "auto", folder)
    out = {}
    for dataset, case, lab in CASES:
        c = load_labelled(dataset, [case])[0]
        cfg = ProtocolConfig(protocol="interactive", clicks=10, with_box=True, click_atlas=False)
        run_case("interactive", p, c.image, c.labels, [lab], cfg, np.random.default_rng(0))  # encodes the slices
        runs = []
        for _ in range(3):
            row = run_case("interactive", p, c.image, c.labels, [lab], cfg, np.random.default_rng(0)).rows[0]
            runs.append([s["seconds"] for s in row["steps"][1:]])
        median = float(np.median(np.array(runs)))
        out[f"{dataset}/{case}/{lab}"] = {"median_ms": round(1000 * median, 1),
                                          "dice": [round(s["dice"], 3) for s in row["steps"]]}
        print(f"{dataset}/{case} {lab}: median {1000 * median:.1f} ms per click", flush=True)
    Path(sys.argv[1]).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
