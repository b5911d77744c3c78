"""Training log: one CSV row per step (validation columns filled when validated) and a PNG of the curves.

``log.csv`` is (re)written atomically at the start (``medseg.files``), then grows by appended rows, each
flushed and fsynced; a reader skips a torn last row (one an interruption cut short). ``curves.png`` is
written atomically.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from medseg.files import append_line, write_file, write_text

COLUMNS = ["step", "epoch", "loss", "dice", "lr", "seconds", "val_dice", "val_dice_box", "val_dice_point"]


class History:
    """Appends rows to ``log.csv`` in the output folder (kept across --resume)."""

    def __init__(self, out: Path, resume: bool, resume_step: int = 0) -> None:
        self.path = out / "log.csv"
        rows = self.read() if resume and self.path.is_file() else []
        rows = [r for r in rows if int(r["step"]) <= resume_step]  # drop steps after the checkpoint
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
        write_text(self.path, text.getvalue())

    def append(self, row: dict) -> None:
        text = io.StringIO(newline="")
        csv.DictWriter(text, COLUMNS).writerow({k: _fmt(row.get(k)) for k in COLUMNS})
        append_line(self.path, text.getvalue().rstrip("\r\n"))

    def read(self) -> list[dict]:
        """Complete rows of ``log.csv`` (a torn last row is skipped)."""
        with open(self.path, newline="") as handle:
            rows = list(csv.DictReader(handle))
        return [r for r in rows if None not in r and all(r.get(k) is not None for k in COLUMNS)]

    def plot(self, png: Path) -> None:
        """Training loss (and its running mean) and validation Dice against the step."""
        import matplotlib

        from medseg.io.verify import verify_for

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        rows = self.read()
        train = [(int(r["step"]), float(r["loss"])) for r in rows if r["loss"]]
        val = [(int(r["step"]), float(r["val_dice"])) for r in rows if r["val_dice"]]
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
        if train:
            steps, loss = zip(*train, strict=True)
            ax1.plot(steps, loss, lw=0.5, alpha=0.5, label="loss")
            k = max(1, len(loss) // 20)
            smooth = [sum(loss[max(0, i - k + 1):i + 1]) / len(loss[max(0, i - k + 1):i + 1]) for i in range(len(loss))]
            ax1.plot(steps, smooth, label=f"running mean ({k})")
            ax1.legend()
        ax1.set(xlabel="step", ylabel="training loss")
        if val:
            ax2.plot(*zip(*val, strict=True), marker="o")
        ax2.set(xlabel="step", ylabel="validation Dice (box, point)", ylim=(0, 1))
        fig.tight_layout()
        try:
            write_file(png, lambda temp: fig.savefig(temp, dpi=100, format="png"), verify_for(png))
        finally:
            plt.close(fig)


def _fmt(value: object) -> str:
    if value is None:
        return ""
    return f"{value:.6g}" if isinstance(value, float) else str(value)
