"""SimpleITK-backed reading: NIfTI, NRRD, MetaImage, and the conversion used for DICOM too."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import SimpleITK as sitk

from medseg.io._common import check_not_empty, drop_alpha, ending, fail, one_line
from medseg.io._nifti import NiftiHeader, nifti_nonfinite, nifti_scaling_problem, nifti_shortfall, read_header
from medseg.io.finite import check_finite, refuse_nonfinite
from medseg.io.image import Geometry, Image
from medseg.io.limits import check_declared_size
from medseg.io.quiet import silenced

T = TypeVar("T")
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


def _read_information(path: Path) -> sitk.ImageFileReader:
    """A reader that has read the header only; the declared size is checked against the limit."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    _quietly(path, reader.ReadImageInformation)
    check_declared_size(path, reader.GetSize(), reader.GetNumberOfComponents())
    return reader


def _quietly(path: Path, step: Callable[[], T]) -> T:
    """Run a SimpleITK read step silenced; a failure becomes one line (MetaIO and NRRD explained).

    MetaIO reports a truncated file on stderr only, behind a misleading "No such file or directory";
    NRRD's last "[nrrd]" line is the one that says what went wrong.
    """
    error = None
    with silenced() as captured:
        try:
            return step()
        except RuntimeError as exc:
            error = exc
    text = " ".join(captured.text.split())
    nrrd = [ln.split("] ", 1)[-1] for ln in str(error).splitlines() if ln.startswith("[nrrd]")]
    sizes = re.search(r"not read completely ideal = (\d+) : actual = (\d+)", text)
    if sizes:
        reason = f"truncated: the header promises {sizes[1]} bytes of data, the file holds {sizes[2]}"
    else:
        reason = nrrd[-1] if nrrd and nrrd[-1].strip() else one_line(error)
    raise fail(path, f"cannot read the image: {reason}")


def _check_nifti(path: Path) -> NiftiHeader | None:
    """Truncation and scaling checks of a NIfTI file, before its voxels are read."""
    compressed = ending(path) == ".nii.gz"
    problem = nifti_shortfall(path, compressed)
    header = read_header(path, compressed)
    if problem is None and header is not None:
        problem = nifti_scaling_problem(header)
    if problem:
        raise fail(path, f"cannot read the image: {problem}")
    return header


def read_sitk_file(path: Path) -> Image:
    """Read a NIfTI, NRRD or MetaImage file with SimpleITK, keeping its geometry exactly.

    The header is read first: a declared size beyond the limit (``medseg.io.limits``), a NIfTI file
    shorter than its header promises or with unusable scaling fields are refused before any voxel
    is read. Float images holding NaN/Inf are refused (for NIfTI, counted in the file itself, as
    ITK turns them into 0).

    Args:
        path: An existing .nii, .nii.gz, .nrrd, .nhdr, .mha or .mhd file.

    Returns:
        Image with the (z, y, x) or (y, x) array and ITK (x, y[, z]) geometry; modality None.

    Raises:
        MedsegError: The file cannot be read, is too large or incomplete, holds NaN/Inf voxels or a
            4D / multi-channel volume.
    """
    reader = _read_information(path)
    header = _check_nifti(path) if ending(path) in (".nii", ".nii.gz") else None
    image = _quietly(path, reader.Execute)
    array, geometry = array_from_sitk(image, path)
    if header is not None and array.dtype.kind == "f" and not np.all(array):
        # ITK reads NaN/Inf as 0: only a float image holding zeros can hide some (decompress again)
        refuse_nonfinite(nifti_nonfinite(path, ending(path) == ".nii.gz", header), path)
    check_finite(array, path)
    return Image(array, geometry, modality=None, path=path)
