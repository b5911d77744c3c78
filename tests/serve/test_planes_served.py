"""`medseg serve --planes 3` and `medseg view --planes 3` (fake model): every session segments new objects along
three axes, as `medseg segment --planes 3` does; the Dice this brings on real data is in
benchmarks/results/interactive/planes/README.md."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from nnInteractive.inference.remote import nnInteractiveRemoteInferenceSession
from tests.predict.fake_model import fake_predictor
from tests.predict.test_planes import volume

from medseg.errors import MedsegError
from medseg.io.image import Geometry, Image
from medseg.predict.volume import VolumeSession
from medseg.serve.app import Server
from medseg.serve.limits import Limits
from medseg.serve.run import Background, build

BOX = (12, 6, 2, 40, 30, 22)  # x0, y0, z0, x1, y1, z1 (inclusive) around the blob of test_planes


def direct(planes: int) -> np.ndarray:
    s = VolumeSession(fake_predictor())
    s.set_volume(volume())
    s.planes = planes
    return s.object_mask(s.add_box3d(*BOX)) > 0


def test_a_served_box_is_segmented_along_three_axes():
    one, three = direct(1), direct(3)
    # the fake model's blob: each axis alone is blockier (measured 29 voxels apart with the borders drawn again by
    # medseg.predict.refine, as a served session does)
    assert (one != three).sum() > 20
    app, server = build(Limits(), predictor=fake_predictor(), planes=3)
    bg = Background(app).start()
    try:
        s = nnInteractiveRemoteInferenceSession(bg.url, read_timeout=120)
        s.set_image(volume()[None].astype(np.float32), {"spacing": [1.0, 1.0, 1.0]})
        buf = np.zeros(volume().shape, np.uint8)
        s.set_target_buffer(buf)
        x0, y0, z0, x1, y1, z1 = BOX
        s.add_bbox_interaction([[z0, z1 + 1], [y0, y1 + 1], [x0, x1 + 1]], include_interaction=True)
        np.testing.assert_array_equal(buf > 0, three)
        s.close()
    finally:
        bg.stop()


def test_the_viewer_says_and_uses_three_axes():
    scan = Image(volume(), Geometry.identity(3))
    app, _ = build(Limits(), predictor=fake_predictor(), viewer_scan=scan, planes=3)
    bg = Background(app).start()
    try:
        with httpx.Client(base_url=bg.url, timeout=120) as http:
            assert http.get("/api/info").json()["planes"] == 3
            x0, y0, z0, x1, y1, z1 = BOX  # identity geometry: RAS mm = (-x, -y, z)
            r = http.post("/api/box", json={"a": [-x0, -y0, z0], "b": [-x1, -y1, z1], "three_d": True})
            assert r.status_code == 200
            labels = np.frombuffer(http.get("/api/labels").content, np.uint8).reshape(scan.array.shape)
            np.testing.assert_array_equal(labels > 0, direct(3))
    finally:
        bg.stop()


def test_the_page_switches_three_axes_on_and_off():
    scan = Image(volume(), Geometry.identity(3))
    app, _ = build(Limits(), predictor=fake_predictor(), viewer_scan=scan)
    bg = Background(app).start()
    x0, y0, z0, x1, y1, z1 = BOX
    corners = {"a": [-x0, -y0, z0], "b": [-x1, -y1, z1], "three_d": True}
    try:
        with httpx.Client(base_url=bg.url, timeout=120) as http:
            info = http.get("/api/info").json()
            assert info["planes"] == 1 and info["three_axes"] is True

            def labels() -> np.ndarray:
                return np.frombuffer(http.get("/api/labels").content, np.uint8).reshape(scan.array.shape) > 0

            assert http.post("/api/planes", json={"planes": 3}).json() == {"planes": 3}
            assert http.get("/api/info").json()["planes"] == 3
            assert http.post("/api/box", json=corners).status_code == 200
            np.testing.assert_array_equal(labels(), direct(3))
            assert http.post("/api/undo", json={}).status_code == 200
            assert http.post("/api/planes", json={"planes": 1}).json() == {"planes": 1}
            assert http.post("/api/box", json=corners).status_code == 200
            np.testing.assert_array_equal(labels(), direct(1))
            for bad in (2, True, "3", None):
                r = http.post("/api/planes", json={"planes": bad})
                assert r.status_code == 400 and "'planes' must be 1 or 3" in r.json()["detail"], r.text
            assert http.get("/api/info").json()["planes"] == 1
    finally:
        bg.stop()


def test_the_page_refuses_three_axes_on_thick_slices():
    scan = Image(volume(), Geometry((1.0, 1.0, 3.0), (0.0, 0.0, 0.0), tuple(np.eye(3).ravel().tolist())))
    app, _ = build(Limits(), predictor=fake_predictor(), viewer_scan=scan)
    bg = Background(app).start()
    try:
        with httpx.Client(base_url=bg.url, timeout=120) as http:
            assert http.get("/api/info").json()["three_axes"] is False
            r = http.post("/api/planes", json={"planes": 3})
            assert r.status_code == 400 and "near-isotropic" in r.json()["detail"] and "1 x 1 x 3" in r.json()["detail"]
            assert http.get("/api/info").json()["planes"] == 1
    finally:
        bg.stop()


def test_planes_other_than_1_or_3_are_refused():
    with pytest.raises(MedsegError, match="planes must be 1 or 3"):
        Server(fake_predictor(), Limits(), planes=2)


@pytest.mark.parametrize("command", [["serve", "--planes", "2"], ["view", "scan.nii.gz", "--planes", "2"]])
def test_the_cli_refuses_other_planes_in_one_line(command, capsys):
    from medseg.cli.main import main

    assert main(command) == 2
    err = capsys.readouterr().err
    assert "--planes" in err and err.count("\n") == 1
