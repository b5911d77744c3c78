"""VolumeSession on Colin27 with the real LiteMedSAM: 3D Dice floors from 3D boxes of AAL structures.

Floors sit below the values scripts/eval_volume.py measured (benchmarks/results/volume_dice.md).
About 20 slice encodes in all (amygdala z 44..61), a few minutes on 2 busy cores.
"""

from __future__ import annotations

import numpy as np
import pytest

from medseg.data import sample
from medseg.io import read_image
from medseg.predict.predictor import Predictor
from medseg.predict.volume import VolumeSession

pytestmark = pytest.mark.realdata


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / (a.sum() + b.sum()))


def box_of(gt: np.ndarray) -> tuple[int, ...]:
    zs, ys, xs = np.nonzero(gt)
    return int(xs.min()), int(ys.min()), int(zs.min()), int(xs.max()), int(ys.max()), int(zs.max())


@pytest.fixture(scope="module")
def colin(model):
    session = VolumeSession(Predictor(model))
    session.set_volume(read_image(sample.path("colin27", "ch2.nii.gz")))
    aal, ids = read_image(sample.path("colin27", "aal.nii.gz")).array, sample.aal_labels()
    return session, {name: aal == ids[name] for name in ("Amygdala_L", "Amygdala_R")}


# measured by scripts/eval_volume.py (benchmarks/results/volume_dice.md, ONNX Runtime and OpenVINO
# agree to 3 decimals): Amygdala_L baseline 0.371, default 0.479 (the 3D box on every slice)
FLOORS = {"baseline": 0.34, "default": 0.45}


@pytest.mark.parametrize("rule", ["baseline", "default"])
def test_amygdala_left_from_a_3d_box(colin, rule):
    session, gt = colin
    session.reset()
    label = session.add_box3d(*box_of(gt["Amygdala_L"]), propagation=rule)
    assert dice(session.object_mask(label), gt["Amygdala_L"]) >= FLOORS[rule]
    assert set(session.cache.encoded) == set(range(44, 62))  # the box's slices, each once


def test_second_object_on_encoded_slices_costs_no_new_encodes(colin):
    session, gt = colin
    session.reset()
    session.add_box3d(*box_of(gt["Amygdala_L"]))
    before = session.encodes
    x0, y0, z0, x1, y1, z1 = box_of(gt["Amygdala_R"])  # z 42..61: keep it to the encoded 44..61
    label = session.add_box3d(x0, y0, max(z0, 44), x1, y1, z1)
    assert session.encodes == before
    assert label == 2 and (session.mask == 2).sum() > 0.5 * gt["Amygdala_R"][44:].sum()
