"""Encoding the slices a propagation will ask for next, on background threads, while it decodes.

One slice encoded on two threads takes longer than half of one encoded on one thread: ONNX Runtime's
two-thread encoder ran at 0.91 s per slice, two one-thread encoders side by side at 0.82 s per slice
(2 AVX2 cores, medians; benchmarks/results/engines/README.md). A walk through a volume knows which
slices come next, so ``ReadAhead`` keeps ``lanes`` of them in flight on the engine's side-by-side
encoder (``open_lanes``), in walk order, and the walk takes each embedding when it gets there. When a
walk stops early or turns, the slices not started are never started and those running are stopped
(``stop``: ONNX Runtime ends a run within about 10 ms when told to).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any


class ReadAhead:
    """Encodes the slices of ``order`` ahead of a walk, at most ``lanes`` beyond the last one taken.

    Args:
        encode: encode(z) -> embedding of slice z; it runs on worker threads, so it must not touch
            state the walk uses (a one-thread encoder session is safe to run side by side).
        order: the slices the walk will visit, in order.
        lanes: how many encodes run side by side.
        stop: stop(slices) ends the encodes of those slices if they are running (they raise); called
            for started slices the walk passes over, and at ``close``. Without it, they run to the end.
        encode_alone: encode(z) on all the cores, for a slice that runs by itself: when nothing is
            running and the slices left do not fill the lanes evenly, one of them is encoded alone
            first, so that the walk does not end on a lane running by itself (11 slices on 2 lanes:
            one alone, then 5 pairs, instead of 5 pairs and one on a lane: the CT 3D box process
            4.43 -> 4.31 s on 2 AVX-512 cores, faster in 6 of 7 pairs). Its buffers cost no memory
            beyond the lanes' where the engine's sessions share one arena (ONNX Runtime's do).
    """

    def __init__(self, encode: Callable[[Hashable], Any], order: Iterable[Hashable], lanes: int,
                 stop: Callable[[list[Hashable]], None] | None = None,
                 encode_alone: Callable[[Hashable], Any] | None = None) -> None:
        self._encode = encode
        self._encode_alone = encode_alone
        self._alone: Future | None = None  # the encode running by itself on all the cores
        self._stop = stop
        self._order = list(dict.fromkeys(order))  # each slice once
        self._position = {z: i for i, z in enumerate(self._order)}
        self._lanes = lanes
        self._next = 0  # position of the next slice to start
        self._pending: dict[Hashable, Future] = {}  # started or queued, not yet taken
        self._skipped: dict[Hashable, Future] = {}  # started, then passed over by the walk
        self._stopped: set[Hashable] = set()  # skipped slices told to stop: their futures may have failed
        self._blas = _single_thread_blas()
        self._pool = ThreadPoolExecutor(lanes, thread_name_prefix="medseg-read-ahead")
        self._fill()

    def _fill(self) -> None:
        if self._alone is not None and not self._alone.done():
            return  # it has the cores
        busy = len(self._pending) + sum(not f.done() for k, f in self._skipped.items() if k not in self._stopped)
        left = len(self._order) - self._next
        if busy == 0 and self._encode_alone is not None and self._lanes > 1 and left % self._lanes == 1:
            z = self._order[self._next]
            self._next += 1
            self._pending[z] = self._alone = self._pool.submit(self._encode_alone, z)
            return
        while busy < self._lanes and self._next < len(self._order):
            busy += 1
            z = self._order[self._next]
            self._next += 1
            self._pending[z] = self._pool.submit(self._encode, z)

    def take(self, z: Hashable) -> Any | None:
        """The embedding of slice z (waiting for it) if z is on the walk, else None.

        Slices before z in the walk order that were not taken are skipped: those not started are
        cancelled, those running are stopped (with ``stop``; else they finish and ``close`` returns them).
        """
        try:
            position = self._position.get(z)
        except TypeError:  # an unhashable key is not on the walk
            return None
        if position is None:
            return None
        for other in [k for k in self._pending if self._position[k] < position]:
            future = self._pending.pop(other)
            if not future.cancel():
                self._skipped[other] = future
        started = [k for k, f in self._skipped.items() if k != z and not f.done() and k not in self._stopped]
        if self._stop is not None and started:
            self._stop(started)  # free their lanes for z and what follows it
            self._stopped.update(started)
        future = self._pending.pop(z, None) or self._skipped.pop(z, None)
        if future is None or z in self._stopped:  # never started, or stopped: encode it now
            self._stopped.discard(z)
            future = self._pool.submit(self._encode, z)
        self._next = max(self._next, position + 1)
        self._fill()
        embedding = future.result()
        if future is self._alone:  # the lanes start now, before the walk decodes z
            self._fill()
        return embedding

    def close(self) -> dict[Hashable, Any]:
        """Stop: cancel what has not started, stop what is running, and return the embeddings already
        finished, by slice. Nothing waits for the running encodes.
        """
        futures = {**self._skipped, **self._pending}
        done = {z: f.result() for z, f in futures.items()
                if f.done() and not f.cancelled() and f.exception() is None and z not in self._stopped}
        self._pool.shutdown(wait=False, cancel_futures=True)
        running = [z for z, f in futures.items() if not f.done()]
        if self._stop is not None and running:
            self._stop(running)
        self._pending.clear()
        self._skipped.clear()
        self._blas.restore_original_limits()
        return done


def _single_thread_blas():
    """numpy's BLAS on one thread until ``restore_original_limits``: while the lanes keep the cores busy,
    the small resize products of the walk (about 1 ms each) gain nothing from BLAS threads, whose
    wake-ups and busy-waiting took CPU from the encoders (CT 3D box process 5.15 -> 4.63 s)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")
