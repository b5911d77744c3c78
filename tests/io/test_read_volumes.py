"""NIfTI / NRRD / MetaImage: geometry kept exactly, voxels identical, errors one line."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from io_helpers import assert_geometry_close, assert_one_line_error

from medseg.errors import MedsegError
from medseg.io import Geometry, read_image, write_mask

VOLUME_ENDINGS = [".nii.gz", ".nii", ".nrrd", ".mha"]


@pytest.mark.parametrize("end", VOLUME_ENDINGS)
def test_mask_round_trip_keeps_oblique_anisotropic_geometry(
    tmp_path: Path, end: str, labels_zyx: np.ndarray, oblique_geometry: Geometry
) -> None:
    path = write_mask(labels_zyx, oblique_geometry, tmp_path / f"mask{end}")
    image = read_image(path)
    assert image.array.dtype == np.uint8
    assert image.array.shape == (5, 7, 9)  # (z, y, x)
    np.testing.assert_array_equal(image.array, labels_zyx)
    assert_geometry_close(image.geometry, oblique_geometry)
    assert image.is_volume and image.modality is None and image.path == path


def _sitk_volume(geometry: Geometry) -> tuple[np.ndarray, sitk.Image]:
    array = np.random.default_rng(1).normal(size=(4, 6, 8)).astype(np.float32)
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(geometry.spacing)
    image.SetOrigin(geometry.origin)
    image.SetDirection(geometry.direction)
    return array, image


@pytest.mark.parametrize("end", [".nrrd", ".mha", ".nhdr", ".mhd", ".nii.gz"])
def test_intensity_volume_read_as_written(tmp_path: Path, end: str, oblique_geometry: Geometry) -> None:
    array, image = _sitk_volume(oblique_geometry)
    path = tmp_path / f"scan{end}"
    sitk.WriteImage(image, str(path))
    read = read_image(path)
    assert read.array.dtype == np.float32
    np.testing.assert_array_equal(read.array, array)
    assert_geometry_close(read.geometry, oblique_geometry)


def test_nrrd_and_mha_geometry_bit_exact(tmp_path: Path, oblique_geometry: Geometry) -> None:
    _, image = _sitk_volume(oblique_geometry)
    for end in (".nrrd", ".mha"):
        sitk.WriteImage(image, str(tmp_path / f"scan{end}"))
        read = read_image(tmp_path / f"scan{end}")
        assert read.geometry.spacing == oblique_geometry.spacing
        assert read.geometry.origin == oblique_geometry.origin
        assert np.allclose(read.geometry.direction, oblique_geometry.direction, rtol=0, atol=1e-15)


def test_upper_case_ending(tmp_path: Path, labels_zyx: np.ndarray, oblique_geometry: Geometry) -> None:
    path = write_mask(labels_zyx, oblique_geometry, tmp_path / "MASK.NII.GZ")
    np.testing.assert_array_equal(read_image(path).array, labels_zyx)


def test_2d_nifti_is_a_2d_image(tmp_path: Path) -> None:
    array = np.arange(12, dtype=np.int16).reshape(3, 4)
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((0.5, 0.25))
    sitk.WriteImage(image, str(tmp_path / "plane.nii.gz"))
    read = read_image(tmp_path / "plane.nii.gz")
    assert read.geometry.dim == 2 and read.array.shape == (3, 4) and not read.is_rgb
    assert np.allclose(read.geometry.spacing, (0.5, 0.25))


def test_4d_volume_refused(tmp_path: Path) -> None:
    image = sitk.GetImageFromArray(np.zeros((2, 3, 4, 5), np.float32), isVector=False)
    sitk.WriteImage(image, str(tmp_path / "series.nii.gz"))
    with pytest.raises(MedsegError) as excinfo:
        read_image(tmp_path / "series.nii.gz")
    assert_one_line_error(excinfo, tmp_path / "series.nii.gz", "4D/multi-channel volumes are not supported")


def test_4d_with_one_time_point_is_3d(tmp_path: Path) -> None:
    array = np.arange(60, dtype=np.float32).reshape(1, 3, 4, 5)
    sitk.WriteImage(sitk.GetImageFromArray(array, isVector=False), str(tmp_path / "one.nii.gz"))
    np.testing.assert_array_equal(read_image(tmp_path / "one.nii.gz").array, array[0])


def test_vector_volume_refused(tmp_path: Path) -> None:
    image = sitk.GetImageFromArray(np.zeros((3, 4, 5, 3), np.float32), isVector=True)
    sitk.WriteImage(image, str(tmp_path / "field.mha"))
    with pytest.raises(MedsegError) as excinfo:
        read_image(tmp_path / "field.mha")
    assert_one_line_error(excinfo, tmp_path / "field.mha", "4D/multi-channel volumes are not supported")


@pytest.mark.parametrize("end", [".nii.gz", ".nii", ".nrrd", ".mha"])
def test_corrupt_file_is_one_line_error(tmp_path: Path, end: str) -> None:
    path = tmp_path / f"broken{end}"
    path.write_bytes(b"this is not an image\n" * 20)
    with pytest.raises(MedsegError) as excinfo:
        read_image(path)
    assert_one_line_error(excinfo, path, "cannot read")


def test_truncated_nifti_is_one_line_error(tmp_path: Path, labels_zyx: np.ndarray) -> None:
    path = tmp_path / "cut.nii"
    write_mask(labels_zyx, Geometry.identity(3), path)
    path.write_bytes(path.read_bytes()[:400])
    with pytest.raises(MedsegError) as excinfo:
        read_image(path)
    assert_one_line_error(excinfo, path, "cannot read")


def test_truncated_nifti_gz_is_one_line_error(tmp_path: Path, labels_zyx: np.ndarray) -> None:
    path = tmp_path / "cut.nii.gz"
    noisy = np.random.default_rng(2).integers(0, 255, size=(20, 30, 40), dtype=np.uint8)
    write_mask(noisy, Geometry.identity(3), path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(MedsegError) as excinfo:
        read_image(path)
    assert_one_line_error(excinfo, path, "cannot read")


def test_multi_member_gzip_nifti_reads(tmp_path: Path, labels_zyx: np.ndarray) -> None:
    plain = tmp_path / "whole.nii"
    write_mask(labels_zyx, Geometry.identity(3), plain)
    data = plain.read_bytes()
    path = tmp_path / "members.nii.gz"
    path.write_bytes(gzip.compress(data[:500]) + gzip.compress(data[500:]))
    np.testing.assert_array_equal(read_image(path).array, labels_zyx)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MedsegError) as excinfo:
        read_image(tmp_path / "nowhere.nii.gz")
    assert_one_line_error(excinfo, tmp_path / "nowhere.nii.gz", "no such file")


@pytest.mark.parametrize("name", ["notes.txt", "scan.gz", "README"])
def test_unsupported_ending_lists_supported(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text("hello")
    with pytest.raises(MedsegError) as excinfo:
        read_image(path)
    assert_one_line_error(excinfo, path, "unsupported", ".nii.gz", ".nrrd", ".mha", ".dcm", ".png", ".npz")
