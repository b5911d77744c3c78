"""`medseg segment` with 3D prompts, on a synthetic volume with the fake engine (fast)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from medseg.cli.main import main

sys.path.insert(0, str(Path(__file__).parent))
from fake_model import FakeEngine, FakeSAM  # noqa: E402
from test_volume import SHAPE, sphere  # noqa: E402


@pytest.fixture(autouse=True)
def fake_network(monkeypatch, tmp_path):
    # an empty engine cache keeps `medseg segment` off the torch-free ONNX path, onto the patched network
    monkeypatch.setenv("MEDSEG_ENGINE_CACHE", str(tmp_path / "engines"))
    monkeypatch.setattr("medseg.build.build_model", lambda *a, **k: FakeSAM())
    monkeypatch.setattr("medseg.predict.predictor.get_engine", lambda *a, **k: FakeEngine())


@pytest.fixture
def scan(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    vol = rng.integers(10, 30, SHAPE).astype(np.uint8)
    vol[sphere()] = 200
    image = sitk.GetImageFromArray(vol)
    image.SetSpacing((0.8, 0.9, 2.5))
    image.SetOrigin((1.0, 2.0, 3.0))
    path = tmp_path / "scan.nii.gz"
    sitk.WriteImage(image, str(path))
    return path


def segment(scan: Path, *args: str) -> tuple[int, np.ndarray | None]:
    out = scan.parent / "mask.nii.gz"
    out.unlink(missing_ok=True)  # each call a fresh output (an existing one is refused without --overwrite)
    code = main(["segment", str(scan), "-o", str(out), *args])
    return code, sitk.GetArrayFromImage(sitk.ReadImage(str(out))) if out.exists() else None


def slices_of(labels: np.ndarray, label: int = 1) -> list[int]:
    return np.nonzero((labels == label).any(axis=(1, 2)))[0].tolist()


def test_3d_box_writes_a_volume_mask_with_the_input_geometry(scan, capsys):
    code, labels = segment(scan, "--box", "25,21,4,43,39,20")
    assert code == 0
    assert slices_of(labels) == list(range(4, 21))
    out = capsys.readouterr().out
    assert "slices encoded: 17" in out and "object 1 on slices 4..20" in out
    ref, mask = sitk.ReadImage(str(scan)), sitk.ReadImage(str(scan.parent / "mask.nii.gz"))
    assert mask.GetSpacing() == ref.GetSpacing() and mask.GetOrigin() == ref.GetOrigin()


def test_two_3d_boxes_are_two_objects_and_baseline_is_selectable(scan):
    code, labels = segment(scan, "--box", "25,21,4,43,39,20", "--box", "25,21,10,34,39,12",
                           "--propagation", "baseline")
    assert code == 0 and set(np.unique(labels)) == {0, 1, 2} and slices_of(labels, 2) == [10, 11, 12]


def test_box_partly_outside_is_clipped_and_said(scan, capsys):
    code, labels = segment(scan, "--box", "25,21,-3,43,39,40")
    assert code == 0 and labels is not None
    assert "clipped to 25,21,0,43,39,23" in capsys.readouterr().out


def test_2d_box_with_propagate_and_lone_point_go_3d(scan):
    code, labels = segment(scan, "--box", "25,21,43,39", "--slice", "12", "--propagate")
    assert code == 0 and len(slices_of(labels)) >= 15
    code, labels = segment(scan, "--point", "34,30,12")
    assert code == 0 and len(slices_of(labels)) >= 15


def test_2d_box_without_propagate_keeps_the_2d_contract(scan):
    code, labels = segment(scan, "--box", "25,21,43,39", "--slice", "12")
    assert code == 0 and slices_of(labels) == [12]


def test_prompt_file_with_box3d_and_a_correction(scan, tmp_path):
    prompts = tmp_path / "p.json"
    prompts.write_text(json.dumps({"objects": [
        {"propagate": True, "interactions": [{"box": [25, 21, 30, 39], "slice": 12}]},
        {"interactions": [{"box3d": [25, 21, 4, 43, 39, 20]}, {"point": [34, 30, 15], "label": 0}]},
    ]}))
    code, labels = segment(scan, "--prompts", str(prompts))
    # the click's region is the whole object there, beyond what a correction may remove: the grown ball around the
    # click goes instead (since stop 45; before, a 3-px disc on slice 15), as deep as the click, a part of the object
    assert code == 0 and labels[15, 30, 34] != 2 and (labels[15] == 2).any()
    assert (labels == 2).sum() > sphere().sum() / 2 and np.array_equal(labels[:12] == 2, sphere()[:12])
    assert (labels == 1).any()


@pytest.mark.parametrize("args, words", [
    (["--box", "30,21,4,30,39,20"], "zero extent"),
    (["--box", "70,70,4,90,90,20"], "entirely outside"),
    (["--box", "25,21,20,43,39,4"], "inverted"),
    (["--point", "70,30,12"], "outside"),
    (["--point", "30,30,30"], "slice 30"),
    (["--box", "25,21,43,39", "--slice", "24", "--propagate"], "slice 24"),
    (["--propagate"], "--propagate needs"),
    (["--box", "1,1,5,5", "--box", "2,2,6,6", "--slice", "1"], "2D boxes"),
    (["--box", "1,1,5,5,6"], "4 numbers"),
])
def test_bad_3d_prompts_are_one_line_errors_without_output(scan, args, words, capsys):
    code, labels = segment(scan, *args)
    err = capsys.readouterr().err.strip()
    assert code == 2 and labels is None
    assert len(err.splitlines()) == 1 and words in err, err


def test_planes_3_on_anisotropic_voxels_keeps_z_slices_and_says_so(scan, capsys):
    code, one = segment(scan, "--box", "25,21,4,43,39,20")
    code3, three = segment(scan, "--box", "25,21,4,43,39,20", "--planes", "3")
    assert code == code3 == 0 and np.array_equal(one, three)
    assert "voxels of 0.8 x 0.9 x 2.5 mm are not near-isotropic" in capsys.readouterr().out


def test_planes_3_on_isotropic_voxels_writes_the_mask_with_its_geometry(scan):
    image = sitk.ReadImage(str(scan))
    image.SetSpacing((1.0, 1.0, 1.1))
    sitk.WriteImage(image, str(scan))
    code, labels = segment(scan, "--box", "25,21,4,43,39,20", "--planes", "3")
    assert code == 0 and (labels == 1).sum() > 0.9 * sphere().sum()
    ref, mask = sitk.ReadImage(str(scan)), sitk.ReadImage(str(scan.parent / "mask.nii.gz"))
    assert mask.GetSpacing() == ref.GetSpacing() and mask.GetOrigin() == ref.GetOrigin()


def test_planes_other_than_1_or_3_are_refused_without_output(scan, capsys):
    code, labels = segment(scan, "--box", "25,21,4,43,39,20", "--planes", "2")
    assert code == 2 and labels is None
    assert "--planes" in capsys.readouterr().err


def test_no_refine_keeps_the_models_border_of_a_lone_click(tmp_path):
    """A drum whose rim (radius 5 to 7, intensity 120) the fake model takes in only in part: the lone click's object
    reaches the drum's edge by default (medseg.predict.refine) and keeps the model's border with --no-refine."""
    z, y, x = np.ogrid[: SHAPE[0], : SHAPE[1], : SHAPE[2]]
    r2, slab = (y - 30) ** 2 + (x - 20) ** 2, (z >= 6) & (z <= 18)
    vol = np.random.default_rng(5).integers(10, 30, SHAPE).astype(np.uint8)
    vol[(r2 <= 49) & slab] = 120
    vol[(r2 <= 25) & slab] = 200
    path = tmp_path / "drum.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(vol), str(path))
    drawn, kept = (segment(path, "--point", "20,30,12", "--no-click-atlas", *extra) for extra in ((), ("--no-refine",)))
    assert drawn[0] == kept[0] == 0
    assert ((drawn[1] == 1) == ((r2 <= 49) & slab)).all()  # the drum whole
    assert (kept[1] == 1).sum() < (drawn[1] == 1).sum()
