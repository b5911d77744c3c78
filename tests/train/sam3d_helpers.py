"""Synthetic volumes and a stand-in encoder for the SAM3D unit tests (the real encoder is in tests/realdata)."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from medseg.io.image import Geometry, Image
from medseg.train.sam3d_data import VolumeCase

SPACING = (0.8, 0.9, 2.5)


def fake_encoder(batch: np.ndarray) -> np.ndarray:
    """(B, 3, 256, 256) -> (B, 256, 64, 64): the grey input averaged 4x4, repeated over the channels."""
    b = batch[:, 0]
    pooled = b.reshape(len(b), 64, 4, 64, 4).mean((2, 4))
    return np.repeat(pooled[:, None], 256, axis=1).astype(np.float32)


class FakeEngine:
    def encode(self, images):
        import torch

        return torch.from_numpy(fake_encoder(images.numpy()))


def volume(seed: int = 0, shape=(12, 40, 50), modality: str | None = "MR") -> VolumeCase:
    rng = np.random.default_rng(seed)
    array = rng.normal(100, 5, shape).astype(np.float32)
    labels = np.zeros(shape, np.uint16)
    labels[2:8, 8:20, 8:22] = 1
    labels[4:10, 22:34, 28:44] = 2
    array[labels == 1] += 150
    array[labels == 2] += 300
    geometry = Geometry(SPACING, (1.0, -2.0, 3.0), tuple(np.eye(3).ravel().tolist()))
    return VolumeCase(f"case{seed}", Image(array, geometry, modality), labels)


def write_volume(path, array: np.ndarray, spacing=SPACING) -> None:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    sitk.WriteImage(image, str(path))


def nnunet_dataset(root, n: int = 2, channels: int = 1, names=None):
    import json

    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    labels = {"background": 0, "a": 1, "b": 2} if names is None else names
    meta = {"channel_names": {str(i): f"MR{i}" for i in range(channels)}, "labels": labels,
            "numTraining": n, "file_ending": ".nii.gz"}
    (root / "dataset.json").write_text(json.dumps(meta))
    for i in range(n):
        case = volume(i)
        write_volume(root / "imagesTr" / f"c{i}_0000.nii.gz", case.image.array)
        write_volume(root / "labelsTr" / f"c{i}.nii.gz", case.labels)
    return root
