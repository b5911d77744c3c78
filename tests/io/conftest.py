"""Synthetic images for the IO tests: anisotropic spacing and an oblique direction."""

from __future__ import annotations

import numpy as np
import pytest
from io_helpers import ORIGIN, SPACING, rotation

from medseg.io import Geometry


@pytest.fixture
def oblique_geometry() -> Geometry:
    matrix = rotation(0.3, -0.2, 0.5)
    assert np.allclose(matrix @ matrix.T, np.eye(3)) and np.isclose(np.linalg.det(matrix), 1.0)
    return Geometry(SPACING, ORIGIN, tuple(float(v) for v in matrix.ravel()))


@pytest.fixture
def labels_zyx() -> np.ndarray:
    """(z, y, x) = (5, 7, 9) uint8 labels 0..4, every axis a different length."""
    return np.random.default_rng(0).integers(0, 5, size=(5, 7, 9), dtype=np.uint8)
