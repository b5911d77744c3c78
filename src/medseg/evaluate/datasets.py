"""Benchmark datasets: nnU-Net raw layout (imagesTr/labelsTr + dataset.json) or a folder of CVPR24 npz files.

nnU-Net raw layout::

    DIR/dataset.json        {"labels": {"background": 0, "Hippocampus_L": 1, ...}, "file_ending": ".nii.gz"}
    DIR/imagesTr/CASE_0000.nii.gz
    DIR/labelsTr/CASE.nii.gz
    DIR/instancesTr/CASE.<ending>   optional medseg extension: instance ids inside the labels (e.g. nuclei);
                                    box2d then prompts one box per instance.

CVPR24 npz: ``DIR/*.npz`` (or ``DIR/imgs/*.npz``), each with ``imgs``, ``gts`` and optionally ``spacing``.

DICOM cases: ``DIR/<case>/`` holding a DICOM series and one SEG or RTSTRUCT (``medseg.io.dicom_cases``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medseg.errors import MedsegError
from medseg.io.image import Image
from medseg.io.nnunet import RawCase, read_nnunet_raw

Case = RawCase  # name, image, labels, instances (or None)


@dataclass
class Dataset:
    """Cases of one dataset and its structure names (label value -> name)."""

    root: Path
    layout: str  # "nnunet" or "npz"
    cases: list[Case]
    names: dict[int, str] = field(default_factory=dict)

    def name_of(self, label: int) -> str:
        return self.names.get(label, f"label_{label}")


def open_dataset(root: str | Path) -> Dataset:
    """Find the cases under ``root``; MedsegError naming what is missing otherwise."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise MedsegError(f"--data {root}: no such folder")
    if (root / "dataset.json").is_file():
        return _nnunet(root)
    npz_dir = root / "imgs" if (root / "imgs").is_dir() else root
    files = sorted(npz_dir.glob("*.npz"))
    if files:
        return Dataset(root, "npz", [Case(p.stem, p, p) for p in files])
    from medseg.io.dicom_cases import find_dicom_cases  # case folders: DICOM series + SEG/RTSTRUCT

    if dicom := find_dicom_cases(root):
        return Dataset(root, "dicom", [Case(name, file, file) for name, file in dicom])
    raise MedsegError(f"--data {root}: neither an nnU-Net raw dataset (dataset.json, imagesTr, labelsTr) "
                      "nor a folder of CVPR24 .npz files")


def _nnunet(root: Path) -> Dataset:
    raw = read_nnunet_raw(root)
    return Dataset(root, "nnunet", raw.cases, raw.label_names)


def load_case(dataset: Dataset, case: Case) -> tuple[Image, np.ndarray, np.ndarray | None]:
    """(image, labels, instances or None); labels on the image grid ((z, y, x) or (y, x))."""
    from medseg.evaluate.compare import check_same_grid, read_labels
    from medseg.io import read_image, read_npz_labels

    if dataset.layout == "dicom":
        from medseg.io.dicom_cases import read_dicom_case

        image, label_map = read_dicom_case(case.labels)
        return image, label_map.labels, None
    image = read_image(case.image)
    if dataset.layout == "npz":
        labels = read_npz_labels(case.labels)
        if labels is None:
            raise MedsegError(f"{case.labels}: no 'gts' array to benchmark against")
        return image, np.asarray(labels), None
    gt = read_labels(case.labels)
    if gt.labels.shape != image.grid_shape:
        raise MedsegError(f"{case.labels}: labels {gt.labels.shape} do not match image grid {image.grid_shape}")
    instances = None
    if case.instances is not None:
        inst = read_labels(case.instances)
        check_same_grid(inst, gt)
        instances = inst.labels
    return image, gt.labels, instances
