"""A lone click at the edge of a cropped scan, with the real LiteMedSAM: the object holds the click.

The tptbox spine CT crop cuts L4 at its last rows. A click there (x 26, y 44 of 47 rows, slice 51; one of
benchmarks/lone_clicks.py's random clicks) gets box proposals whose masks all end one to three pixels short of it;
before stop 44 that gave an empty object. Measured (2026-12-06, `litemedsam`, atlas route off): 258 voxels, Dice
0.023 with L4 (the crop holds little of it there), empty with ``click.NEAR = 0``.
"""

from __future__ import annotations

import numpy as np
import pytest

from medseg.data import loaders, sample
from medseg.errors import MedsegError
from medseg.predict import click
from medseg.predict.predictor import Predictor
from medseg.predict.volume import VolumeSession

pytestmark = pytest.mark.realdata

CLICK = (26, 44, 51)  # x, y, z on the spine CT crop (z = array axis 0)


@pytest.fixture(scope="module")
def spine_ct(model):
    try:
        sample.fetch("spine")
    except MedsegError as exc:  # optional dataset: `make test` fetched it unless its source was unreachable
        pytest.skip(f"optional dataset spine unavailable: {exc}")
    case = loaders.load_labelled("spine", ["ct_vert"])[0]
    session = VolumeSession(Predictor(model), progress=False)
    session.set_volume(case.image)
    session.click_atlas = False
    return session, case.labels == 23  # L4


def lone_click(session: VolumeSession) -> np.ndarray:
    session.reset()
    x, y, z = CLICK
    return session.object_mask(session.add_point(x, y, z, positive=True, new_object=True)) > 0


def test_a_lone_click_at_the_crops_edge_gives_an_object_holding_it(spine_ct):
    session, l4 = spine_ct
    x, y, z = CLICK
    assert l4[z, y, x]
    mask = lone_click(session)
    assert mask[z, y, x] and mask.sum() >= 50
    assert 2 * (mask & l4).sum() / (mask.sum() + l4.sum()) > 0.01


def test_without_the_join_the_same_click_gives_nothing(spine_ct, monkeypatch):
    session, _ = spine_ct
    monkeypatch.setattr(click, "NEAR", 0.0)
    assert not lone_click(session).any()
