"""Shared fixtures: one real LiteMedSAM model per test session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def model():
    from medseg.build import build_model

    return build_model("litemedsam")


@pytest.fixture()
def predictor(model):
    from medseg.predict.predictor import Predictor

    return Predictor(model)
