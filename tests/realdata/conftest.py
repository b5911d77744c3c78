"""Shared set-up of the real-data tests: the CVPR25 click protocol on a fetched sample case."""

from __future__ import annotations

import numpy as np
import pytest

from medseg.data import loaders, sample
from medseg.evaluate.protocols import ProtocolConfig, run_case
from medseg.predict.predictor import Predictor


@pytest.fixture
def cvpr25_steps(model):
    """(dataset, case, label, clicks, with_box=False, refine=True) -> the protocol's steps (the box's first when
    with_box), each a dict with "dice", "positive", ...; LiteMedSAM, atlas route off."""

    def run(dataset: str, case: str, label: int, clicks: int, with_box: bool = False,
            refine: bool = True) -> list[dict]:
        sample.fetch(dataset)
        found = loaders.load_labelled(dataset, [case])[0]
        cfg = ProtocolConfig(protocol="interactive", clicks=clicks, with_box=with_box, click_atlas=False, refine=refine)
        return run_case("interactive", Predictor(model), found.image, found.labels, [label], cfg,
                        np.random.default_rng(0)).rows[0]["steps"]

    return run
