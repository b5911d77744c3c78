"""A randomly initialised LiteMedSAM exported once per test session, shared by the engine tests."""

from __future__ import annotations

import pytest
import torch

from medseg.build import build_architecture, get_card
from medseg.engine import available, get_engine


@pytest.fixture(scope="session")
def random_model(tmp_path_factory):
    """An untrained LiteMedSAM with a made-up checkpoint hash, exported into a temporary cache.

    Returns (model, {engine name: engine}, cache folder).
    """
    torch.manual_seed(0)
    model = build_architecture(get_card("litemedsam")).eval()
    model.checkpoint_sha256 = "0" * 64
    cache = tmp_path_factory.mktemp("engines")
    names = ["eager", *(n for n in ("native", "onnx", "openvino") if available(n))]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MEDSEG_ENGINE_CACHE", str(cache))
        engines = {n: get_engine(model, n) for n in names}
    return model, engines, cache
