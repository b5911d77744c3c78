"""Which box proposal answers a lone click: a linear score over what the model and the image say.

A box-trained model given a box around a click segments whatever fills that box, and its own predicted IoU
rates a box-filling organ as highly as the lesion under the click. The choice therefore also looks at the image
and at how the masks change from one proposal to the next. Each proposal's mask gets these features:

- from the model: predicted IoU; enclosed (clear of its box's border by ``click.MARGIN`` px, image edges
  excepted); the share of the box's border it covers; log area; the share of the box it fills;
- across proposals: IoU with the previous and the next proposal's mask (and the larger of the two), the
  proposal's rank (0 smallest .. 1 largest), log area ratios to the next and the previous mask;
- from the slice: the intensity step between the mask and a ring around it; the mean gradient magnitude on
  its border (relative to the slice's) and that minus the ring's; the spread of intensities inside it.

The score is ``WEIGHTS . features``; the proposal with the highest score among those whose mask holds the click
answers. The weights were fitted by ``scripts/fit_click_choice.py`` on medseg's training sources only (Colin27
AAL, MNI152 tissue, spine CT vertebrae and sub-regions, the dcmqi liver CT, the training half of the nuclei:
708 slices of objects in all three planes, every proposal decoded by LiteMedSAM), by maximising the expected Dice
of the softmax-weighted choice, each source weighted equally; report in
``benchmarks/results/interactive/click_choice.md``.
"""

from __future__ import annotations

import numpy as np

# Fitted weights per feature, on the raw features (``scripts/fit_click_choice.py --step 1``, seed 0, 29 min; the
# fit's standardisation folded in; report: benchmarks/results/interactive/click_choice.md). Only their differences
# between proposals of one click matter.
WEIGHTS: dict[str, float] = {
    "iou": 5.8249, "enclosed": 1.0356, "touch": -1.7417, "log_area": -0.3895, "fill": 2.4228, "iou_prev": 2.0818,
    "iou_next": 1.3407, "iou_stable": -1.3135, "rank": -1.2056, "ratio_next": 0.2282, "ratio_prev": 1.0097,
    "contrast": 0.0734, "edge": 1.6049, "edge_over_ring": 0.3492, "spread": 0.6663
}
FEATURES = tuple(WEIGHTS)


def touch(mask: np.ndarray, box: np.ndarray) -> float:
    """Share of the box's border pixels (sides not on the image's edge) inside the mask."""
    h, w = mask.shape
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    sides = []
    if y0 > 0:
        sides.append(mask[y0, x0:x1 + 1])
    if y1 < h - 1:
        sides.append(mask[y1, x0:x1 + 1])
    if x0 > 0:
        sides.append(mask[y0:y1 + 1, x0])
    if x1 < w - 1:
        sides.append(mask[y0:y1 + 1, x1])
    return float(np.concatenate(sides).mean()) if sides else 0.0


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


class SliceStats:
    """The slice's intensities and gradient magnitude, computed once per click."""

    def __init__(self, image: np.ndarray) -> None:
        from scipy import ndimage  # lazy: cold start of 3D runs

        grey = np.asarray(image, np.float32)
        self.image = grey.mean(axis=2) if grey.ndim == 3 else grey
        self.grad = ndimage.gaussian_gradient_magnitude(self.image, 1.0)
        self.grad_scale = float(self.grad.mean()) + 1e-3
        self.spread = float(self.image.std()) + 1.0

    def features(self, mask: np.ndarray) -> tuple[float, float, float, float]:
        """(contrast, edge, edge_over_ring, spread) of one mask (zeros for an empty one)."""
        from scipy import ndimage

        area = int(mask.sum())
        if area == 0:
            return 0.0, 0.0, 0.0, 0.0
        r = max(2, int(round(0.15 * np.sqrt(area))))
        ys, xs = np.nonzero(mask)
        h, w = mask.shape
        y0, y1 = max(ys.min() - r - 1, 0), min(ys.max() + r + 2, h)
        x0, x1 = max(xs.min() - r - 1, 0), min(xs.max() + r + 2, w)
        m = mask[y0:y1, x0:x1]
        img, grad = self.image[y0:y1, x0:x1], self.grad[y0:y1, x0:x1]
        # r steps of a 4-connected dilation = city-block distance <= r
        ring = (ndimage.distance_transform_cdt(~m, metric="taxicab") <= r) & ~m
        border = m & ~ndimage.binary_erosion(m)
        inside = img[m]
        around = img[ring] if ring.any() else inside
        contrast = abs(float(inside.mean()) - float(around.mean())) / (float(inside.std()) + float(around.std()) + 1.0)
        edge = float(grad[border].mean()) / self.grad_scale if border.any() else 0.0
        ring_grad = float(grad[ring].mean()) / self.grad_scale if ring.any() else 0.0
        return contrast, edge, edge - ring_grad, float(inside.std()) / self.spread


def feature_rows(masks: list[np.ndarray], ious: list[float], boxes: list[np.ndarray], enclosed: list[bool],
                 stats: SliceStats) -> np.ndarray:
    """(N, len(FEATURES)) features of the N proposals of one click, smallest first."""
    n = len(masks)
    areas = [max(int(m.sum()), 1) for m in masks]
    rows = []
    for i, m in enumerate(masks):
        prev = iou(m, masks[i - 1]) if i > 0 else 0.0
        nxt = iou(m, masks[i + 1]) if i + 1 < n else 0.0
        box = boxes[i]
        box_area = float((box[2] - box[0] + 1) * (box[3] - box[1] + 1))
        ratio_next = np.log(areas[i + 1] / areas[i]) if i + 1 < n else 0.0
        ratio_prev = np.log(areas[i] / areas[i - 1]) if i > 0 else 0.0
        contrast, edge, edge_over_ring, spread = stats.features(m)
        rows.append([ious[i], float(enclosed[i]), touch(m, box), np.log(areas[i]), areas[i] / box_area,
                     prev, nxt, max(prev, nxt), i / max(n - 1, 1), ratio_next, ratio_prev,
                     contrast, edge, edge_over_ring, spread])
    return np.asarray(rows, np.float64)


def scores(rows: np.ndarray, weights: dict[str, float] | None = None) -> np.ndarray:
    """Score of each proposal (higher = better)."""
    w = np.array([(weights or WEIGHTS)[name] for name in FEATURES])
    return rows @ w
