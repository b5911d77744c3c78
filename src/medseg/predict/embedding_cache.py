"""Per-slice image embeddings of one volume, encoded on demand and kept under a memory budget.

Each slice is encoded at most once while it stays in the cache; the least recently used embeddings
are dropped when the budget would be exceeded, so a volume whose embeddings do not fit is still
processed (a dropped slice is re-encoded if it is needed again, and counted again). During a walk
through the volume, ``reading_ahead`` lets background threads encode the next slices of the walk
(``medseg.predict.read_ahead``).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from medseg.predict.read_ahead import ReadAhead

if TYPE_CHECKING:
    import torch

MIB = 1 << 20
DEFAULT_BUDGET_MIB = 1024  # a LiteMedSAM embedding (256x64x64 float32) takes 4 MiB: 256 slices


class EmbeddingCache:
    """LRU cache z -> (1, C, h, w) embedding.

    Args:
        encode: encode(z) -> embedding tensor of slice z (the expensive call).
        budget_mib: memory budget in MiB; at least one embedding is always kept.

    Attributes:
        encodes: how many times ``encode`` ran (tests assert on it).
        encoded: every slice index ever encoded, in order (repeats mean re-encodes after eviction).
        encode_seconds: wall time spent in ``encode``.
    """

    def __init__(self, encode: Callable[[int], torch.Tensor], budget_mib: float = DEFAULT_BUDGET_MIB) -> None:
        from medseg.validate import number

        budget_mib = number(budget_mib, "embedding budget (MiB)", positive=True, maximum=2**30, example=1024)
        self._encode = encode
        self.budget_bytes = int(budget_mib * MIB)
        self._store: OrderedDict[int, torch.Tensor] = OrderedDict()
        self._bytes = 0
        self.encodes = 0
        self.encoded: list[int] = []
        self.evictions = 0
        self.encode_seconds = 0.0
        self._ahead: ReadAhead | None = None

    def __contains__(self, z: int) -> bool:
        return z in self._store

    def __len__(self) -> int:
        return len(self._store)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def get(self, z: int) -> torch.Tensor:
        """The embedding of slice z, encoding it (and evicting old ones) if needed."""
        if z in self._store:
            self._store.move_to_end(z)
            return self._store[z]
        start = time.perf_counter()
        emb = self._ahead.take(z) if self._ahead is not None else None
        if emb is None:
            emb = self._encode(z)
        self.encode_seconds += time.perf_counter() - start  # time the caller waited
        self._store_new(z, emb)
        return emb

    def add(self, z: Hashable, emb: Any) -> bool:
        """Keep an embedding of slice z encoded elsewhere (a server's idle encodes) if z is not cached and it fits
        in the budget without evicting anything; whether it was kept."""
        if z in self._store or self.nbytes + emb.nbytes > self.budget_bytes:
            return False
        self._store_new(z, emb)
        return True

    @contextmanager
    def reading_ahead(self, order: Iterable[Hashable],
                      start: Callable[[list[Hashable]], ReadAhead | None]) -> Iterator[None]:
        """While inside, slices of ``order`` not yet cached are encoded ahead by the ReadAhead that
        ``start(slices)`` makes (None: no read-ahead); embeddings finished but not asked for are kept at
        the end. Inside another ``reading_ahead``, the outer one goes on (its order covers the inner walk)."""
        ahead = None if self._ahead is not None else start([z for z in order if z not in self._store])
        if ahead is None:
            yield
            return
        self._ahead = ahead
        try:
            yield
        finally:
            left, self._ahead = self._ahead.close(), None
            for z, emb in left.items():
                if z not in self._store:
                    self._store_new(z, emb)

    def _store_new(self, z: Hashable, emb: Any) -> None:
        self.encodes += 1
        self.encoded.append(z)
        size = emb.nbytes  # a torch tensor or a numpy array
        while self._store and self._bytes + size > self.budget_bytes:
            _, old = self._store.popitem(last=False)
            self._bytes -= old.nbytes
            self.evictions += 1
        self._store[z] = emb
        self._bytes += size

    def clear(self) -> None:
        self._store.clear()
        self._bytes = 0
