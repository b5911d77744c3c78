"""The same scan registered twice gives the same transform, to the last bit.

ITK's Mattes MI sums its samples on worker threads whose share of the work varies from run to run, so on two cores
the affine's metric differed in its ninth digit between runs, and the warped labels by a voxel or so (the
Harvard-Oxford putamen on the MNI152 template, clicked with the Colin27 + AAL pack: 3D Dice up to 0.01 apart between
runs of one protocol). The affine stage now runs on one thread (that registration, demons included, 6.7 -> 8.0 s on
2 cores); the demons stage gave the same labels run after run. On the old code this test failed every time it ran
(three runs of three).
"""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from medseg.data import sample
from medseg.io.read import read_image
from medseg.text import register as reg
from medseg.text.atlas_route import load_pack, to_sitk

pytestmark = pytest.mark.realdata


def test_two_registrations_of_one_scan_agree_exactly():
    scan = to_sitk(read_image(sample.path("colin27", "ch2.nii.gz")))
    template = to_sitk(load_pack().template)
    first, second = (reg.register(scan, template, demons_iterations=0) for _ in range(2))
    assert first.metric == second.metric
    a, b = sitk.AffineTransform(first.transform), sitk.AffineTransform(second.transform)
    assert np.array_equal(a.GetParameters(), b.GetParameters())
