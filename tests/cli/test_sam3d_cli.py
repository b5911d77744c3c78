"""`medseg train --mode sam3d` and `medseg segment --model RUN/model.pt` (no prompt) on synthetic data,
the frozen encoder replaced by a stand-in (the real one runs in tests/realdata/test_sam3d_real.py)."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from medseg.cli.main import main

sys.path.insert(0, str(Path(__file__).parents[1] / "train"))
from sam3d_helpers import SPACING, FakeEngine, fake_encoder, nnunet_dataset, write_volume  # noqa: E402


@pytest.fixture(autouse=True)
def stand_in_encoder(monkeypatch):
    from medseg.predict import automatic
    from medseg.train import sam3d_trainer

    def lazy(model, engine, threads=None):
        def build():
            return fake_encoder

        build.lazy = True
        return build

    monkeypatch.setattr(sam3d_trainer, "lazy_encoder", lazy)
    monkeypatch.setattr(automatic.AutomaticModel, "engine", lambda self: FakeEngine())
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)




def one_line_error(capsys, code: int, *words: str) -> None:
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("medseg: error: "), err
    for word in words:
        assert word in err[0], (word, err[0])


def scan(path: Path, modality_values=(100.0, 400.0)) -> Path:
    array = np.full((4, 30, 40), modality_values[0], np.float32)
    array[1:3, 5:15, 5:20] = modality_values[1]
    write_volume(path, array)
    return path


def test_train_then_segment_without_prompts(tmp_path, capsys):
    data = nnunet_dataset(tmp_path / "ds")
    out = tmp_path / "run"
    code = main(["train", "--mode", "sam3d", "--data", str(data), "--out", str(out), "--max-steps", "2",
                 "--depth", "4", "--crop", "64", "--val-fraction", "0", "--quiet"])
    printed = capsys.readouterr().out
    assert code == 0 and "parameters" in printed and "model:" in printed
    assert {"model.pt", "last.pt", "log.csv", "curves.png"} <= {p.name for p in out.iterdir()}

    image = scan(tmp_path / "scan.nii.gz")
    labels, report = tmp_path / "labels.nii.gz", tmp_path / "report.json"
    code = main(["segment", str(image), "-o", str(labels), "--model", str(out / "model.pt"), "--report", str(report)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    written, source = sitk.ReadImage(str(labels)), sitk.ReadImage(str(image))
    assert written.GetSize() == source.GetSize() and np.allclose(written.GetSpacing(), SPACING)
    assert np.allclose(written.GetOrigin(), source.GetOrigin())
    side = json.loads((tmp_path / "labels.json").read_text())
    assert side["classes"] == {"1": "a", "2": "b"} and set(side["volumes_ml"]) == {"a", "b"}
    assert json.loads(report.read_text())["volumes_ml"] == side["volumes_ml"]
    assert "a " in printed and " mL" in printed

    # --text keeps only the named classes, one label each in the order asked, names in the sidecar (the
    # synthetic classes are called "a" and "b"; "a" alone reads as an article, so only "b" is asked)
    named = tmp_path / "named.nii.gz"
    full = sitk.GetArrayFromImage(written)
    code = main(["segment", str(image), "-o", str(named), "--model", str(out / "model.pt"), "--text", "B"])
    assert code == 0, capsys.readouterr()
    picked = sitk.GetArrayFromImage(sitk.ReadImage(str(named)))
    assert json.loads((tmp_path / "named.json").read_text())["classes"] == {"1": "b"}
    assert np.array_equal(picked == 1, full == 2) and picked.max() <= 1
    capsys.readouterr()
    code = main(["structures", str(image), "--model", str(out / "model.pt")])
    listed = capsys.readouterr().out
    assert code == 0 and "trained automatic model SAM3D" in listed and "  b" in listed
    one_line_error(capsys, main(["segment", str(image), "-o", str(tmp_path / "x.nii.gz"), "--model",
                                 str(out / "model.pt"), "--text", "liver"]), "liver")
    assert not (tmp_path / "x.nii.gz").exists() and not (tmp_path / "x.json").exists()

    # again without --overwrite: refused, nothing touched
    before = labels.read_bytes()
    one_line_error(capsys, main(["segment", str(image), "-o", str(labels), "--model", str(out / "model.pt")]),
                   "exists")
    assert labels.read_bytes() == before

    # prompts given to a SAM3D model
    other = tmp_path / "other.nii.gz"
    one_line_error(capsys, main(["segment", str(image), "-o", str(other), "--model", str(out / "model.pt"),
                                 "--box", "1,1,5,5", "--slice", "0"]), "SAM3D model", "drop the prompts")
    # a CT scan for an MR model: refused before any output
    ct = scan(tmp_path / "ct.nii.gz", (-1000.0, 400.0))
    one_line_error(capsys, main(["segment", str(ct), "-o", str(other), "--model", str(out / "model.pt")]),
                   "looks like CT", "trained on MR")
    assert not other.exists() and not (tmp_path / "other.json").exists()
    # --report with a promptable model
    one_line_error(capsys, main(["segment", str(image), "-o", str(other), "--box", "1,1,5,5,0,3",
                                 "--report", str(tmp_path / "r2.json")]), "--report")


def test_train_refuses_bad_datasets(tmp_path, capsys):
    two = nnunet_dataset(tmp_path / "two", channels=2)
    one_line_error(capsys, main(["train", "--mode", "sam3d", "--data", str(two), "--out", str(tmp_path / "a"),
                                 "--quiet"]), "2 channels", "one channel")
    missing = nnunet_dataset(tmp_path / "missing", names={"background": 0, "a": 1, "b": 2, "c": 3})
    one_line_error(capsys, main(["train", "--mode", "sam3d", "--data", str(missing), "--out", str(tmp_path / "b"),
                                 "--quiet"]), "class 3 (c) has no voxel")
    odd = nnunet_dataset(tmp_path / "odd")
    write_volume(odd / "labelsTr" / "c1.nii.gz", np.zeros((12, 40, 50), np.uint16), spacing=(1.0, 1.0, 1.0))
    one_line_error(capsys, main(["train", "--mode", "sam3d", "--data", str(odd), "--out", str(tmp_path / "c"),
                                 "--quiet"]), "c1.nii.gz", "resample")
    one_line_error(capsys, main(["train", "--mode", "sam3d", "--data", str(odd), "--out", str(tmp_path / "c"),
                                 "--nproc", "2", "--quiet"]), "c1.nii.gz", "resample")  # checked before launching
    assert not any((tmp_path / n).exists() for n in "abc")


@pytest.mark.distributed
def test_two_process_ddp_run(tmp_path, capsys):
    """--nproc 2: the launcher encodes (here the stand-in encoder), two torchrun workers read the cache and
    train in step; rank 0 alone writes the log and the model."""
    data = nnunet_dataset(tmp_path / "ds", n=3)
    out = tmp_path / "run"
    code = main(["train", "--mode", "sam3d", "--data", str(data), "--out", str(out), "--max-steps", "3",
                 "--depth", "4", "--crop", "64", "--val-fraction", "0.34", "--augment", "1", "--quiet",
                 "--nproc", "2"])
    assert code == 0, capsys.readouterr()
    with open(out / "log.csv") as handle:
        rows = [r for r in csv.DictReader(handle) if r["loss"]]
    assert [int(r["step"]) for r in rows] == [1, 2, 3]
    assert len(list((out / "embeddings").glob("*.npy"))) == 5  # 2 training + 2 copies + 1 validation case
    from medseg.predict.automatic import load_automatic

    model = load_automatic(out / "model.pt")
    assert model.class_names == {1: "a", 2: "b"} and model.info["val_dice"] is not None
