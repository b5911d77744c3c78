"""NaN and Inf voxels: counted in any float image and refused with one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medseg.io._common import fail

_CHUNK_VALUES = 1 << 22


def count_nonfinite(array: np.ndarray) -> int:
    """How many values of ``array`` are NaN or ±Inf (0 for integer arrays), in 4M-value chunks.

    Chunks keep the temporary boolean array small: a 512x512x1000 volume needs 4 MB, not 262 MB.
    """
    if array.dtype.kind not in "fc":
        return 0
    flat = array.reshape(-1)
    return sum(
        int(part.size - np.count_nonzero(np.isfinite(part)))
        for part in (flat[i : i + _CHUNK_VALUES] for i in range(0, flat.size, _CHUNK_VALUES))
    )


def refuse_nonfinite(count: int, path: Path | str) -> None:
    """Raise the one-line error for ``count`` NaN/Inf voxels (nothing if ``count`` is 0)."""
    if count:
        raise fail(path, f"holds {count} NaN/Inf voxel{'s' if count != 1 else ''}; "
                   "medseg needs finite intensities")


def check_finite(array: np.ndarray, path: Path | str) -> None:
    """Raise a MedsegError if the float ``array`` read from ``path`` holds NaN or ±Inf values."""
    refuse_nonfinite(count_nonfinite(array), path)
