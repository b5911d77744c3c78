"""DICOM SEG in and out: a SEG onto its series' grid (``seg_to_labels``), a label map to a SEG (``write_dicom_seg``).

Reading maps every frame by its Image Position (Patient) onto a slice of the referenced series (no
resampling): the SEG must share the series' rows, columns, pixel spacing and orientation. BINARY and
FRACTIONAL SEGs are read (fractional: value >= half the maximum is inside). Writing uses highdicom with
the source series' headers, so patient, study and frame of reference are the source's; the equipment is
"medseg" and nothing names the user or the machine.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from medseg.io._common import fail, one_line
from medseg.io.dicom_series import DicomSeries, load_series
from medseg.io.image import Geometry
from medseg.io.labels import Painter, Selector, referenced_series_uids, select

SEG_SERIES_NUMBER = 9701
DEVICE_SERIAL = "none"  # Type 1 in the Enhanced General Equipment module; medseg has no device serial
_ON_SLICE_TOL = 0.1  # fraction of a voxel a frame may sit off the series grid

# (value, scheme, meaning): segmented property category / type, by lower-case name.
TISSUE = ("85756007", "SCT", "Tissue")
ANATOMY = ("91723000", "SCT", "Anatomical Structure")
ALTERED = ("49755003", "SCT", "Morphologically Altered Structure")
NEOPLASM = ("108369006", "SCT", "Neoplasm")
CODED_NAMES: dict[str, tuple[tuple[str, str, str], tuple[str, str, str]]] = {
    "liver": (ANATOMY, ("10200004", "SCT", "Liver")),
    "spleen": (ANATOMY, ("78961009", "SCT", "Spleen")),
    "kidney": (ANATOMY, ("64033007", "SCT", "Kidney")),
    "lung": (ANATOMY, ("39607008", "SCT", "Lung")),
    "heart": (ANATOMY, ("80891009", "SCT", "Heart")),
    "brain": (ANATOMY, ("12738006", "SCT", "Brain")),
    "pancreas": (ANATOMY, ("15776009", "SCT", "Pancreas")),
    "aorta": (ANATOMY, ("15825003", "SCT", "Aorta")),
    "prostate": (ANATOMY, ("41216001", "SCT", "Prostate")),
    "stomach": (ANATOMY, ("69695003", "SCT", "Stomach")),
    "gallbladder": (ANATOMY, ("28231008", "SCT", "Gallbladder")),
    "esophagus": (ANATOMY, ("32849002", "SCT", "Esophagus")),
    "bone": (TISSUE, ("272673000", "SCT", "Bone")),
    "tumor": (ALTERED, NEOPLASM), "tumour": (ALTERED, NEOPLASM), "neoplasm": (ALTERED, NEOPLASM),
    "gtv": (ALTERED, NEOPLASM), "lesion": (ALTERED, ("52988006", "SCT", "Lesion")),
    "nodule": (ALTERED, ("27925004", "SCT", "Nodule")), "mass": (ALTERED, ("4147007", "SCT", "Mass")),
}  # fmt: skip


def property_codes(name: str) -> tuple[tuple[str, str, str], tuple[str, str, str]]:
    """(category, type) codes for a segment name: a known word in it (``"liver"``, ``"GTV-1"``), else Tissue."""
    words = name.lower().replace("-", " ").replace("_", " ").split()
    for word in words:
        if word in CODED_NAMES:
            return CODED_NAMES[word]
    return TISSUE, TISSUE


# ---------------------------------------------------------------------------------------------- reading


def _segments(ds, path: Path) -> list[tuple[int, str]]:
    items = [(int(s.SegmentNumber), str(s.get("SegmentLabel", f"segment {s.SegmentNumber}")))
             for s in ds.get("SegmentSequence", [])]
    if not items:
        raise fail(path, "the SEG describes no segment (SegmentSequence is empty)")
    return items


def _shared(ds, frame_groups, name: str):
    """A functional group sequence's first item from the frame's groups, else the shared groups."""
    shared = ds.get("SharedFunctionalGroupsSequence") or [None]
    for groups in (frame_groups, shared[0]):
        items = groups.get(name) if groups is not None else None
        if items:
            return items[0]
    return None


def _check_plane(ds, path: Path, series: DicomSeries) -> None:
    """Rows, columns, pixel spacing and orientation of the SEG equal the series'."""
    rows, cols = int(ds.Rows), int(ds.Columns)
    if (rows, cols) != series.shape[1:]:
        raise fail(path, f"frames are {rows}x{cols} but the series {series.uid} slices are "
                   f"{series.shape[1]}x{series.shape[2]}; resampled SEGs are not supported")
    g = series.geometry
    orient = _shared(ds, None, "PlaneOrientationSequence")
    if orient is not None:
        want = np.r_[np.asarray(g.direction).reshape(3, 3)[:, 0], np.asarray(g.direction).reshape(3, 3)[:, 1]]
        if not np.allclose(np.asarray(orient.ImageOrientationPatient, float), want, atol=1e-4):
            raise fail(path, "frame orientation differs from the referenced series'; resampled SEGs are not supported")
    measures = _shared(ds, None, "PixelMeasuresSequence")
    if measures is not None and "PixelSpacing" in measures:
        got = np.asarray(measures.PixelSpacing, float)[::-1]
        if not np.allclose(got, g.spacing[:2], rtol=1e-3):
            raise fail(path, f"pixel spacing {tuple(got)} differs from the series' {g.spacing[:2]}")


def _frames(ds, path: Path) -> np.ndarray:
    count = int(ds.get("NumberOfFrames", 1) or 1)
    try:
        pixels = ds.pixel_array
    except Exception as exc:  # noqa: BLE001 - pydicom: truncated or undecodable pixel data
        raise fail(path, f"cannot decode the SEG frames ({count} declared): {one_line(exc)}") from None
    pixels = pixels.reshape(-1, int(ds.Rows), int(ds.Columns))
    if pixels.shape[0] != count:
        raise fail(path, f"pixel data holds {pixels.shape[0]} frames, NumberOfFrames says {count}")
    groups = ds.get("PerFrameFunctionalGroupsSequence", [])
    if len(groups) != count:
        raise fail(path, f"{len(groups)} per-frame descriptions for {count} frames: frames are missing")
    return pixels


def seg_to_labels(ds, path: Path, series: DicomSeries, segments: Sequence[Selector] | None = None
                  ) -> tuple[np.ndarray, dict[int, str]]:
    """Labels (z, y, x) of a SEG on ``series``' grid and {label: segment label}; see ``read_label_map``."""
    kind = str(ds.get("SegmentationType", "")).upper()
    if kind not in ("BINARY", "FRACTIONAL"):
        raise fail(path, f"SegmentationType {kind or '(none)'} is not supported (BINARY or FRACTIONAL are)")
    if series.uid not in referenced_series_uids(ds):
        raise fail(path, f"references series {referenced_series_uids(ds)[0]}, not {series.uid} in {series.folder}")
    if str(ds.get("FrameOfReferenceUID", "")) != series.frame_of_reference:
        raise fail(path, f"frame of reference {ds.get('FrameOfReferenceUID')} differs from the series' "
                   f"{series.frame_of_reference}")
    _check_plane(ds, path, series)
    chosen = select(path, _segments(ds, path), segments, "segment")
    value_of = {number: k for k, (number, _) in enumerate(chosen, start=1)}
    names = {number: name for number, name in chosen}
    pixels = _frames(ds, path)
    threshold = 1 if kind == "BINARY" else max(int(ds.get("MaximumFractionalValue", 255)), 1) / 2.0
    painter = Painter(path, series.shape, "segment", len(chosen))
    for i, groups in enumerate(ds.PerFrameFunctionalGroupsSequence):
        number = int(_shared(ds, groups, "SegmentIdentificationSequence").ReferencedSegmentNumber)
        if number not in value_of:
            continue
        z = _frame_slice(ds, groups, i, path, series)
        painter.paint(value_of[number], names[number], z, pixels[i] >= threshold)
    for number, name in chosen:  # segments without any frame still get their name
        painter.names.setdefault(value_of[number], name)
    return painter.result()


def _frame_slice(ds, groups, i: int, path: Path, series: DicomSeries) -> int:
    position = _shared(ds, groups, "PlanePositionSequence")
    if position is None:
        raise fail(path, f"frame {i + 1} has no Image Position (Patient); cannot place it on the series")
    index = series.to_index(np.asarray(position.ImagePositionPatient, float))[0]
    z = int(round(index[2]))
    if np.abs(index[:2]).max() > _ON_SLICE_TOL or abs(index[2] - z) > _ON_SLICE_TOL:
        raise fail(path, f"frame {i + 1} at {tuple(np.round(position.ImagePositionPatient, 2))} mm is not on the "
                   f"grid of series {series.uid}")
    if not 0 <= z < series.shape[0]:
        raise fail(path, f"frame {i + 1} lies on slice {z}, outside the {series.shape[0]} slices in "
                   f"{series.folder}: series files are missing")
    return z


# ---------------------------------------------------------------------------------------------- writing


def write_dicom_seg(labels: np.ndarray, source_series_dir: str | os.PathLike[str], path: str | os.PathLike[str],
                    names: Mapping[int, str] | None = None, model_info: Mapping[str, str] | None = None, *,
                    geometry: Geometry | None = None, semiautomatic: bool = True, tx=None) -> Path:
    """Write a label map as a DICOM SEG (BINARY, empty frames omitted) referencing its source series.

    Args:
        labels: (z, y, x) integer labels on the source series' grid, in ``read_image(source_series_dir)``
            order ((y, x) for a series of one slice); each non-zero value is one segment.
        source_series_dir: folder of the DICOM series the labels were segmented from.
        path: the file to write, atomically (``medseg.files``; read back with pydicom before the rename).
        names: label value -> segment name (default "object <value>").
        model_info: {"model": name, "checkpoint_sha256": hex, ...}: algorithm parameters of every segment.
        geometry: the labels' geometry, checked against the series' when given.
        semiautomatic: prompted segmentation (SEMIAUTOMATIC, default) or not (AUTOMATIC).
        tx: a ``medseg.files.Transaction`` to stage the file into (written at its commit).

    Returns:
        ``path``. Segments are numbered 1..n in increasing label value.

    Raises:
        MedsegError: not a series, labels not on its grid, no label, or the SEG cannot be built / written.
    """
    path = Path(path).expanduser()
    series = load_series(source_series_dir)
    labels = np.asarray(labels)
    if labels.ndim == 2 and series.shape[0] == 1:
        labels = labels[None]
    if labels.shape != series.shape:
        raise fail(path, f"labels of shape {labels.shape} are not on the grid {series.shape} of {series.folder}")
    if geometry is not None and geometry.dim == 3 and not _same_geometry(geometry, series.geometry):
        raise fail(path, f"the labels' geometry differs from series {series.uid}'s (slice order or spacing); "
                   "cannot write a SEG that references it")
    values = [int(v) for v in np.unique(labels) if v != 0]
    if not values:
        raise fail(path, "nothing was segmented (the mask is empty); a DICOM SEG needs at least one segment")
    seg = _build(labels, values, series, dict(names or {}), dict(model_info or {}), semiautomatic, path)
    from medseg.files import write_file

    return write_file(path, lambda temp: seg.save_as(temp), _readable_seg, tx)


def _readable_seg(temp: Path) -> str | None:
    """Why the written SEG is incomplete (pydicom cannot parse it whole), or None."""
    import pydicom

    try:
        seg = pydicom.dcmread(temp)
        bits = int(seg.NumberOfFrames) * int(seg.Rows) * int(seg.Columns) * int(seg.BitsAllocated)
        held = len(seg.PixelData)
    except Exception as exc:  # noqa: BLE001 - any parse failure means the file is not whole
        return f"the written DICOM SEG does not read back ({one_line(exc)})"
    if held < (bits + 7) // 8:
        return f"the written DICOM SEG holds {held} bytes of pixel data, its header promises {(bits + 7) // 8}"
    return None


def _same_geometry(a: Geometry, b: Geometry) -> bool:
    names = ("spacing", "origin", "direction")
    return all(np.allclose(getattr(a, n), getattr(b, n), rtol=1e-4, atol=1e-3) for n in names)


def _algorithm(model_info: dict[str, str]):
    import highdicom as hd
    from pydicom.sr.codedict import codes

    from medseg import __version__

    params = {str(k): str(v) for k, v in model_info.items() if v}
    return hd.AlgorithmIdentificationSequence(
        name="medseg", family=codes.cid7162.ArtificialIntelligence, version=__version__,
        source="medseg", parameters=params or None)


def _build(labels: np.ndarray, values: list[int], series: DicomSeries, names: dict[int, str],
           model_info: dict[str, str], semiautomatic: bool, path: Path):
    import highdicom as hd

    from medseg import __version__

    algorithm = _algorithm(model_info)
    for ds in series.datasets:  # an empty Specific Character Set means the default; highdicom refuses ''
        if "SpecificCharacterSet" in ds and not ds.SpecificCharacterSet:
            del ds.SpecificCharacterSet
    kind = hd.seg.SegmentAlgorithmTypeValues.SEMIAUTOMATIC if semiautomatic else \
        hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC
    descriptions, stacked = [], np.zeros(labels.shape, np.uint8)
    for number, value in enumerate(values, start=1):
        name = (names.get(value) or f"object {value}").strip()[:64] or f"object {value}"
        category, prop = property_codes(name)
        descriptions.append(hd.seg.SegmentDescription(
            segment_number=number, segment_label=name,
            segmented_property_category=hd.sr.CodedConcept(*category),
            segmented_property_type=hd.sr.CodedConcept(*prop),
            algorithm_type=kind, algorithm_identification=algorithm,
            tracking_uid=hd.UID(), tracking_id=f"medseg object {value}"))
        stacked[labels == value] = number
    try:
        with warnings.catch_warnings():  # e.g. the source's one-component patient name: copied as it is
            warnings.simplefilter("ignore", UserWarning)
            return hd.seg.Segmentation(
                source_images=series.datasets, pixel_array=stacked, segmentation_type="BINARY",
                segment_descriptions=descriptions, series_instance_uid=hd.UID(), series_number=SEG_SERIES_NUMBER,
                sop_instance_uid=hd.UID(), instance_number=1, manufacturer="medseg",
                manufacturer_model_name=str(model_info.get("model", "medseg"))[:64],
                software_versions=f"medseg {__version__}", device_serial_number=DEVICE_SERIAL,
                series_description="medseg segmentation", content_label="MEDSEG",
                content_description="promptable segmentation by medseg", omit_empty_frames=True)
    except (ValueError, TypeError, AttributeError) as exc:
        raise fail(path, f"cannot build the DICOM SEG from {series.folder}: {one_line(exc)}") from None


def read_series_for(path: str | os.PathLike[str]) -> DicomSeries:
    """The series ``write_dicom_seg`` would reference for input ``path`` (a series folder); MedsegError if none."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise fail(folder, "a DICOM SEG output needs a DICOM series folder as input (this is a file)")
    return load_series(folder)
