"""ReadAhead: walk order, at most ``lanes`` encodes ahead, skips, close; and VolumeSession with a
read-ahead engine gives the same masks and encodes the same slices as without."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from medseg.predict.read_ahead import ReadAhead
from medseg.predict.volume import VolumeSession

sys.path.insert(0, str(Path(__file__).parent))
from fake_model import fake_predictor, lane_predictor  # noqa: E402
from test_volume import sphere  # noqa: E402


class Recorder:
    """encode(z) -> z * 10, recording the start order and the most encodes seen running at once."""

    def __init__(self, delay: float = 0.01) -> None:
        self.started: list[int] = []
        self.running = self.most_running = 0
        self.delay = delay
        self.lock = threading.Lock()

    def __call__(self, z: int) -> int:
        with self.lock:
            self.started.append(z)
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        time.sleep(self.delay)
        with self.lock:
            self.running -= 1
        return z * 10


def test_slices_come_in_walk_order_with_at_most_lanes_ahead():
    rec = Recorder()
    ahead = ReadAhead(rec, [5, 6, 7, 4, 3], lanes=2)
    assert [ahead.take(z) for z in (5, 6, 7, 4, 3)] == [50, 60, 70, 40, 30]
    assert rec.started == [5, 6, 7, 4, 3] and rec.most_running <= 2
    assert ahead.close() == {}


def test_an_odd_walk_encodes_one_slice_alone_before_filling_the_lanes():
    lanes, alone = Recorder(), []

    def encode_alone(z: int) -> int:
        alone.append((z, lanes.running, time.perf_counter()))
        time.sleep(0.02)
        alone.append((z, lanes.running, time.perf_counter()))
        return z * 10

    starts = []
    ahead = ReadAhead(lambda z: starts.append(time.perf_counter()) or lanes(z), [5, 6, 7, 4, 3], lanes=2,
                      encode_alone=encode_alone)
    assert [ahead.take(z) for z in (5, 6, 7, 4, 3)] == [50, 60, 70, 40, 30]
    assert [(z, running) for z, running, _ in alone] == [(5, 0), (5, 0)]  # nothing ran beside it
    assert lanes.started == [6, 7, 4, 3] and min(starts) >= alone[-1][2]
    even = Recorder()
    ahead = ReadAhead(even, [5, 6, 7, 4], lanes=2, encode_alone=encode_alone)
    assert [ahead.take(z) for z in (5, 6, 7, 4)] == [50, 60, 70, 40] and even.started == [5, 6, 7, 4]
    assert len(alone) == 2


def test_numpy_blas_runs_on_one_thread_while_reading_ahead():
    from threadpoolctl import threadpool_info

    def blas_threads():
        return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]

    np.ones((64, 64)) @ np.ones((64, 64))  # numpy's BLAS is loaded
    before = blas_threads()
    ahead = ReadAhead(Recorder(), [1, 2, 3], lanes=2)
    assert blas_threads() and all(n == 1 for n in blas_threads())
    ahead.take(1)
    ahead.close()
    assert blas_threads() == before


def test_a_walk_that_stops_early_skips_the_rest_and_keeps_what_finished():
    rec = Recorder()
    ahead = ReadAhead(rec, range(10, 30), lanes=2)
    assert ahead.take(10) == 100 and ahead.take(11) == 110
    assert ahead.take(5) is None  # not on the walk: the caller encodes it itself
    assert ahead.take(25) == 250  # the walk jumped: 12.. are skipped, never all started
    time.sleep(0.1)
    left = ahead.close()
    assert 25 not in left and set(left) <= {12, 13, 26, 27}
    assert len(rec.started) <= 7


class Stoppable:
    """encode(z) -> z * 10; the first encode of a slice in ``slow`` only ends when stop([z]) ends it
    (then it raises), or after a minute."""

    def __init__(self, slow: set[int]) -> None:
        self.slow = set(slow)
        self.events: dict[int, threading.Event] = {}
        self.stopped: list[int] = []
        self.lock = threading.Lock()

    def __call__(self, z: int) -> int:
        with self.lock:
            slow = z in self.slow
            self.slow.discard(z)
            event = self.events[z] = threading.Event()
        if slow and event.wait(60):
            raise RuntimeError(f"slice {z} stopped")
        return z * 10

    def stop(self, zs: list[int]) -> None:
        with self.lock:
            self.stopped += zs
            for z in zs:
                self.events[z].set()


def test_passed_over_encodes_are_stopped_not_awaited():
    enc = Stoppable(slow={3, 4})
    ahead = ReadAhead(enc, range(1, 11), lanes=2, stop=enc.stop)
    assert ahead.take(1) == 10 and ahead.take(2) == 20  # now 3 and 4 run, and would for a minute
    time.sleep(0.1)
    start = time.perf_counter()
    assert ahead.take(8) == 80  # the walk jumps: 3 and 4 are stopped to free the lanes
    assert sorted(enc.stopped) == [3, 4] and time.perf_counter() - start < 5
    assert ahead.take(3) == 30  # a stopped slice asked for after all is encoded again
    assert ahead.close() == {9: 90, 10: 100}  # read ahead after 8, finished, kept


def test_close_stops_what_is_still_running():
    enc = Stoppable(slow={2, 3})
    ahead = ReadAhead(enc, [1, 2, 3], lanes=2, stop=enc.stop)
    assert ahead.take(1) == 10
    time.sleep(0.1)
    start = time.perf_counter()
    assert ahead.close() == {}
    assert sorted(enc.stopped) == [2, 3] and time.perf_counter() - start < 1


def test_an_encode_error_reaches_the_walk():
    def broken(z: int) -> int:
        raise ValueError(f"slice {z} unreadable")

    ahead = ReadAhead(broken, [1, 2], lanes=2)
    with pytest.raises(ValueError, match="slice 1 unreadable"):
        ahead.take(1)
    ahead.close()


@pytest.fixture
def volume() -> np.ndarray:
    rng = np.random.default_rng(0)
    vol = rng.integers(10, 30, sphere().shape).astype(np.uint8)
    vol[sphere()] = rng.integers(190, 210, int(sphere().sum()))
    return vol


@pytest.mark.parametrize("action", [
    lambda s: s.add_box3d(25, 21, 4, 43, 39, 20),
    lambda s: s.add_box(12, (25, 21, 43, 39), propagate=True),
    lambda s: s.add_box(12, (25, 21, 43, 39), propagate=True, propagation="baseline"),
    lambda s: s.add_point(34, 30, 12),
])
def test_volume_session_with_read_ahead_matches_without(volume, action):
    plain, ahead = VolumeSession(fake_predictor()), VolumeSession(lane_predictor())
    for s in (plain, ahead):
        s.set_volume(volume)
        action(s)
    assert np.array_equal(plain.mask, ahead.mask)
    assert ahead.predictor.engine.lane_calls > 0
    axial = {k for k in plain.cache.encoded if isinstance(k, int)}
    got = {k for k in ahead.cache.encoded if isinstance(k, int)}
    assert axial <= got and len(got - axial) <= 4  # at most `lanes` wasted past each end of a walk


def test_box3d_with_read_ahead_encodes_each_box_slice_once(volume):
    s = VolumeSession(lane_predictor())
    s.set_volume(volume)
    s.add_box3d(25, 21, 4, 43, 39, 20)
    assert s.encodes == 17 and sorted(s.cache.encoded) == list(range(4, 21))
    engine = s.predictor.engine  # the seed slice too is read ahead: alone (17 is odd), then 8 pairs on the lanes
    assert engine.encode_calls == 1 and engine.lane_calls == 16


def test_2d_prompts_on_several_slices_are_read_ahead_with_the_same_result(volume):
    from medseg.io.image import Geometry, Image
    from medseg.predict.segment import segment_2d
    from medseg.prompts import Box, ObjectPrompts, Point

    image = Image(volume, Geometry.identity(3))
    objects = [ObjectPrompts(box=Box(25, 21, 43, 39, z=12)), ObjectPrompts(box=Box(25, 21, 43, 39, z=8)),
               ObjectPrompts(points=[Point(34, 30, 15)]), ObjectPrompts(box=Box(28, 24, 40, 36, z=12))]
    plain, ahead = fake_predictor(), lane_predictor()
    want, got = segment_2d(plain, image, objects), segment_2d(ahead, image, objects)
    assert np.array_equal(want.labels, got.labels) and want.slices == got.slices
    assert set(np.unique(got.labels)) == {0, 1, 2, 3, 4}
    # 12, 8, 15, each once (12 is not encoded twice): the first alone, then two on the lanes
    assert (ahead.engine.encode_calls, ahead.engine.lane_calls, plain.engine.encode_calls) == (1, 2, 3)


def test_box2d_protocol_on_a_volume_reads_ahead_with_the_same_scores(volume):
    from medseg.evaluate.protocols import ProtocolConfig, box2d
    from medseg.io.image import Geometry, Image

    image, gt = Image(volume, Geometry.identity(3)), sphere().astype(np.uint8)
    cfg = ProtocolConfig("box2d", jitter=2)
    plain, ahead = fake_predictor(), lane_predictor()
    want = box2d(plain, image, gt, [1], cfg, np.random.default_rng(0))
    got = box2d(ahead, image, gt, [1], cfg, np.random.default_rng(0))
    assert np.array_equal(want.prediction, got.prediction) and want.prediction.any()
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in want.rows]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in got.rows]
    assert ahead.engine.lane_calls + ahead.engine.encode_calls == plain.engine.encode_calls == 17  # slices 4..20
