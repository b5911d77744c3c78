"""Datasets of DICOM cases: one folder per case holding an image series and its SEG or RTSTRUCT.

Layout accepted by ``medseg train --data DIR`` and the benchmark protocols::

    DIR/<case>/...   a DICOM image series and exactly one SEG or RTSTRUCT file, each either directly in
                     the case folder or in one of its sub-folders (one level), e.g.
                     DIR/pat_1/CT_0001.dcm ... DIR/pat_1/RS.dcm, or DIR/lung1/ct/*.dcm + DIR/lung1/seg/1-1.dcm

The annotation's referenced series is found as ``read_label_map`` finds it; every segment / ROI is one
label (overlapping ones are refused). A case folder without an annotation file is not a case.
"""

from __future__ import annotations

from pathlib import Path

from medseg.errors import MedsegError
from medseg.io.image import Image
from medseg.io.labels import LabelMap, annotation_kind, read_label_map


def _annotations(case: Path) -> list[Path]:
    files = [p for p in sorted(case.iterdir()) if p.is_file()]
    for sub in sorted(p for p in case.iterdir() if p.is_dir()):
        files += [p for p in sorted(sub.iterdir()) if p.is_file()]
    return [p for p in files if annotation_kind(p) is not None]


def find_dicom_cases(root: Path) -> list[tuple[str, Path]]:
    """[(case name, SEG or RTSTRUCT file)] of the case folders under ``root``; [] if none holds one.

    Raises:
        MedsegError: a case folder holds several annotation files (which one is meant is unclear).
    """
    cases = []
    for case in sorted(p for p in root.iterdir() if p.is_dir()):
        found = _annotations(case)
        if len(found) > 1:
            raise MedsegError(f"{case}: holds {len(found)} SEG/RTSTRUCT files ({', '.join(p.name for p in found)}); "
                              "a DICOM case needs exactly one")
        if found:
            cases.append((case.name, found[0]))
    return cases


def read_dicom_case(annotation: Path) -> tuple[Image, LabelMap]:
    """The referenced series as an Image (``read_image``) and the annotation's labels on its grid."""
    from medseg.io import read_image

    labels = read_label_map(annotation)
    image = read_image(labels.reference)
    if image.grid_shape != labels.labels.shape:
        raise MedsegError(f"{annotation}: labels {labels.labels.shape} do not match the series {labels.reference} "
                          f"read as {image.grid_shape}")
    return image, labels
