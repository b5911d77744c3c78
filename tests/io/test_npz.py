"""CVPR24-style npz: imgs / gts / spacing, spacing (z, y, x) in the file -> ITK (x, y, z)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from io_helpers import assert_one_line_error

from medseg.errors import MedsegError
from medseg.io import read_image, read_npz_labels


def test_3d_npz_spacing_reversed(tmp_path: Path) -> None:
    imgs = np.arange(4 * 5 * 6, dtype=np.uint8).reshape(4, 5, 6)  # (D, H, W) = (z, y, x)
    gts = (imgs > 60).astype(np.uint8)
    boxes = np.array([[1, 1, 0, 4, 3, 3]])
    np.savez_compressed(tmp_path / "CT_case.npz", imgs=imgs, gts=gts, boxes=boxes, spacing=np.array([2.5, 0.9, 0.7]))
    image = read_image(tmp_path / "CT_case.npz")
    np.testing.assert_array_equal(image.array, imgs)
    assert image.is_volume and image.geometry.spacing == (0.7, 0.9, 2.5)
    assert image.meta["npz_keys"] == "boxes,gts,imgs,spacing"
    np.testing.assert_array_equal(read_npz_labels(tmp_path / "CT_case.npz"), gts)


def test_2d_rgb_npz(tmp_path: Path) -> None:
    imgs = np.random.default_rng(4).integers(0, 256, size=(8, 9, 3), dtype=np.uint8)
    np.savez(tmp_path / "Endo.npz", imgs=imgs, gts=np.zeros((8, 9), np.uint8))
    image = read_image(tmp_path / "Endo.npz")
    assert image.is_rgb and image.geometry.dim == 2 and image.geometry.spacing == (1.0, 1.0)
    assert read_npz_labels(tmp_path / "Endo.npz").shape == (8, 9)


def test_2d_grey_npz_without_labels(tmp_path: Path) -> None:
    np.savez(tmp_path / "xray.npz", imgs=np.ones((8, 9), np.uint8))
    image = read_image(tmp_path / "xray.npz")
    assert image.array.shape == (8, 9) and image.geometry.dim == 2 and not image.is_rgb
    assert read_npz_labels(tmp_path / "xray.npz") is None


def test_unusable_spacing_ignored_with_note(tmp_path: Path) -> None:
    np.savez(tmp_path / "odd.npz", imgs=np.ones((3, 4, 5), np.int16), spacing=np.array([1.0, 0.0, 1.0]))
    image = read_image(tmp_path / "odd.npz")
    assert image.geometry.spacing == (1.0, 1.0, 1.0) and "spacing_note" in image.meta


def test_object_boxes_are_not_unpickled(tmp_path: Path) -> None:
    boxes = np.array([{"z_min": 1}], dtype=object)
    np.savez(tmp_path / "dict_boxes.npz", imgs=np.ones((3, 4, 5), np.int16), boxes=boxes)
    assert read_image(tmp_path / "dict_boxes.npz").array.shape == (3, 4, 5)


def test_labels_on_other_grid_refused(tmp_path: Path) -> None:
    np.savez(tmp_path / "mismatch.npz", imgs=np.ones((3, 4, 5)), gts=np.ones((3, 4, 6)))
    with pytest.raises(MedsegError) as excinfo:
        read_npz_labels(tmp_path / "mismatch.npz")
    assert_one_line_error(excinfo, tmp_path / "mismatch.npz", "gts", "(3, 4, 6)")


@pytest.mark.parametrize(
    ("arrays", "words"),
    [
        ({"gts": np.ones((2, 2))}, ("no 'imgs'", "gts")),
        ({"imgs": np.zeros((0, 5))}, ("empty",)),
        ({"imgs": np.zeros((2, 3, 4, 5))}, ("4D/multi-channel volumes are not supported",)),
    ],
)
def test_bad_npz_contents(tmp_path: Path, arrays: dict[str, np.ndarray], words: tuple[str, ...]) -> None:
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(MedsegError) as excinfo:
        read_image(tmp_path / "bad.npz")
    assert_one_line_error(excinfo, tmp_path / "bad.npz", *words)


def test_corrupt_npz(tmp_path: Path) -> None:
    (tmp_path / "broken.npz").write_bytes(b"PK\x03\x04 broken zip")
    for reader in (read_image, read_npz_labels):
        with pytest.raises(MedsegError) as excinfo:
            reader(tmp_path / "broken.npz")
        assert_one_line_error(excinfo, tmp_path / "broken.npz", "cannot read")


def test_missing_npz_labels(tmp_path: Path) -> None:
    with pytest.raises(MedsegError) as excinfo:
        read_npz_labels(tmp_path / "gone.npz")
    assert_one_line_error(excinfo, tmp_path / "gone.npz", "no such file")
