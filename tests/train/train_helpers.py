"""Tiny synthetic training datasets: bright discs and squares on a noisy background."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from PIL import Image as PILImage


def synthetic_slice(rng: np.random.Generator, size: int = 96, objects: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """(size, size) uint8 picture and uint8 instance labels 1..objects."""
    yy, xx = np.mgrid[:size, :size]
    image = rng.normal(40, 10, (size, size))
    labels = np.zeros((size, size), np.uint8)
    for k in range(1, objects + 1):
        cx, cy = rng.integers(15, size - 15, 2)
        r = rng.integers(6, 12)
        shape = ((xx - cx) ** 2 + (yy - cy) ** 2 <= r * r) if k % 2 else ((abs(xx - cx) <= r) & (abs(yy - cy) <= r))
        labels[shape] = k
        image[shape] = rng.normal(170 + 20 * k, 10)
    return np.clip(image, 0, 255).astype(np.uint8), labels


def png_dataset(root: Path, cases: int = 4, seed: int = 0, size: int = 96) -> Path:
    """root/images/case_i.png + root/masks/case_i.png."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(cases):
        image, labels = synthetic_slice(rng, size)
        PILImage.fromarray(image).save(root / "images" / f"case_{i}.png")
        PILImage.fromarray(labels).save(root / "masks" / f"case_{i}.png")
    return root


def nnunet_dataset(root: Path, cases: int = 2, depth: int = 6, seed: int = 0, label_spacing=None) -> Path:
    """A 3D nnU-Net raw dataset with anisotropic spacing; ``label_spacing`` breaks the geometry on purpose."""
    rng = np.random.default_rng(seed)
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    for i in range(cases):
        pairs = [synthetic_slice(rng, 64, 2) for _ in range(depth)]
        vol = np.stack([p[0] for p in pairs]).astype(np.int16)
        lab = np.stack([p[1] for p in pairs])
        for array, path, spacing in ((vol, root / "imagesTr" / f"c{i}_0000.nii.gz", (0.8, 0.8, 2.5)),
                                     (lab, root / "labelsTr" / f"c{i}.nii.gz", label_spacing or (0.8, 0.8, 2.5))):
            img = sitk.GetImageFromArray(array)
            img.SetSpacing(spacing)
            sitk.WriteImage(img, str(path))
    meta = {"labels": {"background": 0, "disc": 1, "square": 2}, "file_ending": ".nii.gz",
            "channel_names": {"0": "MR"}, "numTraining": cases}
    (root / "dataset.json").write_text(json.dumps(meta))
    return root
