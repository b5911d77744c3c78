"""The 3D correction network's crop, inputs and paste-back, and a session's corrections through it (synthetic)."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from medseg.modeling.correction3d import Correction3D, Correction3DConfig
from medseg.predict.correct3d import MARGIN, corrected, crop_box, to_grid
from medseg.predict.volume import VolumeSession

sys.path.insert(0, str(Path(__file__).parent))
from fake_model import fake_predictor  # noqa: E402


class ClickPainter(torch.nn.Module):
    """Logits: the mask's (as the network's pass-through, ``Correction3D``), +10 where the positive click map is
    high, -10 where the negative one is."""

    config = SimpleNamespace(grid=(8, 16, 16))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = 6 * (x[:, 1:2] - 0.5)
        out = torch.where(x[:, 2:3] > 0.3, 10.0, out)
        return torch.where(x[:, 3:4] > 0.3, -10.0, out)


def test_crop_holds_mask_and_clicks_with_margins_and_stays_in_the_volume():
    mask = np.zeros((20, 60, 60), bool)
    mask[8:12, 20:30, 25:35] = True
    box = crop_box(mask, [(15, 50, 10, False)], mask.shape)
    assert box[0].start <= 8 and box[0].stop >= 16
    assert box[1].start <= 20 - MARGIN and box[1].stop >= 51
    assert box[2].start <= 10 - MARGIN and box[2].stop >= 35 + MARGIN
    edge = crop_box(np.zeros_like(mask), [(0, 0, 59, True)], mask.shape)
    assert [s.start for s in edge] == [0, 0, edge[2].start] and edge[2].stop == 60


def test_inputs_put_each_click_where_it_lies_in_the_crop():
    mask = np.zeros((10, 40, 40), bool)
    mask[3:7, 10:30, 10:30] = True
    image = np.broadcast_to(np.linspace(0, 255, 40), mask.shape)  # a smooth ramp: resampling keeps its spread
    clicks = [(5, 20, 20, True), (4, 12, 27, False)]
    box = crop_box(mask, clicks, mask.shape)
    x = to_grid(mask[box], image[box], clicks, box, (8, 16, 16))
    assert x.shape == (4, 8, 16, 16)
    assert abs(float(x[0].mean())) < 0.1 and abs(float(x[0].std()) - 1) < 0.15  # z-scored in the crop
    for channel, (z, r, c, _) in zip((2, 3), clicks, strict=True):
        peak = np.unravel_index(int(x[channel].argmax()), (8, 16, 16))
        size = [s.stop - s.start for s in box]
        back = [(p + 0.5) * n / g - 0.5 + s.start for p, n, g, s in zip(peak, size, (8, 16, 16), box, strict=True)]
        assert np.allclose(back, (z, r, c), atol=max(size) / 16 + 0.5)


def test_a_fresh_network_keeps_the_mask_it_is_given():
    """The mask passes straight into the logits: an untrained network returns the mask (up to resampling)."""
    torch.manual_seed(0)
    net = Correction3D(Correction3DConfig(grid=(8, 16, 16), channels=4)).eval()
    with torch.no_grad():
        net.head.weight.zero_()
        net.head.bias.zero_()
    mask = np.zeros((12, 40, 40), bool)
    mask[3:9, 8:24, 10:26] = True
    out = corrected(net, np.zeros(mask.shape, np.float32), mask, [(5, 15, 17, True)])
    assert 2 * (out & mask).sum() / (out.sum() + mask.sum()) > 0.95


def test_session_corrections_through_the_network_and_undo_is_exact():
    vol = np.random.default_rng(0).integers(10, 30, (16, 48, 48)).astype(np.uint8)
    session = VolumeSession(fake_predictor(), progress=False)
    session.set_volume(vol)
    obj = session.add_mask(np.pad(np.ones((4, 10, 10), bool), ((6, 6), (19, 19), (19, 19))))
    before = session.object_mask(obj).copy()
    session.correction_net, session.net_answers = ClickPainter(), "all"
    session.add_point(31, 24, 7, positive=True, obj=obj)
    after = session.object_mask(obj)
    assert after[7, 24, 31] and after.sum() > before.sum()
    assert np.array_equal(after & before, before)
    session.add_point(22, 22, 8, positive=False, obj=obj)
    assert not session.object_mask(obj)[8, 22, 22]
    session.undo()
    assert np.array_equal(session.object_mask(obj), after)
    session.undo()
    assert np.array_equal(session.object_mask(obj), before)


class CountingPainter(ClickPainter):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return super().forward(x)


def ball_session() -> tuple[VolumeSession, int, np.ndarray]:
    """A bright ball in noise and the object a click at its centre gives (the ball: the fake model's region under
    any click is the whole bright part)."""
    z, y, x = np.ogrid[:24, :48, :48]
    ball = (z - 12) ** 2 + (y - 24) ** 2 + (x - 24) ** 2 <= 64
    vol = np.random.default_rng(0).integers(10, 30, ball.shape).astype(np.uint8)
    vol[ball] = 200
    session = VolumeSession(fake_predictor(), progress=False)
    session.set_volume(vol)
    obj = session.add_point(24, 24, 12)
    assert np.array_equal(session.object_mask(obj).astype(bool), ball)
    return session, obj, ball


def test_a_refused_negative_click_is_answered_by_the_network_and_undone_exactly():
    """At the ball's centre the model's region is the whole slice's mask, more than a correction may remove: the
    network answers (the default ``net_answers``, "refused"), not the rules' fallback."""
    session, obj, ball = ball_session()
    net = session.correction_net = CountingPainter()
    session.add_point(24, 24, 12, positive=False, obj=obj)
    after = session.object_mask(obj).astype(bool)
    assert net.calls == 1 and not after[12, 24, 24]
    removed = ball & ~after
    assert 0 < removed.sum() < ball.sum() / 2 and not (after & ~ball).any()
    zz, yy, xx = np.nonzero(removed)  # the painter's negative blob: 2.3 grid voxels around the click, ~3 slices each
    assert np.abs(zz - 12).max() <= 8 and np.abs(yy - 24).max() <= 5 and np.abs(xx - 24).max() <= 5
    session.undo()
    assert np.array_equal(session.object_mask(obj).astype(bool), ball)
    session.correction_net = None  # the rules alone: their fallback answers
    session.add_point(24, 24, 12, positive=False, obj=obj)
    assert net.calls == 1 and not session.object_mask(obj)[12, 24, 24]


def test_the_networks_answer_survives_a_later_click_that_segments_the_object_again():
    """The network's change is kept as edits on top of the object's slices: a positive click outside the object's box
    grows the box and segments the object again (``_rebox``), and the part the network removed stays removed."""
    session, obj, ball = ball_session()
    session.correction_net = CountingPainter()
    session.add_point(24, 24, 12, positive=False, obj=obj)
    removed = ball & ~session.object_mask(obj).astype(bool)
    assert removed.any()
    session.add_point(38, 24, 12, positive=True, obj=obj)  # beside the ball, outside its box
    after = session.object_mask(obj).astype(bool)
    assert session.correction_net.calls == 1 and after[12, 24, 38]
    assert not (after & removed).any()
    session.undo()
    assert np.array_equal(session.object_mask(obj).astype(bool), ball & ~removed)


def test_a_click_the_rules_answer_does_not_run_the_network():
    session, obj, ball = ball_session()
    net = session.correction_net = CountingPainter()
    session.add_point(24, 24, 12, positive=True, obj=obj)  # inside the mask: nothing to change
    session.add_point(40, 40, 12, positive=True, obj=obj)  # a positive click outside: the rules' own
    assert net.calls == 0
    box = session.add_box3d(16, 16, 4, 32, 32, 20)  # a 3D box's object: its refused negative click keeps the rules
    session.add_point(24, 24, 12, positive=False, obj=box)
    assert net.calls == 0 and not session.object_mask(box)[12, 24, 24]


def test_the_packaged_network_loads_strictly_from_its_verified_file(tmp_path):
    from medseg.build import load_correction_net
    from medseg.checkpoints import packaged_file, sha256_of
    from medseg.errors import MedsegError
    from medseg.registry import CORRECTION_NET

    path = packaged_file(CORRECTION_NET, "weights")
    assert path.stat().st_size == CORRECTION_NET.size < 20e6 and sha256_of(path) == CORRECTION_NET.sha256
    saved = torch.load(path, weights_only=True)
    assert all(v.dtype == torch.float16 for v in saved["state_dict"].values())
    net = load_correction_net()
    assert isinstance(net, Correction3D) and not net.training and net is load_correction_net()
    assert sum(p.numel() for p in net.parameters()) == 372_938 and net.mask_weight.dtype == torch.float32
    bad = tmp_path / "bad.pt"
    torch.save({"config": {"grid": [24, 48, 48], "channels": 4}, "state_dict": saved["state_dict"]}, bad)
    with pytest.raises(MedsegError, match="does not fit its config"):
        load_correction_net(bad)
    bad.write_bytes(b"not a torch file")
    with pytest.raises(MedsegError):
        load_correction_net(bad)
    torch.save({"state_dict": {}}, bad)
    with pytest.raises(MedsegError, match="not a correction network file"):
        load_correction_net(bad)
