"""One embedding cache for every session of the server: one memory budget, and a slice two clients
opened (the same volume, windowed the same way) is encoded once.

``SharedCache`` is an ``EmbeddingCache`` whose store is a view, keyed by the volume's digest, on one
least-recently-used store with the server's budget (``--cache-mib``). Sessions use it under
``medseg.serve.idle.COMPUTE``, so the store needs no lock of its own.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np

from medseg.predict.embedding_cache import MIB, EmbeddingCache


class Store:
    """(volume digest, slice key) -> embedding, least recently used first, under ``budget_mib``."""

    def __init__(self, budget_mib: float) -> None:
        self.budget_bytes = int(budget_mib * MIB)
        self.items: OrderedDict[tuple[str, Hashable], Any] = OrderedDict()
        self.nbytes = 0
        self.evictions = 0

    def put(self, key: tuple[str, Hashable], emb: Any) -> None:
        while self.items and self.nbytes + emb.nbytes > self.budget_bytes:
            _, old = self.items.popitem(last=False)
            self.nbytes -= old.nbytes
            self.evictions += 1
        self.items[key] = emb
        self.nbytes += emb.nbytes


class _View:
    """The part of a Store one volume sees, with the dict methods EmbeddingCache uses."""

    def __init__(self, store: Store, digest: str) -> None:
        self.store, self.digest = store, digest

    def __contains__(self, z: Hashable) -> bool:
        return (self.digest, z) in self.store.items

    def __getitem__(self, z: Hashable) -> Any:
        return self.store.items[(self.digest, z)]

    def move_to_end(self, z: Hashable) -> None:
        self.store.items.move_to_end((self.digest, z))

    def __len__(self) -> int:
        return sum(1 for d, _ in self.store.items if d == self.digest)

    def __bool__(self) -> bool:
        return True

    def clear(self) -> None:
        for key in [k for k in self.store.items if k[0] == self.digest]:
            self.store.nbytes -= self.store.items.pop(key).nbytes


class SharedCache(EmbeddingCache):
    """An EmbeddingCache of one volume (``digest``) on a shared Store."""

    def __init__(self, encode: Callable[[Hashable], Any], store: Store, digest: str) -> None:
        super().__init__(encode, max(store.budget_bytes / MIB, 1))
        self.shared = store
        self._store = _View(store, digest)

    @property
    def nbytes(self) -> int:
        return self.shared.nbytes

    def _store_new(self, z: Hashable, emb: Any) -> None:
        self.encodes += 1
        self.encoded.append(z)
        self.shared.put((self._store.digest, z), emb)


def digest(volume: np.ndarray, window: object) -> str:
    """Names a volume and its window: equal digests mean equal slices to encode."""
    h = hashlib.blake2b(digest_size=16)
    h.update(repr((volume.shape, str(volume.dtype), window)).encode())
    h.update(np.ascontiguousarray(volume).data)
    return h.hexdigest()
