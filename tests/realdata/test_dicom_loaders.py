"""load_labelled on the DICOM sample datasets: each CT with its SEG / RTSTRUCT as a named label map.

Data: rider_lung (CC BY 4.0), radiomics_phantom (CC BY-NC 3.0: tests and demos only), dcmqi_liver (BSD-3).
"""

from __future__ import annotations

import numpy as np
import pytest

from medseg.data import sample
from medseg.data.loaders import load_labelled

pytestmark = pytest.mark.realdata


def _need(name: str) -> None:
    if not sample.is_fetched(name):
        pytest.skip(f"needs `medseg fetch-data {name}`")


def test_phantom_and_liver_cases_are_named_label_maps_on_their_ct() -> None:
    for name, count, label in (("radiomics_phantom", 4, "GTV-1"), ("dcmqi_liver", 1, "Liver")):
        _need(name)
        cases = load_labelled(name)
        assert len(cases) == count
        for case in cases:
            assert case.labels.shape == case.image.array.shape and case.image.modality == "CT"
            assert case.names == {1: label} and case.labels.max() == 1 and case.labels.sum() > 1000
        assert "NON-COMMERCIAL" in cases[0].licence or name != "radiomics_phantom"


def test_rider_seg_and_rtstruct_cases_agree() -> None:
    """Measured: Dice 0.914 between the manual SEG segment and the manual RTSTRUCT contours."""
    _need("rider_lung")
    seg, rtstruct = load_labelled("rider_lung")
    assert seg.labels.shape == (236, 512, 512) and seg.names == {1: "Neoplasm, Primary"}
    a, b = seg.labels > 0, rtstruct.labels > 0
    assert 2 * np.logical_and(a, b).sum() / (a.sum() + b.sum()) > 0.90
