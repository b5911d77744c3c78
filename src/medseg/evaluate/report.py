"""Reports of a protocol run: ``summary.md``, ``dice_by_structure.png``, ``dice_vs_clicks.png`` (click
protocols) and ``montage.png`` (image, ground-truth contour in green, prediction contour in red)."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from medseg.evaluate.metrics import mean_scores
from medseg.files import write_file, write_text


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def by_structure(rows: list[dict]) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        groups[row.get("name") or f"label_{row['label']}"].append(row)
    return dict(sorted(groups.items()))


def _fmt(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def summary_table(rows: list[dict]) -> list[str]:
    lines = ["| structure | n | Dice mean | Dice median | NSD mean | HD95 mean (mm) | inf HD95 | s per row |",
             "|---|---|---|---|---|---|---|---|"]
    groups = by_structure(rows)
    for name, group in [*groups.items(), ("**all**", rows)]:
        m = mean_scores(group)
        med = float(np.median([r["dice"] for r in group]))
        sec = float(np.mean([r.get("seconds", 0.0) for r in group]))
        lines.append(f"| {name} | {len(group)} | {_fmt(m['dice'])} | {_fmt(med)} | {_fmt(m['nsd'])} | "
                     f"{_fmt(m['hd95'], 2)} | {m['hd95_infinite']} | {sec:.2f} |")
    return lines


def click_table(rows: list[dict]) -> list[str]:
    stepped = [r for r in rows if r.get("steps")]
    if not stepped:
        return []
    names = [s["step"] for s in stepped[0]["steps"]]
    lines = ["| structure | " + " | ".join(names) + " | Dice AUC | NSD AUC |",
             "|---|" + "---|" * (len(names) + 2)]
    for name, group in by_structure(stepped).items():
        means = [np.mean([r["steps"][i]["dice"] for r in group]) for i in range(len(names))]
        auc = [np.mean([r[k] for r in group if r.get(k) is not None] or [np.nan]) for k in ("dice_auc", "nsd_auc")]
        lines.append(f"| {name} | " + " | ".join(_fmt(float(v)) for v in means) +
                     f" | {_fmt(float(auc[0]))} | {_fmt(float(auc[1]))} |")
    return lines


def plot_dice_distributions(rows: list[dict], path: Path) -> Path:
    plt = _plt()
    groups = by_structure(rows)
    fig, ax = plt.subplots(figsize=(max(4.0, 0.9 * len(groups) + 2), 3.6))
    ax.boxplot([[r["dice"] for r in g] for g in groups.values()], showmeans=True)
    for i, g in enumerate(groups.values(), start=1):
        xs = np.full(len(g), i) + np.linspace(-0.15, 0.15, len(g)) if len(g) > 1 else [i]
        ax.plot(xs, [r["dice"] for r in g], "o", alpha=0.4, ms=3, color="tab:blue")
    ax.set_xticks(range(1, len(groups) + 1), list(groups), rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("Dice")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"Dice per structure ({len(rows)} rows)")
    fig.tight_layout()
    _save(plt, fig, path)
    return path


def plot_dice_vs_clicks(rows: list[dict], path: Path) -> Path | None:
    stepped = [r for r in rows if r.get("steps")]
    if not stepped:
        return None
    plt = _plt()
    names = [s["step"] for s in stepped[0]["steps"]]
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for name, group in by_structure(stepped).items():
        ax.plot(range(len(names)), [np.mean([r["steps"][i]["dice"] for r in group]) for i in range(len(names))],
                marker="o", label=name)
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel("mean Dice")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7)
    ax.set_title("Dice after each interaction")
    fig.tight_layout()
    _save(plt, fig, path)
    return path


def plot_montage(tiles: list[dict], path: Path, columns: int = 4) -> Path | None:
    """Tiles: {"image": (H, W) 0..255, "gt": bool, "pred": bool, "title": str}."""
    if not tiles:
        return None
    plt = _plt()
    rows = math.ceil(len(tiles) / columns)
    cols = min(columns, len(tiles))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.4 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, tile in zip(axes.ravel(), tiles, strict=False):
        ax.imshow(tile["image"], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        for mask, colour in ((tile["gt"], "lime"), (tile["pred"], "red")):
            if mask.any():
                ax.contour(mask.astype(float), levels=[0.5], colors=colour, linewidths=0.9)
        ax.set_title(tile["title"], fontsize=8)
    fig.suptitle("ground truth (green) vs prediction (red)", fontsize=9)
    fig.tight_layout()
    _save(plt, fig, path)
    return path


def tile_for(image_0_255: np.ndarray, gt: np.ndarray, pred: np.ndarray, title: str, margin: int = 16) -> dict:
    """Crop (z, y, x) or (y, x) arrays around the structure on its largest slice."""
    if gt.ndim == 3:
        z = int(np.argmax(gt.reshape(gt.shape[0], -1).sum(axis=1)))
        image_0_255, gt, pred, title = image_0_255[z], gt[z], pred[z], f"{title} z={z}"
    ys, xs = np.nonzero(gt | pred)
    if len(xs):
        pad = max(margin, int(0.3 * max(np.ptp(ys), np.ptp(xs))))
        y0, y1 = max(ys.min() - pad, 0), min(ys.max() + pad + 1, gt.shape[0])
        x0, x1 = max(xs.min() - pad, 0), min(xs.max() + pad + 1, gt.shape[1])
        image_0_255, gt, pred = image_0_255[y0:y1, x0:x1], gt[y0:y1, x0:x1], pred[y0:y1, x0:x1]
    return {"image": image_0_255, "gt": gt, "pred": pred, "title": title}


def write_report(out: Path, rows: list[dict], title: str, command: str, tiles: list[dict]) -> Path:
    """Write summary.md and the PNGs into ``out``; returns the summary path."""
    out.mkdir(parents=True, exist_ok=True)
    plot_dice_distributions(rows, out / "dice_by_structure.png")
    clicks = plot_dice_vs_clicks(rows, out / "dice_vs_clicks.png")
    plot_montage(tiles, out / "montage.png")
    lines = [f"# {title}", "", "Regenerate with:", "", "```", command, "```", "",
             f"{len(rows)} rows; NSD tolerance and settings in `config.json`; per-case records in `results.jsonl`.",
             "HD95 means are over finite values; `inf HD95` counts rows with an empty prediction.", "",
             *summary_table(rows), ""]
    if clicks:
        lines += ["## Dice after each interaction", "", *click_table(rows), "", "![](dice_vs_clicks.png)", ""]
    lines += ["![](dice_by_structure.png)", "", "![](montage.png)", ""]
    return write_text(out / "summary.md", "\n".join(lines))


def _save(plt, fig, path: Path) -> None:
    """``fig`` as a PNG at ``path`` through the atomic, checked write; the figure is closed either way."""
    from medseg.io.verify import verify_for

    try:
        write_file(path, lambda temp: fig.savefig(temp, dpi=110, format="png"), verify_for(path))
    finally:
        plt.close(fig)
