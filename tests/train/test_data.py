"""Training data: layouts, slices, seeded splits and one-line errors for bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image as PILImage
from train_helpers import nnunet_dataset, png_dataset

from medseg.cli.main import main
from medseg.errors import MedsegError
from medseg.train.config import TrainConfig
from medseg.train.datasets import open_training_data


def test_png_pairs_targets_and_seeded_split(tmp_path):
    root = png_dataset(tmp_path / "d", cases=4)
    a = open_training_data(root, val_fraction=0.25, seed=3)
    b = open_training_data(root, val_fraction=0.25, seed=3)
    assert a.layout == "png" and len(a.slices) == 4
    assert all(s.image.shape == (3, 256, 256) and s.labels.shape == (256, 256) for s in a.slices)
    assert a.train == b.train and a.val == b.val and len(a.train) + len(a.val) == 12
    val_cases = {a.slices[i].case for i, _ in a.val}
    assert len(val_cases) == 1 and not val_cases & {a.slices[i].case for i, _ in a.train}
    s, mask = a.target(a.train[0])
    assert mask.dtype == torch.bool and mask.any() and s.valid.all()


def test_single_case_splits_by_object(tmp_path):
    root = png_dataset(tmp_path / "d", cases=1)
    data = open_training_data(root, val_fraction=0.34)
    assert len(data.train) == 2 and len(data.val) == 1 and not set(data.train) & set(data.val)


def test_nnunet_3d_samples_labelled_slices(tmp_path):
    root = nnunet_dataset(tmp_path / "d", cases=2, depth=6)
    data = open_training_data(root, val_fraction=0.5, slices_per_case=3)
    assert data.layout == "nnunet" and data.names == {1: "disc", 2: "square"}
    assert len(data.slices) == 6 and {s.key.split(":")[0] for s in data.slices} == {"c0", "c1"}
    assert {v for _, v in data.train + data.val} == {1, 2}


def test_geometry_mismatch_is_one_line_error(tmp_path):
    root = nnunet_dataset(tmp_path / "d", cases=1, label_spacing=(1.0, 1.0, 2.5))
    with pytest.raises(MedsegError, match="spacing/origin/direction"):
        open_training_data(root)


def test_size_mismatch_and_empty_labels(tmp_path):
    root = png_dataset(tmp_path / "d", cases=1)
    PILImage.fromarray(np.zeros((50, 60), np.uint8)).save(root / "masks" / "case_0.png")
    with pytest.raises(MedsegError, match="do not match the image grid"):
        open_training_data(root)
    PILImage.fromarray(np.zeros((96, 96), np.uint8)).save(root / "masks" / "case_0.png")
    with pytest.raises(MedsegError, match="labels are empty"):
        open_training_data(root)


def test_unknown_layout_and_config_values(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(MedsegError, match="not an nnU-Net raw dataset"):
        open_training_data(tmp_path / "empty")
    with pytest.raises(MedsegError, match="unknown mode 'prompt'"):
        TrainConfig(data="x", out="y", mode="prompt").validate()
    with pytest.raises(MedsegError, match="--prompts"):
        TrainConfig(data="x", out="y", prompts=("mask",)).validate()


def test_cli_bad_input_is_one_line_exit_2(tmp_path, capsys):
    root = png_dataset(tmp_path / "d", cases=1)
    assert main(["train", "--data", str(root), "--mode", "everything", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown mode 'everything'" in err[0]
    PILImage.fromarray(np.zeros((96, 96), np.uint8)).save(root / "masks" / "case_0.png")
    assert main(["train", "--data", str(root), "--mode", "decoder", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "labels are empty" in err[0]
    assert not (tmp_path / "o" / "last.pt").exists()


def test_cvpr24_npz_volumes(tmp_path):
    from train_helpers import synthetic_slice

    rng = np.random.default_rng(5)
    for i in range(2):
        pairs = [synthetic_slice(rng, 64, 2) for _ in range(4)]
        np.savez_compressed(tmp_path / f"case{i}.npz", imgs=np.stack([p[0] for p in pairs]),
                            gts=np.stack([p[1] for p in pairs]), spacing=np.array([2.0, 0.7, 0.7]))
    data = open_training_data(tmp_path, val_fraction=0.5, slices_per_case=2)
    assert data.layout == "npz" and len(data.slices) == 4 and data.train and data.val


def test_augment_keeps_shapes_and_objects():
    from medseg.train.augment import augment

    masks = torch.zeros(3, 256, 256, dtype=torch.bool)
    masks[:, 100:150, 80:140] = True
    images = masks[:, None].float().expand(-1, 3, -1, -1).clone()
    rng = np.random.default_rng(0)
    out_i, out_m = augment(images, masks, rng)
    assert out_i.shape == images.shape and out_m.shape == masks.shape and out_m.dtype == torch.bool
    area = out_m.flatten(1).sum(1).float() / masks.flatten(1).sum(1)
    assert ((area > 0.75) & (area < 1.3)).all()
    inside = out_i[:, 0][out_m].mean() if out_m.any() else 0
    assert inside > out_i[:, 0][~out_m].mean() + 0.5  # the image moved with its mask
