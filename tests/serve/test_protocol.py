"""The real nninteractive-client against `medseg serve` (a fake model): the protocol, leases, keys, limits,
and 4xx answers to bad payloads. The real-model conformance test is test_protocol_realdata.py."""

from __future__ import annotations

import json
import socket
import struct

import blosc2
import httpx
import numpy as np
import pytest
from nnInteractive.inference.remote import (
    ServerAtCapacityError,
    SessionExpiredError,
    nnInteractiveRemoteInferenceSession,
)
from nnInteractive.inference.remote.serialization import pack_array
from tests.predict.fake_model import fake_predictor

from medseg.errors import MedsegError
from medseg.serve.limits import Limits
from medseg.serve.run import Background, build, check_host

SHAPE = (12, 64, 64)


def volume() -> np.ndarray:
    """A dark volume with a bright cube (z 3..8, y 20..43, x 16..39): the fake model segments bright voxels."""
    v = np.full(SHAPE, 10.0, np.float32)
    v[3:9, 20:44, 16:40] = 200.0
    return v


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def served(request):
    opts = getattr(request, "param", {})
    app, server = build(Limits(**opts.get("limits", {})), opts.get("key"), predictor=fake_predictor())
    clock = Clock()
    server.leases._clock = clock
    bg = Background(app).start()
    yield bg, server, clock
    bg.stop()


def client(bg, key=None) -> nnInteractiveRemoteInferenceSession:
    return nnInteractiveRemoteInferenceSession(bg.url, api_key=key, read_timeout=120)


def loaded(bg, key=None):
    s = client(bg, key)
    s.set_image(volume()[None], {"spacing": [2.0, 1.0, 1.0]})
    buf = np.zeros(SHAPE, np.uint8)
    s.set_target_buffer(buf)
    return s, buf


def test_capabilities_tell_what_medseg_does(served):
    bg, _, _ = served
    s = client(bg)
    assert s.supported_interactions == {"points": True, "bbox2d": True, "bbox3d": True,
                                        "scribble": False, "lasso": False}
    assert s.supports_undo and s.supports_initial_label and s.ping()
    s.close()


def test_box_click_undo_reset_through_the_client(served):
    bg, _, _ = served
    s, buf = loaded(bg)
    changed = s.add_bbox_interaction([[2, 10], [16, 48], [12, 44]], include_interaction=True)
    assert changed is not None and buf[3:9, 20:44, 16:40].all() and buf.sum() == 6 * 24 * 24
    after_box = buf.copy()
    s.add_point_interaction([5, 30, 30], include_interaction=False)  # a negative click inside removes a region
    assert buf.sum() < after_box.sum() and buf[5, 30, 30] == 0
    assert s.undo() is True
    np.testing.assert_array_equal(buf, after_box)  # exactly the mask before the click
    assert s.undo() is True and buf.sum() == 0
    assert s.undo() is False
    s.add_bbox_interaction([[5, 6], [16, 48], [12, 44]], include_interaction=True)  # 2D box on slice 5
    assert buf[5].sum() > 0
    s.reset_interactions()
    assert buf.sum() == 0 and s.undo() is False  # reset empties and starts a new history
    s.close()


def test_protocol_sessions_leave_clicks_to_the_model(served):
    """The protocol carries no orientation, so the atlas's structures (medseg.text.pointed) are not used there."""
    bg, server, _ = served
    s, _ = loaded(bg)
    (lease,) = server.leases._leases.values()
    assert lease.state.session.click_atlas is False
    s.close()


def test_run_prediction_false_then_predict(served):
    bg, _, _ = served
    s, buf = loaded(bg)
    assert s.add_bbox_interaction([[2, 10], [16, 48], [12, 44]], True, run_prediction=False) is None
    assert buf.sum() == 0
    assert s._predict() is not None and buf.sum() == 6 * 24 * 24
    assert s._predict() is None  # nothing queued
    s.close()


def test_initial_segmentation_is_a_prompt_clicks_correct(served):
    bg, _, _ = served
    s, buf = loaded(bg)
    seed = np.zeros(SHAPE, np.uint8)
    seed[4:7, 25:35, 20:30] = 1
    s.add_initial_seg_interaction(seed)
    np.testing.assert_array_equal(buf, seed)
    s.add_point_interaction([5, 30, 25], include_interaction=False)
    assert buf.sum() < seed.sum() and buf[5, 30, 25] == 0
    s.undo()
    np.testing.assert_array_equal(buf, seed)
    s.close()


def test_two_leases_do_not_see_each_other(served):
    bg, _, _ = served
    a, buf_a = loaded(bg)
    b, buf_b = loaded(bg)
    a.add_bbox_interaction([[2, 10], [16, 48], [12, 44]], True)
    assert buf_a.sum() > 0 and b._predict() is None and buf_b.sum() == 0
    assert b.undo() is False
    b.add_bbox_interaction([[5, 6], [16, 48], [12, 44]], True)
    assert 0 < buf_b.sum() < buf_a.sum()
    a.close()
    b.close()


def test_unsupported_prompts_are_refused_with_a_message(served):
    bg, _, _ = served
    s, _ = loaded(bg)
    for call in (lambda: s.add_scribble_interaction(np.ones(SHAPE, np.uint8), True),
                 lambda: s.add_lasso_interaction(np.ones(SHAPE, np.uint8), True),
                 lambda: s.add_bbox_interaction([[2, 10], [16, 48], [12, 44]], False),
                 lambda: s.add_point_interaction([5, 30, 30], False)):
        with pytest.raises(httpx.HTTPStatusError) as info:
            call()
        assert info.value.response.status_code == 400 and info.value.response.json()["detail"]
    s.close()


@pytest.mark.parametrize("served", [{"limits": {"max_sessions": 1}}], indirect=True)
def test_full_server_503_and_release_frees_the_slot(served):
    bg, _, _ = served
    a = client(bg)
    with pytest.raises(ServerAtCapacityError):
        client(bg)
    a.close()
    client(bg).close()


@pytest.mark.parametrize("served", [{"limits": {"idle_seconds": 100, "liveness_seconds": 30}}], indirect=True)
def test_expired_leases_get_410(served):
    bg, server, clock = served
    s, _ = loaded(bg)
    clock.now += 20
    assert s.heartbeat() == pytest.approx(80)  # a heartbeat proves liveness, does not postpone idleness
    clock.now += 20
    s.heartbeat()
    clock.now += 61  # 101 s without an action: idle
    with pytest.raises(SessionExpiredError):
        s.lease_status()
    t = client(bg)
    clock.now += 31  # no request at all for 31 s: dead
    with pytest.raises(SessionExpiredError):
        t.add_point_interaction([1, 1, 1], True)
    assert server.leases.reaped == 2


@pytest.mark.parametrize("served", [{"key": "correct-horse"}], indirect=True)
def test_wrong_or_missing_key_401(served):
    bg, _, _ = served
    for key in ("wrong-key-123", None):
        with pytest.raises(httpx.HTTPStatusError) as info:
            client(bg, key)
        assert info.value.response.status_code == 401
    assert httpx.get(bg.url + "/healthz").status_code == 200
    client(bg, "correct-horse").close()


def test_non_local_host_needs_a_key():
    with pytest.raises(MedsegError, match="--api-key"):
        check_host("0.0.0.0", None)
    check_host("0.0.0.0", "a-long-key")
    check_host("127.0.0.1", None)


@pytest.mark.parametrize(("argv", "message"), [
    (["serve", "--host", "0.0.0.0"], "--api-key"), (["serve", "--api-key", "short"], "at least 8"),
    (["serve", "--port", "0"], "--port"), (["serve", "--max-sessions", "0"], "--max-sessions"),
    (["serve", "--liveness-timeout", "-1"], "--liveness-timeout"), (["serve", "--idle-timeout", "0"], "--idle-timeout"),
    (["view", "/no/such/scan.nii.gz"], "no such file")])
def test_cli_refuses_with_one_line(argv, message, capsys):
    from medseg.cli.main import main

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_cli_refuses_a_port_in_use(capsys):
    from medseg.cli.main import main

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        assert main(["serve", "--port", str(holder.getsockname()[1])]) == 2
    assert "choose another --port" in capsys.readouterr().err


def packed_header(dtype: str, shape: tuple[int, ...], nchunks: int = 0) -> bytes:
    name = dtype.encode()
    return (struct.pack(f"<4sBBBB{len(name)}s", b"NNIA", 1, 1, len(shape), len(name), name)
            + struct.pack(f"<{len(shape)}q", *shape) + struct.pack("<I", nchunks))


def bad_requests() -> list[tuple[str, str, dict, bytes, int]]:
    """(name, path, headers, body, expected status)."""
    good = pack_array(volume()[None])
    j = {"Content-Type": "application/json"}
    return [
        ("huge declared image", "/set_image", {}, packed_header("float32", (1, 100000, 100000, 100000), 1)
         + struct.pack("<QQ", 1 << 30, 10) + b"x" * 10, 413),
        ("bad magic", "/set_image", {}, b"JUNK" + good[4:], 400),
        ("truncated", "/set_image", {}, good[: len(good) // 2], 400),
        ("too short", "/set_image", {}, b"NN", 400),
        ("bad dtype", "/set_image", {}, packed_header("complex128", (1, 2, 2, 2)), 400),
        ("object dtype", "/set_image", {}, packed_header("O", (1, 2, 2, 2)), 400),
        ("3d image", "/set_image", {}, pack_array(volume()), 400),
        ("two channels", "/set_image", {}, pack_array(np.stack([volume(), volume()])), 400),
        ("zero dim", "/set_image", {}, packed_header("float32", (1, 0, 2, 2)), 400),
        ("chunks lie", "/set_image", {}, packed_header("float32", (1, 2, 2, 2), 1) + struct.pack("<QQ", 8, 4)
         + b"abcd", 400),
        ("corrupt frame", "/set_image", {}, good[:60] + bytes(b ^ 0x5A for b in good[60:200]) + good[200:], 400),
        ("bad meta", "/set_image", {"X-Meta": "{not json"}, good, 400),
        ("bad spacing", "/set_image", {"X-Meta": json.dumps({"image_properties": {"spacing": [1, "a", 1]}})},
         good, 400),
        ("not json", "/add_point_interaction", j, b"{", 400),
        ("json list", "/add_point_interaction", j, b"[1, 2]", 400),
        ("missing flag", "/add_point_interaction", j, json.dumps({"coordinates": [1, 1, 1]}).encode(), 400),
        ("flag not bool", "/add_point_interaction", j,
         json.dumps({"coordinates": [1, 1, 1], "include_interaction": 1}).encode(), 400),
        ("nan point", "/add_point_interaction", j,
         b'{"coordinates": [NaN, 1, 1], "include_interaction": true}', 400),
        ("point outside", "/add_point_interaction", j,
         json.dumps({"coordinates": [1, 1, 999], "include_interaction": True}).encode(), 400),
        ("point wrong length", "/add_point_interaction", j,
         json.dumps({"coordinates": [1, 1], "include_interaction": True}).encode(), 400),
        ("box not nested", "/add_bbox_interaction", j,
         json.dumps({"bbox_coords": [1, 2, 3], "include_interaction": True}).encode(), 400),
        ("box empty", "/add_bbox_interaction", j,
         json.dumps({"bbox_coords": [[3, 3], [1, 9], [1, 9]], "include_interaction": True}).encode(), 400),
        ("box outside", "/add_bbox_interaction", j,
         json.dumps({"bbox_coords": [[200, 300], [1, 9], [1, 9]], "include_interaction": True}).encode(), 400),
        ("buffer huge", "/set_target_buffer", j, json.dumps({"shape": [10**6, 10**6, 10**6],
                                                             "dtype": "uint8"}).encode(), 413),
        ("buffer dtype", "/set_target_buffer", j, json.dumps({"shape": [2, 2, 2], "dtype": "complex64"}).encode(),
         400),
        ("buffer shape", "/set_target_buffer", j, json.dumps({"shape": [2, 2, 2], "dtype": "uint8"}).encode(), 400),
        ("seg shape", "/add_initial_seg_interaction", {}, pack_array(np.ones((2, 2, 2), np.uint8)), 400),
        ("autozoom not bool", "/set_do_autozoom", j, b'{"do_autozoom": "yes"}', 400),
    ]


def test_bad_payloads_get_4xx_with_a_message_and_the_server_lives(served):
    bg, _, _ = served
    s, buf = loaded(bg)
    token = s._lease_token
    with httpx.Client(base_url=bg.url, headers={"X-Lease-Token": token}, timeout=30) as http:
        for name, path, headers, body, status in bad_requests():
            r = http.post(path, content=body, headers=headers)
            assert r.status_code == status, (name, r.status_code, r.text)
            assert r.json()["detail"], name
        assert http.post("/undo", headers={"X-Lease-Token": "nope"}).status_code == 410
        assert http.post("/undo", headers={"X-Lease-Token": ""}).status_code == 410
    assert declared_too_large(bg, token).startswith("HTTP/1.1 413")
    s.add_bbox_interaction([[2, 10], [16, 48], [12, 44]], True)  # the session still works
    assert buf.sum() == 6 * 24 * 24
    s.close()


def declared_too_large(bg, token: str) -> str:
    """A body that claims 1 TB is refused from its Content-Length, before a byte of it is read."""
    with socket.create_connection((bg.host, bg.port), timeout=30) as sock:
        sock.sendall(f"POST /set_image HTTP/1.1\r\nHost: x\r\nX-Lease-Token: {token}\r\n"
                     f"Content-Length: {10**12}\r\n\r\n".encode())
        return sock.recv(4096).decode(errors="replace")


def test_random_corruptions_of_a_packed_body_are_4xx(served):
    bg, _, _ = served
    s, _ = loaded(bg)
    good = pack_array(volume()[None], filters=[blosc2.Filter.NOFILTER])
    rng = np.random.default_rng(0)
    with httpx.Client(base_url=bg.url, headers={"X-Lease-Token": s._lease_token}, timeout=30) as http:
        for _ in range(40):
            body = bytearray(good)
            for i in rng.integers(0, min(len(body), 120), size=3):
                body[i] = int(rng.integers(0, 256))
            r = http.post("/set_image", content=bytes(body))
            assert r.status_code in (200, 400, 413), r.text  # a flip in the payload may still decode
        assert http.get("/healthz").json() == {"ok": True}
    s.close()


def test_the_server_imports_what_a_first_correction_needs_at_start():
    """scipy.ndimage (a correction's band) is imported by build(), not by the first click (0.15-0.33 s it waited)."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    code = ("import sys; from medseg.serve.run import build; from medseg.serve.limits import Limits; "
            "from tests.predict.fake_model import fake_predictor; p = fake_predictor(); "
            "before = 'scipy.ndimage' in sys.modules; build(Limits(), predictor=p); "
            "print(before, 'scipy.ndimage' in sys.modules)")
    env = {"PYTHONPATH": f"{root / 'src'}:{root}", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.stdout.split() == ["False", "True"], out.stderr[-2000:]
