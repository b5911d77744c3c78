"""Volumes turned to one axis order before SAM3D sees them, and labels turned back.

A 3D convolution learns in array-index space, so two scans of the same anatomy stored with different
directions (e.g. Colin27 with x reversed against the FSL MNI152 template) look mirrored to it.
``canonical`` flips and transposes a (z, y, x) array so that its index axes follow the physical
axes x, y, z in increasing order (the identity direction of ITK's LPS space: x to the patient's left,
y to posterior, z to superior; an oblique direction is taken to its nearest axes, as SimpleITK's
DICOMOrient does), and ``restore`` undoes it. Axial DICOM CT is usually already canonical.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Orientation:
    """How an array was turned: ``flips`` (array axes reversed, before the transpose) and ``perm``."""

    flips: tuple[int, ...]
    perm: tuple[int, int, int]

    def canonical(self, array: np.ndarray) -> np.ndarray:
        out = np.flip(array, self.flips) if self.flips else array
        return np.ascontiguousarray(np.transpose(out, self.perm))

    def restore(self, array: np.ndarray) -> np.ndarray:
        out = np.transpose(array, np.argsort(self.perm))
        return np.ascontiguousarray(np.flip(out, self.flips) if self.flips else out)

    def spacing(self, spacing_xyz) -> list[float]:
        """ITK (x, y, z) spacing of the canonical array."""
        zyx = [spacing_xyz[2], spacing_xyz[1], spacing_xyz[0]]
        return [float(zyx[self.perm[2]]), float(zyx[self.perm[1]]), float(zyx[self.perm[0]])]


def orientation(direction) -> Orientation:
    """The Orientation turning a (z, y, x) array of ITK direction ``direction`` (9 numbers) canonical."""
    d = np.asarray(direction, float).reshape(3, 3)
    phys = [int(np.argmax(np.abs(d[:, i]))) for i in range(3)]  # ITK index axis i -> physical axis
    if sorted(phys) != [0, 1, 2]:  # degenerate: leave as is
        return Orientation((), (0, 1, 2))
    flips = tuple(2 - i for i in range(3) if d[phys[i], i] < 0)  # array axis of ITK index i is 2 - i
    perm = tuple(2 - phys.index(2 - k) for k in range(3))  # new array axis k <- old array axis
    return Orientation(tuple(sorted(flips)), perm)
