"""Training and held-out data of the interactive (click-trained) model: real labelled slices in model space.

The split is by source (case, or instance for the one nuclei picture); nothing evaluated is trained on:

- training: Colin27 T1 + AAL (all 116 structures), the nilearn MNI152 2009a template with its tissue and
  brain masks, the spine CT (vertebrae and sub-regions), the dcmqi liver CT, and a fixed half (seed 0) of
  the 125 stardist nuclei. Not the pycerr radiomics phantom cases: they are CC BY-NC 3.0, for tests and
  demos only, so shipped weights are not trained on them (pat_4 is one of the held-out evaluation cases);
- held out (``HELD_OUT``): the FSL MNI152 template with Harvard-Oxford subcortical structures (another
  template image and an independent label source), the RIDER lung tumour, pycerr pat_4, the spine MR, the
  other half of the nuclei and PyRadiomics's five lesions (brain MR x 2, breast MR, lung CT x 2; their terms are not
  stated, so they are only ever evaluated on).

Volumes give slices in all three planes (coronal and sagittal resampled to square pixels, as
``medseg.predict.extent.Plane`` does at inference), spread evenly over each plane's labelled range. Each
slice may be augmented before it is encoded (flips, gamma, contrast), since the encoder is frozen and its
embeddings are computed once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medseg.train.datasets import Slice, to_model_space

# (dataset, case, slices per plane: axial, coronal, sagittal; share of training objects drawn from it)
TRAIN_SOURCES: tuple[tuple[str, str, tuple[int, int, int], float], ...] = (
    ("colin27", "aal", (28, 22, 22), 0.40),
    ("mni152", "tissue", (6, 5, 5), 0.08),
    ("mni152", "brain", (3, 2, 2), 0.04),
    ("spine", "ct_vert", (8, 8, 8), 0.11),
    ("spine", "ct_subreg", (8, 8, 8), 0.11),
    ("dcmqi_liver", "liver", (3, 0, 0), 0.08),
    ("nuclei", "train_half", (1, 0, 0), 0.18),
)
HELD_OUT = ("atlases/harvard_oxford (subcortical)", "rider_lung/seg_manual", "radiomics_phantom/pat_4",
            "spine/mr_vert", "nuclei (held-out half)", "pyradiomics (five lesions)")
MIN_PIXELS = 12  # objects smaller than this in model space (256 x 256) are not used


@dataclass
class Source:
    """Slices of one training source and the share of training objects drawn from it."""

    name: str
    slices: list[Slice]
    weight: float


def nuclei_split(seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[int], list[int]]:
    """(picture 0..255, instance labels, training ids, held-out ids): the 125 nuclei halved with ``seed``."""
    import tifffile

    from medseg.data import sample
    from medseg.io import read_image
    from medseg.predict.segment import windowed

    picture, _ = windowed(read_image(sample.path("nuclei", "img2d.tif")), "auto")
    instances = tifffile.imread(sample.path("nuclei", "mask2d.tif")).astype(np.int64)
    ids = [int(i) for i in np.unique(instances) if i]
    order = np.random.default_rng(seed).permutation(ids)
    return picture, instances, sorted(order[: len(ids) // 2].tolist()), sorted(order[len(ids) // 2:].tolist())


def plane_cuts(data: np.ndarray, labels: np.ndarray, spacing: tuple[float, float, float], axis: int,
               count: int, rng: np.random.Generator) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """``count`` (index, image, labels) cuts of a (z, y, x) volume along axis 0 (axial), 1 (coronal) or 2
    (sagittal), evenly spread over the cuts holding labels; rows along z resampled to square pixels."""
    from scipy import ndimage

    other = tuple(a for a in range(3) if a != axis)
    held = np.flatnonzero(labels.any(axis=other))
    if count <= 0 or len(held) == 0:
        return []
    picks = np.linspace(0, len(held) - 1, min(count, len(held)))
    picks = picks + rng.uniform(-0.4, 0.4, len(picks)) * (len(held) / max(count, 1))
    out = []
    for i in np.unique(np.clip(np.round(picks), 0, len(held) - 1).astype(int)):
        k = int(held[i])
        image, lab = np.take(data, k, axis=axis), np.take(labels, k, axis=axis)
        if axis > 0:  # rows are z: square pixels as at inference
            scale = spacing[2] / spacing[0 if axis == 1 else 1]
            if abs(scale - 1) > 1e-3:
                image = ndimage.zoom(image.astype(np.float32), (scale, 1.0), order=1)
                lab = ndimage.zoom(lab, (scale, 1.0), order=0)
        out.append((k, np.ascontiguousarray(image), np.ascontiguousarray(lab)))
    return out


def augment_slice(image: np.ndarray, labels: np.ndarray, rng: np.random.Generator, p: float
                  ) -> tuple[np.ndarray, np.ndarray]:
    """With probability p: random flips, gamma and contrast of a 0..255 slice (labels follow the flips)."""
    if rng.random() >= p:
        return image, labels
    if rng.random() < 0.5:
        image, labels = image[:, ::-1], labels[:, ::-1]
    if rng.random() < 0.3:
        image, labels = image[::-1], labels[::-1]
    x = np.clip(image.astype(np.float32) / 255.0, 0, 1) ** float(np.exp(rng.uniform(-0.35, 0.35)))
    x = (x - 0.5) * float(rng.uniform(0.85, 1.15)) + 0.5 + float(rng.uniform(-0.06, 0.06))
    return np.clip(x * 255.0, 0, 255).astype(np.float32), np.ascontiguousarray(labels)


def training_sources(seed: int = 0, scale: float = 1.0, augment: float = 0.5,
                     only: tuple[str, ...] | None = None) -> list[Source]:
    """The training slices of every source in TRAIN_SOURCES (``scale`` x its slice counts, at least 1).

    Args:
        seed: slice positions and augmentation.
        scale: multiplies the slices per plane (the small-budget test uses a fraction).
        augment: probability that a slice is flipped / gamma- / contrast-changed before encoding.
        only: restrict to these "dataset/case" names.
    """
    from medseg.data.loaders import load_labelled
    from medseg.predict.segment import windowed

    rng = np.random.default_rng(seed)
    out = []
    for dataset, case, counts, weight in TRAIN_SOURCES:
        name = f"{dataset}/{case}"
        if only is not None and name not in only:
            continue
        if dataset == "nuclei":
            picture, instances, train_ids, _ = nuclei_split(0)
            cuts = [(0, picture, np.where(np.isin(instances, train_ids), instances, 0))]
        else:
            labelled = load_labelled(dataset, [case])[0]
            data, _ = windowed(labelled.image, "auto")
            spacing = tuple(float(s) for s in labelled.image.geometry.spacing)
            cuts = []
            for axis, n in enumerate(counts):
                n = max(1, round(n * scale)) if n else 0
                cuts += [(f"{'acs'[axis]}{k}", im, lab)
                         for k, im, lab in plane_cuts(data, labelled.labels.astype(np.int64), spacing, axis, n, rng)]
        slices = []
        for key, image, labels in cuts:
            image, labels = augment_slice(image, labels, rng, augment)
            slices.append(Slice(f"{name}:{key}", *to_model_space(image, labels), case=name))
        out.append(Source(name, slices, weight))
    return out


def objects(slices: list[Slice]) -> list[tuple[int, int]]:
    """(slice index, label value) of every object of at least MIN_PIXELS pixels in model space."""
    import torch

    out = []
    for i, s in enumerate(slices):
        values, counts = torch.unique(s.labels, return_counts=True)
        out += [(i, int(v)) for v, c in zip(values, counts, strict=True) if v != 0 and c >= MIN_PIXELS]
    return out
