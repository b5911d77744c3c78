"""A positive correction beside a much too small object grows from the click, with the real LiteMedSAM.

Colin27 AAL 17 (Rolandic_Oper_L), the CVPR25 protocol without a box, atlas route off: the lone click takes a small
part of the structure, and the second click (positive, the deepest voxel of the largest miss) gets a model region
the limits refuse (more than twice the object's area there). Before stop 45 that click flipped a 3-pixel disc;
now it adds the alike voxels in the ball around it that reaches the object (``correct.grown_region``). Measured
(2026-12-06, `litemedsam`): Dice after one / two clicks 0.201 / 0.207 before, 0.201 / 0.534 now.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.realdata


def test_a_positive_click_beside_a_too_small_object_grows_it(cvpr25_steps):
    steps = cvpr25_steps("colin27", "aal", 17, clicks=2)
    first, second = (step["dice"] for step in steps)
    assert steps[1]["positive"]
    assert first < 0.3 and second > 0.45  # measured 0.201 -> 0.534 (0.207 with the disc)
