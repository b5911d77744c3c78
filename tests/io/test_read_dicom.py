"""DICOM: series folders, single and multi-frame files, modality, rescale to HU, errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from io_helpers import assert_geometry_close, assert_one_line_error, write_dicom_series
from pydicom import dcmread
from pydicom.data import get_testdata_file

from medseg.errors import MedsegError
from medseg.io import Geometry, read_image

SERIES_SPACING = (0.7, 0.9, 2.5)
SERIES_ORIGIN = (-20.0, 15.5, 100.0)


def _volume(depth: int) -> np.ndarray:
    """(z, y, x) = (depth, 6, 8) int16 whose value encodes the slice: 100 * z + x."""
    z, _, x = np.meshgrid(np.arange(depth), np.arange(6), np.arange(8), indexing="ij")
    return (100 * z + x - 50).astype(np.int16)


@pytest.fixture
def series_folder(tmp_path: Path) -> Path:
    write_dicom_series(tmp_path / "series", _volume(4), SERIES_SPACING, SERIES_ORIGIN, "1.2.826.0.1.3680043.2.1125.7")
    return tmp_path / "series"


def test_series_folder(series_folder: Path) -> None:
    image = read_image(series_folder)
    assert image.array.shape == (4, 6, 8)  # (z, y, x), files sorted by position, not name
    np.testing.assert_array_equal(image.array, _volume(4))
    assert np.allclose(image.geometry.spacing, SERIES_SPACING, atol=1e-6)
    assert np.allclose(image.geometry.origin, SERIES_ORIGIN, atol=1e-6)
    assert image.modality == "CT" and image.path == series_folder
    assert image.meta["dicom_files"] == "4" and "dicom_series_note" not in image.meta


def test_oblique_series(tmp_path: Path, oblique_geometry: Geometry) -> None:
    uid = "1.2.826.0.1.3680043.2.1125.9"
    write_dicom_series(tmp_path, _volume(3), SERIES_SPACING, SERIES_ORIGIN, uid, direction=oblique_geometry.direction)
    image = read_image(tmp_path)
    np.testing.assert_array_equal(image.array, _volume(3))
    assert_geometry_close(image.geometry, Geometry(SERIES_SPACING, SERIES_ORIGIN, oblique_geometry.direction))


def test_series_of_one_slice_is_2d(tmp_path: Path) -> None:
    write_dicom_series(tmp_path, _volume(1), SERIES_SPACING, SERIES_ORIGIN, "1.2.826.0.1.3680043.2.1125.10")
    image = read_image(tmp_path)
    assert image.array.shape == (6, 8) and image.geometry.dim == 2 and image.modality == "CT"
    assert np.allclose(image.geometry.spacing, SERIES_SPACING[:2])
    assert np.allclose([float(v) for v in image.meta["dicom_origin"].split()], SERIES_ORIGIN)


def test_several_series_take_the_largest(series_folder: Path) -> None:
    uid = "1.2.826.0.1.3680043.2.1125.8"
    write_dicom_series(series_folder, _volume(2), (1.0, 1.0, 3.0), (0.0, 0.0, 0.0), uid, modality="MR")
    image = read_image(series_folder)
    assert image.array.shape == (4, 6, 8) and image.modality == "CT"
    assert "2 series" in image.meta["dicom_series_note"]
    assert image.meta["dicom_series_uid"] == "1.2.826.0.1.3680043.2.1125.7"


def test_ct_small_in_hounsfield_units() -> None:
    path = Path(get_testdata_file("CT_small.dcm"))
    dataset = dcmread(path)
    hu = dataset.pixel_array * float(dataset.RescaleSlope) + float(dataset.RescaleIntercept)
    image = read_image(path)
    assert image.modality == "CT"
    assert image.array.shape == (128, 128) and image.geometry.dim == 2
    np.testing.assert_array_equal(image.array, hu)
    assert image.array.min() < -800  # air, in HU (raw values are all positive)
    assert np.allclose(image.geometry.spacing, [float(v) for v in dataset.PixelSpacing])


def test_dicom_without_ending_found_by_preamble(tmp_path: Path) -> None:
    path = tmp_path / "IM0001"
    shutil.copy(get_testdata_file("MR_small.dcm"), path)
    image = read_image(path)
    assert image.modality == "MR" and image.array.shape == (64, 64)


def test_multi_frame_file(tmp_path: Path) -> None:
    volume = _volume(5).astype(np.uint16) + 100
    image = sitk.GetImageFromArray(volume)
    image.SetSpacing(SERIES_SPACING)
    sitk.WriteImage(image, str(tmp_path / "frames.dcm"))
    read = read_image(tmp_path / "frames.dcm")
    assert read.array.shape == (5, 6, 8) and read.is_volume
    np.testing.assert_array_equal(read.array, volume)
    assert np.allclose(read.geometry.spacing, SERIES_SPACING, atol=1e-6)
    assert read.modality == "OT"


def test_folder_without_dicom(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("nothing here")
    with pytest.raises(MedsegError) as excinfo:
        read_image(tmp_path)
    assert_one_line_error(excinfo, tmp_path, "no DICOM series")


def test_corrupt_dicom_file(tmp_path: Path) -> None:
    data = Path(get_testdata_file("CT_small.dcm")).read_bytes()
    (tmp_path / "cut.dcm").write_bytes(data[:1000])
    with pytest.raises(MedsegError) as excinfo:
        read_image(tmp_path / "cut.dcm")
    assert_one_line_error(excinfo, tmp_path / "cut.dcm", "cannot read")


def test_garbage_dcm(tmp_path: Path) -> None:
    (tmp_path / "junk.dcm").write_bytes(b"\x00" * 300)
    with pytest.raises(MedsegError) as excinfo:
        read_image(tmp_path / "junk.dcm")
    assert_one_line_error(excinfo, tmp_path / "junk.dcm", "cannot read")


def test_rgb_dicom_is_2d_colour() -> None:
    path = Path(get_testdata_file("SC_rgb_rle.dcm"))
    image = read_image(path)
    assert image.is_rgb and image.array.shape == (100, 100, 3)
    np.testing.assert_array_equal(image.array, dcmread(path).pixel_array)


def test_rgb_multi_frame_refused() -> None:
    path = Path(get_testdata_file("SC_rgb_rle_2frame.dcm"))
    with pytest.raises(MedsegError) as excinfo:
        read_image(path)
    assert_one_line_error(excinfo, path, "4D/multi-channel volumes are not supported")
