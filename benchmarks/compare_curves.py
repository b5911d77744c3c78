"""Mean 3D Dice per click before vs after, one panel per pair of `interactive_eval.py` results.json files.

    PYTHONPATH=src .venv/bin/python benchmarks/compare_curves.py OUT.png "TITLE=BEFORE.json,AFTER.json" ...
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np


def mean_curve(path: str) -> tuple[np.ndarray, float, int]:
    """(mean Dice after each click, mean tight-box Dice, structures) of a results.json's litemedsam 3D rows."""
    rows = [row for rs in json.loads(Path(path).read_text())["litemedsam"]["3d"].values() for row in rs]
    return np.array([r["dice"] for r in rows]).mean(0), float(np.mean([r["box3d_dice"] for r in rows])), len(rows)


def main(out: str, panels: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        title, _, files = panel.partition("=")
        before, after = files.split(",")
        for path, name in ((before, "before"), (after, "after")):
            curve, box, n = mean_curve(path)
            ax.plot(np.arange(1, len(curve) + 1), curve, marker="o", label=f"{name} (10 clicks {curve[-1]:.3f})")
        ax.axhline(box, ls="--", lw=0.8, color="grey", label=f"tight 3D box {box:.3f}")
        ax.set(title=f"{title} ({n})", xlabel="clicks", ylabel="mean 3D Dice", ylim=(0, 1))
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(out, dpi=90)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
