"""SAM3D training data: volumes with label maps -> cached slice embeddings -> sampled 3D windows.

Each case is windowed (the window the model records: ``ct-soft`` for CT, ``mr`` otherwise), turned to
the canonical axis order (``medseg.predict.orient``: scans stored mirrored look alike), its slices
turned into LiteMedSAM encoder inputs and encoded once by the fast engine; the (Z, 256, 64, 64) float16
embeddings are cached on disk per case (``CACHE/<key>.npy``, key = sha256 of the encoder checksum, the
window and the windowed voxels) and read back memory-mapped, so training holds only the windows it
samples. A training sample is D slices x an in-plane crop (``crop`` model pixels), centred on a voxel
of a randomly chosen class in ``foreground`` of the draws (class-balanced, as nnU-Net oversamples
foreground), else anywhere. The only augmentation is reversing the slice order, which is exact for
slice-wise embeddings (a flip in-plane is not: the encoder is not flip-equivariant).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medseg.errors import MedsegError
from medseg.io.image import Image
from medseg.predict import slice_stack

IGNORE = -1  # label of padded slices (a window deeper than the volume)


@dataclass
class VolumeCase:
    """A volume with its label map on its grid (labels (z, y, x) like ``image.array``)."""

    name: str
    image: Image
    labels: np.ndarray


@dataclass
class PreparedCase:
    """A case on the model grid: memory-mapped embeddings, encoder inputs, labels at 1/2."""

    name: str
    embeddings: np.ndarray  # (Z, 256, 64, 64) float16
    grey: np.ndarray  # (Z, 256, 256) float16
    labels: np.ndarray  # (Z, 128, 128) int16
    where: dict[int, np.ndarray] = field(default_factory=dict)  # class -> (N, 3) voxel indices (subsampled)

    def __post_init__(self) -> None:
        rng = np.random.default_rng(0)
        for value in np.unique(self.labels):
            if value > 0:
                idx = np.argwhere(self.labels == value)
                self.where[int(value)] = idx[rng.choice(len(idx), min(len(idx), 2000), replace=False)]


def modality_of(image: Image) -> str:
    """'CT' or 'MR' (anything not CT is treated as MR-like), from the file or from HU-like values."""
    from medseg.preprocess.window import choose_window

    return "CT" if choose_window(image.array, image.modality).name.startswith("ct") else "MR"


def window_name(modality: str) -> str:
    return "ct-soft" if modality == "CT" else "mr"


def check_cases(cases: list[VolumeCase], names: dict[int, str]) -> str:
    """One modality, 3D grey volumes, labels on the image grid, only named values, every class present.

    Returns:
        the modality ('CT' or 'MR'). Raises MedsegError naming the case and the problem.
    """
    if not cases:
        raise MedsegError("SAM3D training needs at least one labelled volume")
    modalities = {}
    for case in cases:
        if not case.image.is_volume or case.image.array.ndim != 3:
            raise MedsegError(f"{case.name}: SAM3D trains on 3D grey volumes, got an array of shape "
                              f"{case.image.array.shape}")
        if case.labels.shape != case.image.grid_shape:
            raise MedsegError(f"{case.name}: labels {case.labels.shape} are not on the image grid "
                              f"{case.image.grid_shape}")
        extra = sorted(set(np.unique(case.labels).tolist()) - set(names) - {0})
        if extra:
            raise MedsegError(f"{case.name}: label values {extra[:5]} are not among the dataset's classes "
                              f"{sorted(names)[:8]}; every case must use one label set")
        modalities[case.name] = modality_of(case.image)
    if len(set(modalities.values())) > 1:
        raise MedsegError("cases of different modalities (" + ", ".join(f"{k}: {v}" for k, v in modalities.items())
                          + "); train one SAM3D model per modality")
    present = set().union(*(np.unique(c.labels).tolist() for c in cases))
    empty = [f"{v} ({names[v]})" for v in sorted(names) if v not in present]
    if empty:
        raise MedsegError(f"class {', '.join(empty)} has no voxel in any training case; label it or remove it")
    return next(iter(modalities.values()))


def cache_key(encoder_sha256: str, window: str, windowed: np.ndarray) -> str:
    digest = hashlib.sha256(f"sam3d-v1:{encoder_sha256}:{window}:{windowed.shape}".encode())
    digest.update(np.ascontiguousarray(windowed, dtype=np.float32).tobytes())
    return digest.hexdigest()[:32]


def prepare(case: VolumeCase, window: str, encoder, encoder_sha256: str, cache: Path,
            progress: bool = False) -> PreparedCase:
    """Window, resize and encode a case (embeddings from ``cache`` when there) -> PreparedCase.

    Args:
        encoder: (B, 3, 256, 256) -> (B, 256, 64, 64) numpy function (``slice_stack.engine_encoder``),
            or a zero-argument function returning one (called only when the cache misses).
    """
    from medseg.files import write_file
    from medseg.predict.orient import orientation
    from medseg.preprocess.window import apply_window, choose_window

    turn = orientation(case.image.geometry.direction)  # canonical axes: see medseg.predict.orient
    windowed = turn.canonical(apply_window(case.image.array, choose_window(case.image.array, case.image.modality,
                                                                             window)))
    grey = slice_stack.intensities(windowed)
    path = cache / f"{cache_key(encoder_sha256, window, windowed)}.npy"
    if not path.is_file():
        fn = encoder() if getattr(encoder, "lazy", False) else encoder
        emb = slice_stack.encode(fn, grey, progress=progress, desc=f"encode {case.name}")
        cache.mkdir(parents=True, exist_ok=True)
        write_file(path, lambda temp: _save(temp, emb))
    try:
        emb = np.load(path, mmap_mode="r")
    except ValueError as exc:
        raise MedsegError(f"embedding cache {path} is damaged ({exc}); delete it") from None
    if emb.shape != (len(grey), 256, slice_stack.EMBED_SIDE, slice_stack.EMBED_SIDE):
        raise MedsegError(f"embedding cache {path} has shape {emb.shape}; delete it")
    labels = slice_stack.labels_on_grid(turn.canonical(case.labels))
    return PreparedCase(case.name, emb, grey.astype(np.float16), labels)


def _save(temp: Path, array: np.ndarray) -> None:
    with open(temp, "wb") as handle:
        np.save(handle, array)


def sample(case: PreparedCase, depth: int, crop: int, rng: np.random.Generator, foreground: float = 0.67
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One window: embeddings (256, D, c/4, c/4), grey (1, D, c, c), labels (D, c/2, c/2) int64.

    ``crop`` is in model pixels (a multiple of 8, at most 256); slices beyond the volume are zero with
    labels IGNORE.
    """
    z_len = len(case.labels)
    if case.where and rng.random() < foreground:
        cls = list(case.where)[rng.integers(len(case.where))]
        z, y, x = case.where[cls][rng.integers(len(case.where[cls]))]
        y, x = 2 * y, 2 * x  # output grid -> model grid
    else:
        z, y, x = rng.integers(z_len), rng.integers(256), rng.integers(256)
    z0 = int(np.clip(z - depth // 2 + rng.integers(-depth // 4, depth // 4 + 1), 0, max(0, z_len - depth)))
    y0 = int(np.clip(y - crop // 2 + rng.integers(-crop // 4, crop // 4 + 1), 0, 256 - crop)) // 8 * 8
    x0 = int(np.clip(x - crop // 2 + rng.integers(-crop // 4, crop // 4 + 1), 0, 256 - crop)) // 8 * 8
    zs = slice(z0, min(z0 + depth, z_len))
    n = zs.stop - zs.start
    emb = np.zeros((256, depth, crop // 4, crop // 4), np.float32)
    grey = np.zeros((1, depth, crop, crop), np.float32)
    lab = np.full((depth, crop // 2, crop // 2), IGNORE, np.int64)
    emb[:, :n] = np.moveaxis(case.embeddings[zs, :, y0 // 4:(y0 + crop) // 4, x0 // 4:(x0 + crop) // 4], 0, 1)
    grey[0, :n] = case.grey[zs, y0:y0 + crop, x0:x0 + crop]
    lab[:n] = case.labels[zs, y0 // 2:(y0 + crop) // 2, x0 // 2:(x0 + crop) // 2]
    if rng.random() < 0.5:  # reversed slice order: exact for slice-wise embeddings
        emb, grey, lab = emb[:, ::-1], grey[:, ::-1], lab[::-1]
    return np.ascontiguousarray(emb), np.ascontiguousarray(grey), np.ascontiguousarray(lab)
