"""Encoded augmented copies for SAM3D training (``--augment N``).

The encoder is frozen and not equivariant to flips, rotations or intensity changes, so SAM3D's
augmentations cannot be applied to cached embeddings. Instead each training volume gets N copies
changed *before* encoding (one more encoder pass per copy, cached like any case):

- spatial: one in-plane rotation (+-10 degrees) and scaling (0.9-1.1, in-plane and along z apart),
  applied to the image (linear) and the labels (nearest) alike; no mirroring, which would swap
  left and right classes;
- intensity, as nnU-Net's defaults: Gaussian blur (sigma 0-1.2 voxels, the sharpness of another scanner
  or an averaged template), gamma (0.7-1.5, on the volume scaled to [0, 1]), contrast (0.75-1.25 about
  the mean), Gaussian noise (0-3 % of the range).

Copies are seeded by (seed, case name, copy), so a second run, or another fold holding the same case,
makes the same volumes and finds their embeddings cached. Validation cases are never augmented.
"""

from __future__ import annotations

import zlib
from dataclasses import replace

import numpy as np

from medseg.train.sam3d_data import VolumeCase

MAX_COPIES = 16


def augmented_copies(case: VolumeCase, copies: int, seed: int) -> list[VolumeCase]:
    """``copies`` changed versions of ``case`` (same grid and geometry), named ``<name>~aug<k>``."""
    name = zlib.crc32(case.name.encode())
    return [augment(case, np.random.default_rng([seed, name, k]), f"{case.name}~aug{k + 1}") for k in range(copies)]


def augment(case: VolumeCase, rng: np.random.Generator, name: str) -> VolumeCase:
    image = case.image.array.astype(np.float32)
    matrix, offset = _affine(image.shape, rng)
    image, labels = _warp(image, case.labels, matrix, offset)
    image = _intensity(image, rng)
    return VolumeCase(name, replace(case.image, array=image), labels)


def _affine(shape: tuple[int, ...], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Output (z, y, x) index -> input index: a rotation about z and a scaling, about the centre."""
    angle = np.deg2rad(rng.uniform(-10, 10))
    scale_xy, scale_z = rng.uniform(0.9, 1.1), rng.uniform(0.9, 1.1)
    c, s = np.cos(angle), np.sin(angle)
    matrix = np.array([[1 / scale_z, 0, 0], [0, c / scale_xy, -s / scale_xy], [0, s / scale_xy, c / scale_xy]])
    centre = (np.asarray(shape, float) - 1) / 2
    return matrix, centre - matrix @ centre


def _warp(image: np.ndarray, labels: np.ndarray, matrix: np.ndarray, offset: np.ndarray):
    from scipy import ndimage

    low = float(image.min())
    warped = ndimage.affine_transform(image, matrix, offset, order=1, mode="constant", cval=low)
    moved = ndimage.affine_transform(labels, matrix, offset, order=0, mode="constant", cval=0)
    return warped, moved.astype(labels.dtype)


def _intensity(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    from scipy import ndimage

    sigma = rng.uniform(0, 1.2)
    if sigma > 0.2:
        image = ndimage.gaussian_filter(image, sigma)
    low, high = float(image.min()), float(image.max())
    span = max(high - low, 1e-6)
    unit = (image - low) / span
    unit = unit ** rng.uniform(0.7, 1.5)
    mean = float(unit.mean())
    unit = (unit - mean) * rng.uniform(0.75, 1.25) + mean
    unit = unit + rng.normal(0, rng.uniform(0, 0.03), unit.shape).astype(np.float32)
    return (np.clip(unit, 0, 1) * span + low).astype(np.float32)
