"""The figure of benchmarks/results/interactive/one_way.md: held-out 2D Dice per prompt (SAM-Med2D protocol), each
set and their mean, before and after 2D corrections went one way, from the two runs' results.json.

    python scripts/fig_one_way.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

RUN = Path("benchmarks/results/interactive/one_way")
MODEL = "litemedsam-interactive+boxes"  # what ships
PROMPTS = ("1 point", "3 points", "5 points", "box", "box + 2 points")


def means(path: Path) -> dict[str, list[float]]:
    """Per set, then "mean of the five sets": the mean Dice of each prompt."""
    sets = json.loads(path.read_text())[MODEL]["2d"]
    out = {name: [float(np.mean(r[p])) for p in PROMPTS] for name, r in sets.items()}
    out["mean of the five sets"] = list(np.mean(list(out.values()), axis=0))
    return out


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    before, after = means(RUN / "results_before.json"), means(RUN / "results.json")
    fig, axes = plt.subplots(1, len(before), figsize=(3.2 * len(before), 3.4), sharey=True)
    x = np.arange(len(PROMPTS))
    for ax, name in zip(axes, before, strict=True):
        ax.plot(x, before[name], "o--", color="grey", label="new mask replaces (before)")
        ax.plot(x, after[name], "o-", color="tab:blue", label="one way (after)")
        ax.set_xticks(x, PROMPTS, rotation=40, ha="right", fontsize=8)
        ax.set_title(name, fontsize=8)
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("held-out 2D Dice")
    axes[0].legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(RUN / "dice_per_prompt.png", dpi=90)
    print(RUN / "dice_per_prompt.png")


if __name__ == "__main__":
    main()
