"""Training data: cases -> 2D slices in model space -> one target object per training example.

Layouts (found by ``open_training_data``):

- nnU-Net v2 raw: ``DIR/dataset.json`` (label names), ``DIR/imagesTr/CASE_0000.<ending>``,
  ``DIR/labelsTr/CASE.<ending>``; 2D images or 3D volumes (``slices_per_case`` slices holding labels
  are sampled, evenly spread along z).
- CVPR24 npz: ``DIR/*.npz`` or ``DIR/imgs/*.npz`` with ``imgs`` and ``gts``.
- PNG pairs: ``DIR/images/NAME.png`` with ``DIR/masks/NAME.png`` (or ``labels/``).
- DICOM cases: ``DIR/<case>/`` holding a DICOM series and one SEG or RTSTRUCT (``medseg.io.dicom_cases``).

Every non-zero label value present on a slice is one object (a class of a label map, or an instance).
Images are windowed to 0..255 as for inference (``medseg.predict.segment.windowed``), resized with
``ResizeLongest`` to (3, 256, 256); labels are resized with nearest neighbour onto the same padded grid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from medseg.errors import MedsegError
from medseg.io.nnunet import read_nnunet_raw
from medseg.preprocess.resize import ResizeLongest

PNG_ENDINGS = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")
MIN_PIXELS = 4  # objects smaller than this in model space are not used


@dataclass(frozen=True)
class CasePaths:
    name: str
    image: Path
    labels: Path | None  # None: labels are inside the image file (npz)


@dataclass
class Slice:
    """One 2D training image in model space.

    Attributes:
        key: "case" or "case:z".
        image: (3, 256, 256) float32, min-max normalised, zero padded (the encoder input).
        labels: (256, 256) int64 labels on the same grid.
        valid: (256, 256) bool, the unpadded area.
        case: the case it came from.
    """

    key: str
    image: torch.Tensor
    labels: torch.Tensor
    valid: torch.Tensor
    case: str


@dataclass
class TrainingData:
    """Slices and the (slice index, label value) targets of the training and validation splits."""

    root: Path
    layout: str
    slices: list[Slice]
    train: list[tuple[int, int]]
    val: list[tuple[int, int]]
    names: dict[int, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def target(self, item: tuple[int, int]) -> tuple[Slice, torch.Tensor]:
        """The slice and (256, 256) bool mask of one target."""
        s = self.slices[item[0]]
        return s, s.labels == item[1]


def find_cases(root: Path) -> tuple[str, list[CasePaths], dict[int, str]]:
    """Detect the layout and list its cases; MedsegError if it is none of the three."""
    if not root.is_dir():
        raise MedsegError(f"--data {root}: no such folder")
    if (root / "dataset.json").is_file():
        return _nnunet_cases(root)
    mask_dir = next((root / d for d in ("masks", "labels") if (root / d).is_dir()), None)
    if (root / "images").is_dir() and mask_dir is not None:
        return "png", _pair_cases(root / "images", mask_dir), {}
    npz_dir = root / "imgs" if (root / "imgs").is_dir() else root
    files = sorted(npz_dir.glob("*.npz"))
    if files:
        return "npz", [CasePaths(p.stem, p, None) for p in files], {}
    from medseg.io.dicom_cases import find_dicom_cases  # case folders: DICOM series + SEG/RTSTRUCT

    if dicom := find_dicom_cases(root):
        return "dicom", [CasePaths(name, file, file) for name, file in dicom], {}
    raise MedsegError(f"--data {root}: not an nnU-Net raw dataset (dataset.json, imagesTr, labelsTr), "
                      "a folder of CVPR24 .npz files, images/ + masks/ picture pairs, or case folders of "
                      "a DICOM series + SEG/RTSTRUCT")


def _nnunet_cases(root: Path) -> tuple[str, list[CasePaths], dict[int, str]]:
    raw = read_nnunet_raw(root)
    return "nnunet", [CasePaths(c.name, c.image, c.labels) for c in raw.cases], raw.label_names


def _pair_cases(images: Path, masks: Path) -> list[CasePaths]:
    cases = []
    for image in sorted(p for p in images.iterdir() if p.suffix.lower() in PNG_ENDINGS):
        mask = next((m for m in (masks / (image.stem + e) for e in PNG_ENDINGS) if m.is_file()), None)
        if mask is None:
            raise MedsegError(f"{image}: no mask named {image.stem}.png in {masks}")
        cases.append(CasePaths(image.stem, image, mask))
    if not cases:
        raise MedsegError(f"{images}: no pictures ({', '.join(PNG_ENDINGS)})")
    return cases


def read_case(case: CasePaths) -> tuple[np.ndarray, np.ndarray, bool]:
    """(windowed image 0..255, integer labels, is_volume); MedsegError on geometry mismatch."""
    from medseg.io import read_image, read_npz_labels
    from medseg.predict.segment import windowed

    if case.labels is not None and case.labels == case.image:  # a DICOM case: the SEG/RTSTRUCT names its series
        from medseg.io.dicom_cases import read_dicom_case

        image, label_map = read_dicom_case(case.labels)
        return windowed(image, "auto")[0], label_map.labels.astype(np.int64), True
    image = read_image(case.image)
    if case.labels is None:
        labels = read_npz_labels(case.image)
        if labels is None:
            raise MedsegError(f"{case.image}: no 'gts' labels to train on")
    else:
        label_image = read_image(case.labels)
        if label_image.is_rgb:
            raise MedsegError(f"{case.labels}: a colour picture is not a label map")
        labels = label_image.array
        _check_geometry(image, label_image, case)
    labels = np.asarray(labels)
    if labels.shape != image.grid_shape:
        raise MedsegError(f"{case.labels or case.image}: labels {labels.shape} do not match the image grid "
                          f"{image.grid_shape} of {case.image.name}")
    if labels.dtype.kind == "f" and not np.all(np.mod(labels, 1) == 0):
        raise MedsegError(f"{case.labels}: label maps need whole numbers, found fractional values")
    data, _ = windowed(image, "auto")
    return data, labels.astype(np.int64), image.is_volume


def _check_geometry(image, label_image, case: CasePaths) -> None:
    gi, gl = image.geometry, label_image.geometry
    if label_image.grid_shape != image.grid_shape:
        raise MedsegError(f"{case.labels}: labels {label_image.grid_shape} do not match the image grid "
                          f"{image.grid_shape} of {case.image.name}")
    if gi.dim == gl.dim and (not np.allclose(gi.spacing, gl.spacing, rtol=1e-3)
                             or not np.allclose(gi.origin, gl.origin, atol=1e-2)
                             or not np.allclose(gi.direction, gl.direction, atol=1e-3)):
        raise MedsegError(f"{case.labels}: spacing/origin/direction {gl.spacing}/{gl.origin} differ from "
                          f"the image {case.image.name} {gi.spacing}/{gi.origin}; resample the labels")


def to_model_space(slice_0_255: np.ndarray, labels: np.ndarray, size: int = 256
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(H, W[, 3]) image and (H, W) labels -> (3, S, S) image, (S, S) labels, (S, S) valid area."""
    tf = ResizeLongest(tuple(labels.shape), size)
    image = tf.image(slice_0_255)[0]
    h, w = tf.scaled
    lab = torch.from_numpy(labels.astype(np.float32))[None, None]
    lab = F.interpolate(lab, size=(h, w), mode="nearest")[0, 0].long()
    lab = F.pad(lab, (0, size - w, 0, size - h))
    valid = torch.zeros(size, size, dtype=torch.bool)
    valid[:h, :w] = True
    return image, lab, valid


def _slices_of(name: str, data: np.ndarray, labels: np.ndarray, volume: bool, per_case: int,
               rng: np.random.Generator) -> list[Slice]:
    if not volume:
        return [Slice(name, *to_model_space(data, labels), case=name)]
    zs = np.flatnonzero(labels.reshape(len(labels), -1).any(1))
    if len(zs) > per_case:
        picks = np.linspace(0, len(zs) - 1, per_case)
        offset = rng.uniform(-0.5, 0.5, per_case) * (len(zs) / per_case)
        zs = np.unique(zs[np.clip(np.round(picks + offset), 0, len(zs) - 1).astype(int)])
    return [Slice(f"{name}:{z}", *to_model_space(data[z], labels[z]), case=name) for z in zs]


def _objects(s: Slice) -> list[int]:
    values, counts = torch.unique(s.labels, return_counts=True)
    return [int(v) for v, c in zip(values, counts, strict=True) if v != 0 and c >= MIN_PIXELS]


def open_training_data(root: str | Path, val_fraction: float = 0.2, slices_per_case: int = 8,
                       seed: int = 0) -> TrainingData:
    """Read every case, sample slices, list target objects and split them (seeded).

    The split is by case when there are at least two cases, else by object. Raises MedsegError for an
    unknown layout, unreadable files, label/image geometry mismatch, or a dataset without objects.
    """
    root = Path(root).expanduser()
    layout, cases, names = find_cases(root)
    rng = np.random.default_rng(seed)
    slices, skipped = [], []
    for case in cases:
        data, labels, volume = read_case(case)
        if not labels.any():
            skipped.append(case.name)
            continue
        slices.extend(_slices_of(case.name, data, labels, volume, slices_per_case, rng))
    targets = [(i, v) for i, s in enumerate(slices) for v in _objects(s)]
    if not targets:
        raise MedsegError(f"--data {root}: the labels are empty (no object of at least {MIN_PIXELS} pixels "
                          "at 256x256); check the label files")
    train, val = split(targets, slices, val_fraction, rng)
    return TrainingData(root, layout, slices, train, val, names, skipped)


def split(targets: list[tuple[int, int]], slices: list[Slice], fraction: float, rng: np.random.Generator
          ) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Seeded split by case (two or more cases) or by object; keeps at least one training target."""
    if fraction <= 0 or len(targets) < 2:
        return list(targets), []
    cases = sorted({s.case for s in slices})
    if len(cases) >= 2:
        n_val = min(max(1, round(fraction * len(cases))), len(cases) - 1)
        held = set(rng.permutation(cases)[:n_val].tolist())
        val = [t for t in targets if slices[t[0]].case in held]
        return [t for t in targets if slices[t[0]].case not in held], val
    order = rng.permutation(len(targets))
    n_val = min(max(1, round(fraction * len(targets))), len(targets) - 1)
    return [targets[i] for i in sorted(order[n_val:])], [targets[i] for i in sorted(order[:n_val])]
