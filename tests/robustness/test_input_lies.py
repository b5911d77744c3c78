"""Input that lies (issue 17): `medseg segment` refuses it in one line, or reads it and says what it chose.

Every failure: exit 2, one stderr line ``medseg: error: ...``, no traceback, the folder unchanged (no mask,
no temporary file). Failures come before the model loads, so those runs take well under a second.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from medseg.io import output_geometry, read_image, write_mask
from robustness.conftest import assert_clean_failure, run_medseg
from robustness.lies_helpers import (
    float_volume,
    lying_nifti,
    nifti_header,
    png_claiming,
    truncate,
    write_picture_npz_tiff,
    write_series,
    write_volume,
)

BOX_2D = ["--box", "2,2,20,15"]


def segment(source: Path, out: Path, *extra: str, env: dict[str, str] | None = None):
    return run_medseg(["segment", source, "-o", out, *BOX_2D, *extra], env=env)


def refused(source: Path, folder: Path, unchanged, *words: str, extra: tuple[str, ...] = (), env=None) -> None:
    with unchanged(folder):
        run = segment(source, folder / "mask.nii.gz", *extra, env=env)
    assert_clean_failure(run, *words)


# VmHWM, not ru_maxrss: the latter keeps the parent's peak across fork + exec (pytest's, GBs after model tests)
_PEAK_RSS = """
import sys
from medseg.cli.main import main
code = main(["segment", sys.argv[1], "-o", sys.argv[2], "--box", "0,0,5,5", "--slice", "0"])
peak = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(code, int(peak.split()[1]) // 1024)
"""


@pytest.mark.parametrize(("side", "words"), [(1200, ("1200x1200x1200", "MEDSEG_MAX_IMAGE_MB")),
                                             (800, ("truncated", "1024000352 bytes"))])
def test_lying_nifti_header_refused_without_allocating(tmp_path, unchanged, side, words) -> None:
    source = lying_nifti(tmp_path / "lie.nii", side)
    assert source.stat().st_size == 452
    refused(source, tmp_path, unchanged, *words)
    child = subprocess.run([sys.executable, "-c", _PEAK_RSS, source, tmp_path / "m.nii.gz"],
                           capture_output=True, text=True, timeout=120)
    code, peak_mib = map(int, child.stdout.split())
    assert code == 2 and peak_mib < 500, (code, peak_mib)  # 1200^3 int16 alone would be 3.3 GiB


def test_limit_from_environment(tmp_path, unchanged) -> None:
    source = write_volume(tmp_path / "ct.nii.gz", np.zeros((20, 64, 64), np.int16))
    refused(source, tmp_path, unchanged, "20", "MEDSEG_MAX_IMAGE_MB", env={"MEDSEG_MAX_IMAGE_MB": "0.1"})
    refused(source, tmp_path, unchanged, "MEDSEG_MAX_IMAGE_MB", "positive", env={"MEDSEG_MAX_IMAGE_MB": "lots"})


def test_default_limit_takes_a_big_ct_and_refuses_1200_cubed(monkeypatch) -> None:
    from medseg.errors import MedsegError
    from medseg.io import limits

    monkeypatch.delenv(limits.ENV, raising=False)
    monkeypatch.setattr(limits, "machine_memory", lambda: 24 << 30)
    limits.check_declared_size("ct", (512, 512, 1000))
    with pytest.raises(MedsegError, match="quarter"):
        limits.check_declared_size("lie", (1200, 1200, 1200))


@pytest.mark.parametrize(("name", "compress"), [("v.nii", False), ("v.nii.gz", True), ("v.nrrd", False),
                                                ("v.nrrd", True), ("v.mha", False), ("v.mha", True)])
def test_truncated_volume(tmp_path, unchanged, name, compress) -> None:
    noise = np.random.default_rng(1).integers(0, 3000, (12, 40, 40)).astype(np.int16)
    source = truncate(write_volume(tmp_path / name, noise, compress))
    refused(source, tmp_path, unchanged, name, "cannot read")


@pytest.mark.parametrize("name", ["p.tif", "p.npz", "p.png"])
def test_truncated_picture(tmp_path, unchanged, name) -> None:
    pixels = np.random.default_rng(2).integers(0, 255, (64, 64)).astype(np.uint8)
    if name.endswith(".png"):
        from PIL import Image as PILImage

        PILImage.fromarray(pixels).save(tmp_path / name)
        source = truncate(tmp_path / name)
    else:
        source = truncate(write_picture_npz_tiff(tmp_path / name, pixels))
    refused(source, tmp_path, unchanged, name, "cannot read")


def test_truncated_dicom(tmp_path, unchanged) -> None:
    source = truncate(write_series(tmp_path / "one", "1.2.826.0.1.3680043.2.1125.51", [10.0])[0])
    refused(source, tmp_path, unchanged, source.name, "cannot read")


@pytest.mark.parametrize("name", ["f.nii", "f.nii.gz", "f.nrrd", "f.mha", "f.tif", "f.npz"])
def test_nan_inf_voxels_refused(tmp_path, unchanged, name) -> None:
    array = float_volume()[0] if name.endswith(".tif") else float_volume()
    source = write_picture_npz_tiff(tmp_path / name, array) if not name.endswith(".nii.gz") else \
        write_volume(tmp_path / name, array)
    refused(source, tmp_path, unchanged, name, "holds 3 NaN/Inf voxels", "finite")


@pytest.mark.parametrize(("slope", "inter", "words"), [(float("inf"), 0.0, ("scl_slope", "inf")),
                                                       (2.0, float("nan"), ("scl_inter", "nan"))])
def test_non_finite_scaling_refused(tmp_path, unchanged, slope, inter, words) -> None:
    source = tmp_path / "scaled.nii"
    source.write_bytes(nifti_header((8, 8, 2), slope=slope, inter=inter) + np.arange(128, dtype="<i2").tobytes())
    refused(source, tmp_path, unchanged, *words)


def test_nan_slope_means_unscaled_and_nan_data_is_seen(tmp_path) -> None:
    """NIfTI: scl_slope NaN is "unset" (nibabel writes it); NaN voxels are counted, not read as 0."""
    plain = tmp_path / "plain.nii"
    plain.write_bytes(nifti_header((8, 8, 2), slope=float("nan")) + np.arange(128, dtype="<i2").tobytes())
    np.testing.assert_array_equal(read_image(plain).array.ravel(), np.arange(128))
    data = np.ones(128, "<f4")
    data[[5, 77]] = np.nan
    floats = tmp_path / "floats.nii"
    floats.write_bytes(nifti_header((8, 8, 2), 16, 32, slope=float("nan")) + data.tobytes())
    assert sitk.GetArrayFromImage(sitk.ReadImage(str(floats))).ravel()[5] == 0  # what ITK alone does
    with pytest.raises(Exception, match="holds 2 NaN/Inf voxels"):
        read_image(floats)


def test_png_bomb_refused_by_medseg_limit(tmp_path, unchanged) -> None:
    refused(png_claiming(tmp_path / "bomb.png", 100_000, 100_000), tmp_path, unchanged, "bomb.png",
            "100000x100000", "MEDSEG_MAX_IMAGE_MB")


def test_big_png_reads_without_pillow_warning(tmp_path, capfd) -> None:
    import warnings

    from PIL import Image as PILImage

    PILImage.new("L", (9500, 9500)).save(tmp_path / "big.png")  # above Pillow's 89.5 M-pixel warning
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert read_image(tmp_path / "big.png").array.shape == (9500, 9500)
    assert not caught and capfd.readouterr().err == ""


@pytest.fixture()
def two_series(tmp_path) -> Path:
    folder = tmp_path / "study"
    write_series(folder, "1.2.826.0.1.3680043.2.1125.61", [0.0, 2.5, 5.0, 7.5, 10.0])
    write_series(folder, "1.2.826.0.1.3680043.2.1125.62", [0.0, 2.5, 5.0])
    return folder


def test_several_series_choice_printed_and_series_picks(two_series, tmp_path) -> None:
    largest = segment(two_series, tmp_path / "a.nii.gz", "--slice", "1")
    assert largest.code == 0, largest.err
    notes = [line for line in largest.out.splitlines() if line.startswith("note: ")]
    assert len(notes) == 1 and "2 series" in notes[0] and "1125.61 (5 files)" in notes[0] and "--series" in notes[0]
    assert sitk.ReadImage(str(tmp_path / "a.nii.gz")).GetSize() == (32, 24, 5)
    picked = segment(two_series, tmp_path / "b.nii.gz", "--slice", "1", "--series", "1.2.826.0.1.3680043.2.1125.62")
    assert picked.code == 0 and "note:" not in picked.out, picked.err
    assert sitk.ReadImage(str(tmp_path / "b.nii.gz")).GetSize() == (32, 24, 3)
    assert largest.err == picked.err == ""  # no ITK / GDCM line on stderr


def test_unknown_series_lists_those_found(two_series, unchanged) -> None:
    refused(two_series, two_series.parent, unchanged, "no series 9.9", "1125.61 (5 files)", "1125.62 (3 files)",
            extra=("--slice", "1", "--series", "9.9"))


def test_series_given_for_a_file(tmp_path, unchanged) -> None:
    source = write_volume(tmp_path / "ct.nii.gz", np.zeros((3, 24, 32), np.int16))
    refused(source, tmp_path, unchanged, "folder", extra=("--slice", "1", "--series", "1.2.3"))


@pytest.mark.parametrize(("positions", "words"), [
    ([0, 2.5, 5, 10, 12.5, 15], ("uneven", "5 mm between slices 2 and 3", "missing slice")),
    ([0, 2.5, 5, 8, 10.5, 13], ("uneven", "3 mm between slices 2 and 3", "tolerance")),
    ([0, 2.5, 2.5, 5, 7.5], ("uneven", "0 mm between slices 1 and 2", "one position")),
])
def test_uneven_or_missing_slices_refused(tmp_path, unchanged, positions, words) -> None:
    write_series(tmp_path / "series", "1.2.826.0.1.3680043.2.1125.71", positions)
    refused(tmp_path / "series", tmp_path, unchanged, *words, extra=("--slice", "1"))


def test_single_slice_dicom_mask_keeps_its_place(tmp_path) -> None:
    source = write_series(tmp_path / "one", "1.2.826.0.1.3680043.2.1125.81", [42.5], thickness=3.0)[0]
    run = segment(source, tmp_path / "mask.nii.gz")
    assert run.code == 0, run.err
    mask = sitk.ReadImage(str(tmp_path / "mask.nii.gz"))
    assert mask.GetSize() == (32, 24, 1)
    assert np.allclose(mask.GetOrigin(), (-20, 15.5, 42.5)) and np.allclose(mask.GetSpacing(), (0.7, 0.9, 3.0))
    assert np.allclose(mask.GetDirection(), np.eye(3).ravel())
    image = read_image(source)
    labels = np.zeros((24, 32), np.uint8)
    for name in ("m.nrrd", "m.mha"):
        write_mask(*output_geometry(image, labels, tmp_path / name), tmp_path / name)
        again = sitk.ReadImage(str(tmp_path / name))
        assert again.GetOrigin() == (-20, 15.5, 42.5) and again.GetSpacing() == (0.7, 0.9, 3.0)  # exact here
        assert again.GetDirection() == tuple(np.eye(3).ravel())
    flat, geometry = output_geometry(image, labels, tmp_path / "m.png")
    assert flat.shape == (24, 32) and geometry.dim == 2


def test_png_mask_geometry_stays_2d(tmp_path) -> None:
    from PIL import Image as PILImage

    PILImage.fromarray(np.zeros((24, 32), np.uint8)).save(tmp_path / "p.png")
    image = read_image(tmp_path / "p.png")
    labels, geometry = output_geometry(image, np.ones((24, 32), np.uint8), tmp_path / "m.nii.gz")
    write_mask(labels, geometry, tmp_path / "m.nii.gz")
    mask = sitk.ReadImage(str(tmp_path / "m.nii.gz"))
    assert mask.GetSize() == (32, 24) and mask.GetSpacing() == (1.0, 1.0) and mask.GetOrigin() == (0.0, 0.0)
