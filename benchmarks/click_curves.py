"""Dice per click, before vs after, for every 3D structure of two ``interactive_eval.py`` runs: one picture and a table.

Reads ``BEFORE`` and ``AFTER`` (``results.json`` files of ``benchmarks/interactive_eval.py``; the first model's 3D
rows of each), draws one panel per structure (Dice after each click; the tight 3D box dashed) into ``--png`` and
prints a markdown table of Dice after 1 / 5 / 10 clicks, the box and whether five clicks reach it.

    PYTHONPATH=src .venv/bin/python benchmarks/click_curves.py BEFORE.json AFTER.json --png OUT.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from medseg.files import write_file
from medseg.io.verify import verify_for


def rows(path: Path) -> dict[str, dict]:
    """'dataset/case label' -> the 3D row of the first model in a results.json."""
    results = json.loads(path.read_text())
    first = next(iter(results.values()))
    return {f"{data} {r['label']}": r for data, found in first.get("3d", {}).items() for r in found}


def table(before: dict[str, dict], after: dict[str, dict]) -> str:
    lines = ["| structure | Dice 1 / 5 / 10 clicks, before | after | tight 3D box | five clicks >= box |",
             "|---|---|---|---|---|"]
    pick = (0, 4, 9)
    for key, row in after.items():
        was = before.get(key)
        old = " / ".join(f"{was['dice'][k]:.3f}" for k in pick if k < len(was["dice"])) if was else "-"
        new = " / ".join(f"{row['dice'][k]:.3f}" for k in pick if k < len(row["dice"]))
        five = row["dice"][min(4, len(row["dice"]) - 1)]
        reached = "yes" if five >= row["box3d_dice"] else "no"
        lines.append(f"| {key} | {old} | {new} | {row['box3d_dice']:.3f} | {reached} |")
    mean = np.array([r["dice"] for r in after.values()]).mean(0)
    old = "-"
    if all(k in before for k in after):
        was = np.array([before[k]["dice"] for k in after]).mean(0)
        old = " / ".join(f"{was[k]:.3f}" for k in pick)
    box = np.mean([r["box3d_dice"] for r in after.values()])
    new = " / ".join(f"{mean[k]:.3f}" for k in pick)
    lines.append(f"| **mean of {len(after)}** | {old} | {new} | {box:.3f} | |")
    return "\n".join(lines)


def picture(before: dict[str, dict], after: dict[str, dict], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(after)
    fig, axes = plt.subplots(1, n, figsize=(2.6 * n, 2.8), squeeze=False)
    for ax, (key, row) in zip(axes[0], after.items(), strict=True):
        steps = np.arange(1, len(row["dice"]) + 1)
        if key in before:
            ax.plot(steps, before[key]["dice"], marker=".", color="0.6", label="before")
        ax.plot(steps, row["dice"], marker="o", ms=3, color="C0", label="after")
        ax.axhline(row["box3d_dice"], ls="--", lw=0.8, color="C3", label="tight 3D box")
        ax.set(title=key, xlabel="clicks", ylim=(0, 1), xticks=[1, *range(5, len(steps) + 1, 5)])
        ax.title.set_fontsize(8)
    axes[0][0].set_ylabel("3D Dice")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    write_file(png, lambda t: fig.savefig(t, dpi=90, format="png"), verify_for(png))
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    ap.add_argument("--png", type=Path, required=True)
    args = ap.parse_args()
    before, after = rows(args.before), rows(args.after)
    picture(before, after, args.png)
    print(table(before, after))


if __name__ == "__main__":
    main()
