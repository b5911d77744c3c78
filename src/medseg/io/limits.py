"""The largest image medseg agrees to read, judged from the header before any voxel is read.

A header can claim any size: a 452-byte NIfTI file claiming 1200^3 voxels once made medseg allocate
3.5 GB before refusing. Every reader therefore calls ``check_declared_size`` with the size the header
declares, before it reads (or allocates) the voxel data.

The rule: the declared values (voxels x channels), held as a float32 working copy, must fit in the
limit. The limit is ``$MEDSEG_MAX_IMAGE_MB`` (MiB, of that float32 copy) if set, else a quarter of this
machine's memory (physical RAM, or the cgroup memory limit if lower). A quarter, because a command
holds the image as read (up to 8 bytes a voxel), its float32 windowed copy, the uint8 mask, the model
and its slice embeddings (up to 1 GiB) at the same time: about 2-3x the float32 copy at peak, which
must still leave room for the rest of the machine. On a 24 GiB machine the limit is 6 GiB: a
512x512x1000 CT (1 GiB as float32) reads, a header claiming 1200^3 voxels (6.4 GiB) is refused.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

from medseg.errors import MedsegError
from medseg.io._common import fail

ENV = "MEDSEG_MAX_IMAGE_MB"
WORKING_BYTES = 4  # float32
_MIB = 1 << 20
_CGROUP_FILES = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")


def machine_memory() -> int:
    """Bytes of memory this process may use: physical RAM, or the cgroup limit when lower."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 16 << 30
    for name in _CGROUP_FILES:
        try:
            text = Path(name).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and 0 < int(text) < total:
            total = int(text)
    return total


def limit_mib() -> tuple[float, str]:
    """The limit in MiB of the float32 working copy, and where it comes from (for messages)."""
    value = os.environ.get(ENV, "").strip()
    if not value:
        return machine_memory() / 4 / _MIB, "a quarter of this machine's memory"
    try:
        limit = float(value)
    except ValueError:
        limit = math.nan
    if not math.isfinite(limit) or limit <= 0:
        raise MedsegError(f"{ENV}={value!r} is not a positive number of MiB")
    return limit, f"${ENV}"


def check_declared_size(path: Path | str, shape: Sequence[int], channels: int = 1) -> None:
    """Refuse an image whose header declares more values than the limit allows, before reading it.

    Args:
        path: The file or folder, for the message.
        shape: Declared grid size in any axis order, e.g. ITK (x, y, z) or array (z, y, x).
        channels: Values per voxel (3 for RGB).

    Raises:
        MedsegError: One line naming the file, the declared size, the limit and how to raise it.
    """
    values = math.prod(int(n) for n in shape) * max(int(channels), 1)
    mib = values * WORKING_BYTES / _MIB
    limit, source = limit_mib()
    if mib <= limit:
        return
    grid = "x".join(str(int(n)) for n in shape) + (f"x{channels}" if channels > 1 else "")
    raise fail(path, f"the header declares {grid} values ({mib:,.0f} MiB as float32), more than the "
               f"limit of {limit:,.0f} MiB ({source}); set {ENV} to read larger images")
