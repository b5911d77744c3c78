"""DICOM annotations wired into the commands: segment -o x.dcm, evaluate --gt SEG, train / benchmark case folders.

`medseg segment` runs the fake network of tests/predict (fast, no weights).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from dicom_fixtures import dciodvfy, voxel_square, write_ct_series, write_rtstruct

from medseg.cli.main import main
from medseg.io.dicom_seg import write_dicom_seg
from medseg.io.labels import read_label_map

sys.path.insert(0, str(Path(__file__).parents[1] / "predict"))
from fake_model import FakeEngine, FakeSAM  # noqa: E402

SHAPE = (6, 40, 48)


@pytest.fixture()
def fake_network(monkeypatch, tmp_path):
    monkeypatch.setenv("MEDSEG_ENGINE_CACHE", str(tmp_path / "engines"))
    monkeypatch.setattr("medseg.build.build_model", lambda *a, **k: FakeSAM())
    monkeypatch.setattr("medseg.predict.predictor.get_engine", lambda *a, **k: FakeEngine())


@pytest.fixture()
def series(tmp_path) -> Path:
    volume = np.full(SHAPE, -50, np.int16)
    volume[1:5, 10:25, 12:30] = 300  # a bright block the fake network segments
    folder = tmp_path / "case" / "ct"
    write_ct_series(folder, volume)
    return folder


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("medseg: error: "), err
    return err[0]


def test_segment_writes_a_valid_seg(fake_network, series, tmp_path, capsys):
    prompts = tmp_path / "prompts.json"
    obj = {"name": "liver", "interactions": [{"box3d": [12, 10, 1, 29, 24, 4]}]}
    prompts.write_text(json.dumps({"objects": [obj]}))
    out = tmp_path / "result" / "seg.dcm"
    assert main(["segment", str(series), "-o", str(out), "--prompts", str(prompts)]) == 0, capsys.readouterr().err
    errors, _ = dciodvfy(out)
    assert not errors, errors
    mask = read_label_map(out, series)
    assert mask.names == {1: "liver"} and mask.labels.any()
    nifti = tmp_path / "mask.nii.gz"
    assert main(["segment", str(series), "-o", str(nifti), "--prompts", str(prompts)]) == 0
    assert np.array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(nifti))), mask.labels)
    ds = pydicom.dcmread(out)
    algorithm = ds.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0]
    assert "litemedsam" in str(algorithm.AlgorithmParameters) and ds.ManufacturerModelName == "litemedsam"


def test_segment_format_flag(fake_network, series, tmp_path, capsys):
    out = tmp_path / "seg.out"
    code = main(["segment", str(series), "-o", str(out), "--format", "dicom-seg", "--box", "12,10,1,29,24,4"])
    assert code == 0, capsys.readouterr().err
    assert pydicom.dcmread(out).Modality == "SEG"


def test_segment_refuses_dcm_for_non_series(fake_network, tmp_path, capsys):
    image = sitk.GetImageFromArray(np.zeros(SHAPE, np.int16))
    scan = tmp_path / "scan.nii.gz"
    sitk.WriteImage(image, str(scan))
    out = tmp_path / "seg.dcm"
    assert main(["segment", str(scan), "-o", str(out), "--box", "12,10,1,29,24,4"]) == 2
    assert "DICOM series folder" in one_line_error(capsys)
    assert not out.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["segment", str(empty), "-o", str(out), "--box", "12,10,1,29,24,4"]) == 2
    one_line_error(capsys)
    assert not out.exists()


def test_evaluate_seg_and_rtstruct_ground_truth(series, tmp_path, capsys):
    truth = np.zeros(SHAPE, np.uint8)
    truth[2, 10:20, 10:20] = 1
    seg = write_dicom_seg(truth, series, tmp_path / "case" / "gt.dcm")
    pred = tmp_path / "pred.nii.gz"
    image = sitk.GetImageFromArray(truth)
    geometry = read_label_map(seg).geometry
    image.SetSpacing(geometry.spacing)
    image.SetOrigin(geometry.origin)
    image.SetDirection(geometry.direction)
    sitk.WriteImage(image, str(pred))
    assert main(["evaluate", "--pred", str(pred), "--gt", str(seg), "--reference", str(series)]) == 0
    assert "Dice 1.0000" in capsys.readouterr().out
    rs = write_rtstruct(tmp_path / "rs.dcm", series, {"other": [voxel_square(0, 0, 3, 3, 0)],
                                                       "box": [voxel_square(10, 10, 19, 19, 2)]})
    assert main(["evaluate", "--pred", str(pred), "--gt", str(rs), "--reference", str(series),
                 "--gt-segments", "box"]) == 0
    assert "Dice 1.0000" in capsys.readouterr().out
    assert main(["evaluate", "--pred", str(pred), "--gt", str(rs), "--gt-segments", "nope"]) == 2
    assert "--reference" in one_line_error(capsys)  # the series is two levels below rs.dcm: not looked for
    assert main(["evaluate", "--pred", str(pred), "--gt", str(rs), "--reference", str(series),
                 "--gt-segments", "nope"]) == 2
    assert "'nope'" in one_line_error(capsys)


def test_train_and_benchmark_read_dicom_cases(series, tmp_path):
    from medseg.evaluate.datasets import load_case, open_dataset
    from medseg.train.datasets import find_cases, read_case

    truth = np.zeros(SHAPE, np.uint8)
    truth[1:5, 10:25, 12:30] = 1
    write_dicom_seg(truth, series, series.parent / "seg" / "seg.dcm")
    other = tmp_path / "data" / "b"
    write_ct_series(other, np.zeros(SHAPE, np.int16))
    write_rtstruct(other / "rs.dcm", other, {"GTV": [voxel_square(5, 5, 20, 20, 3)]})
    (tmp_path / "data" / "a").symlink_to(series.parent, target_is_directory=True)
    layout, cases, _ = find_cases(tmp_path / "data")
    assert layout == "dicom" and [c.name for c in cases] == ["a", "b"]
    data, labels, volume = read_case(cases[0])
    assert volume and data.shape == SHAPE and np.array_equal(labels, truth)
    dataset = open_dataset(tmp_path / "data")
    image, gt, instances = load_case(dataset, dataset.cases[1])
    assert image.array.shape == SHAPE and gt[3].sum() == 16 * 16 and instances is None
