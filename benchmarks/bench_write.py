"""Cost of the safe write (``medseg.files``: fsync, read-back check, folder fsync) on a 512x512x100 mask.

Usage: python benchmarks/bench_write.py [FOLDER] [--repeats N]

Prints, per format, the median of N interleaved rounds: the bare writer to a temporary name plus a
rename (what write_mask did before), ``write_mask`` now, and the read-back check alone.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from medseg.io import write_mask
from medseg.io.image import Geometry
from medseg.io.verify import verify_for
from medseg.io.write import _writer


def ellipsoid() -> np.ndarray:
    """(100, 512, 512) uint8 mask: one ellipsoid, about 5% of the voxels."""
    z, y, x = np.ogrid[:100, :512, :512]
    return (((z - 50) / 40) ** 2 + ((y - 256) / 150) ** 2 + ((x - 256) / 120) ** 2 < 1).astype(np.uint8)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("folder", nargs="?", default=None)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    folder = Path(args.folder or tempfile.mkdtemp(prefix="bench_write-"))
    mask = ellipsoid()
    geometry = Geometry((0.8, 0.8, 2.5), (0.0, 0.0, 0.0), (1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0))
    for end in (".nii.gz", ".nii", ".nrrd", ".mha", ".npz"):
        bare, safe, check = [], [], []
        for _ in range(args.repeats):
            target = folder / f"bare{end}"
            start = time.perf_counter()
            _writer(end)(mask, geometry, folder / f".tmp{end}")
            os.replace(folder / f".tmp{end}", target)
            bare.append(time.perf_counter() - start)
            start = time.perf_counter()
            path = write_mask(mask, geometry, folder / f"safe{end}")
            safe.append(time.perf_counter() - start)
            start = time.perf_counter()
            assert verify_for(path)(path) is None
            check.append(time.perf_counter() - start)
        b, s, c = (1000 * statistics.median(v) for v in (bare, safe, check))
        print(f"{end:8s} bare {b:7.1f} ms  write_mask {s:7.1f} ms  (+{s - b:6.1f} ms, {100 * (s - b) / b:+5.1f}%)  "
              f"check alone {c:6.1f} ms  {path.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
