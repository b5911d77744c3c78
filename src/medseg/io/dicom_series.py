"""A DICOM image series as the DICOM annotation readers and the SEG writer need it: headers in volume order.

``load_series(folder)`` reads the headers (no pixel data) of the single-frame images in ``folder`` (not
searched recursively), keeps one series, checks it is one regular grid in one frame of reference, and
orders the slices as the volume ``read_image(folder)`` returns: ascending along the slice normal
(row direction x column direction), which is GDCM's order. Its geometry follows ITK conventions:
spacing and origin (x, y, z) in mm, the direction's columns are the row, column and normal directions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medseg.io._common import fail
from medseg.io.image import Geometry

ANNOTATION_MODALITIES = ("SEG", "RTSTRUCT", "RTPLAN", "RTDOSE", "SR", "PR", "KO", "REG")
_POSITION_TOL = 1e-2  # mm; orientation cosines and in-plane spacing are compared at 1e-4


@dataclass
class DicomSeries:
    """One series of single-frame DICOM images, slices in volume order.

    Attributes:
        folder: the folder it was read from.
        files: one file per slice, slice 0 first (volume order, ascending along the normal).
        datasets: their headers (pydicom Datasets read without pixel data), same order.
        uid: SeriesInstanceUID.
        frame_of_reference: FrameOfReferenceUID shared by every slice.
        geometry: ITK geometry of the (z, y, x) volume.
        shape: (z, y, x) voxel counts.
    """

    folder: Path
    files: list[Path]
    datasets: list
    uid: str
    frame_of_reference: str
    geometry: Geometry
    shape: tuple[int, int, int]

    @property
    def sop_uids(self) -> list[str]:
        return [str(ds.SOPInstanceUID) for ds in self.datasets]

    def to_index(self, points_mm: np.ndarray) -> np.ndarray:
        """Patient coordinates (N, 3) in mm (x, y, z, DICOM LPS) -> continuous voxel indices (N, 3) (x, y, z)."""
        g = self.geometry
        matrix = np.asarray(g.direction, float).reshape(3, 3) * np.asarray(g.spacing, float)
        offset = np.asarray(points_mm, float).reshape(-1, 3) - np.asarray(g.origin, float)
        return np.linalg.solve(matrix, offset.T).T


def _is_dicom(path: Path) -> bool:
    from medseg.io.dicom import is_dicom_file

    return path.is_file() and (path.suffix.lower() == ".dcm" or is_dicom_file(path))


def read_headers(folder: Path) -> list[tuple[Path, object]]:
    """(path, header) of every DICOM file directly in ``folder`` (unreadable files skipped), sorted by name."""
    import pydicom

    try:
        entries = sorted(folder.iterdir())
    except OSError:  # an unreadable folder holds no series we can use
        return []
    found = []
    for path in (p for p in entries if _is_dicom(p)):
        try:
            found.append((path, pydicom.dcmread(path, stop_before_pixels=True)))
        except Exception:  # noqa: BLE001 - a stray non-DICOM file is not a series file
            continue
    return found


def image_series(folder: Path) -> dict[str, list[tuple[Path, object]]]:
    """{SeriesInstanceUID: [(path, header), ...]} of the image series directly in ``folder`` (no annotations)."""
    groups: dict[str, list[tuple[Path, object]]] = {}
    for path, ds in read_headers(folder):
        if _is_image(ds):
            groups.setdefault(str(ds.SeriesInstanceUID), []).append((path, ds))
    return groups


def _is_image(ds) -> bool:
    return (str(ds.get("Modality", "")).upper() not in ANNOTATION_MODALITIES
            and "ImagePositionPatient" in ds and "ImageOrientationPatient" in ds and "SeriesInstanceUID" in ds)


def load_series(folder: str | Path, uid: str | None = None,
                groups: dict[str, list[tuple[Path, object]]] | None = None) -> DicomSeries:
    """Headers of one image series in ``folder``, in volume order, with its geometry.

    Args:
        folder: a folder holding the series' files (other series and annotation objects may sit beside them).
        uid: the SeriesInstanceUID to take; default the image series with most files (as ``read_image``).
        groups: ``image_series(folder)`` when the caller has it already (saves reading the headers twice).

    Raises:
        MedsegError: no image series (or not ``uid``), several frames of reference, slices of different
            size / orientation / pixel spacing, two slices at one position, or uneven slice spacing.
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise fail(folder, "no such folder; give the folder holding the DICOM image series")
    groups = image_series(folder) if groups is None else groups
    if not groups:
        raise fail(folder, "holds no DICOM image series (single-frame images with position and orientation)")
    if uid is None:
        uid = max(groups, key=lambda u: len(groups[u]))
    elif uid not in groups:
        raise fail(folder, f"holds no image of series {uid} (it holds {', '.join(sorted(groups))})")
    return _ordered(folder, uid, groups[uid])


def _ordered(folder: Path, uid: str, members: list[tuple[Path, object]]) -> DicomSeries:
    first = members[0][1]
    frames = sorted({str(ds.get("FrameOfReferenceUID", "")) for _, ds in members})
    if len(frames) != 1 or not frames[0]:
        shown = ", ".join(f or "(none)" for f in frames)
        raise fail(folder, f"series {uid} spans {len(frames)} frames of reference ({shown}); "
                   "one volume needs one frame of reference")
    for path, ds in members:
        if int(ds.get("NumberOfFrames", 1) or 1) > 1:
            raise fail(path, "multi-frame images are not supported as the referenced series")
        for tag, tol in (("ImageOrientationPatient", 1e-4), ("PixelSpacing", 1e-4), ("Rows", 0), ("Columns", 0)):
            a, b = np.atleast_1d(np.asarray(ds.get(tag), float)), np.atleast_1d(np.asarray(first.get(tag), float))
            if a.shape != b.shape or not np.allclose(a, b, atol=tol):
                raise fail(path, f"{tag} {list(a)} differs from {list(b)} in {members[0][0].name}; "
                           "the series is not one regular grid")
    orient = np.asarray(first.ImageOrientationPatient, float)
    row, col = orient[:3], orient[3:]
    normal = np.cross(row, col)
    along = np.array([float(np.dot(np.asarray(ds.ImagePositionPatient, float), normal)) for _, ds in members])
    order = np.argsort(along, kind="stable")
    members = [members[i] for i in order]
    along = along[order]
    gaps = np.diff(along)
    if len(gaps) and gaps.min() < _POSITION_TOL:
        i = int(np.argmin(gaps))
        raise fail(folder, f"{members[i][0].name} and {members[i + 1][0].name} lie at one position; "
                   "the folder mixes two acquisitions of series " + uid)
    if len(gaps) and gaps.max() - gaps.min() > max(_POSITION_TOL, 0.01 * gaps.min()):
        raise fail(folder, f"slices of series {uid} are not evenly spaced (gaps {gaps.min():.3f} to "
                   f"{gaps.max():.3f} mm): a slice file is missing or the series is irregular")
    dz = float(np.median(gaps)) if len(gaps) else float(first.get("SliceThickness", 1.0) or 1.0)
    pixel = np.asarray(first.PixelSpacing, float)  # (row spacing = y, column spacing = x)
    direction = np.column_stack([row, col, normal])
    geometry = Geometry((float(pixel[1]), float(pixel[0]), dz),
                        tuple(float(v) for v in np.asarray(members[0][1].ImagePositionPatient, float)),
                        tuple(float(v) for v in direction.ravel()))
    shape = (len(members), int(first.Rows), int(first.Columns))
    return DicomSeries(folder, [p for p, _ in members], [ds for _, ds in members], uid, frames[0], geometry, shape)
