"""SimpleITK-backed reading: NIfTI, NRRD, MetaImage, and the conversion used for DICOM too."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from medseg.io._common import check_not_empty, drop_alpha, ending, fail, one_line
from medseg.io._nifti import nifti_shortfall
from medseg.io.image import Geometry, Image

_COMPLEX = (sitk.sitkComplexFloat32, sitk.sitkComplexFloat64)
MULTICHANNEL = "4D/multi-channel volumes are not supported; give one 3D volume with one value per voxel"


def geometry_from_sitk(image: sitk.Image) -> Geometry:
    """Geometry of a SimpleITK image: spacing, origin and direction copied unchanged, (x, y[, z])."""
    return Geometry(
        tuple(float(v) for v in image.GetSpacing()),
        tuple(float(v) for v in image.GetOrigin()),
        tuple(float(v) for v in image.GetDirection()),
    )


def _drop_trailing_unit_dims(image: sitk.Image, path: Path) -> sitk.Image:
    """Turn a 4D image with a single time point into 3D (some writers store 3D as 4D)."""
    if image.GetDimension() != 4 or image.GetSize()[3] != 1:
        return image
    size = [*image.GetSize()[:3], 0]
    try:
        return sitk.Extract(image, size, [0, 0, 0, 0], sitk.ExtractImageFilter.DIRECTIONCOLLAPSETOGUESS)
    except RuntimeError as exc:
        raise fail(path, f"cannot reduce the 4D image to 3D: {one_line(exc)}") from None


def array_from_sitk(image: sitk.Image, path: Path) -> tuple[np.ndarray, Geometry]:
    """Voxel array and geometry of a SimpleITK image, refusing what medseg cannot segment.

    Args:
        image: A 2D or 3D SimpleITK image (scalar, or RGB(A) when 2D).
        path: The file or folder it came from, for error messages.

    Returns:
        The array, (z, y, x) for volumes, (y, x) or (y, x, 3) for 2D images, and its Geometry.

    Raises:
        MedsegError: 4D or multi-channel volumes, complex pixels, empty images.
    """
    image = _drop_trailing_unit_dims(image, path)
    channels = image.GetNumberOfComponentsPerPixel()
    if image.GetDimension() not in (2, 3) or (image.GetDimension() == 3 and channels > 1):
        raise fail(path, f"{MULTICHANNEL} (got size {image.GetSize()} with {channels} value(s) per voxel)")
    if image.GetPixelID() in _COMPLEX:
        raise fail(path, "complex-valued images are not supported")
    array = check_not_empty(sitk.GetArrayFromImage(image), path)
    if channels > 1:
        array = drop_alpha(array, path)
    return array, geometry_from_sitk(image)


def read_sitk_file(path: Path) -> Image:
    """Read a NIfTI, NRRD or MetaImage file with SimpleITK, keeping its geometry exactly.

    Args:
        path: An existing .nii, .nii.gz, .nrrd, .nhdr, .mha or .mhd file.

    Returns:
        Image with the (z, y, x) or (y, x) array and ITK (x, y[, z]) geometry; modality None.

    Raises:
        MedsegError: The file cannot be read or holds a 4D / multi-channel volume.
    """
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise fail(path, f"cannot read the image: {one_line(exc)}") from None
    if ending(path) in (".nii", ".nii.gz"):
        problem = nifti_shortfall(path, compressed=ending(path) == ".nii.gz")
        if problem:
            raise fail(path, f"cannot read the image: {problem}")
    array, geometry = array_from_sitk(image, path)
    return Image(array, geometry, modality=None, path=path)
