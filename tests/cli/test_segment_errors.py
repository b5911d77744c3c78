"""Bad input to `medseg segment`: one line on stderr, exit 2, no traceback, no output file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from medseg.cli.main import main


def volume(path: Path, array: np.ndarray, spacing=(0.8, 0.9, 2.5)) -> Path:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    sitk.WriteImage(image, str(path))
    return path


@pytest.fixture()
def scan(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    return volume(tmp_path / "scan.nii.gz", rng.integers(0, 1000, (6, 40, 50)).astype(np.int16))


def run_cli(args: list[str], capsys) -> tuple[int, str]:
    code = main(args)
    err = capsys.readouterr().err
    return code, err


def assert_one_line_error(code: int, err: str, *words: str) -> None:
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("medseg: error: ")
    assert "Traceback" not in err
    for word in words:
        assert word in lines[0], (word, lines[0])


CASES = {
    "missing file": (["{missing}", "--box", "1,1,5,5", "--slice", "0"], ["missing.nii.gz"]),
    "unsupported ending": (["{tmp}/scan.xyz", "--box", "1,1,5,5", "--slice", "0"], ["scan.xyz"]),
    "box outside": (["{scan}", "--box", "10,10,60,20", "--slice", "2"], ["outside"]),
    "inverted box": (["{scan}", "--box", "30,10,20,20", "--slice", "2"], ["inverted"]),
    "slice out of range": (["{scan}", "--box", "1,1,5,5", "--slice", "6"], ["slice 6", "0..5"]),
    "point outside": (["{scan}", "--point", "70,10,2"], ["outside"]),
    "no slice on volume": (["{scan}", "--box", "1,1,5,5"], ["--slice"]),
    "bad box text": (["{scan}", "--box", "1,1,5", "--slice", "0"], ["--box", "4 numbers"]),
    "no prompt": (["{scan}"], ["no prompt"]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_prompt_or_path(name, scan, tmp_path, capsys):
    args, words = CASES[name]
    (tmp_path / "scan.xyz").write_bytes(b"abc")
    filled = [a.format(scan=scan, tmp=tmp_path, missing=tmp_path / "missing.nii.gz") for a in args]
    out = tmp_path / "out" / "mask.nii.gz"
    code, err = run_cli(["segment", *filled, "-o", str(out)], capsys)
    assert_one_line_error(code, err, *words)
    assert not out.exists() and not out.parent.exists()


def test_output_equal_to_input_is_refused(scan, capsys):
    before = scan.read_bytes()
    code, err = run_cli(["segment", str(scan), "-o", str(scan), "--box", "1,1,5,5", "--slice", "0"], capsys)
    assert_one_line_error(code, err, "input")
    assert scan.read_bytes() == before


@pytest.mark.parametrize("kind", ["nan", "constant", "corrupt", "4d"])
def test_bad_image_content(kind, tmp_path, capsys):
    path = tmp_path / "bad.nii.gz"
    if kind == "nan":
        volume(path, np.full((4, 20, 20), np.nan, np.float32))
    elif kind == "constant":
        volume(path, np.full((4, 20, 20), 7, np.int16))
    elif kind == "corrupt":
        path.write_bytes(b"\x1f\x8b this is not a nifti file")
    else:
        sitk.WriteImage(sitk.GetImageFromArray(np.zeros((2, 3, 20, 20), np.int16)), str(path))
    out = tmp_path / "mask.nii.gz"
    code, err = run_cli(["segment", str(path), "-o", str(out), "--box", "1,1,5,5", "--slice", "0"], capsys)
    assert_one_line_error(code, err, "bad.nii.gz")
    assert not out.exists()


def test_rgb_volume_is_refused(tmp_path, capsys):
    path = tmp_path / "rgbvol.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((3, 20, 20, 3), np.uint8), isVector=True), str(path))
    out = tmp_path / "mask.nii.gz"
    code, err = run_cli(["segment", str(path), "-o", str(out), "--box", "1,1,5,5", "--slice", "0"], capsys)
    assert_one_line_error(code, err, "rgbvol.nii.gz")
    assert not out.exists()


def test_real_process_prints_no_traceback(tmp_path):
    out = tmp_path / "mask.nii.gz"
    proc = subprocess.run([sys.executable, "-m", "medseg.cli.main", "segment", str(tmp_path / "nope.nii.gz"),
                           "-o", str(out), "--box", "1,1,5,5"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert not out.exists()


@pytest.mark.parametrize("kind", ["garbage", "foreign state_dict", "missing"])
def test_bad_checkpoint_is_one_line(kind, scan, tmp_path, capsys):
    import torch

    ckpt = tmp_path / "model.pth"
    if kind == "garbage":
        ckpt.write_bytes(b"\x00not a checkpoint" * 50)
    elif kind == "foreign state_dict":
        torch.save({"encoder.weight": torch.zeros(3)}, ckpt)
    out = tmp_path / "mask.nii.gz"
    code, err = run_cli(["segment", str(scan), "-o", str(out), "--checkpoint", str(ckpt),
                         "--box", "1,1,5,5", "--slice", "0"], capsys)
    assert_one_line_error(code, err, "model.pth")
    assert not out.exists()
