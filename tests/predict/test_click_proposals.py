"""The lone-click rule (medseg.predict.click): box proposals, the first enclosed mask, climbing on while a
larger proposal encloses a mask the model rates higher. A scripted decoder stands in for the model."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from medseg.predict.click import half_widths, segment_click

SHAPE = (64, 64)


def disc(radius: float, cx: float = 32, cy: float = 32) -> np.ndarray:
    yy, xx = np.ogrid[:SHAPE[0], :SHAPE[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2


def scripted(answers: dict[int, tuple[np.ndarray, float]]):
    """A decode function answering proposal k (by its half-width's rank) with (mask cut to the box, IoU)."""
    halves = half_widths(SHAPE)
    calls = []

    def decode(_z, box, points, point_labels):
        k = int(np.argmin([abs((box[2] - box[0]) / 2 - h) for h in halves]))
        calls.append(k)
        mask, iou = answers.get(k, (np.zeros(SHAPE, bool), 0.1))
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        cut = np.zeros(SHAPE, bool)
        cut[y0:y1 + 1, x0:x1 + 1] = mask[y0:y1 + 1, x0:x1 + 1]
        return SimpleNamespace(masks=cut[None], low_res_logits=np.zeros((1, 1, 4, 4), np.float32),
                               iou=np.array([iou]))

    return decode, calls


def test_the_first_enclosed_mask_when_the_next_proposal_is_rated_lower():
    # proposals 0-1 (half-widths 4, 5.6) cut the disc of radius 6; proposal 2 (7.84) encloses a disc of 4
    decode, calls = scripted({0: (disc(6), 0.5), 1: (disc(6), 0.6), 2: (disc(4), 0.8), 3: (disc(9), 0.7)})
    res = segment_click(decode, 0, 32, 32, SHAPE)
    assert res.area == disc(4).sum() and calls == [0, 1, 2, 3]


def test_climbs_while_a_larger_proposal_encloses_a_better_rated_mask():
    # a part of the lesion is enclosed first (proposal 2); proposals 3 and 4 enclose more, rated higher; 5 lower
    decode, calls = scripted({2: (disc(4), 0.6), 3: (disc(7), 0.7), 4: (disc(9), 0.9), 5: (disc(13), 0.8)})
    res = segment_click(decode, 0, 32, 32, SHAPE)
    assert res.area == disc(9).sum() and calls == [0, 1, 2, 3, 4, 5]


def test_stops_climbing_at_a_proposal_that_cuts_its_mask_or_loses_the_click():
    beside = disc(3, cx=50, cy=50)  # a better-rated mask elsewhere does not count: it misses the click
    decode, _ = scripted({2: (disc(4), 0.6), 3: (beside, 0.95)})
    assert segment_click(decode, 0, 32, 32, SHAPE).area == disc(4).sum()
    decode, _ = scripted({2: (disc(4), 0.6), 3: (disc(30), 0.95)})  # cut by proposal 3's box: not enclosed
    assert segment_click(decode, 0, 32, 32, SHAPE).area == disc(4).sum()


def test_a_correction_region_keeps_the_first_enclosed_mask():
    decode, calls = scripted({2: (disc(4), 0.6), 3: (disc(7), 0.7)})
    assert segment_click(decode, 0, 32, 32, SHAPE, climb=False).area == disc(4).sum() and calls == [0, 1, 2]
