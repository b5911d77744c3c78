"""RTSTRUCT onto its series' grid: closed planar contours rasterised slice by slice.

Contour points (patient coordinates, mm) are mapped to continuous voxel indices through the series'
geometry; every contour of an ROI must lie on one slice of the series (within 0.25 of a slice). A contour
fills the pixels whose centres are inside it or on its edges (matplotlib's point-in-polygon test, no
rounding of vertices; OpenCV's ``fillPoly``, which rt-utils uses, rounds vertices and also fills every
pixel the edge crosses, so its masks are about one pixel wider all round). Contours of one
ROI on the same slice are combined by XOR, so a contour inside another is a hole (its edge pixels fall
in the hole). Oblique series work (the mapping uses the full direction matrix); contours must still be
parallel to the slices. POINT and OPEN contours are ignored.

Measured on the RIDER lung RTSTRUCT (sample data rider_lung) against the SEG of the same tumour:
Dice 0.9144 (manual) / 0.9145 (automatic); rt-utils 1.2.7 gives 0.9018 / 0.9002, and agrees with this
rasteriser at Dice 0.976 / 0.978 (rt-utils was not taken: it needs opencv-python). Reading one ROI with
its 236-slice series takes about 1.5 s, mostly the series' headers.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from medseg.io._common import fail
from medseg.io.dicom_series import DicomSeries
from medseg.io.labels import Painter, Selector, referenced_series_uids, select

_SLICE_TOL = 0.25  # a contour may sit this far (in slices) from a slice centre
_PLANAR_TOL = 0.1  # spread of a contour's points across slices
_EDGE = 1e-6  # pixels: a centre this close to an edge is on it


def _rois(ds, path: Path) -> list[tuple[int, str]]:
    items = [(int(r.ROINumber), str(r.get("ROIName", f"ROI {r.ROINumber}")))
             for r in ds.get("StructureSetROISequence", [])]
    if not items:
        raise fail(path, "the RTSTRUCT defines no ROI (StructureSetROISequence is empty)")
    return items


def _contours(ds, number: int) -> list:
    for item in ds.get("ROIContourSequence", []):
        if int(item.get("ReferencedROINumber", -1)) == number:
            return [c for c in item.get("ContourSequence", []) if str(c.get("ContourGeometricType", "")).upper()
                    == "CLOSED_PLANAR"]
    return []


def polygon_mask(xy: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(rows, cols) bool mask of the pixels whose centres lie inside a polygon or on its edges.

    Args:
        xy: (N, 2) vertices as continuous pixel indices (x = column, y = row), pixel centres at integers.
        shape: (rows, cols) of the slice.
    """
    from matplotlib.path import Path as Polygon

    mask = np.zeros(shape, bool)
    lo = np.maximum(np.floor(xy.min(axis=0)).astype(int), 0)
    hi = np.minimum(np.ceil(xy.max(axis=0)).astype(int), (shape[1] - 1, shape[0] - 1))
    if np.any(hi < lo):
        return mask
    ys, xs = np.mgrid[lo[1] : hi[1] + 1, lo[0] : hi[0] + 1]
    centres = np.column_stack([xs.ravel(), ys.ravel()]).astype(float)
    polygon = Polygon(np.asarray(xy, float))
    # matplotlib grows a counter-clockwise polygon by a positive radius and a clockwise one by a negative
    # radius; taking both makes pixel centres on an edge count as inside, whatever the winding.
    inside = polygon.contains_points(centres, radius=_EDGE) | polygon.contains_points(centres, radius=-_EDGE)
    mask[lo[1] : hi[1] + 1, lo[0] : hi[0] + 1] = inside.reshape(xs.shape)
    return mask


def rtstruct_to_labels(ds, path: Path, series: DicomSeries, segments: Sequence[Selector] | None = None
                       ) -> tuple[np.ndarray, dict[int, str]]:
    """Labels (z, y, x) of an RTSTRUCT on ``series``' grid and {label: ROI name}; see ``read_label_map``."""
    refs = referenced_series_uids(ds)
    if series.uid not in refs:
        raise fail(path, f"references series {refs[0]}, not {series.uid} in {series.folder}")
    frames = {str(f.get("FrameOfReferenceUID", "")) for f in ds.get("ReferencedFrameOfReferenceSequence", [])}
    if series.frame_of_reference not in frames:
        raise fail(path, f"frame of reference {', '.join(sorted(frames))} differs from the series' "
                   f"{series.frame_of_reference}")
    chosen = select(path, _rois(ds, path), segments, "ROI")
    painter = Painter(path, series.shape, "ROI", len(chosen))
    for value, (number, name) in enumerate(chosen, start=1):
        contours = _contours(ds, number)
        if not contours:
            raise fail(path, f"ROI {number} '{name}' has no closed planar contour; choose other ROIs")
        for z, mask in _roi_slices(contours, series, path, name).items():
            painter.paint(value, name, z, mask)
    return painter.result()


def _roi_slices(contours: list, series: DicomSeries, path: Path, name: str) -> dict[int, np.ndarray]:
    """{slice z: XOR of the ROI's filled contours on that slice}."""
    slices: dict[int, np.ndarray] = {}
    for k, contour in enumerate(contours, start=1):
        data = np.asarray(contour.get("ContourData", []), float)
        if data.size < 9 or data.size % 3:
            raise fail(path, f"contour {k} of ROI '{name}' has {data.size // 3} points; a closed contour needs 3")
        index = series.to_index(data.reshape(-1, 3))
        z = float(np.median(index[:, 2]))
        slice_z = int(round(z))
        if np.ptp(index[:, 2]) > _PLANAR_TOL:
            raise fail(path, f"contour {k} of ROI '{name}' is not parallel to the series' slices")
        if abs(z - slice_z) > _SLICE_TOL or not 0 <= slice_z < series.shape[0]:
            where = float(np.dot(data[:3], np.asarray(series.geometry.direction).reshape(3, 3)[:, 2]))
            raise fail(path, f"contour {k} of ROI '{name}' at {where:.2f} mm along the normal is not on a slice of "
                       f"series {series.uid} in {series.folder}: series files are missing")
        mask = polygon_mask(index[:, :2], series.shape[1:])
        slices[slice_z] = slices[slice_z] ^ mask if slice_z in slices else mask
    return slices
