"""Medical image IO: ``read_image(path) -> Image`` and ``write_mask(mask, geometry, path)``.

Arrays are (z, y, x) for volumes, (y, x) / (y, x, 3) for 2D pictures; geometry is ITK (x, y[, z]).
"""

from __future__ import annotations

from medseg.io.image import Geometry, Image
from medseg.io.npz import read_npz_labels
from medseg.io.read import read_image
from medseg.io.write import check_output_path, write_mask

__all__ = ["check_output_path", "Geometry", "Image", "read_image", "read_npz_labels", "write_mask"]
