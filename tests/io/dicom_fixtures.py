"""Small synthetic DICOM objects made with pydicom: a CT series, RTSTRUCTs, and the dciodvfy check.

Axial series (identity orientation) unless a direction is given; geometry as ITK (x, y, z).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, RTStructureSetStorage, generate_uid

PATIENT = {"PatientName": "Test^Synthetic", "PatientID": "SYN-001", "PatientBirthDate": "19700101",
           "PatientSex": "O"}
SPACING = (0.8, 0.7, 2.5)  # x, y, z mm
ORIGIN = (-20.0, 10.0, 5.0)


def _file_meta(sop_class: str, sop_uid: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return meta


def _common(ds: Dataset, study: str, frame: str | None) -> None:
    for key, value in PATIENT.items():
        setattr(ds, key, value)
    ds.StudyInstanceUID = study
    ds.StudyDate, ds.StudyTime, ds.StudyID = "20200101", "120000", "1"
    ds.AccessionNumber, ds.ReferringPhysicianName = "A1", ""
    ds.Manufacturer = "synthetic"
    if frame:
        ds.FrameOfReferenceUID = frame
        ds.PositionReferenceIndicator = ""


def write_ct_series(folder: Path, volume: np.ndarray, spacing=SPACING, origin=ORIGIN,
                    direction: np.ndarray | None = None, series_uid: str | None = None,
                    frames: list[str] | None = None, study: str = "1.2.826.0.1.3680043.8.498.1") -> dict:
    """Write a (z, y, x) int16 volume as one CT file per slice; returns the UIDs used."""
    folder.mkdir(parents=True, exist_ok=True)
    series_uid = series_uid or generate_uid()
    frame = generate_uid()
    direction = np.eye(3) if direction is None else np.asarray(direction, float).reshape(3, 3)
    row, col, normal = direction[:, 0], direction[:, 1], direction[:, 2]
    for z, plane in enumerate(volume):
        sop = generate_uid()
        ds = Dataset()
        ds.file_meta = _file_meta(CTImageStorage, sop)
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, sop
        _common(ds, study, frames[z] if frames else frame)
        ds.Modality, ds.SeriesInstanceUID, ds.SeriesNumber, ds.InstanceNumber = "CT", series_uid, 1, z + 1
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        position = np.asarray(origin, float) + z * spacing[2] * normal
        ds.ImagePositionPatient = [float(v) for v in position]
        ds.ImageOrientationPatient = [float(v) for v in (*row, *col)]
        ds.PixelSpacing = [spacing[1], spacing[0]]
        ds.SliceThickness = spacing[2]
        ds.Rows, ds.Columns = plane.shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = 0, 1, "HU"
        ds.KVP, ds.AcquisitionNumber = 120, 1
        ds.PixelData = np.ascontiguousarray(plane, dtype=np.int16).tobytes()
        ds.save_as(folder / f"ct{z:03d}.dcm", enforce_file_format=True)
    return {"series": series_uid, "frame": frame, "study": study}


def write_rtstruct(path: Path, series_folder: Path, rois: dict[str, list[np.ndarray]],
                   series_uid: str | None = None) -> Path:
    """An RTSTRUCT whose ROIs are lists of (N, 3) contours in patient mm, referencing the series in a folder."""
    import pydicom

    slices = [pydicom.dcmread(p, stop_before_pixels=True) for p in sorted(series_folder.glob("*.dcm"))]
    first = slices[0]
    sop = generate_uid()
    ds = Dataset()
    ds.file_meta = _file_meta(RTStructureSetStorage, sop)
    ds.SOPClassUID, ds.SOPInstanceUID = RTStructureSetStorage, sop
    _common(ds, first.StudyInstanceUID, None)
    ds.Modality, ds.SeriesInstanceUID, ds.SeriesNumber = "RTSTRUCT", generate_uid(), 2
    ds.StructureSetLabel, ds.StructureSetDate, ds.StructureSetTime = "test", "20200101", "120000"
    series = Dataset()
    series.SeriesInstanceUID = series_uid or first.SeriesInstanceUID
    series.ContourImageSequence = []
    study = Dataset()
    study.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"
    study.ReferencedSOPInstanceUID = first.StudyInstanceUID
    study.RTReferencedSeriesSequence = [series]
    frame = Dataset()
    frame.FrameOfReferenceUID = first.FrameOfReferenceUID
    frame.RTReferencedStudySequence = [study]
    ds.ReferencedFrameOfReferenceSequence = [frame]
    ds.StructureSetROISequence, ds.ROIContourSequence, ds.RTROIObservationsSequence = [], [], []
    for number, (name, contours) in enumerate(rois.items(), start=1):
        roi = Dataset()
        roi.ROINumber, roi.ROIName, roi.ROIGenerationAlgorithm = number, name, "MANUAL"
        roi.ReferencedFrameOfReferenceUID = first.FrameOfReferenceUID
        ds.StructureSetROISequence.append(roi)
        item = Dataset()
        item.ReferencedROINumber, item.ROIDisplayColor = number, [255, 0, 0]
        item.ContourSequence = []
        for points in contours:
            contour = Dataset()
            contour.ContourGeometricType = "CLOSED_PLANAR"
            contour.NumberOfContourPoints = len(points)
            contour.ContourData = [float(v) for v in np.asarray(points).ravel()]
            item.ContourSequence.append(contour)
        ds.ROIContourSequence.append(item)
    ds.save_as(path, enforce_file_format=True)
    return path


def voxel_square(x0: float, y0: float, x1: float, y1: float, z: int, spacing=SPACING, origin=ORIGIN) -> np.ndarray:
    """A closed contour (4, 3) in patient mm through voxel centres (x0, y0)..(x1, y1) on slice z (axial)."""
    corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    return np.array([[origin[0] + x * spacing[0], origin[1] + y * spacing[1], origin[2] + z * spacing[2]]
                     for x, y in corners])


def dciodvfy(path: Path) -> tuple[list[str], list[str]]:
    """(errors, warnings) lines of dciodvfy on ``path``; skips the test if dciodvfy is not installed."""
    tool = shutil.which("dciodvfy")
    if tool is None:
        pytest.skip("dciodvfy (Debian dicom3tools) is not installed; `make setup` installs it")
    done = subprocess.run([tool, str(path)], capture_output=True, text=True, check=False)
    lines = [line.strip() for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    return [ln for ln in lines if ln.startswith("Error")], [ln for ln in lines if ln.startswith("Warning")]
