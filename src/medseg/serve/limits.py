"""What one server accepts: body size, array size and dtypes, sessions. Checked before allocating."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medseg.validate import number

MIB = 1 << 20
IMAGE_DTYPES = frozenset(np.dtype(d) for d in ("uint8", "int8", "uint16", "int16", "uint32", "int32",
                                               "float16", "float32", "float64"))
MASK_DTYPES = frozenset(np.dtype(d) for d in ("bool", "uint8", "uint16", "int16", "int32", "float32"))


@dataclass(frozen=True)
class Limits:
    """Server limits.

    Attributes:
        max_sessions: leases given out at once; one more claim gets 503.
        max_body_mib: largest request body (compressed); a larger Content-Length gets 413 unread.
        max_voxels: largest image or mask (z*y*x voxels) a header may declare.
        max_array_mib: largest uncompressed array a header may declare.
        cache_mib: embedding-cache budget shared by all sessions (``medseg.serve.cache``).
        idle_seconds: a lease without a real action (image, prompt, undo, ...) for this long is reaped.
        liveness_seconds: a lease without any request (heartbeats count) for this long is reaped.
        ahead: slices past each end of an object encoded while the server is idle (``medseg.serve.idle``); 0: the
            server encodes only what a prompt asks for.
    """

    max_sessions: int = 4
    max_body_mib: float = 512
    max_voxels: int = 1024 * 1024 * 1024 // 4  # 256 Mi voxels: 1 GiB as float32
    max_array_mib: float = 1024
    cache_mib: float = 1024
    idle_seconds: float = 600.0
    liveness_seconds: float = 60.0
    ahead: int = 2

    def __post_init__(self) -> None:
        number(self.max_sessions, "--max-sessions", integer=True, positive=True, maximum=256, example=4)
        for name, option in (("max_body_mib", "max body MiB"), ("max_array_mib", "max array MiB"),
                             ("cache_mib", "--cache-mib"), ("idle_seconds", "--idle-timeout"),
                             ("liveness_seconds", "--liveness-timeout")):
            number(getattr(self, name), option, positive=True, maximum=2**30)
        number(self.max_voxels, "max voxels", integer=True, positive=True)
        number(self.ahead, "--ahead", integer=True, minimum=0, maximum=64, example=2)
