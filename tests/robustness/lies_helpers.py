"""Builders of input that lies: headers promising more than the file holds, NaN voxels, odd series."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import SimpleITK as sitk

CT_UID = "1.2.840.10008.5.1.4.1.1.2"


def nifti_header(shape: tuple[int, int, int], datatype: int = 4, bitpix: int = 16,
                 slope: float = 1.0, inter: float = 0.0) -> bytes:
    """A single-file NIfTI-1 header (352 bytes with the extension flag) for an (x, y, z) grid."""
    header = bytearray(348)
    struct.pack_into("<i", header, 0, 348)
    struct.pack_into("<8h", header, 40, 3, *shape, 1, 1, 1, 1)
    struct.pack_into("<2h", header, 70, datatype, bitpix)
    struct.pack_into("<8f", header, 76, 1, 1, 1, 1, 0, 0, 0, 0)
    struct.pack_into("<3f", header, 108, 352.0, slope, inter)
    header[344:348] = b"n+1\0"
    return bytes(header) + b"\0" * 4


def lying_nifti(path: Path, side: int) -> Path:
    """A 452-byte .nii whose header claims side^3 int16 voxels."""
    path.write_bytes(nifti_header((side, side, side)) + b"\0" * 100)
    return path


def float_volume(shape=(4, 16, 16), bad: int = 3) -> np.ndarray:
    """(z, y, x) float32 noise with ``bad`` non-finite voxels (NaN, +Inf, -Inf, NaN, ...)."""
    array = np.random.default_rng(0).random(shape, dtype=np.float32) * 100
    for i, value in zip(range(bad), [np.nan, np.inf, -np.inf] * bad, strict=False):
        array.flat[7 * i + 3] = value
    return array


def write_volume(path: Path, array: np.ndarray, compress: bool = False) -> Path:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((0.8, 0.9, 2.5)[: array.ndim])
    sitk.WriteImage(image, str(path), useCompression=compress)
    return path


def write_picture_npz_tiff(path: Path, array: np.ndarray) -> Path:
    """``array`` as .npz (key imgs), .tif or a SimpleITK format, by ``path``'s ending."""
    if path.suffix == ".npz":
        np.savez(path, imgs=array)
    elif path.suffix == ".tif":
        import tifffile

        tifffile.imwrite(path, array)
    else:
        write_volume(path, array)
    return path


def png_claiming(path: Path, width: int, height: int) -> Path:
    """A small valid PNG whose IHDR then claims ``width`` x ``height`` pixels (CRC fixed)."""
    from PIL import Image as PILImage

    PILImage.new("L", (8, 8)).save(path)
    data = bytearray(path.read_bytes())
    struct.pack_into(">II", data, 16, width, height)
    struct.pack_into(">I", data, 29, zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))
    return path


def write_series(folder: Path, uid: str, z_positions: list[float], rows: int = 24, columns: int = 32,
                 spacing: tuple[float, float] = (0.7, 0.9), thickness: float = 2.5) -> list[Path]:
    """One CT DICOM file per z position (axial, origin x=-20, y=15.5), pixel values 40*z-index + x."""
    folder.mkdir(parents=True, exist_ok=True)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    paths = []
    for index, z in enumerate(z_positions):
        pixels = (np.arange(columns)[None, :] + 40 * index + np.zeros((rows, 1))).astype(np.int16)
        piece = sitk.GetImageFromArray(pixels[None])
        piece.SetSpacing((*spacing, thickness))
        tags = {"0008|0016": CT_UID, "0008|0018": f"{uid}.{index + 1}", "0008|0060": "CT",
                "0020|000d": f"{uid}.0", "0020|000e": uid, "0020|0013": str(index + 1),
                "0020|0032": f"-20\\15.5\\{z}", "0020|0037": "1\\0\\0\\0\\1\\0", "0018|0050": str(thickness)}
        for key, value in tags.items():
            piece.SetMetaData(key, value)
        paths.append(folder / f"{uid.rsplit('.', 1)[-1]}_{index:03d}.dcm")
        writer.SetFileName(str(paths[-1]))
        writer.Execute(piece)
    return paths


def truncate(path: Path, keep: float = 0.5) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path
