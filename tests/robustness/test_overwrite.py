"""Nothing of the user's is overwritten without asking (medseg.cli.outputs), checked before any work.

Every refusal: exit 2, one stderr line, no traceback, every file as it was.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image as PILImage

from robustness.conftest import assert_clean_failure, run_medseg, snapshot

SRC = str(Path(__file__).resolve().parents[2] / "src")
ENV = {"PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}


@pytest.fixture()
def work(tmp_path: Path) -> Path:
    """scan.nii.gz (12x48x48), pred/gt masks, a prompts file, a folder of cases, a regular file."""
    rng = np.random.default_rng(0)
    volume = rng.normal(100, 20, (12, 48, 48)).astype(np.int16)
    volume[3:9, 14:34, 14:34] += 400
    sitk.WriteImage(sitk.GetImageFromArray(volume), str(tmp_path / "scan.nii.gz"))
    truth = (volume > 300).astype(np.uint8)
    for name in ("gt.nii.gz", "pred.nii.gz"):
        sitk.WriteImage(sitk.GetImageFromArray(truth), str(tmp_path / name))
    for folder in ("preds", "gts"):
        (tmp_path / folder).mkdir()
        sitk.WriteImage(sitk.GetImageFromArray(truth), str(tmp_path / folder / "case1.nii.gz"))
    (tmp_path / "prompts.json").write_text('{"objects": [{"box": [12, 12, 35, 35], "slice": 6}]}')
    (tmp_path / "notes.txt").write_text("a regular file")
    return tmp_path


def segment(work: Path, output, *extra) -> list:
    return ["segment", work / "scan.nii.gz", "-o", output, "--box", "12,12,35,35", "--slice", "6", *extra]


def evaluate(work: Path, *extra, pred="pred.nii.gz", gt="gt.nii.gz") -> list:
    return ["evaluate", "--pred", work / pred, "--gt", work / gt, *extra]


def refused(work: Path, args: list, *words: str, unchanged) -> None:
    with unchanged(work):
        run = run_medseg(args, env=ENV)
    assert_clean_failure(run, *words)


def _link(work: Path, kind: str, target: str) -> Path:
    link = work / f"{kind}.nii.gz"
    (os.symlink if kind == "symlink" else os.link)(work / target, link)
    return link


# ---- segment ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["same", "symlink", "hardlink"])
def test_segment_output_is_the_input(work: Path, kind: str, unchanged) -> None:
    out = work / "scan.nii.gz" if kind == "same" else _link(work, kind, "scan.nii.gz")
    refused(work, segment(work, out, "--overwrite"), "is the input", unchanged=unchanged)


def test_segment_output_is_the_prompts_file(work: Path, unchanged) -> None:
    args = ["segment", work / "scan.nii.gz", "-o", work / "prompts.json", "--prompts", work / "prompts.json"]
    refused(work, args + ["--overwrite"], "prompts.json", unchanged=unchanged)


@pytest.mark.parametrize(("overlay", "words"), [("mask.nii.gz", ("--overlay", ".png")),
                                                ("scan.nii.gz", ("--overlay", ".png")),
                                                ("new.nii.gz", ("--overlay", ".png")),
                                                ("mask.png", ("same file",))])
def test_segment_overlay_onto_the_mask_the_scan_or_a_nifti(work: Path, overlay: str, words, unchanged) -> None:
    mask = work / ("mask.png" if overlay == "mask.png" else "mask.nii.gz")
    refused(work, segment(work, mask, "--overlay", work / overlay, "--overwrite"), *words, unchanged=unchanged)


def test_segment_existing_output_needs_overwrite(work: Path, unchanged) -> None:
    (work / "mask.nii.gz").write_bytes(b"the user's file")
    refused(work, segment(work, work / "mask.nii.gz"), "exists; add --overwrite", unchanged=unchanged)


@pytest.mark.parametrize(("output", "words"), [("preds", ("is a folder",)),
                                               ("notes.txt/mask.nii.gz", ("a path under the regular file",))])
def test_segment_output_is_a_folder_or_under_a_file(work: Path, output: str, words, unchanged) -> None:
    refused(work, segment(work, work / output), *words, unchanged=unchanged)


def test_segment_output_inside_a_folder_input(work: Path, unchanged) -> None:
    args = ["segment", work / "preds", "-o", work / "preds" / "mask.nii.gz", "--box", "1,1,5,5", "--slice", "0"]
    refused(work, args, "inside the input folder", unchanged=unchanged)


def test_segment_overwrite_replaces_mask_and_overlay(work: Path) -> None:
    (work / "mask.nii.gz").write_bytes(b"old mask")
    (work / "overlay.png").write_bytes(b"old overlay")
    run = run_medseg(segment(work, work / "mask.nii.gz", "--overlay", work / "overlay.png", "--overwrite"), env=ENV)
    assert run.code == 0, run.err
    assert sitk.ReadImage(str(work / "mask.nii.gz")).GetSize() == (48, 48, 12)
    assert PILImage.open(work / "overlay.png").size == (48, 48)
    assert not [p for p in work.iterdir() if p.name.startswith(".")]


# ---- evaluate ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("flag", "target"), [("--json", "pred.nii.gz"), ("--csv", "gt.nii.gz"),
                                              ("--json", "symlink"), ("--csv", "hardlink")])
def test_evaluate_output_is_an_input(work: Path, flag: str, target: str, unchanged) -> None:
    out = work / target if target.endswith(".nii.gz") else _link(work, target, "pred.nii.gz")
    refused(work, evaluate(work, flag, out, "--overwrite"), "is the input", unchanged=unchanged)


def test_evaluate_json_and_csv_the_same_file(work: Path, unchanged) -> None:
    refused(work, evaluate(work, "--json", work / "s.txt", "--csv", work / "s.txt"), "same file",
            unchanged=unchanged)


@pytest.mark.parametrize("name", ["case1.nii.gz", "case2.nii.gz"])
def test_evaluate_output_inside_an_input_folder(work: Path, name: str, unchanged) -> None:
    args = evaluate(work, "--json", work / "preds" / name, "--overwrite", pred="preds", gt="gts")
    refused(work, args, "inside the input folder", unchanged=unchanged)


def test_evaluate_existing_output_needs_overwrite_then_replaced(work: Path, unchanged) -> None:
    (work / "s.json").write_text("the user's notes")
    refused(work, evaluate(work, "--json", work / "s.json", "--csv", work / "s.csv"), "s.json exists",
            unchanged=unchanged)
    run = run_medseg(evaluate(work, "--json", work / "s.json", "--csv", work / "s.csv", "--overwrite"), env=ENV)
    assert run.code == 0, run.err
    assert '"mean"' in (work / "s.json").read_text() and (work / "s.csv").read_text().startswith("case,")


def test_evaluate_writes_a_new_report_beside_folder_cases(work: Path) -> None:
    """Allowed: a new non-image file inside an input folder (it cannot become a case)."""
    run = run_medseg(evaluate(work, "--json", work / "preds" / "scores.json", pred="preds", gt="gts"), env=ENV)
    assert run.code == 0, run.err


# ---- train and benchmark-protocol: --out is never the data ------------------------------------------


@pytest.mark.parametrize("out", [".", "sub"])
def test_train_out_is_not_the_data(work: Path, out: str, unchanged) -> None:
    args = ["train", "--data", work / "preds", "--mode", "decoder", "--out", work / "preds" / out]
    refused(work, args, "--data", unchanged=unchanged)


def test_benchmark_protocol_out_is_not_the_data(work: Path, unchanged) -> None:
    args = ["benchmark-protocol", "--protocol", "box2d", "--data", work / "preds", "--out", work / "preds"]
    refused(work, args, "--data", unchanged=unchanged)


def test_refusals_leave_no_temporary_file(work: Path) -> None:
    before = snapshot(work)
    run_medseg(segment(work, work / "scan.nii.gz"), env=ENV)
    assert snapshot(work) == before
