"""`medseg evaluate` on small synthetic files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from medseg.cli.main import main
from medseg.io import Geometry, write_mask


def volume(shift: int = 0) -> np.ndarray:
    labels = np.zeros((12, 20, 20), np.uint8)
    labels[2:8, 4:10, 4 + shift:10 + shift] = 1
    labels[3:9, 12:18, 12:18] = 2
    return labels


GEOM = Geometry((0.5, 0.5, 2.0), (0.0, 0.0, 0.0), tuple(np.eye(3).ravel()))


def test_two_files_json_and_csv(tmp_path, capsys):
    pred = write_mask(volume(shift=2), GEOM, tmp_path / "case1_pred.nii.gz")
    gt = write_mask(volume(), GEOM, tmp_path / "case1.nii.gz")
    out_json, out_csv = tmp_path / "r.json", tmp_path / "r.csv"
    assert main(["evaluate", "--pred", str(pred), "--gt", str(gt), "--json", str(out_json), "--csv", str(out_csv),
                 "--nsd-tolerance", "1"]) == 0
    result = json.loads(out_json.read_text())
    assert set(result) >= {"cases", "mean"}
    assert [(r["case"], r["label"]) for r in result["cases"]] == [("case1", 1), ("case1", 2)]
    assert set(result["cases"][0]) == {"case", "label", "dice", "nsd", "hd95"}
    one, two = result["cases"]
    assert one["dice"] == pytest.approx(4 / 6)
    assert one["hd95"] == pytest.approx(1.0)  # 2 voxels of 0.5 mm in x
    assert one["nsd"] == pytest.approx(1.0)
    assert (two["dice"], two["nsd"], two["hd95"]) == (1.0, 1.0, 0.0)
    assert result["mean"]["dice"] == pytest.approx((4 / 6 + 1) / 2)
    assert out_csv.read_text().splitlines()[0] == "case,label,dice,nsd,hd95"
    assert "mean over 2" in capsys.readouterr().out


def test_folders_matched_by_case_and_labels_option(tmp_path):
    for name in ("a", "b"):
        write_mask(volume(), GEOM, tmp_path / "gt" / f"{name}.nii.gz")
        write_mask(volume(shift=1 if name == "b" else 0), GEOM, tmp_path / "pred" / f"{name}.nii.gz")
    out = tmp_path / "r.json"
    assert main(["evaluate", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"), "--labels", "1,3",
                 "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["cases"]
    assert [(r["case"], r["label"]) for r in rows] == [("a", 1), ("a", 3), ("b", 1), ("b", 3)]
    assert rows[1]["dice"] == 1.0 and rows[1]["hd95"] == 0.0  # label 3 absent from both: convention
    assert rows[2]["dice"] < 1.0


def test_empty_prediction_writes_null_hd95(tmp_path):
    gt = write_mask(volume(), GEOM, tmp_path / "gt.nii.gz")
    pred = write_mask(np.zeros_like(volume()), GEOM, tmp_path / "pred.nii.gz")
    out = tmp_path / "r.json"
    assert main(["evaluate", "--pred", str(pred), "--gt", str(gt), "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert [r["hd95"] for r in result["cases"]] == [None, None]
    assert result["mean"]["hd95_infinite"] == 2 and result["mean"]["dice"] == 0.0


@pytest.mark.parametrize("geometry", [
    Geometry((0.5, 0.5, 3.0), (0.0, 0.0, 0.0), tuple(np.eye(3).ravel())),
    Geometry((0.5, 0.5, 2.0), (0.0, 5.0, 0.0), tuple(np.eye(3).ravel())),
])
def test_geometry_mismatch_is_one_line_error(tmp_path, capsys, geometry):
    gt = write_mask(volume(), GEOM, tmp_path / "gt.nii.gz")
    pred = write_mask(volume(), geometry, tmp_path / "pred.nii.gz")
    assert main(["evaluate", "--pred", str(pred), "--gt", str(gt)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("medseg: error: geometry mismatch") and "\n" not in err


def test_shape_mismatch_and_missing_case(tmp_path, capsys):
    gt = write_mask(volume(), GEOM, tmp_path / "gt" / "a.nii.gz")
    pred = write_mask(volume()[:6], GEOM, tmp_path / "pred" / "a.nii.gz")
    assert main(["evaluate", "--pred", str(pred), "--gt", str(gt)]) == 2
    assert "shape" in capsys.readouterr().err
    write_mask(volume(), GEOM, tmp_path / "gt" / "b.nii.gz")
    assert main(["evaluate", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt")]) == 2
    assert "have no prediction" in capsys.readouterr().err
