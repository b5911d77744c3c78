"""Checkpoints that are not what they claim: nothing in them runs, and the user gets one line, exit 2.

A hostile pickle's ``__reduce__`` would create a marker file; the marker must never appear, and torch's
advice to load the file with ``weights_only=False`` must never reach the user.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from tests.robustness.conftest import assert_clean_failure, run_medseg

from medseg.checkpoints import load_torch_file
from medseg.cli.main import main
from medseg.errors import MedsegError


class SystemCall:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class OpenCall:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def make(kind: str, folder: Path) -> Path:
    """A bad checkpoint of ``kind`` in ``folder`` (its marker, if any, is folder/PWNED)."""
    marker, path = folder / "PWNED", folder / f"{kind}.pt"
    if kind == "pickle-system":
        path.write_bytes(pickle.dumps(SystemCall(marker)))
    elif kind == "pickle-open":
        path.write_bytes(pickle.dumps({"model": OpenCall(marker)}, protocol=2))
    elif kind == "torch-zip-system":
        torch.save({"weight": torch.zeros(2), "hook": SystemCall(marker)}, path)
    elif kind == "truncated":
        torch.save({"weight": torch.zeros(10_000)}, path)
        path.write_bytes(path.read_bytes()[:700])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "foreign-zip":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("readme.txt", "not a checkpoint")
    elif kind == "garbage":
        path.write_bytes(np.random.default_rng(0).bytes(5000))
    elif kind == "text":
        path.write_text("hello, I am not a checkpoint\n")
    elif kind == "folder":
        path.mkdir()
    return path


HOSTILE = ["pickle-system", "pickle-open", "torch-zip-system"]
BROKEN = ["truncated", "empty", "foreign-zip", "garbage", "text", "folder"]


@pytest.mark.parametrize("kind", HOSTILE + BROKEN)
def test_loader_refuses_without_running_anything(kind, tmp_path):
    path = make(kind, tmp_path)
    with pytest.raises(MedsegError) as info:
        load_torch_file(path)
    message = str(info.value)
    assert "\n" not in message and "weights_only" not in message and str(path) in message
    assert ("safely" in message) == (kind in HOSTILE), message
    assert not (tmp_path / "PWNED").exists()


@pytest.fixture()
def scan(tmp_path) -> Path:
    image = sitk.GetImageFromArray(np.random.default_rng(0).integers(0, 1000, (6, 40, 50)).astype(np.int16))
    sitk.WriteImage(image, str(tmp_path / "scan.nii.gz"))
    return tmp_path / "scan.nii.gz"


def segment_args(scan: Path, folder: Path) -> list[str]:
    return ["segment", str(scan), "-o", str(folder / "mask.nii.gz"), "--box", "1,1,5,5", "--slice", "2"]


ROUTES = [(k, "--checkpoint") for k in HOSTILE] + [("pickle-system", how) for how in
                                                   ("MEDSEG_CHECKPOINT", "info", "--model", "train --resume")]


@pytest.mark.parametrize(("kind", "how"), ROUTES)
def test_hostile_checkpoint_never_runs(kind, how, scan, tmp_path, unchanged):
    bad = tmp_path / "bad"
    bad.mkdir()
    path = make(kind, bad)
    env = {"MEDSEG_CHECKPOINT": str(path)} if how in ("MEDSEG_CHECKPOINT", "info") else None
    if how == "--checkpoint":
        args = [*segment_args(scan, tmp_path), "--checkpoint", path]
    elif how == "MEDSEG_CHECKPOINT":
        args = segment_args(scan, tmp_path)
    elif how == "info":
        args = ["info"]
    elif how == "--model":
        args = [*segment_args(scan, tmp_path), "--model", path]
    else:
        out = tmp_path / "run"
        out.mkdir()
        os.replace(path, out / "last.pt")
        args = ["train", "--data", tmp_path / "nodata", "--mode", "decoder", "--out", out, "--resume"]
    with unchanged(tmp_path):
        run = run_medseg(args, env=env)
    assert_clean_failure(run, "safely")
    assert "weights_only" not in run.err and run.out == ""
    assert not (bad / "PWNED").exists() and not (tmp_path / "run" / "PWNED").exists()


@pytest.mark.parametrize("kind", BROKEN)
def test_broken_checkpoint_is_one_line(kind, scan, tmp_path, unchanged, capsys):
    (tmp_path / "bad").mkdir()
    path = make(kind, tmp_path / "bad")
    with unchanged(tmp_path):
        code = main([*segment_args(scan, tmp_path), "--checkpoint", str(path), "--engine", "eager"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and err.startswith("medseg: error: "), err
    assert path.name in err and "weights_only" not in err


@pytest.mark.parametrize("kind", ["missing", "garbage", "pickle-system"])
def test_info_reports_bad_env_checkpoint_as_segment_does(kind, scan, tmp_path):
    path = tmp_path / "missing.pt" if kind == "missing" else make(kind, tmp_path)
    env = {"MEDSEG_CHECKPOINT": str(path)}
    info, segment = run_medseg(["info"], env=env), run_medseg(segment_args(scan, tmp_path), env=env)
    assert_clean_failure(info)
    assert_clean_failure(segment)
    assert info.err == segment.err and info.out == ""
    assert not (tmp_path / "PWNED").exists()
