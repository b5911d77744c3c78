"""A picture of the rim rule (``medseg.predict.rim``): a lung nodule after the lone click and after the second click
(CVPR25 protocol), that click answered by the region under it (the rule off) and by the rim rule.

Each row one slice of the nodule: the windowed slice with the truth (green) and the object (red), the click (cyan +),
3D Dice in the titles. PyRadiomics data: measurement only, never trained on. ``litemedsam``, atlas route off.

    PYTHONPATH=src .venv/bin/python benchmarks/rim_figure.py --encodes DIR --png OUT.png
"""

from __future__ import annotations

import sys
from pathlib import Path
from unittest import mock

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from interactive_eval import dice  # noqa: E402
from refine_figure import save, setup  # noqa: E402
from training_clicks import structures  # noqa: E402

from medseg.evaluate.protocols import cvpr25_click  # noqa: E402

MARGIN = 10  # pixels of context around the nodule


def two_clicks(session, truth: np.ndarray, rim: bool) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int]]:
    """The object after the lone click and after the second click, and the second click (x, y, z)."""
    session.reset()
    (x, y, z), _ = cvpr25_click(np.zeros_like(truth), truth)
    label = session.add_point(x, y, z)
    first = session.object_mask(label).astype(bool)
    (x, y, z), positive = cvpr25_click(first, truth)
    if rim:
        session.add_point(x, y, z, positive=positive, obj=label)
    else:
        with mock.patch("medseg.predict.volume.rim_edit", return_value=None):
            session.add_point(x, y, z, positive=positive, obj=label)
    return first, session.object_mask(label).astype(bool), (x, y, z)


def main() -> None:
    args, p, plt = setup(__doc__)
    (_, session, truth), = structures(p, (("pyradiomics", "lung1", (1,)),))
    first, off, click = two_clicks(session, truth, rim=False)
    _, on, _ = two_clicks(session, truth, rim=True)
    image = session._volume().data
    zs = np.flatnonzero(truth.any(axis=(1, 2)))
    rows, cols = np.nonzero(truth.any(axis=0))
    y0, y1 = max(rows.min() - MARGIN, 0), rows.max() + MARGIN + 1
    x0, x1 = max(cols.min() - MARGIN, 0), cols.max() + MARGIN + 1
    states = (("the lone click", first), ("2nd click, region under it", off), ("2nd click, rim rule", on))
    fig, axes = plt.subplots(len(zs), 3, figsize=(9, 3 * len(zs)), squeeze=False)
    for r, z in enumerate(zs):
        for c, (name, mask) in enumerate(states):
            ax = axes[r, c]
            ax.imshow(np.asarray(image[int(z)])[y0:y1, x0:x1], cmap="gray")
            ax.contour(truth[z, y0:y1, x0:x1], [0.5], colors="lime", linewidths=1)
            ax.contour(mask[z, y0:y1, x0:x1], [0.5], colors="red", linewidths=1)
            if c and click[2] == z:
                ax.plot(click[0] - x0, click[1] - y0, "c+", ms=12, mew=2)
            ax.set_title(f"{name}\nslice {z}, 3D Dice {dice(mask, truth):.3f}", fontsize=8)
            ax.axis("off")
    fig.suptitle("PyRadiomics lung1 (CT, 5 mm slices): truth green, object red", fontsize=9)
    save(fig, args.png, 90)
    print(f"wrote {args.png}: Dice {dice(first, truth):.3f} -> {dice(off, truth):.3f} (off) / {dice(on, truth):.3f}")


if __name__ == "__main__":
    main()
