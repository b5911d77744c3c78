"""Real-model floors on the sample data (``pytest -m realdata``; needs `medseg fetch-data` and the weights)."""

from __future__ import annotations

import pytest

from medseg.data import sample

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def nuclei_dataset(tmp_path_factory):
    sample.path("nuclei", "img2d.tif")  # one-line error naming `medseg fetch-data` when not fetched
    import importlib.util
    import sys
    from pathlib import Path

    script = Path(__file__).parents[2] / "scripts" / "make_sample_datasets.py"
    spec = importlib.util.spec_from_file_location("make_sample_datasets", script)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.nuclei(tmp_path_factory.mktemp("bench"))


def test_box2d_nuclei_floor(nuclei_dataset, tmp_path):
    # Measured with LiteMedSAM: Dice 0.860, NSD@2mm 0.800, HD95 4.12 px (one box per nucleus, no jitter).
    from medseg.build import build_model
    from medseg.evaluate.datasets import open_dataset
    from medseg.evaluate.protocols import ProtocolConfig
    from medseg.evaluate.runner import all_rows, run_protocol
    from medseg.predict.predictor import Predictor

    records = run_protocol(open_dataset(nuclei_dataset), lambda: Predictor(build_model()), ProtocolConfig("box2d"),
                           tmp_path / "run", progress=False)
    (row,) = all_rows(records)
    assert row["dice"] >= 0.83
    assert row["nsd"] >= 0.76
