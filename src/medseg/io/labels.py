"""``read_label_map``: label files of any kind, DICOM SEG and RTSTRUCT included, as one integer label map.

A DICOM SEG or RTSTRUCT is put on the grid of the image series it references. That series is found:

1. in ``reference`` when given (a folder holding the series' files, or one file of the series);
2. otherwise beside the annotation file: in its own folder, then in its sub-folders, then in the other
   folders of its parent folder (one level each, not recursive) - the first folder holding images of the
   referenced SeriesInstanceUID wins.

Each segment (SEG) or ROI (RTSTRUCT) becomes one label, numbered 1..n in file order, or in the order
given by ``segments``; ``LabelMap.names`` keeps their names. A voxel holds one label, so overlapping
segments are refused (read them one at a time with ``segments``). DICOM label maps are (z, y, x), in the
order ``read_image(series_folder)`` gives the volume; a series of one slice gives (y, x), as ``read_image``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medseg.errors import MedsegError
from medseg.io._common import ending, fail
from medseg.io.image import Geometry

Selector = int | str


@dataclass
class LabelMap:
    """Integer labels on a grid ((z, y, x) or (y, x)) with the grid's geometry (ITK order).

    Attributes:
        labels: integer label values, 0 = background.
        geometry: spacing, origin, direction in ITK (x, y[, z]) order.
        path: the file it was read from.
        names: label value -> name (segment label, ROI name), when the file names them.
        reference: the image series folder a DICOM annotation was placed on.
    """

    labels: np.ndarray
    geometry: Geometry
    path: Path
    names: dict[int, str] = field(default_factory=dict)
    reference: Path | None = None


def annotation_kind(path: str | os.PathLike[str]) -> str | None:
    """"SEG" or "RTSTRUCT" when ``path`` is a DICOM file of that modality, else None (cheap: header only)."""
    path = Path(path)
    if not path.is_file():
        return None
    if ending(path) != ".dcm":
        from medseg.io.dicom import is_dicom_file

        if not is_dicom_file(path):
            return None
    import pydicom

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["Modality"])
    except Exception:  # noqa: BLE001 - not DICOM: the image readers will say why
        return None
    modality = str(ds.get("Modality", "")).upper()
    return modality if modality in ("SEG", "RTSTRUCT") else None


def read_label_map(path: str | os.PathLike[str], reference: str | os.PathLike[str] | None = None,
                   segments: Sequence[Selector] | None = None) -> LabelMap:
    """Read a label map: DICOM SEG / RTSTRUCT onto their referenced series, other files as label images.

    Args:
        path: a SEG or RTSTRUCT file, or a label image (NIfTI, NRRD, MHA, PNG, TIFF, npz, ...).
        reference: the referenced image series' folder (DICOM annotations only; default: found beside it).
        segments: segment numbers / ROI numbers (int) or names (str) to read, in this order (DICOM only).

    Returns:
        LabelMap with (z, y, x) labels for DICOM annotations and the series' geometry.

    Raises:
        MedsegError: one line naming the file: wrong or missing referenced series, frames off the series'
            slices, overlapping segments, empty contours, unreadable file.
    """
    path = Path(path).expanduser()
    kind = annotation_kind(path)
    if kind is None:
        if segments:
            raise fail(path, "choosing segments needs a DICOM SEG or RTSTRUCT file")
        from medseg.evaluate.compare import read_labels

        return read_labels(path)
    import pydicom

    try:
        ds = pydicom.dcmread(path)
    except Exception as exc:  # noqa: BLE001 - pydicom raises many types on damaged files
        raise fail(path, f"cannot read the DICOM {kind}: {exc}") from None
    series = _series_for(path, ds, kind, reference)
    if kind == "SEG":
        from medseg.io.dicom_seg import seg_to_labels

        labels, names = seg_to_labels(ds, path, series, segments)
    else:
        from medseg.io.rtstruct import rtstruct_to_labels

        labels, names = rtstruct_to_labels(ds, path, series, segments)
    if series.shape[0] == 1:  # as read_image returns a one-slice series: a 2D (y, x) image
        return LabelMap(labels[0], _plane(series.geometry), path, names, series.folder)
    return LabelMap(labels, series.geometry, path, names, series.folder)


def _plane(geometry: Geometry) -> Geometry:
    """The 2D geometry ``read_image`` gives a single slice: in-plane spacing, origin and direction block."""
    block = np.asarray(geometry.direction, float).reshape(3, 3)[:2, :2]
    if not np.allclose(block @ block.T, np.eye(2), atol=1e-6):
        block = np.eye(2)
    return Geometry(geometry.spacing[:2], geometry.origin[:2], tuple(float(v) for v in block.ravel()))


def referenced_series_uids(ds) -> list[str]:
    """SeriesInstanceUIDs an annotation references (SEG: ReferencedSeriesSequence; RTSTRUCT: nested)."""
    uids = [str(item.SeriesInstanceUID) for item in ds.get("ReferencedSeriesSequence", [])
            if "SeriesInstanceUID" in item]
    for frame in ds.get("ReferencedFrameOfReferenceSequence", []):
        for study in frame.get("RTReferencedStudySequence", []):
            uids += [str(s.SeriesInstanceUID) for s in study.get("RTReferencedSeriesSequence", [])]
    return list(dict.fromkeys(uids))


def candidate_folders(path: Path) -> list[Path]:
    """Where the referenced series is looked for: the file's folder, its sub-folders, its parent's folders."""
    here = path.parent.absolute()
    return [here, *_folders_in(here), *(p for p in _folders_in(here.parent) if p != here)]


def _folders_in(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if p.is_dir())
    except OSError:
        return []


def _series_for(path: Path, ds, kind: str, reference: str | os.PathLike[str] | None):
    from medseg.io.dicom_series import image_series, load_series

    wanted = referenced_series_uids(ds)
    if not wanted:
        raise fail(path, f"the {kind} names no referenced series (ReferencedSeriesSequence is missing)")
    if reference is not None:
        folder = Path(reference).expanduser()
        folder = folder.parent if folder.is_file() else folder
        if not folder.is_dir():
            raise fail(folder, "no such folder; --reference takes the folder of the referenced DICOM series")
        present = image_series(folder)
        uid = next((u for u in wanted if u in present), None)
        if uid is None:
            held = ", ".join(sorted(present)) or "no image series"
            raise fail(path, f"references series {wanted[0]}, but {folder} holds {held}; "
                       "give the folder of the referenced series")
        return load_series(folder, uid, present)
    for folder in candidate_folders(path):
        present = image_series(folder)
        uid = next((u for u in wanted if u in present), None)
        if uid is not None:
            return load_series(folder, uid, present)
    raise fail(path, f"references series {wanted[0]}, which is not in its folder, its sub-folders or "
               "the folders beside it; give the series folder (--reference)")


def select(path: Path, available: list[tuple[int, str]], segments: Sequence[Selector] | None,
           what: str) -> list[tuple[int, str]]:
    """The (number, name) items chosen by ``segments`` (numbers or case-insensitive names), in that order."""
    if not segments:
        return available
    chosen = []
    for selector in segments:
        if isinstance(selector, str) and selector.strip().isdigit():
            selector = int(selector)
        if isinstance(selector, int):
            hits = [item for item in available if item[0] == selector]
        else:
            hits = [item for item in available if item[1].strip().lower() == selector.strip().lower()]
        if len(hits) != 1:
            shown = ", ".join(f"{n} '{name}'" for n, name in available)
            many = "matches several" if hits else "matches no"
            raise fail(path, f"'{selector}' {many} {what}; it has {shown}")
        chosen.append(hits[0])
    return chosen


class Painter:
    """Builds a label map item by item and refuses overlaps (a voxel holds one label)."""

    def __init__(self, path: Path, shape: tuple[int, int, int], what: str, count: int) -> None:
        self.path, self.what = path, what
        self.labels = np.zeros(shape, np.uint8 if count < 256 else np.uint16)
        self.names: dict[int, str] = {}

    def paint(self, value: int, name: str, z: int, mask: np.ndarray) -> None:
        """Set ``value`` on the True voxels of ``mask`` (y, x) on slice ``z``; refuse other labels there."""
        plane = self.labels[z]
        clash = plane[mask]
        clash = clash[(clash != 0) & (clash != value)]
        if clash.size:
            other = int(clash[0])
            raise fail(self.path, f"{self.what}s {other} '{self.names[other]}' and {value} '{name}' overlap "
                       f"(slice {z}); a label map holds one label per voxel: read them one at a time "
                       f"(choose {self.what}s)")
        plane[mask] = value
        self.names[value] = name

    def result(self) -> tuple[np.ndarray, dict[int, str]]:
        if not self.labels.any():
            raise MedsegError(f"{self.path}: every chosen {self.what} is empty")
        return self.labels, dict(sorted(self.names.items()))
