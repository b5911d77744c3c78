"""The figure of benchmarks/results/interactive/click_atlas.md: one click at the deepest voxel of two held-out
Harvard-Oxford structures, answered by LiteMedSAM's box proposals and by the atlas route (``medseg.text.pointed``,
the Colin27 + AAL pack: the scan is the default pack's own template).

    PYTHONPATH=src .venv/bin/python scripts/fig_click_atlas.py [--encodes DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
from interactive_eval import load  # noqa: E402

OUT = Path("benchmarks/results/interactive/click_atlas/one_click.png")
STRUCTURES = (100, 98)  # Harvard-Oxford left putamen, left thalamus


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from medseg.data.loaders import load_labelled
    from medseg.evaluate.protocols import cvpr25_click
    from medseg.predict.volume import VolumeSession
    from medseg.text.atlas_route import AtlasRoute
    from medseg.text.routes import Router

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--encodes", default=None, help="folder keeping slice embeddings between runs")
    args = ap.parse_args()
    p = load("litemedsam", None, {}, "auto", Path(args.encodes) if args.encodes else None)
    case = load_labelled("atlases", ["harvard_oxford"])[0]
    fig, axes = plt.subplots(1, len(STRUCTURES), figsize=(10, 5.4))
    for ax, lab in zip(axes, STRUCTURES, strict=True):
        truth = case.labels == lab
        (x, y, z), _ = cvpr25_click(np.zeros_like(truth), truth)
        masks = {}
        for atlas in (False, True):
            session = VolumeSession(p)
            session.set_volume(case.image)
            session.click_atlas = atlas
            session.text_router = Router([AtlasRoute("colin27_aal")])
            masks[atlas] = session.object_mask(session.add_point(x, y, z, new_object=True))
        dice = {k: 2 * (m & truth).sum() / (m.sum() + truth.sum()) for k, m in masks.items()}
        ys, xs = np.nonzero(truth[z])
        rows, cols = slice(max(ys.min() - 25, 0), ys.max() + 25), slice(max(xs.min() - 25, 0), xs.max() + 25)
        ax.imshow(case.image.array[z, rows, cols], cmap="gray", origin="lower")
        for m, color in ((truth, "lime"), (masks[False], "red"), (masks[True], "deepskyblue")):
            ax.contour(m[z, rows, cols].astype(float), levels=[0.5], colors=color, linewidths=1.6)
        ax.plot([x - cols.start], [y - rows.start], marker="+", color="yellow", markersize=14, mew=2.5)
        ax.set_title(f"{case.names[lab]} (slice {z})\nmodel 3D Dice {dice[False]:.3f}  ->  atlas {dice[True]:.3f}",
                     fontsize=10)
        ax.axis("off")
    fig.suptitle("One click (yellow +) on the held-out FSL MNI152 template: Harvard-Oxford truth (green),\n"
                 "LiteMedSAM's box proposals (red), the atlas route's structure (blue; Colin27 + AAL pack)",
                 fontsize=10)
    fig.tight_layout()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT, dpi=110)
    print(OUT)


if __name__ == "__main__":
    main()
