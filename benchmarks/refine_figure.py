"""A picture of what the refinement does: for a few held-out structures, the tight 3D box's object with the model's
border and with the border drawn again (``medseg.predict.refine``), on the slice where the structure is largest.

Each panel: the windowed slice, the ground truth (green), the model's border (red) and the refined one (yellow), with
both 3D Dice. PyRadiomics data: measurement only. ``litemedsam``.

    PYTHONPATH=src .venv/bin/python benchmarks/refine_figure.py --encodes DIR --png OUT.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from interactive_eval import dice, load  # noqa: E402
from training_clicks import structures  # noqa: E402

from medseg.evaluate.protocols import box3d_of  # noqa: E402

CASES = (("atlases", "harvard_oxford", (110, 112)), ("pyradiomics", "breast1", (1,)), ("pyradiomics", "lung2", (1,)),
         ("spine", "mr_vert", (6,)), ("pyradiomics", "brain1", (1,)))
MARGIN = 12  # pixels of context around the structure's extent on its slice


def setup(doc: str):
    """A figure script's start: matplotlib without a display, its --png and --encodes, the ``litemedsam`` predictor.
    Returns (args, predictor, pyplot)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--png", required=True, type=Path)
    ap.add_argument("--encodes", type=Path, default=None, help="folder keeping slice embeddings between runs")
    args = ap.parse_args()
    return args, load("litemedsam", None, {}, "auto", args.encodes), plt


def save(fig, png: Path, dpi: int) -> None:
    """Lay the figure out and write it to ``png`` (its folder made)."""
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=dpi)


def main() -> None:
    args, p, plt = setup(__doc__)
    panels = []
    for key, session, truth in structures(p, CASES):
        masks = {}
        for refine in (False, True):
            session.reset()
            session.refine = refine
            masks[refine] = session.object_mask(session.add_box3d(*box3d_of(truth))).astype(bool)
        z = int(np.argmax(truth.sum(axis=(1, 2))))
        ys, xs = np.nonzero(truth[z] | masks[False][z] | masks[True][z])
        h, w = truth.shape[1:]
        crop = (slice(max(ys.min() - MARGIN, 0), min(ys.max() + MARGIN + 1, h)),
                slice(max(xs.min() - MARGIN, 0), min(xs.max() + MARGIN + 1, w)))
        image = np.asarray(session._volume().data[z])[crop]
        panels.append((key, image, truth[z][crop], masks[False][z][crop], masks[True][z][crop],
                       dice(masks[False], truth), dice(masks[True], truth)))
        print(key, round(panels[-1][-2], 3), round(panels[-1][-1], 3), flush=True)
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.6))
    for ax, (key, image, truth, model, refined, d0, d1) in zip(np.atleast_1d(axes), panels, strict=True):
        ax.imshow(image, cmap="gray", interpolation="nearest")
        for mask, colour in ((truth, "lime"), (model, "red"), (refined, "yellow")):
            if mask.any():
                ax.contour(mask.astype(float), levels=[0.5], colors=colour, linewidths=1.2)
        ax.set_title(f"{key}\nmodel {d0:.3f}  refined {d1:.3f}", fontsize=8)
        ax.axis("off")
    fig.suptitle("Tight 3D box: truth (green), the model's border (red), drawn again (yellow); 3D Dice", fontsize=9)
    save(fig, args.png, 110)
    print(f"written: {args.png}")


if __name__ == "__main__":
    main()
