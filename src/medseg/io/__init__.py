"""Medical image IO: ``read_image(path) -> Image`` and ``write_mask(mask, geometry, path)``.

Arrays are (z, y, x) for volumes, (y, x) / (y, x, 3) for 2D pictures; geometry is ITK (x, y[, z]).
Images whose header declares more than ``$MEDSEG_MAX_IMAGE_MB`` MiB as float32 (default: a quarter of
this machine's memory) are refused before reading; see ``medseg.io.limits``.
"""

from __future__ import annotations

from medseg.io.image import Geometry, Image
from medseg.io.npz import read_npz_labels
from medseg.io.placement import output_geometry
from medseg.io.quiet import itk_warnings_off
from medseg.io.read import read_image
from medseg.io.write import check_output_path, write_mask

__all__ = ["check_output_path", "Geometry", "Image", "output_geometry", "read_image", "read_npz_labels", "write_mask"]

itk_warnings_off()  # ITK's warnings ("Non uniform sampling or missing slices", ...) never reach users
