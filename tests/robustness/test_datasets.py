"""Malformed training / benchmark datasets: one line, exit 2, and no run folder left behind."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from medseg.cli.main import main

META = {"labels": {"background": 0, "x": 1}, "file_ending": ".nii.gz"}
BAD_META = {
    "a list": "[]",
    "labels a list": json.dumps({"labels": [1, 2]}),
    "ending a number": json.dumps({"labels": {"x": 1}, "file_ending": 5}),
    "ending a path": json.dumps({"labels": {"x": 1}, "file_ending": "/../x"}),
    "deep nesting": "[" * 100_000 + "]" * 100_000,
    "not json": "{labels",
}


def dataset(root: Path, meta: str, label_shape=(4, 32, 32)) -> Path:
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    (root / "dataset.json").write_text(meta)
    image = np.random.default_rng(0).random((4, 32, 32)).astype(np.float32)
    sitk.WriteImage(sitk.GetImageFromArray(image), str(root / "imagesTr" / "a_0000.nii.gz"))
    labels = np.zeros(label_shape, np.uint8)
    labels[1, 5:10, 5:10] = 1
    sitk.WriteImage(sitk.GetImageFromArray(labels), str(root / "labelsTr" / "a.nii.gz"))
    return root


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("medseg: error: "), err
    return err[0]


COMMANDS = {
    "train": ["train", "--mode", "decoder", "--max-steps", "1", "--quiet", "--data", "{data}", "--out", "{out}"],
    "benchmark-protocol": ["benchmark-protocol", "--protocol", "box2d", "--data", "{data}", "--out", "{out}"],
}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("case", list(BAD_META))
def test_bad_dataset_json(tmp_path: Path, capsys, command: str, case: str) -> None:
    data = dataset(tmp_path / "ds", BAD_META[case])
    out = tmp_path / "run" / "deep"
    args = [a.format(data=data, out=out) for a in COMMANDS[command]]
    assert main(args) == 2
    assert "dataset.json" in one_line_error(capsys)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("command", list(COMMANDS))
def test_case_that_fails_to_load_leaves_no_run_folder(tmp_path: Path, capsys, command: str) -> None:
    """Labels on another grid than their image: refused; a new run folder is not left behind."""
    data = dataset(tmp_path / "ds", json.dumps(META), label_shape=(4, 30, 32))
    out = tmp_path / "run" / "deep"
    args = [a.format(data=data, out=out) for a in COMMANDS[command]]
    assert main(args) == 2
    assert "a.nii.gz" in one_line_error(capsys)
    assert not (tmp_path / "run").exists()
