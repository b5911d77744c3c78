"""Per-slice prompts from a prior mask: boxes, the low-res mask prompt's frame, what each refinement keeps."""

from __future__ import annotations

import numpy as np
import pytest

from medseg.predict.predictor import Prediction
from medseg.text.prompting import MASK_LOGIT, low_res_prior, refine_slices, widened_box


def test_widened_box_stays_on_the_slice():
    mask = np.zeros((20, 30), bool)
    mask[1:5, 25:29] = True
    assert widened_box(mask, 3).tolist() == [22, 0, 29, 7]
    assert widened_box(np.zeros((4, 4), bool), 3) is None


def test_low_res_prior_is_in_the_decoders_frame():
    mask = np.zeros((100, 200), bool)  # longest side 200 -> 256: scale 1.28; rows 0..127 used, rest padded
    mask[50:100, 0:100] = True
    logits = low_res_prior(mask)
    assert logits.shape == (1, 256, 256)
    assert logits[0, 70, 10] == MASK_LOGIT and logits[0, 60, 200] == -MASK_LOGIT
    assert (logits[0, 128:] == -MASK_LOGIT).all()  # padding below the scaled image


def test_refine_slices_modes():
    prior = np.zeros((5, 20, 20), bool)
    prior[1:3, 5:10, 5:10] = True
    calls = []

    def decode(z, box=None, mask_input=None):
        calls.append((z, None if mask_input is None else mask_input.shape))
        full = np.ones((1, 20, 20), bool)  # the model takes everything: cut to the widened box
        return Prediction(masks=full, iou=np.array([0.9], np.float32), low_res_logits=np.zeros((1, 256, 256)))

    atlas = refine_slices(decode, prior, "atlas")
    assert sorted(atlas) == [1, 2] and not calls and (atlas[1].mask == prior[1]).all()
    boxed = refine_slices(decode, prior, "box", margin=2)
    assert boxed[1].mask.sum() == 9 * 9 and [c[1] for c in calls] == [None, None]
    calls.clear()
    refine_slices(decode, prior, "box+mask")
    assert [c for c in calls] == [(1, (1, 256, 256)), (2, (1, 256, 256))]
    with pytest.raises(ValueError):
        refine_slices(decode, prior, "nonsense")


def test_intensity_refinement_moves_a_shifted_prior_to_the_edges():
    from medseg.text.intensity import refine_by_intensity

    z, y, x = np.ogrid[:24, :40, :40]
    truth = (z - 12) ** 2 + (y - 20) ** 2 + (x - 20) ** 2 <= 7**2
    prior = (z - 12) ** 2 + (y - 20) ** 2 + (x - 22) ** 2 <= 7**2  # the atlas 2 voxels off
    rng = np.random.default_rng(0)
    image = np.where(truth, 120.0, 60.0) + rng.normal(0, 8, truth.shape)

    def dice(a, b):
        return 2 * (a & b).sum() / (a.sum() + b.sum())

    refined = refine_by_intensity(prior, image)
    assert dice(prior, truth) < 0.80 and dice(refined, truth) > 0.90  # measured 0.793 -> 0.930
    assert not refine_by_intensity(np.zeros_like(prior), image).any()
    slices = refine_slices(lambda *a, **k: None, prior, "intensity", image=image)
    assert np.array_equal(np.stack([slices.get(k).mask if k in slices else np.zeros((40, 40), bool)
                                    for k in range(24)]), refined)
    with pytest.raises(ValueError, match="needs the scan"):
        refine_slices(lambda *a, **k: None, prior, "intensity")
