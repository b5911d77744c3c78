"""The pyradiomics lesion dataset, offline: its builder on a fake sdist with the real member names, through the real
fetch (manifest, checksums), the download's checksum check and the loader. The real cases are checked in
tests/realdata/test_lesions.py.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from medseg.data import builders_lesions, loaders, sample, sources
from medseg.errors import MedsegError


def _nrrd(array: np.ndarray, tmp: Path) -> bytes:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((0.7, 0.7, 5.0))
    path = tmp / "x.nrrd"
    sitk.WriteImage(image, str(path))
    return path.read_bytes()


def _sdist(tmp: Path) -> Path:
    path = tmp / "pyradiomics-3.1.0.tar.gz"
    image = np.arange(4 * 16 * 16, dtype=np.int16).reshape(4, 16, 16)
    label = np.zeros((4, 16, 16), np.uint8)
    label[1:3, 5:9, 6:10] = 1
    members = {f"data/{case}_image.nrrd": _nrrd(image, tmp) for case in builders_lesions.LESION_CASES}
    members.update({f"data/{case}_label.nrrd": _nrrd(label, tmp) for case in builders_lesions.LESION_CASES})
    members["LICENSE.txt"] = b"BSD 3-Clause\n"
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(f"pyradiomics-3.1.0/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def fake_lesions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "data"
    monkeypatch.setenv("MEDSEG_DATA", str(root))
    archive = _sdist(tmp_path)

    def download(url: str, sha256: str, dest: Path, progress) -> Path:
        assert url == builders_lesions.PYRADIOMICS_URL and sha256 == builders_lesions.PYRADIOMICS_SHA256
        target = dest / archive.name
        target.write_bytes(archive.read_bytes())
        return target

    monkeypatch.setattr(sources, "pypi_file", download)
    sample.fetch("pyradiomics")
    return root


def test_registered_as_optional_evaluation_data() -> None:
    spec = sample.dataset("pyradiomics")
    assert not spec.required and "evaluation only" in spec.description
    assert len(spec.files) == 10


def test_builder_and_loader(fake_lesions: Path) -> None:
    folder = fake_lesions / "pyradiomics"
    assert (folder / "LICENSE.pyradiomics.txt").read_text().startswith("BSD")
    assert "never trains on them" in (folder / "NOTICE.txt").read_text()
    cases = loaders.load_labelled("pyradiomics")
    assert [c.name for c in cases] == [f"pyradiomics/{n}" for n in builders_lesions.LESION_CASES]
    for case in cases:
        assert case.labels.shape == case.image.array.shape == (4, 16, 16)
        assert case.names == {1: "Lesion"} and int(case.labels.sum()) == 32
        assert "never trained on" in case.licence and case.grid == loaders.AS_SHIPPED


def test_download_checks_the_sha256(tmp_path: Path) -> None:
    source = tmp_path / "pyradiomics-3.1.0.tar.gz"
    source.write_bytes(b"not the sdist")
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(MedsegError, match="has sha256 .*expected 24722c962a6b"):
        sources.pypi_file(source.as_uri(), builders_lesions.PYRADIOMICS_SHA256, dest, lambda _line: None)
    with pytest.raises(MedsegError, match="download of missing.tar.gz from PyPI failed"):
        sources.pypi_file((tmp_path / "missing.tar.gz").as_uri(), "0" * 64, dest, lambda _line: None)


def test_a_changed_sdist_is_a_one_line_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDSEG_DATA", str(tmp_path / "data"))
    archive = tmp_path / "pyradiomics-3.1.0.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("pyradiomics-3.1.0/README.md")
        tar.addfile(info, io.BytesIO(b""))

    def download(url, sha256, dest, progress):
        target = dest / archive.name
        target.write_bytes(archive.read_bytes())
        return target

    monkeypatch.setattr(sources, "pypi_file", download)
    with pytest.raises(MedsegError, match="lacks .*brain1_image.nrrd.*layout may have changed"):
        sample.fetch("pyradiomics")
    assert not (tmp_path / "data" / "pyradiomics").exists()
