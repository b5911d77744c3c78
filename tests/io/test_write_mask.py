"""write_mask: formats, shape/geometry checks, atomic replace, refusing to overwrite the input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from io_helpers import assert_geometry_close, assert_one_line_error
from PIL import Image as PILImage

from medseg.errors import MedsegError
from medseg.io import Geometry, read_image, write_mask


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_png_mask_2d(tmp_path: Path) -> None:
    mask = np.zeros((6, 9), dtype=bool)
    mask[2:4, 3:7] = True
    path = write_mask(mask, Geometry.identity(2), tmp_path / "mask.png")
    read = np.asarray(PILImage.open(path))
    assert read.dtype == np.uint8 and read.shape == (6, 9)
    np.testing.assert_array_equal(read, mask.astype(np.uint8))


def test_npz_mask_key_segs(tmp_path: Path, labels_zyx: np.ndarray, oblique_geometry: Geometry) -> None:
    path = write_mask(labels_zyx.astype(np.int64), oblique_geometry, tmp_path / "case.npz")
    with np.load(path) as archive:
        assert archive.files == ["segs"]
        assert archive["segs"].dtype == np.uint8
        np.testing.assert_array_equal(archive["segs"], labels_zyx)


def test_2d_mask_to_nifti_keeps_geometry(tmp_path: Path) -> None:
    geometry = Geometry((0.5, 0.8), (10.0, -4.0), (0.0, -1.0, 1.0, 0.0))
    mask = np.eye(5, 7, dtype=np.uint8) * 3
    path = write_mask(mask, geometry, tmp_path / "plane.nii.gz")
    image = read_image(path)
    np.testing.assert_array_equal(image.array, mask)
    assert_geometry_close(image.geometry, geometry)


def test_creates_parent_and_replaces(tmp_path: Path, labels_zyx: np.ndarray) -> None:
    path = tmp_path / "a" / "b" / "mask.nrrd"
    write_mask(labels_zyx, Geometry.identity(3), path)
    write_mask(labels_zyx * 0 + 1, Geometry.identity(3), path)
    assert (read_image(path).array == 1).all()
    assert _files(path.parent) == ["mask.nrrd"]  # no temporary files left


@pytest.mark.parametrize("end", [".nii.gz", ".nii", ".nrrd", ".mha", ".npz", ".png"])
def test_no_temporary_files_left(tmp_path: Path, end: str) -> None:
    mask = np.ones((4, 5), np.uint8)
    write_mask(mask, Geometry.identity(2), tmp_path / f"out{end}")
    assert _files(tmp_path) == [f"out{end}"]


def test_failed_write_leaves_target_untouched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "mask.mha"
    write_mask(np.ones((3, 4, 5), np.uint8), Geometry.identity(3), path)
    before = path.read_bytes()

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("medseg.io.write.os.replace", broken_replace)
    with pytest.raises(MedsegError) as excinfo:
        write_mask(np.zeros((3, 4, 5), np.uint8), Geometry.identity(3), path)
    assert_one_line_error(excinfo, path, "cannot write", "disk full")
    assert path.read_bytes() == before and _files(tmp_path) == ["mask.mha"]


def test_refuses_to_overwrite_input(tmp_path: Path, labels_zyx: np.ndarray) -> None:
    source = write_mask(labels_zyx, Geometry.identity(3), tmp_path / "scan.nii.gz")
    before = source.read_bytes()
    for target in (source, tmp_path / "." / "scan.nii.gz"):
        with pytest.raises(MedsegError) as excinfo:
            write_mask(labels_zyx * 0, Geometry.identity(3), target, reference_path=source)
        assert_one_line_error(excinfo, target, "refusing to overwrite")
    link = tmp_path / "link.nii.gz"
    link.hardlink_to(source)
    with pytest.raises(MedsegError):
        write_mask(labels_zyx * 0, Geometry.identity(3), link, reference_path=str(source))
    assert source.read_bytes() == before


def test_other_output_next_to_input_is_fine(tmp_path: Path, labels_zyx: np.ndarray) -> None:
    source = write_mask(labels_zyx, Geometry.identity(3), tmp_path / "scan.nii.gz")
    write_mask(labels_zyx, Geometry.identity(3), tmp_path / "scan_mask.nii.gz", reference_path=source)


@pytest.mark.parametrize(
    ("mask", "geometry", "name", "words"),
    [
        (np.ones((3, 4, 5)), Geometry.identity(3), "mask.jpg", ("cannot write masks as '.jpg'", ".nii.gz", ".png")),
        (np.ones((3, 4, 5)), Geometry.identity(3), "mask", ("without ending",)),
        (np.ones((3, 4, 5)), Geometry.identity(2), "mask.nii.gz", ("(3, 4, 5)", "2D", "(y, x)")),
        (np.ones((4, 5)), Geometry.identity(3), "mask.nii.gz", ("(4, 5)", "3D", "(z, y, x)")),
        (np.ones((3, 4, 5)), Geometry.identity(3), "mask.png", ("PNG holds 2D masks only",)),
        (np.full((4, 5), 300), Geometry.identity(2), "mask.png", ("0..255", "max 300")),
        (np.full((4, 5), -1), Geometry.identity(2), "mask.png", ("0..255",)),
        (np.full((4, 5), 0.5), Geometry.identity(2), "mask.png", ("whole-number",)),
        (np.zeros((0, 5)), Geometry.identity(2), "mask.png", ("empty",)),
        (np.ones((4, 5)), Geometry((1.0, 0.0), (0.0, 0.0), (1.0, 0.0, 0.0, 1.0)), "m.nrrd", ("positive",)),
    ],
)
def test_bad_requests_write_nothing(
    tmp_path: Path, mask: np.ndarray, geometry: Geometry, name: str, words: tuple[str, ...]
) -> None:
    out = tmp_path / "out"
    with pytest.raises(MedsegError) as excinfo:
        write_mask(mask, geometry, out / name)
    assert_one_line_error(excinfo, out / name, *words)
    assert not out.exists()


def test_output_is_a_folder(tmp_path: Path) -> None:
    (tmp_path / "x.nii.gz").mkdir()
    with pytest.raises(MedsegError) as excinfo:
        write_mask(np.ones((2, 3, 4)), Geometry.identity(3), tmp_path / "x.nii.gz")
    assert_one_line_error(excinfo, tmp_path / "x.nii.gz", "folder")
