"""A few decoder-mode steps on a tiny synthetic dataset: loss goes down, interruption and resume keep
every finished step, model.pt loads through build_model, resume refuses another architecture, and a
2-process DDP run (torchrun, gloo) works.

Uses the packaged LiteMedSAM weights (like the other model tests).
"""

from __future__ import annotations

import csv
import subprocess
import sys

import numpy as np
import pytest
import torch
from train_helpers import png_dataset

from medseg.build import build_model
from medseg.errors import MedsegError
from medseg.train import step as step_module
from medseg.train.adapters import prepare
from medseg.train.config import TrainConfig
from medseg.train.datasets import open_training_data
from medseg.train.losses import segmentation_loss
from medseg.train.prompts import central_pixel
from medseg.train.trainer import train


def config(data, out, **kw) -> TrainConfig:
    base = dict(data=str(data), out=str(out), mode="decoder", max_steps=6, batch_size=2, prompts=("point", "mask"),
                rounds=2, lr=5e-4, val_fraction=0.5, val_every=3, save_every=3, progress=False)
    return TrainConfig(**{**base, **kw})


def log_rows(out) -> list[dict]:
    with open(out / "log.csv", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Train 6 steps, interrupted after step 4 (Ctrl-C inside step 5) and resumed."""
    root = tmp_path_factory.mktemp("train")
    data = png_dataset(root / "data", cases=2)
    out = root / "out"
    forward = step_module.PromptedStep.forward
    calls = {"n": 0}

    def interrupting(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return forward(self, *args, **kwargs)

    step_module.PromptedStep.forward = interrupting
    try:
        with pytest.raises(KeyboardInterrupt):
            train(config(data, out))
    finally:
        step_module.PromptedStep.forward = forward
    interrupted = torch.load(out / "last.pt", weights_only=True)["step"]
    result = train(config(data, out, resume=True))
    return {"data": data, "out": out, "interrupted_at": interrupted, "result": result}


def fixed_point_loss(model, data, emb) -> float:
    """Loss of one central click on every training object (no randomness); emb: the frozen embeddings."""
    masks = torch.stack([data.target(t)[1] for t in data.train])
    coords = torch.stack([central_pixel(m) for m in masks])[:, None]
    with torch.no_grad():
        logits, iou = model.decode(emb[[i for i, _ in data.train]], points=(coords, torch.ones(len(masks), 1).long()))
    return segmentation_loss(logits, iou, masks[:, None].float())["total"].item()


def test_training_lowers_the_loss(run):
    data = open_training_data(run["data"], val_fraction=0.5)
    before = build_model()
    after = build_model()
    prepare(after, "decoder")
    after.load_state_dict(torch.load(run["out"] / "last.pt", weights_only=True)["model"])
    emb = torch.load(run["out"] / "embeddings.pt", weights_only=True)["embeddings"]  # the run's frozen cache
    assert fixed_point_loss(after, data, emb) < fixed_point_loss(before, data, emb)


def test_interrupted_run_resumes_without_losing_steps(run):
    assert run["interrupted_at"] == 4
    rows = [r for r in log_rows(run["out"]) if r["loss"]]
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    assert run["result"].steps == 6
    assert torch.load(run["out"] / "last.pt", weights_only=True)["step"] == 6
    assert (run["out"] / "curves.png").stat().st_size > 1000
    vals = [r for r in log_rows(run["out"]) if r["val_dice"]]
    assert [int(r["step"]) for r in vals] == [0, 3, 6]
    assert not list(run["out"].glob(".*.tmp"))


def test_model_pt_loads_through_build_model_and_segment(run, tmp_path):
    from PIL import Image as PILImage

    from medseg.cli.main import main

    model = build_model(str(run["out"] / "model.pt"))
    assert not model.training
    assert set(model.state_dict()) == set(build_model().state_dict())
    image = np.full((96, 96), 30, np.uint8)
    image[30:60, 30:60] = 200
    PILImage.fromarray(image).save(tmp_path / "square.png")
    status = main(["segment", str(tmp_path / "square.png"), "-o", str(tmp_path / "mask.png"),
                   "--model", str(run["out"] / "model.pt"), "--point", "45,45", "--engine", "eager"])
    assert status == 0
    assert np.asarray(PILImage.open(tmp_path / "mask.png")).shape == (96, 96)


def test_resume_checks_before_training(run, tmp_path):
    with pytest.raises(MedsegError, match="was trained as"):
        train(config(run["data"], run["out"], mode="lora", resume=True))
    with pytest.raises(MedsegError, match="holds a previous run"):
        train(config(run["data"], run["out"]))
    with pytest.raises(MedsegError, match="no checkpoint"):
        train(config(run["data"], tmp_path / "new", resume=True))


@pytest.mark.distributed
def test_two_process_ddp_run(tmp_path):
    data = png_dataset(tmp_path / "data", cases=2, seed=1)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "medseg.cli.main", "train", "--data", str(data), "--mode", "decoder",
           "--out", str(out), "--max-steps", "3", "--batch-size", "1", "--rounds", "1", "--prompts", "box,point",
           "--nproc", "2", "--quiet"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [r for r in log_rows(out) if r["loss"]]
    assert [int(r["step"]) for r in rows] == [1, 2, 3]
    assert build_model(str(out / "model.pt")) is not None


def test_one_adapter_step_trains_adapters_through_the_encoder(tmp_path):
    """Encoder modes run the encoder with gradients and augmentation; one step moves the adapters off zero."""
    data = png_dataset(tmp_path / "data", cases=1)
    out = tmp_path / "out"
    result = train(config(data, out, mode="adapter", max_steps=1, batch_size=1, rounds=1, prompts=("box",),
                          val_fraction=0.0, adapter_dim=4))
    assert result.steps == 1 and result.best_val_dice is None
    state = torch.load(out / "model.pt", weights_only=True)
    ups = [v for k, v in state["model"].items() if k.endswith("adapter.up.weight")]
    assert len(ups) == 10 and all(u.abs().sum() > 0 for u in ups)  # 2 + 6 + 2 TinyViT blocks
    assert build_model(str(out / "model.pt")) is not None
