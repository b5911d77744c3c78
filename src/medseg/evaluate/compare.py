"""Compare prediction files with ground-truth files: two files, or two folders matched by case name."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np

from medseg.errors import MedsegError
from medseg.evaluate.metrics import DEFAULT_NSD_TOLERANCE_MM, mean_scores, score_labels
from medseg.files import Transaction, write_text
from medseg.io._common import ending
from medseg.io.image import Geometry
from medseg.io.labels import LabelMap, annotation_kind, read_label_map

MASK_ENDINGS = (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd", ".png", ".tif", ".tiff", ".npz")
NPZ_LABEL_KEYS = ("segs", "gts")



def case_name(path: Path) -> str:
    """File name without its ending (``.nii.gz`` counted as one ending)."""
    end = ending(path)
    return path.name[: len(path.name) - len(end)] if end else path.name


def read_labels(path: str | Path, reference: str | Path | None = None, segments: list | None = None) -> LabelMap:
    """Read a label map; npz files give ``segs`` (predictions) or ``gts`` (ground truth) and ``spacing`` (z,y,x).

    A DICOM SEG or RTSTRUCT is read onto its referenced series (``reference``, or found beside it) by
    ``medseg.io.labels.read_label_map``, ``segments`` choosing its segments / ROIs.
    """
    path = Path(path)
    if annotation_kind(path) is not None:
        return read_label_map(path, reference, segments)
    if ending(path) == ".npz":
        return _read_npz(path)
    from medseg.io import read_image

    image = read_image(path)
    if image.is_rgb:
        raise MedsegError(f"{path}: a colour picture is not a label map")
    labels = image.array
    if labels.dtype.kind == "f":
        if not np.all(np.equal(np.mod(labels, 1), 0)):
            raise MedsegError(f"{path}: label maps need whole numbers, found fractional values")
        labels = labels.astype(np.int64)
    return LabelMap(labels, image.geometry, path)


def _read_npz(path: Path) -> LabelMap:
    if not path.is_file():
        raise MedsegError(f"{path}: no such file")
    with np.load(path, allow_pickle=False) as archive:
        key = next((k for k in NPZ_LABEL_KEYS if k in archive.files), None)
        if key is None:
            raise MedsegError(f"{path}: no 'segs' or 'gts' array (keys: {', '.join(archive.files)})")
        labels = np.asarray(archive[key])
        spacing = np.asarray(archive["spacing"], float).ravel() if "spacing" in archive.files else None
    if spacing is None or spacing.size != labels.ndim:
        return LabelMap(labels, Geometry.identity(labels.ndim), path)
    return LabelMap(labels, Geometry.identity(labels.ndim, tuple(float(v) for v in spacing[::-1])), path)


def check_same_grid(pred: LabelMap, gt: LabelMap) -> None:
    """One-line MedsegError when the two maps are not on the same voxel grid."""
    where = f"{pred.path} vs {gt.path}"
    if pred.labels.shape != gt.labels.shape:
        raise MedsegError(f"geometry mismatch {where}: shape {pred.labels.shape} != {gt.labels.shape}")
    a, b = pred.geometry, gt.geometry
    for name, tol in (("spacing", 1e-4), ("origin", 1e-3), ("direction", 1e-4)):
        va, vb = np.asarray(getattr(a, name), float), np.asarray(getattr(b, name), float)
        if va.shape != vb.shape or not np.allclose(va, vb, rtol=tol, atol=tol):
            raise MedsegError(f"geometry mismatch {where}: {name} {tuple(np.round(va, 4))} != "
                              f"{tuple(np.round(vb, 4))}; resample the prediction onto the ground truth grid")


def pair_paths(pred: str | Path, gt: str | Path) -> list[tuple[str, Path, Path]]:
    """[(case, pred_file, gt_file)]: two files, or two folders matched by case name."""
    pred, gt = Path(pred), Path(gt)
    if pred.is_file() and gt.is_file():
        return [(case_name(gt), pred, gt)]
    if pred.is_dir() and gt.is_dir():
        preds, gts = _mask_files(pred), _mask_files(gt)
        common = sorted(set(preds) & set(gts))
        missing = sorted(set(gts) - set(preds))
        if not common:
            raise MedsegError(f"no case of {gt} has a prediction in {pred} (match is by file name without ending)")
        if missing:
            shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
            raise MedsegError(f"{len(missing)} ground-truth case(s) have no prediction in {pred}: {shown}")
        return [(c, preds[c], gts[c]) for c in common]
    for p in (pred, gt):
        if not p.exists():
            raise MedsegError(f"{p}: no such file or folder")
    raise MedsegError(f"--pred {pred} and --gt {gt} must both be files or both be folders")


def _mask_files(folder: Path) -> dict[str, Path]:
    return {case_name(p): p for p in sorted(folder.iterdir()) if p.is_file() and ending(p) in MASK_ENDINGS}


def evaluate_pair(case: str, pred: LabelMap, gt: LabelMap, labels: list[int] | None,
                  tolerance_mm: float) -> list[dict]:
    """One row per label: {"case", "label", "dice", "nsd", "hd95"}; default labels: nonzero in either map."""
    check_same_grid(pred, gt)
    if labels is None:
        present = np.union1d(np.unique(pred.labels), np.unique(gt.labels))
        labels = [int(v) for v in present if v != 0]
    scores = score_labels(pred.labels, gt.labels, labels, gt.geometry.spacing, tolerance_mm)
    return [{"case": case, "label": label, **s.as_dict()} for label, s in scores.items()]


def evaluate_paths(pred: str | Path, gt: str | Path, labels: list[int] | None = None,
                   tolerance_mm: float = DEFAULT_NSD_TOLERANCE_MM, progress: bool = False,
                   reference: str | Path | None = None, gt_segments: list | None = None) -> dict:
    """Evaluate files or folders; returns ``{"cases": [...], "mean": {...}, "nsd_tolerance_mm": t}``.

    ``reference`` is the image series folder of DICOM SEG / RTSTRUCT files (default: found beside them);
    ``gt_segments`` chooses the ground truth's segments / ROIs (numbers or names), labelled 1..n in that order.
    """
    pairs = pair_paths(pred, gt)
    if progress:
        from tqdm import tqdm

        pairs = tqdm(pairs, desc="evaluate", unit="case", disable=None)  # silent off a terminal
    rows: list[dict] = []
    for case, p, g in pairs:
        truth = read_labels(g, reference, gt_segments)
        rows.extend(evaluate_pair(case, read_labels(p, reference), truth, labels, tolerance_mm))
    return {"cases": rows, "mean": mean_scores(rows), "nsd_tolerance_mm": tolerance_mm}


def json_safe(value):
    """Replace inf / nan floats by None, recursively (JSON has no infinity)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value


def write_json(result: dict, path: str | Path, tx: Transaction | None = None) -> Path:
    """``result`` as JSON (inf/nan as null), atomically (``medseg.files``) or staged into ``tx``."""
    return write_text(path, json.dumps(json_safe(result), indent=2) + "\n", tx)


def write_csv(rows: list[dict], path: str | Path, tx: Transaction | None = None) -> Path:
    """Rows as CSV (case,label,dice,nsd,hd95, ...); infinite HD95 written as ``inf``; atomically or into ``tx``."""
    fields = list(rows[0]) if rows else ["case", "label", "dice", "nsd", "hd95"]
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return write_text(path, text.getvalue(), tx)
