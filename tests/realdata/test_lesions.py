"""PyRadiomics's five lesions (whole scans with manual labels; evaluation and tests only) with the real LiteMedSAM.

Measured 2026-12-06 (stop 47, `litemedsam`, CVPR25 clicks, atlas route off):
- brain2 (T1 MR, 6.5 mm slices, a lesion on three slices): the lone click's object spans four slices, one false below
  the lesion, each slice holding 20-29 % of the object. The protocol's negative clicks land on that false slice; a
  z-cut needed it to hold at most a quarter, so two clicks removed 5 and 4 voxels. Now the end slice of the object's
  first extent is cut alone whatever its share (``correct.z_cut``): Dice after one / three / four / five clicks
  0.404 / 0.543 / 0.546 / 0.548 before, 0.404 / 0.543 / 0.624 / 0.628 now.
- lung2 (CT, a lung tumour on 11 slices, held out: only ever evaluated): one click 0.864, five 0.885, tight box 0.865;
  since stop 48 0.865 / 0.881.

Stop 48: a lone click's object ends before the first slice whose mask's intensities are foreign to its seed slice's
(``extent.familiar_range``). lung1 (a 15 mm nodule on three 5 mm CT slices): the object spanned 31-35, its end slices'
masks holding lung parenchyma; one click 0.443 -> 0.561. brain1 (its lowest slice white matter): 0.347 -> 0.362, and
with the box grown up to 8 times (``correct.MAX_GROW``) five clicks 0.496 -> 0.563. And stop 47's end-slice cut no
longer takes the seed's neighbour (lung1 after ten clicks 0.480 -> 0.588).

Stop 49: a lone click's object has its border drawn again by the scan's edges (``medseg.predict.refine``): one click
lung1 0.561 -> 0.677, lung2 0.865 -> 0.901, brain1 0.362 -> 0.399.
"""

from __future__ import annotations

import numpy as np
import pytest

from medseg.data import loaders, sample

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def lesions():
    sample.fetch("pyradiomics")
    return {c.name.split("/")[1]: c for c in loaders.load_labelled("pyradiomics")}


def test_the_five_lesions_load_on_their_scans(lesions):
    voxels = {"brain1": 4137, "brain2": 453, "breast1": 143, "lung1": 837, "lung2": 24644}
    shapes = {"brain1": (25, 256, 256), "brain2": (23, 256, 256), "breast1": (21, 120, 45), "lung1": (48, 512, 512),
              "lung2": (61, 512, 512)}
    assert sorted(lesions) == sorted(voxels)
    for name, case in lesions.items():
        assert case.image.array.shape == case.labels.shape == shapes[name]
        assert int(case.labels.sum()) == voxels[name] and case.names == {1: "Lesion"}
        assert "never trained on" in case.licence
    assert lesions["lung1"].image.array.min() == -1024  # CT in Hounsfield units
    assert np.allclose(lesions["brain1"].image.geometry.spacing, (0.78125, 0.78125, 6.5))


def test_negative_clicks_cut_the_false_end_slice_of_a_short_lesion(cvpr25_steps):
    dice = [s["dice"] for s in cvpr25_steps("pyradiomics", "brain2", 1, clicks=5)]
    assert 0.38 < dice[0] < 0.45  # measured 0.404; 0.425 since stop 49 (medseg.predict.refine)
    assert dice[3] > 0.60 and dice[4] > 0.60  # measured 0.624 / 0.628 (0.546 / 0.548 before stop 47); 0.650 / 0.653


def test_a_click_segments_a_lung_tumour_in_a_whole_ct(cvpr25_steps):
    steps = cvpr25_steps("pyradiomics", "lung2", 1, clicks=5)
    dice = [s["dice"] for s in steps]
    # measured 0.901 / 0.900 (0.865 / 0.881 before stop 49); tight 3D box 0.865
    assert dice[0] > 0.88 and dice[-1] > 0.88


def test_a_lone_clicks_object_ends_where_its_slices_turn_to_lung(cvpr25_steps):
    dice = [s["dice"] for s in cvpr25_steps("pyradiomics", "lung1", 1, clicks=10)]
    assert dice[0] > 0.53  # measured 0.677 (0.443 before stop 48: two slices of lung parenchyma past the nodule)
    # the sixth click, negative on the false rim of the seed's neighbour, no longer takes that slice whole: measured
    # 0.588 after ten (0.480 with the trim and stop 47's end-slice cut); 0.700-0.702 since stop 49; 0.89-0.93 since
    # stop 51 (medseg.predict.rim)
    assert min(dice[5:]) > 0.55


def test_a_positive_click_grows_a_lone_clicks_small_box_eightfold(cvpr25_steps):
    dice = [s["dice"] for s in cvpr25_steps("pyradiomics", "brain1", 1, clicks=5)]
    assert dice[0] > 0.34 and dice[4] > 0.54  # measured 0.362 / 0.563 (0.347 / 0.496 before stop 48); 0.399 / 0.589


def test_a_lone_clicks_border_is_drawn_again_by_the_scans_edges(cvpr25_steps):
    """medseg.predict.refine: LiteMedSAM's masks of the nodule sit inside its edge (one click: 503 voxels missed, 20
    false); a random walker in a band around them moves the border out to the nodule's edge."""
    model = cvpr25_steps("pyradiomics", "lung1", 1, clicks=1, refine=False)[0]["dice"]
    drawn = cvpr25_steps("pyradiomics", "lung1", 1, clicks=1)[0]["dice"]
    assert model < 0.60 and drawn > 0.65  # measured 0.561 -> 0.677


def test_a_click_on_a_nodules_rim_moves_its_border_out_to_the_clicks_level(cvpr25_steps):
    """medseg.predict.rim: after the lone click lung1's object still sits 1-2 pixels inside the nodule's reference
    border on every slice; the second click, positive on that rim at a level between the nodule and the lung, moves the
    border out to that level near it. Measured 0.677 -> 0.895 (the region under the click: 0.686, 14 voxels added)."""
    steps = cvpr25_steps("pyradiomics", "lung1", 1, clicks=2)
    assert steps[1]["positive"] and steps[1]["dice"] > 0.85


def test_a_negative_click_deep_in_a_wrong_object_takes_the_lone_clicks_next_reading(session_on):
    """SAM-Med3D's uniform first click (seed 0) lies one voxel inside brain1's lesion, at (186, 112, 16): its
    proposals' chosen reading is the whole head (127,803 voxels for a 4,137-voxel lesion, Dice 0.063). The second click,
    negative, at (191, 140, 17), lies deep inside that object; before stop 58 the rules removed 1,598 voxels of it
    (0.059). Now the best-ranked of the lone click's other readings whose box leaves the click out, at most half the
    object's box, is segmented instead (``VolumeSession._rechosen``): measured 0.459 after two clicks. The clicks are
    given here: since stop 62 the lone click's box is a median of five positions' (a 125,531-voxel head), and seed 0's
    uniform second click falls elsewhere in its error."""
    session, labels = session_on("pyradiomics", "brain1")
    truth = labels == 1
    obj = session.add_point(186, 112, 16, positive=True, new_object=True)
    first = session.object_mask(obj)
    assert 2 * (first & truth).sum() / (first.sum() + truth.sum()) < 0.1 and first[17, 140, 191]
    session.add_point(191, 140, 17, positive=False, obj=obj)
    second = session.object_mask(obj)
    assert 2 * (second & truth).sum() / (second.sum() + truth.sum()) > 0.35


def test_a_reading_that_drops_a_positive_clicks_slices_is_not_taken(cvpr25_steps):
    """SAM-Med3D's clicks on the RIDER lung tumour (seed 2): the object runs 14 slices past the tumour, and the fifth
    click, negative, lies deep inside it on the tumour's last slice. A reading of slices 171-181 left that click out,
    but also the third click's slice (158, positive); taken, it lost 0.32 Dice (0.689 -> 0.371). A reading must hold
    every positive click, in z too (since stop 59): measured 0.689 after five clicks."""
    dice = [s["dice"] for s in cvpr25_steps("rider_lung", "seg_manual", 1, clicks=5, protocol="sammed3d", seed=2)]
    assert dice[4] > 0.6
