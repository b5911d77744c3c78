"""Geometry-aware image container shared by every reader, writer and predictor."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Geometry:
    """Physical placement of a voxel grid, in ITK / SimpleITK conventions.

    Attributes:
        spacing: Voxel size in mm, ITK index order (x, y[, z]).
        origin: Physical position of voxel index 0, (x, y[, z]) in mm.
        direction: Direction cosine matrix, row-major flattened (dim*dim values).
    """

    spacing: tuple[float, ...]
    origin: tuple[float, ...]
    direction: tuple[float, ...]

    @property
    def dim(self) -> int:
        return len(self.spacing)

    @classmethod
    def identity(cls, dim: int, spacing: tuple[float, ...] | None = None) -> Geometry:
        eye = tuple(float(v) for v in np.eye(dim).ravel())
        return cls(tuple(spacing or (1.0,) * dim), (0.0,) * dim, eye)


@dataclass
class Image:
    """An image array with its geometry.

    Attributes:
        array: Voxel values. 3D volumes are (z, y, x) as SimpleITK's GetArrayFromImage returns
            them; 2D grey images are (y, x); 2D colour images are (y, x, 3).
        geometry: Spacing, origin and direction in ITK (x, y[, z]) order; its ``dim`` is 2 for
            2D images (grey or colour) and 3 for volumes.
        modality: "CT", "MR", ... when the file says so, else None.
        path: The file or folder it was read from, if any.
    """

    array: np.ndarray
    geometry: Geometry
    modality: str | None = None
    path: Path | None = None
    meta: dict[str, str] = field(default_factory=dict)

    @property
    def is_rgb(self) -> bool:
        return self.array.ndim == 3 and self.geometry.dim == 2

    @property
    def is_volume(self) -> bool:
        return self.geometry.dim == 3

    @property
    def grid_shape(self) -> tuple[int, ...]:
        """Shape of the voxel grid without colour channels: (z, y, x) or (y, x)."""
        return self.array.shape[:2] if self.is_rgb else self.array.shape
