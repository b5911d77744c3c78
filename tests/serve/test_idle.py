"""The server's idle encodes (medseg.serve.idle): slices a session names are encoded while no prompt runs, a
prompt stops them and finds the cores free, and nothing is evicted or kept for a volume no longer open."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from medseg.predict.embedding_cache import EmbeddingCache
from medseg.serve.idle import EMBEDDING_BYTES, Compute


class LanePredictor:
    """Encodes on 'lanes' in small steps, ending early (RuntimeError) when its tag is stopped."""

    def __init__(self, lanes: int = 2, seconds: float = 0.05) -> None:
        self.lanes, self.seconds = lanes, seconds
        self.stopped: set[object] = set()
        self.running = 0
        self.done: list[float] = []
        self.lock = threading.Lock()

    def open_lanes(self) -> int:
        return self.lanes

    def stop_lanes(self, tags: list) -> None:
        self.stopped.update(tags)

    def embed(self, image: np.ndarray, lane: bool = False, tag: object = None) -> np.ndarray:
        assert lane
        with self.lock:
            self.running += 1
        try:
            end = time.monotonic() + self.seconds
            while time.monotonic() < end:
                if tag in self.stopped:
                    raise RuntimeError("encode terminated")
                time.sleep(0.002)
            self.done.append(float(image[0, 0]))
            return np.full((1, 256, 64, 64), float(image[0, 0]), np.float32)
        finally:
            with self.lock:
                self.running -= 1


class Session:
    def __init__(self, predictor: LanePredictor, budget_mib: float = 64) -> None:
        self.predictor = predictor
        self.cache = EmbeddingCache(lambda z: pytest.fail("the session itself encodes nothing here"), budget_mib)


def slices(zs) -> list[tuple[int, np.ndarray]]:
    return [(z, np.full((4, 4), z, np.uint8)) for z in zs]


def wait_for(cond, seconds: float = 10.0) -> None:
    end = time.monotonic() + seconds
    while not cond():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.01)


@pytest.fixture()
def compute(monkeypatch):
    import medseg.serve.idle as idle

    c = Compute()
    c.idle.quiet_seconds = 0.02
    monkeypatch.setattr(idle, "COMPUTE", c)  # the workers keep their embeddings under this one's lock
    return c


def test_named_slices_are_encoded_while_idle_in_order(compute):
    s = Session(LanePredictor(lanes=2))
    with compute:
        compute.idle.want(s, slices([7, 3, 9]))
    wait_for(lambda: len(s.cache) == 3)
    assert s.predictor.done[2] == 9.0 and sorted(s.predictor.done) == [3.0, 7.0, 9.0] and compute.idle.encoded == 3
    assert float(s.cache.get(3)[0, 0, 0, 0]) == 3.0


def test_a_prompt_stops_them_and_finds_the_cores_free(compute):
    p = LanePredictor(lanes=2, seconds=0.5)
    s = Session(p)
    with compute:
        compute.idle.want(s, slices([1, 2, 3]))
    wait_for(lambda: p.running == 2)
    with compute:  # entering waits until the stopped encodes have ended
        assert p.running == 0
        assert len(s.cache) == 0
    assert compute.idle.stopped == 2
    wait_for(lambda: len(s.cache) == 3)  # the stopped slices are encoded again at the next pause
    assert sorted(p.done) == [1.0, 2.0, 3.0]


def test_a_newer_want_replaces_the_older_and_a_new_volume_voids_it(compute):
    p = LanePredictor(lanes=2, seconds=0.2)
    s = Session(p)
    with compute:
        compute.idle.want(s, slices([1, 2, 3, 4]))
    wait_for(lambda: p.running == 2)
    with compute:  # stops 1 and 2; the newer want does not hold them
        compute.idle.want(s, slices([8]))
    wait_for(lambda: 8 in s.cache)
    time.sleep(0.3)
    assert len(s.cache) == 1 and sorted(p.done) == [8.0]

    old = s.cache
    with compute:
        compute.idle.want(s, slices([5, 6]))
        s.cache = EmbeddingCache(lambda z: None, 64)  # set_volume: a new cache, the old one's slices are void
    time.sleep(0.5)
    assert 5 not in old and 6 not in old and len(s.cache) == 0


def test_never_evicts_and_without_two_lanes_does_nothing(compute):
    p = LanePredictor(lanes=2)
    s = Session(p, budget_mib=2 * EMBEDDING_BYTES / (1 << 20))  # room for two embeddings
    with compute:
        compute.idle.want(s, slices([1, 2, 3, 4]))
    wait_for(lambda: len(s.cache) == 2)
    time.sleep(0.3)
    assert len(s.cache) == 2 and s.cache.evictions == 0

    none = Session(LanePredictor(lanes=1))  # an encoder for all the cores, which a prompt could not stop
    with compute:
        compute.idle.want(none, slices([1]))
    time.sleep(0.2)
    assert len(none.cache) == 0 and none.predictor.done == []


def test_a_failing_encode_is_dropped_not_retried(compute):
    class Failing(LanePredictor):
        calls = 0

        def embed(self, image, lane=False, tag=None):
            Failing.calls += 1
            raise MemoryError("no room")

    s = Session(Failing(lanes=2))
    with compute:
        compute.idle.want(s, slices([1, 2]))
    wait_for(lambda: Failing.calls >= 2)
    time.sleep(0.2)
    assert Failing.calls == 2 and len(s.cache) == 0


def test_released_and_reaped_leases_drop_what_their_sessions_wanted():
    from medseg.serve.leases import Leases

    now = [0.0]
    dropped: list[object] = []
    leases = Leases(object, 4, idle_seconds=10, liveness_seconds=5, clock=lambda: now[0], drop=dropped.append)
    a, b = leases.claim(), leases.claim()
    assert leases.release(a.token) and dropped == [a.state]
    assert not leases.release(a.token) and dropped == [a.state]
    now[0] = 6.0  # b is silent past the liveness time-out
    assert leases.sweep() == 1 and dropped == [a.state, b.state]
