"""Between prompts: the server encodes the slices a next click is likely to need, and stops when one comes.

A correction click is decoder work on encoded slices, except when its edit is followed past the object's end:
the first slice beyond is not encoded yet, and that one encode (0.45 s on 2 cores) is most of the slowest
clicks (RIDER CT, 2 of 12 benchmark clicks; ``benchmarks/results/serve``). So after every prompt the session
names the slices just past each object's ends (``ServedSession.slices_ahead``), and while no prompt runs they
are encoded on the engine's side-by-side encoders (``Predictor.open_lanes``), one slice a lane.

Prompts run one at a time under ``COMPUTE`` (one model, one set of cores). Entering it stops the idle encodes
first (ONNX Runtime ends a run between operators, the C encoder between layers) and waits until they have let go
of the cores; the slice that was stopped is encoded again at the next pause. Idle encodes never evict: an
embedding is kept only if it fits in the cache's budget as it is. Engines without stoppable lanes (eager) do not
encode ahead.
"""

from __future__ import annotations

import atexit
import threading
import time
import weakref
from collections import OrderedDict, deque
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np

QUIET_SECONDS = 0.1  # no prompt for this long before idle encodes start (a client's calls come in bursts)
STOP_POLL_SECONDS = 0.005  # how often a waiting prompt repeats its stop (a lane may start just after the first)


EMBEDDING_BYTES = 256 * 64 * 64 * 4  # a LiteMedSAM embedding in float32: room a cache needs for one more


@dataclass
class _Job:
    session: weakref.ref  # the ServedSession that asked (dropped with it)
    cache: Any  # its embedding cache when it asked (a new volume gets a new cache)
    key: Hashable
    image: np.ndarray  # the 0..255 image of the slice or crop (a view of the volume, which does not change)
    queue: deque  # the session's queue it came from (a newer ``want`` replaces the queue)


class IdleEncoder:
    """Encodes the slices sessions ask for while ``Compute`` is free; ``Compute`` pauses it."""

    def __init__(self, quiet_seconds: float = QUIET_SECONDS) -> None:
        self.quiet_seconds = quiet_seconds
        self._cond = threading.Condition()
        self._jobs: OrderedDict[int, deque[_Job]] = OrderedDict()  # session id -> its slices, latest asker last
        self._busy = 0  # prompts inside Compute or waiting for it
        self._quiet_since = time.monotonic()
        self._running: dict[object, Any] = {}  # tag -> the predictor encoding it
        self._told: set[object] = set()  # tags of the running encodes a prompt stopped
        self._workers: list[threading.Thread] = []
        self.encoded = 0  # slices kept (tests and benchmarks read it)
        self.stopped = 0  # encodes stopped by a prompt

    # ----- called under Compute -------------------------------------------------------------------
    def want(self, session: Any, slices: list[tuple[Hashable, np.ndarray]]) -> None:
        """Replace what ``session`` wants encoded: (cache key, image) pairs, most wanted first."""
        lanes = session.predictor.open_lanes() if slices else 0
        if lanes < 2:  # nothing wanted, or no side-by-side encoder that a prompt can stop
            slices = []
        ref, queue = weakref.ref(session), deque()
        queue.extend(_Job(ref, session.cache, key, image, queue) for key, image in slices)
        with self._cond:
            self._jobs.pop(id(session), None)
            self._jobs[id(session)] = queue
            if not self._workers:  # at exit, stop them first: a run in native code must not outlive its session
                atexit.register(self.pause)
            while len(self._workers) < lanes:
                worker = threading.Thread(target=self._work, name=f"medseg-idle-{len(self._workers)}", daemon=True)
                self._workers.append(worker)
                worker.start()
            self._cond.notify_all()

    # ----- Compute's side -------------------------------------------------------------------------
    def pause(self) -> None:
        """Stop the idle encodes and wait until none runs; no new one starts before ``resume``."""
        with self._cond:
            self._busy += 1
            while self._running:
                for tag, predictor in list(self._running.items()):
                    self._told.add(tag)
                    predictor.stop_lanes([tag])
                self._cond.wait(STOP_POLL_SECONDS)

    def resume(self) -> None:
        with self._cond:
            self._busy -= 1
            self._quiet_since = time.monotonic()
            self._cond.notify_all()

    # ----- the workers ----------------------------------------------------------------------------
    def _next(self) -> tuple[_Job, Any] | None:
        """The next job to run and its session's predictor (under the condition's lock), or None when there is none
        now."""
        while self._jobs:
            sid, jobs = next(reversed(self._jobs.items()))  # the latest asker first
            if not jobs:
                del self._jobs[sid]
                continue
            job = jobs.popleft()
            session = job.session()
            if session is None or session.cache is not job.cache:  # gone, or on another volume now
                del self._jobs[sid]
                continue
            if job.key in job.cache:
                continue
            if job.cache.nbytes + EMBEDDING_BYTES > job.cache.budget_bytes:
                del self._jobs[sid]  # the cache is full: idle encodes never evict
                continue
            return job, session.predictor
        return None

    def _work(self) -> None:
        while True:
            with self._cond:
                while True:
                    wait = self._quiet_since + self.quiet_seconds - time.monotonic()
                    if self._busy == 0 and wait <= 0:
                        found = self._next()
                        if found is not None:
                            break
                        wait = None
                    self._cond.wait(wait if wait is not None and wait > 0 else None)
                (job, predictor), tag = found, object()
                self._running[tag] = predictor
            embedding = None
            try:
                embedding = predictor.embed(job.image, lane=True, tag=tag)
            except Exception:  # stopped by a prompt (it goes back to the front of its queue), or failed (dropped)
                pass
            with self._cond:
                del self._running[tag]
                if embedding is None and tag in self._told:
                    self.stopped += 1
                    self._again(job)
                self._told.discard(tag)
                self._cond.notify_all()
            if embedding is not None:
                self._keep(job, embedding)

    def _again(self, job: _Job) -> None:
        """A stopped job goes back to the front of its queue, unless a newer ``want`` replaced that queue."""
        session = job.session()
        if session is None:
            return
        current = self._jobs.get(id(session))
        if current is None or current is job.queue:
            self._jobs[id(session)] = job.queue
            job.queue.appendleft(job)

    def _keep(self, job: _Job, embedding: Any) -> None:
        with COMPUTE.lock:  # the shared store changes only under the compute lock
            if job.cache.add(job.key, embedding):
                self.encoded += 1


class Compute:
    """The lock prompts run under; entering it stops the idle encodes (``IdleEncoder.pause``)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.idle = IdleEncoder()

    def __enter__(self) -> Compute:
        self.idle.pause()
        self.lock.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.lock.release()
        self.idle.resume()

    def locked(self) -> bool:
        return self.lock.locked()


# One model, one set of CPU cores: prompts of all sessions run one at a time.
COMPUTE = Compute()
