"""Labelled volumes for ``medseg train --mode sam3d`` from a dataset folder.

- nnU-Net v2 raw: ``dataset.json`` names the classes (values 1..K); one channel (``_0000``) per case.
- DICOM case folders (a series + one SEG or RTSTRUCT each): classes by segment name; every case must
  carry the same names, numbered in sorted-name order.

Every image/label pair must share its geometry (``medseg.train.datasets._check_geometry``); the checks
common to any source (one modality, named values only, no empty class) are ``sam3d_data.check_cases``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from medseg.errors import MedsegError
from medseg.train.sam3d_data import VolumeCase


def load_cases(root: str | Path) -> tuple[list[VolumeCase], dict[int, str]]:
    """(cases, class names) of a dataset folder; one-line MedsegError for what SAM3D cannot train on."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise MedsegError(f"--data {root}: no such folder")
    if (root / "dataset.json").is_file():
        return _nnunet(root)
    from medseg.io.dicom_cases import find_dicom_cases

    found = find_dicom_cases(root)
    if found:
        return _dicom(found)
    raise MedsegError(f"--data {root}: SAM3D trains on an nnU-Net raw dataset (dataset.json, imagesTr, labelsTr) "
                      "or case folders of a DICOM series + SEG/RTSTRUCT")


def _nnunet(root: Path) -> tuple[list[VolumeCase], dict[int, str]]:
    from medseg.io import read_image
    from medseg.io.nnunet import read_nnunet_raw
    from medseg.train.datasets import CasePaths, _check_geometry

    raw = read_nnunet_raw(root)
    channels = json.loads((root / "dataset.json").read_text()).get("channel_names", {"0": ""})
    if isinstance(channels, dict) and len(channels) != 1:
        listed = ", ".join(map(str, channels.values()))
        raise MedsegError(f"{root / 'dataset.json'}: {len(channels)} channels ({listed}); "
                          "SAM3D encodes one channel per slice")
    if not raw.label_names:
        raise MedsegError(f"{root / 'dataset.json'}: 'labels' names no class besides background")
    cases = []
    for case in raw.cases:
        image, label_image = read_image(case.image), read_image(case.labels)
        _check_geometry(image, label_image, CasePaths(case.name, case.image, case.labels))
        labels = np.asarray(label_image.array)
        if labels.dtype.kind == "f" and not np.all(np.mod(labels, 1) == 0):
            raise MedsegError(f"{case.labels}: label maps need whole numbers, found fractional values")
        if labels.min() < 0:
            raise MedsegError(f"{case.labels}: negative label value {labels.min()}")
        cases.append(VolumeCase(case.name, image, labels.astype(np.uint16)))
    return cases, dict(raw.label_names)


def _dicom(found: list[tuple[str, Path]]) -> tuple[list[VolumeCase], dict[int, str]]:
    from medseg.io.dicom_cases import read_dicom_case

    read = [(name, *read_dicom_case(file)) for name, file in found]
    sets = {name: tuple(sorted(lm.names.values())) for name, _, lm in read}
    first = next(iter(sets.values()))
    odd = [n for n, s in sets.items() if s != first]
    if odd:
        raise MedsegError(f"case {odd[0]} has segments {list(sets[odd[0]])} but {found[0][0]} has {list(first)}; "
                          "every case must carry the same named segments")
    names = dict(enumerate(first, start=1))
    index = {v: k for k, v in names.items()}
    cases = []
    for name, image, lm in read:
        lut = np.zeros(int(lm.labels.max()) + 1, np.uint16)
        for value, seg_name in lm.names.items():
            lut[int(value)] = index[seg_name]
        cases.append(VolumeCase(name, image, lut[np.asarray(lm.labels)]))
    return cases, names
