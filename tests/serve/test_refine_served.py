"""`medseg serve --no-refine` and `medseg view --no-refine` (fake model; and how both hand --no-correction-net on):
every session keeps the model's border, as `medseg segment --no-refine` does; by default a served box's border is
drawn again (medseg.predict.refine), as a direct session's is. The Dice this brings on real data:
benchmarks/results/interactive/box_refine.md."""

from __future__ import annotations

import numpy as np
import pytest
from nnInteractive.inference.remote import nnInteractiveRemoteInferenceSession
from tests.predict.fake_model import fake_predictor
from tests.predict.test_volume import drum_with_rim

from medseg.errors import MedsegError
from medseg.predict.volume import VolumeSession
from medseg.serve.limits import Limits
from medseg.serve.run import Background, build

BOX = (12, 22, 6, 28, 38, 18)  # x0, y0, z0, x1, y1, z1 (inclusive) around the drum


def direct(refine: bool) -> np.ndarray:
    s = VolumeSession(fake_predictor())
    s.set_volume(drum_with_rim()[0])
    s.refine = refine
    return s.object_mask(s.add_box3d(*BOX)) > 0


def served(**options) -> np.ndarray:
    app, _ = build(Limits(), predictor=fake_predictor(), **options)
    bg = Background(app).start()
    try:
        s = nnInteractiveRemoteInferenceSession(bg.url, read_timeout=120)
        s.set_image(drum_with_rim()[0][None].astype(np.float32), {"spacing": [1.0, 1.0, 1.0]})
        buf = np.zeros(drum_with_rim()[0].shape, np.uint8)
        s.set_target_buffer(buf)
        x0, y0, z0, x1, y1, z1 = BOX
        s.add_bbox_interaction([[z0, z1 + 1], [y0, y1 + 1], [x0, x1 + 1]], include_interaction=True)
        s.close()
        return buf > 0
    finally:
        bg.stop()


def test_a_served_box_is_refined_unless_the_server_says_not():
    refined, model = direct(True), direct(False)
    assert (refined != model).sum() > 100  # the drum's rim: the walker reaches it, the fake model does not
    np.testing.assert_array_equal(served(), refined)
    np.testing.assert_array_equal(served(refine=False), model)


@pytest.mark.parametrize("command", [["serve"], ["view", "scan.nii.gz"]])
@pytest.mark.parametrize("flag, key", [("--no-refine", "refine"), ("--no-correction-net", "correction_net")])
def test_the_cli_hands_its_switches_to_every_session(command, flag, key, monkeypatch):
    """--no-refine and --no-correction-net (refused negative clicks by the rules' fallback, not medseg's 3D correction
    network) reach the server, which sets every session's attribute (tests/predict/test_no_correction_net.py)."""
    import medseg.io
    import medseg.serve.run as run
    from medseg.cli.main import main

    seen = {}

    def capture(*args, **kwargs):
        seen.update(kwargs)
        raise MedsegError("stopped here by the test")

    monkeypatch.setattr(run, "serve", capture)
    monkeypatch.setattr(run, "build", capture)
    monkeypatch.setattr(run, "check_port", lambda *a: None)
    monkeypatch.setattr(medseg.io, "read_image", lambda path: None)
    assert main([*command, flag]) == 2  # the one-line error of the stand-in
    assert seen[key] is False and all(seen[k] is True for k in ("refine", "correction_net") if k != key)
