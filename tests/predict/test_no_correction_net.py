"""`--no-correction-net` on `medseg segment` and on the server behind `serve` and `view` (fake model, a painter for
the network): a negative click the rules refuse is answered by the network by default and by the rules' fallback with
the option. The serve / view flags themselves: tests/serve/test_refine_served.py."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from medseg.cli.main import main

sys.path.insert(0, str(Path(__file__).parent))
from fake_model import FakeEngine, FakeSAM, fake_predictor  # noqa: E402
from test_correct3d import CountingPainter  # noqa: E402


@pytest.fixture
def painter(monkeypatch, tmp_path) -> CountingPainter:
    monkeypatch.setenv("MEDSEG_ENGINE_CACHE", str(tmp_path / "engines"))
    monkeypatch.setattr("medseg.build.build_model", lambda *a, **k: FakeSAM())
    monkeypatch.setattr("medseg.predict.predictor.get_engine", lambda *a, **k: FakeEngine())
    net = CountingPainter()
    monkeypatch.setattr("medseg.build.load_correction_net", lambda path=None: net)
    return net


def test_segment_answers_a_refused_negative_click_by_the_network_unless_told_not(painter, tmp_path):
    z, y, x = np.ogrid[:24, :48, :48]
    ball = (z - 12) ** 2 + (y - 24) ** 2 + (x - 24) ** 2 <= 64
    vol = np.random.default_rng(0).integers(10, 30, ball.shape).astype(np.uint8)
    vol[ball] = 200
    scan = tmp_path / "ball.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(vol), str(scan))
    prompts = tmp_path / "p.json"  # a lone click at the centre, then a negative click there: refused by the rules
    prompts.write_text(json.dumps({"objects": [
        {"propagate": True, "interactions": [{"point": [24, 24, 12]}, {"point": [24, 24, 12], "label": 0}]}]}))

    def run(*extra: str) -> np.ndarray:
        out = tmp_path / "mask.nii.gz"
        out.unlink(missing_ok=True)
        assert main(["segment", str(scan), "-o", str(out), "--prompts", str(prompts), "--no-click-atlas",
                     *extra]) == 0
        return sitk.GetArrayFromImage(sitk.ReadImage(str(out))) == 1

    by_net = run()
    assert painter.calls == 1 and not by_net[12, 24, 24] and by_net.sum() > ball.sum() / 2
    by_rules = run("--no-correction-net")
    assert painter.calls == 1 and not by_rules[12, 24, 24]  # the rules' fallback also removes the click
    assert (by_net != by_rules).any()


def test_a_server_without_the_network_gives_every_session_none():
    from medseg.serve.app import Server
    from medseg.serve.limits import Limits

    assert Server(fake_predictor(), Limits()).new_session().correction_net == "packaged"
    assert Server(fake_predictor(), Limits(), correction_net=False).new_session().correction_net is None
