"""PNG / JPEG / TIFF: grey (y, x), colour (y, x, 3), uint16 kept, identity 2D geometry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from io_helpers import assert_one_line_error
from PIL import Image as PILImage

from medseg.errors import MedsegError
from medseg.io import Geometry, Image, read_image

RNG = np.random.default_rng(3)


def _check_2d(image: Image, shape: tuple[int, ...]) -> None:
    assert image.array.shape == shape
    assert image.geometry == Geometry.identity(2)
    assert image.modality is None and not image.is_volume


def test_png_grey(tmp_path: Path) -> None:
    grey = RNG.integers(0, 256, size=(12, 17), dtype=np.uint8)
    PILImage.fromarray(grey).save(tmp_path / "grey.png")
    image = read_image(tmp_path / "grey.png")
    _check_2d(image, (12, 17))
    np.testing.assert_array_equal(image.array, grey)
    assert not image.is_rgb


def test_png_rgb(tmp_path: Path) -> None:
    rgb = RNG.integers(0, 256, size=(12, 17, 3), dtype=np.uint8)
    PILImage.fromarray(rgb).save(tmp_path / "rgb.png")
    image = read_image(tmp_path / "rgb.png")
    _check_2d(image, (12, 17, 3))
    np.testing.assert_array_equal(image.array, rgb)
    assert image.is_rgb and image.grid_shape == (12, 17)


def test_png_rgba_drops_alpha(tmp_path: Path) -> None:
    rgba = RNG.integers(0, 256, size=(9, 11, 4), dtype=np.uint8)
    PILImage.fromarray(rgba).save(tmp_path / "rgba.png")
    image = read_image(tmp_path / "rgba.png")
    _check_2d(image, (9, 11, 3))
    np.testing.assert_array_equal(image.array, rgba[..., :3])


def test_png_16_bit_grey(tmp_path: Path) -> None:
    grey = RNG.integers(0, 65536, size=(8, 10), dtype=np.uint16)
    PILImage.fromarray(grey).save(tmp_path / "deep.png")
    image = read_image(tmp_path / "deep.png")
    assert image.array.dtype == np.uint16
    np.testing.assert_array_equal(image.array, grey)


@pytest.mark.parametrize("name", ["photo.jpg", "photo.JPEG"])
def test_jpeg_rgb(tmp_path: Path, name: str) -> None:
    rgb = np.full((16, 24, 3), (200, 40, 90), dtype=np.uint8)
    PILImage.fromarray(rgb).save(tmp_path / name, format="JPEG", quality=95)
    image = read_image(tmp_path / name)
    _check_2d(image, (16, 24, 3))
    assert np.abs(image.array.astype(int) - rgb).max() <= 3  # lossy


def test_tiff_uint16_kept(tmp_path: Path) -> None:
    grey = RNG.integers(0, 65536, size=(13, 7), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "scan.tif", grey)
    image = read_image(tmp_path / "scan.tif")
    _check_2d(image, (13, 7))
    assert image.array.dtype == np.uint16
    np.testing.assert_array_equal(image.array, grey)


@pytest.mark.parametrize("planar", ["contig", "separate"])
def test_tiff_rgb(tmp_path: Path, planar: str) -> None:
    rgb = RNG.integers(0, 256, size=(10, 12, 3), dtype=np.uint8)
    data = rgb if planar == "contig" else np.moveaxis(rgb, -1, 0)
    tifffile.imwrite(tmp_path / "rgb.tiff", data, photometric="rgb", planarconfig=planar)
    image = read_image(tmp_path / "rgb.tiff")
    _check_2d(image, (10, 12, 3))
    np.testing.assert_array_equal(image.array, rgb)


def test_tiff_stack_refused(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "stack.tif", np.zeros((3, 8, 8), np.uint8), photometric="minisblack")
    with pytest.raises(MedsegError) as excinfo:
        read_image(tmp_path / "stack.tif")
    assert_one_line_error(excinfo, tmp_path / "stack.tif", "not supported")


@pytest.mark.parametrize("name", ["bad.png", "bad.jpg", "bad.tif"])
def test_corrupt_picture(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(b"not a picture at all" * 10)
    with pytest.raises(MedsegError) as excinfo:
        read_image(tmp_path / name)
    assert_one_line_error(excinfo, tmp_path / name, "cannot read")


def test_truncated_png(tmp_path: Path) -> None:
    PILImage.fromarray(RNG.integers(0, 256, size=(64, 64), dtype=np.uint8)).save(tmp_path / "cut.png")
    data = (tmp_path / "cut.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(MedsegError) as excinfo:
        read_image(tmp_path / "cut.png")
    assert_one_line_error(excinfo, tmp_path / "cut.png", "cannot read")
