"""The lone-click rule (medseg.predict.click, medseg.predict.click_choice): box proposals, the best-scored
mask that holds the click; a correction's region keeps the first enclosed mask. A scripted decoder stands in
for the model."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from scipy import ndimage

from medseg.predict import click, click_choice
from medseg.predict.click import enclosed, half_widths, segment_click

SHAPE = (64, 64)


def disc(radius: float, cx: float = 32, cy: float = 32) -> np.ndarray:
    yy, xx = np.ogrid[:SHAPE[0], :SHAPE[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2


def scripted(answers: dict[int, tuple[np.ndarray, float]]):
    """A decode function answering proposal k (by its half-width's rank) with (mask cut to the box, IoU)."""
    halves = half_widths(SHAPE)
    calls = []

    def decode(_z, box, points=None, point_labels=None, only=None):
        k = int(np.argmin([abs((box[2] - box[0]) / 2 - h) for h in halves]))
        calls.append((k, points is not None))
        mask, iou = answers.get(k, (np.zeros(SHAPE, bool), 0.1))
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        cut = np.zeros(SHAPE, bool)
        cut[y0:y1 + 1, x0:x1 + 1] = mask[y0:y1 + 1, x0:x1 + 1]
        return SimpleNamespace(masks=cut[None], low_res_logits=np.zeros((1, 1, 4, 4), np.float32),
                               iou=np.array([iou]))

    return decode, calls


def bright_disc(radius: float) -> np.ndarray:
    """A 0..255 slice: a bright disc on a dark, slightly noisy background."""
    noise = np.random.default_rng(0).normal(0, 3, SHAPE)
    return np.clip(40 + 160 * disc(radius) + noise, 0, 255).astype(np.float32)


def test_chooses_the_mask_on_the_image_edges_among_equally_rated_ones():
    # the model rates a part, the object and a spill-over alike; the object's border is where the image steps
    decode, calls = scripted({2: (disc(4), 0.8), 4: (disc(9), 0.8), 6: (disc(16), 0.8)})
    res = segment_click(decode, 0, 32, 32, SHAPE, image=bright_disc(9))
    assert res.area == disc(9).sum()
    assert [k for k, _ in calls] == list(range(len(half_widths(SHAPE))))  # every proposal, decoded from its box
    assert not any(with_points for _, with_points in calls)


def test_never_a_mask_that_misses_the_click():
    beside = disc(5, cx=50, cy=50)
    decode, _ = scripted({2: (disc(3), 0.3), 4: (beside, 0.99)})
    res = segment_click(decode, 0, 32, 32, SHAPE, image=bright_disc(5))
    assert res.area == disc(3).sum()


def test_nothing_under_the_click_gives_an_empty_mask():
    decode, _ = scripted({4: (disc(5, cx=50, cy=50), 0.9)})
    res = segment_click(decode, 0, 32, 32, SHAPE, image=bright_disc(5))
    assert res.area == 0 and res.box is None


def test_a_mask_stopping_short_of_the_click_is_joined_to_it():
    # the click lies on the structure's border: every mask stops two pixels short of it (x 32 vs a disc to x 30)
    ring = disc(6, cx=24, cy=32)
    decode, _ = scripted({k: (ring, 0.8) for k in range(len(half_widths(SHAPE)))})
    res = segment_click(decode, 0, 32, 32, SHAPE, image=bright_disc(5))
    assert res.mask[32, 32] and (res.mask & ring).any()
    assert ndimage.label(res.mask)[1] == 1  # one piece: the disc around the click reaches the mask
    assert not (res.mask & ~ring & ~disc(2)).any()  # nothing is added beyond that disc


def test_joined_reaches_only_masks_within_near_pixels():
    far = disc(3, cx=24, cy=32)  # 5 pixels from the click at x 32
    res = click.joined(as_result(far), 32, 32)
    assert not res.mask[32, 32] and res.mask.sum() == far.sum()
    res = click.joined(as_result(far), 32, 32, near=5.0)
    assert res.mask[32, 32]


def as_result(mask: np.ndarray):
    return click.SliceResult(mask, np.zeros((1, 4, 4), np.float32), 0.5, None)


def test_without_the_slice_the_earlier_rule_climbs_while_enclosed_and_better_rated():
    # a part of the lesion is enclosed first (proposal 2); proposals 3 and 4 enclose more, rated higher; 5 lower
    decode, calls = scripted({2: (disc(4), 0.6), 3: (disc(7), 0.7), 4: (disc(9), 0.9), 5: (disc(13), 0.8)})
    res = segment_click(decode, 0, 32, 32, SHAPE)
    assert res.area == disc(9).sum() and calls == [(k, True) for k in range(6)]
    decode, _ = scripted({2: (disc(4), 0.6), 3: (disc(30), 0.95)})  # cut by proposal 3's box: not enclosed
    assert segment_click(decode, 0, 32, 32, SHAPE).area == disc(4).sum()


def test_a_correction_region_keeps_the_first_enclosed_mask():
    decode, calls = scripted({2: (disc(4), 0.6), 3: (disc(7), 0.7)})
    assert segment_click(decode, 0, 32, 32, SHAPE, climb=False).area == disc(4).sum()
    assert calls == [(0, True), (1, True), (2, True)]  # box + click, stopping at the first enclosed mask


@pytest.mark.parametrize("radius", [9, 40])
def test_a_correction_region_sees_its_proposals_masks_around_their_boxes_and_a_fallback_whole(radius):
    # the model's mask is a disc whatever the box; a correction's proposals are upscaled only in the square PARTIAL
    # times their width, where a mask leaving its box shows: the disc of 9 leaves the small boxes and the first box
    # enclosing it answers, as with whole decodes; the disc of 40 leaves every box and the fallback is decoded again
    # whole
    calls = []

    def decode(_z, box, points=None, point_labels=None, only=None):
        mask = disc(radius)
        if only is not None:
            x0, y0, x1, y1 = (int(round(v)) for v in only)
            seen = np.zeros(SHAPE, bool)
            seen[y0:y1 + 1, x0:x1 + 1] = True
            mask = mask & seen
        calls.append((only is None, enclosed(mask, box), enclosed(disc(radius), box)))
        return SimpleNamespace(masks=mask[None], low_res_logits=np.zeros((1, 1, 4, 4), np.float32),
                               iou=np.array([0.5]))

    found = segment_click(decode, 0, 32, 32, SHAPE, climb=False)
    assert found.area == disc(radius).sum()
    assert all(partial == whole for _, partial, whole in calls[:-1])  # the same choices as whole decodes
    if radius == 9:
        assert [c[0] for c in calls] == [False] * len(calls) and calls[-1][1] and not calls[0][1]
    else:  # every proposal partial, then the fallback whole
        assert [c[0] for c in calls] == [False] * len(half_widths(SHAPE)) + [True]


def test_a_correction_region_skips_proposals_under_smallest():
    halves = half_widths(SHAPE)
    decode, calls = scripted({1: (disc(3), 0.6), 3: (disc(7), 0.7)})
    # proposal 1 would enclose first; from a half-width of proposal 2 on, proposal 3 answers
    assert segment_click(decode, 0, 32, 32, SHAPE, climb=False, smallest=halves[2]).area == disc(7).sum()
    assert calls == [(2, True), (3, True)]
    decode, calls = scripted({})
    segment_click(decode, 0, 32, 32, SHAPE, climb=False, smallest=1e9)  # beyond every proposal: the largest alone
    assert calls == [(len(halves) - 1, True)]


@pytest.mark.parametrize("radius", [2, 5, 11])
def test_the_ring_is_the_4_connected_dilation(radius):
    # SliceStats crops around the mask and uses a city-block distance; it must equal r dilation steps
    mask = disc(radius, cx=10, cy=40) | disc(3, cx=12, cy=52)
    stats = click_choice.SliceStats(bright_disc(radius))
    r = max(2, int(round(0.15 * np.sqrt(mask.sum()))))
    ring = ndimage.binary_dilation(mask, iterations=r) & ~mask
    image = stats.image
    expected_contrast = abs(image[mask].mean() - image[ring].mean()) / (image[mask].std() + image[ring].std() + 1.0)
    assert stats.features(mask)[0] == pytest.approx(expected_contrast, rel=1e-5)


def test_touch_counts_the_box_border_inside_the_mask_but_not_image_edges():
    mask = np.zeros(SHAPE, bool)
    mask[10:20, 10:31] = True
    # the top side wholly, the left and right sides on rows 10-19: (21 + 10 + 10) of 4 x 21 border pixels
    assert click_choice.touch(mask, np.array([10, 10, 30, 30])) == pytest.approx(41 / 84)
    full = np.ones(SHAPE, bool)
    assert click_choice.touch(full, np.array([0, 0, 63, 63])) == 0.0  # every side on the image's edge


def test_feature_rows_follow_the_weights():
    masks = [disc(3), disc(6), disc(9)]
    boxes = [np.array([28, 28, 36, 36]), np.array([22, 22, 42, 42]), np.array([18, 18, 46, 46])]
    rows = click_choice.feature_rows(masks, [0.5, 0.6, 0.7], boxes, [False, True, True],
                                     click_choice.SliceStats(bright_disc(6)))
    assert rows.shape == (3, len(click_choice.FEATURES))
    named = dict(zip(click_choice.FEATURES, rows[1], strict=True))
    assert named["iou"] == 0.6 and named["enclosed"] == 1.0 and named["rank"] == 0.5
    assert named["iou_prev"] == pytest.approx(disc(3).sum() / disc(6).sum())
    assert click_choice.scores(rows).shape == (3,)
