"""DICOM series folders: which series to read, and whether its slices are evenly spaced.

A folder may hold several series; without a choice the one with most files is read and the choice
is stated in ``Image.meta["dicom_series_note"]`` (``medseg segment`` prints it). A series whose
slices are not evenly spaced (a missing slice, two slices at one position, mixed spacing) cannot be
one voxel grid, and ITK would only warn and use the first gap; medseg refuses it instead.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from medseg.io._common import fail, one_line

# Gaps may differ from the median gap by 1% of it, or 0.01 mm if more: the rounding of positions
# written as decimal strings stays far below; a missing slice (2x) or mixed spacing does not.
RELATIVE_TOLERANCE = 0.01
ABSOLUTE_TOLERANCE_MM = 0.01


def _listing(files: dict[str, list[str]]) -> str:
    return ", ".join(f"{uid} ({len(names)} files)" for uid, names in files.items())


def choose_series(
    folder: Path, reader: sitk.ImageSeriesReader, series: str | None
) -> tuple[list[str], dict[str, str]]:
    """File names (sorted by GDCM) of the series to read from ``folder``, and notes for ``meta``.

    Args:
        folder: The folder holding the DICOM files (not searched recursively).
        reader: The series reader whose GDCM helpers scan the folder.
        series: The Series Instance UID to read, or None for the series with most files.

    Returns:
        The file names and meta entries: ``dicom_series_uid``, ``dicom_files`` and, when several
        series were found and none was asked for, ``dicom_series_note`` saying which was read.

    Raises:
        MedsegError: No series in the folder, or ``series`` is not one of them (the UIDs are listed).
    """
    try:
        series_ids = list(reader.GetGDCMSeriesIDs(str(folder)))
    except RuntimeError as exc:
        raise fail(folder, f"cannot scan the folder for DICOM series: {one_line(exc)}") from None
    if not series_ids:
        raise fail(folder, "no DICOM series found in this folder (the files must sit directly in it)")
    files = {uid: list(reader.GetGDCMSeriesFileNames(str(folder), uid)) for uid in series_ids}
    if series is not None and series not in files:
        raise fail(folder, f"no series {series} in this folder; it holds {_listing(files)}")
    uid = series or max(series_ids, key=lambda u: len(files[u]))
    meta = {"dicom_series_uid": uid, "dicom_files": str(len(files[uid]))}
    if len(series_ids) > 1 and series is None:
        others = _listing({u: names for u, names in files.items() if u != uid})
        meta["dicom_series_note"] = (
            f"{len(series_ids)} series in {folder}; read the one with most files, {uid} "
            f"({len(files[uid])} files); others: {others}; choose one with --series UID"
        )
    return files[uid], meta


def _numbers(text: str, count: int) -> np.ndarray | None:
    try:
        values = np.array([float(v) for v in text.split("\\")], dtype=float)
    except ValueError:
        return None
    return values if values.size == count and np.all(np.isfinite(values)) else None


def slice_positions(reader: sitk.ImageSeriesReader, count: int) -> np.ndarray | None:
    """Each slice's position along the slice normal (mm), from Image Position/Orientation (Patient).

    Returns None when a slice lacks the tags (nothing to judge then).
    """
    positions = []
    normal = None
    for index in range(count):
        if not (reader.HasMetaDataKey(index, "0020|0032") and reader.HasMetaDataKey(index, "0020|0037")):
            return None
        position = _numbers(reader.GetMetaData(index, "0020|0032"), 3)
        orientation = _numbers(reader.GetMetaData(index, "0020|0037"), 6)
        if position is None or orientation is None:
            return None
        if normal is None:
            normal = np.cross(orientation[:3], orientation[3:])
        positions.append(float(position @ normal))
    return np.asarray(positions)


def spacing_problem(positions: np.ndarray) -> str | None:
    """Why slices at ``positions`` (mm along the normal, in reading order) are not one even grid.

    Returns:
        None if every gap is within max(1% of the median gap, 0.01 mm) of the median gap; else a
        short reason naming the first odd gap by slice index z (0-based) and counting the others.
    """
    if positions.size < 3:
        return None
    gaps = np.abs(np.diff(positions))
    typical = float(np.median(gaps))
    tolerance = max(RELATIVE_TOLERANCE * typical, ABSOLUTE_TOLERANCE_MM)
    odd = np.flatnonzero(np.abs(gaps - typical) > tolerance)
    if odd.size == 0:
        return None
    first = int(odd[0])
    hint = " (a missing slice?)" if gaps[first] > 1.5 * typical else ""
    hint = " (two slices at one position)" if gaps[first] <= ABSOLUTE_TOLERANCE_MM else hint
    more = f" and {odd.size - 1} other gap(s)" if odd.size > 1 else ""
    return (f"slice spacing is uneven: {typical:g} mm, except {gaps[first]:g} mm between slices "
            f"{first} and {first + 1}{hint}{more}; medseg needs evenly spaced slices "
            f"(tolerance {RELATIVE_TOLERANCE:.0%} or {ABSOLUTE_TOLERANCE_MM} mm)")
