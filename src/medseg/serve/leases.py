"""Leases: which client owns which session, and when an idle or silent client loses it.

Two clocks per lease, as the nnInteractive client expects: ``active`` moves on real actions (image,
prompts, undo, reset) and drives the idle time-out; ``seen`` moves on every request, heartbeats too,
and drives the much shorter liveness time-out that frees the slot of a client that crashed.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class Full(Exception):
    """Every slot is taken (HTTP 503)."""


class Gone(Exception):
    """No such lease: never given, released or reaped (HTTP 410)."""


@dataclass
class Lease:
    token: str
    state: Any
    lock: threading.Lock = field(default_factory=threading.Lock)
    active: float = field(default_factory=time.monotonic)
    seen: float = field(default_factory=time.monotonic)


class Leases:
    """Thread-safe token -> Lease with at most ``max_sessions`` entries.

    Args:
        make: builds the per-lease state (called outside the registry lock).
        drop: called with the state of each lease released or reaped (outside the registry lock).
        max_sessions, idle_seconds, liveness_seconds: see ``medseg.serve.limits.Limits``.
        clock: time source (tests pass a fake one).
    """

    def __init__(self, make: Callable[[], Any], max_sessions: int, idle_seconds: float, liveness_seconds: float,
                 clock: Callable[[], float] = time.monotonic, drop: Callable[[Any], None] | None = None) -> None:
        self._make = make
        self._drop = drop
        self.max_sessions = max_sessions
        self.idle_seconds = idle_seconds
        self.liveness_seconds = liveness_seconds
        self._clock = clock
        self._leases: dict[str, Lease] = {}
        self._reserved = 0
        self._mu = threading.Lock()
        self.reaped = 0

    def __len__(self) -> int:
        return len(self._leases)

    def claim(self) -> Lease:
        self.sweep()
        with self._mu:
            if len(self._leases) + self._reserved >= self.max_sessions:
                raise Full(f"server is at capacity ({self.max_sessions} sessions); retry later")
            self._reserved += 1
        try:
            now = self._clock()
            lease = Lease(secrets.token_hex(16), self._make(), active=now, seen=now)
        finally:
            with self._mu:
                self._reserved -= 1
        with self._mu:
            self._leases[lease.token] = lease
        return lease

    def get(self, token: str | None, active: bool = False, touch: bool = True) -> Lease:
        """The lease of ``token`` (Gone if none); marks it seen, and active with ``active``."""
        self.sweep()
        with self._mu:
            lease = self._leases.get(token or "")
        if lease is None:
            raise Gone("lease token missing" if not token else "lease expired or unknown; claim a new one")
        now = self._clock()
        if touch:
            lease.seen = now
        if active:
            lease.active = now
        return lease

    def release(self, token: str | None) -> bool:
        with self._mu:
            lease = self._leases.pop(token or "", None)
        if lease is not None and self._drop is not None:
            self._drop(lease.state)
        return lease is not None

    def remaining(self, lease: Lease) -> float:
        return max(0.0, self.idle_seconds - (self._clock() - lease.active))

    def sweep(self) -> int:
        """Drop idle and silent leases; returns how many."""
        now = self._clock()
        with self._mu:
            dead = [t for t, lease in self._leases.items()
                    if now - lease.seen > self.liveness_seconds or now - lease.active > self.idle_seconds]
            gone = [self._leases.pop(token) for token in dead]
            self.reaped += len(dead)
        if self._drop is not None:
            for lease in gone:
                self._drop(lease.state)
        return len(dead)
