"""nnU-Net v2 raw dataset layout: dataset.json + imagesTr/<case>_0000<ending> + labelsTr/<case><ending>.

medseg also reads an optional instancesTr/<case><ending> (instance labels, e.g. one value per nucleus).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from medseg.errors import MedsegError

_MAX_JSON = 16 << 20  # bytes: dataset.json lists labels and counts, not data


@dataclass(frozen=True)
class RawCase:
    name: str
    image: Path
    labels: Path
    instances: Path | None = None


@dataclass(frozen=True)
class RawDataset:
    root: Path
    cases: list[RawCase]
    label_names: dict[int, str]  # label value -> name, background left out


def label_names(meta: dict) -> dict[int, str]:
    """Label value -> name from dataset.json (v2 ``name: value`` or v1 ``"value": name``).

    nnU-Net v2 region labels (``name: [1, 2]``) name no single value and are left out.
    """
    names: dict[int, str] = {}
    for key, value in meta.get("labels", {}).items():
        if isinstance(value, bool):
            continue
        if isinstance(value, int) or (isinstance(value, str) and value.isdigit() and not key.isdigit()):
            names[int(value)] = key
        elif key.isdigit():
            names[int(key)] = str(value)
    names.pop(0, None)
    return names


def _check_meta(meta: object, path: Path) -> dict:
    """dataset.json's fields medseg reads have the types nnU-Net gives them; one-line error otherwise."""
    if not isinstance(meta, dict):
        raise MedsegError(f"{path}: expected a JSON object with 'labels' and 'file_ending', got {type(meta).__name__}")
    labels = meta.get("labels", {})
    if not isinstance(labels, dict):
        raise MedsegError(f"{path}: 'labels' must map names to label values, e.g. {{\"background\": 0, \"liver\": 1}}")
    end = meta.get("file_ending", ".nii.gz")
    if not isinstance(end, str) or not end.startswith(".") or "/" in end or len(end) > 16:
        raise MedsegError(f"{path}: 'file_ending' must be a file ending such as \".nii.gz\", got {end!r}")
    return meta


def read_nnunet_raw(root: Path) -> RawDataset:
    """List the cases of an nnU-Net raw dataset folder; one-line MedsegError when it is malformed."""
    path = root / "dataset.json"
    try:
        if path.stat().st_size > _MAX_JSON:
            raise MedsegError(f"{path}: {path.stat().st_size} bytes; a dataset.json has at most {_MAX_JSON}")
        meta = _check_meta(json.loads(path.read_text()), path)
    except (OSError, ValueError, RecursionError) as exc:
        raise MedsegError(f"{path}: cannot read ({(str(exc) or type(exc).__name__).splitlines()[0]})") from None
    end = meta.get("file_ending", ".nii.gz")
    images, labels = root / "imagesTr", root / "labelsTr"
    if not images.is_dir() or not labels.is_dir():
        raise MedsegError(f"{root}: an nnU-Net raw dataset needs imagesTr/ and labelsTr/")
    cases = []
    for label_file in sorted(labels.glob(f"*{end}")):
        name = label_file.name[: -len(end)]
        image = images / f"{name}_0000{end}"
        if not image.is_file():
            raise MedsegError(f"{label_file}: no image {image.name} in {images}")
        inst = root / "instancesTr" / label_file.name
        cases.append(RawCase(name, image, label_file, inst if inst.is_file() else None))
    if not cases:
        raise MedsegError(f"{labels}: no label files ending in {end}")
    return RawDataset(root, cases, label_names(meta))
