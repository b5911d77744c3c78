"""Helpers for the IO tests: rotations, geometry and error assertions, DICOM series writing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from medseg.errors import MedsegError
from medseg.io import Geometry

SPACING = (0.7, 0.9, 2.5)
ORIGIN = (-12.5, 30.25, 7.0)


def rotation(ax: float, ay: float, az: float) -> np.ndarray:
    """A proper 3x3 rotation matrix Rz @ Ry @ Rx (angles in radians)."""
    cx, sx, cy, sy, cz, sz = np.cos(ax), np.sin(ax), np.cos(ay), np.sin(ay), np.cos(az), np.sin(az)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def assert_geometry_close(actual: Geometry, expected: Geometry) -> None:
    for name in ("spacing", "origin", "direction"):
        assert np.allclose(getattr(actual, name), getattr(expected, name), rtol=1e-6, atol=1e-6), name


def assert_one_line_error(excinfo: pytest.ExceptionInfo[MedsegError], path: Path | str, *words: str) -> None:
    """The MedsegError is one line, names the file and contains ``words``."""
    message = str(excinfo.value)
    assert "\n" not in message and message.strip() == message
    assert str(path) in message or Path(path).name in message
    for word in words:
        assert word.lower() in message.lower(), (word, message)


def write_dicom_series(
    folder: Path, volume: np.ndarray, spacing: tuple[float, ...], origin: tuple[float, ...],
    series_uid: str, modality: str = "CT", direction: tuple[float, ...] | None = None,
) -> list[Path]:
    """Write a (z, y, x) int16 volume as one DICOM file per slice (SimpleITK DicomSeriesFromArray)."""
    folder.mkdir(parents=True, exist_ok=True)
    image = sitk.GetImageFromArray(volume)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    if direction is not None:
        image.SetDirection(direction)
    direction = image.GetDirection()
    orientation = "\\".join(str(v) for v in (*direction[0::3], *direction[1::3]))
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    paths = []
    for index in range(image.GetDepth()):
        piece = image[:, :, index]
        position = "\\".join(str(v) for v in image.TransformIndexToPhysicalPoint((0, 0, index)))
        tags = {
            "0008|0016": "1.2.840.10008.5.1.4.1.1.2",
            "0008|0018": f"{series_uid}.{index + 1}",
            "0008|0060": modality,
            "0020|000d": f"{series_uid}.0",
            "0020|000e": series_uid,
            "0020|0013": str(index + 1),
            "0020|0032": position,
            "0020|0037": orientation,
            "0018|0050": str(spacing[2]),
        }
        for key, value in tags.items():
            piece.SetMetaData(key, value)
        # reverse file order so GDCM has to sort by position, not by name
        paths.append(folder / f"s{series_uid.rsplit('.', 1)[-1]}_{image.GetDepth() - index:03d}.dcm")
        writer.SetFileName(str(paths[-1]))
        writer.Execute(piece)
    return paths
