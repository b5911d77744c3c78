"""`medseg segment --text NAME`: text objects and the names of the labels they make.

Kept apart from ``cli/segment.py`` so the command keeps small hooks. When any object was named by text
(``--text`` or a prompt file's ``{"text": ...}``), the label names go to ``MASK.labels.json`` beside the mask
(``{"1": "left hippocampus", ...}``; a DICOM SEG output carries them as segment names instead).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from medseg.prompts import ObjectPrompts

ENDINGS = (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd", ".png", ".npz", ".tif", ".tiff", ".dcm")


def objects(texts: list[str]) -> list[ObjectPrompts]:
    """One 3D object per ``--text`` (an empty one is refused later with the other prompt checks)."""
    return [ObjectPrompts(text=t) for t in texts]


def _uses_text(args: argparse.Namespace) -> bool:
    if args.text:
        return True
    if not args.prompts:
        return False
    try:
        from medseg.cli import prompt_args

        return any(o.text is not None for o in prompt_args.from_file(args.prompts))
    except Exception:  # noqa: BLE001 - a broken prompt file is reported by the normal parse
        return False


def sidecar(args: argparse.Namespace) -> Path | None:
    """``MASK.labels.json`` when text names labels and the output is not a DICOM SEG, else None."""
    from medseg.cli import dicom_out

    if dicom_out.wanted(args) or not _uses_text(args):
        return None
    out = str(args.output)
    stem = next((out[: -len(e)] for e in ENDINGS if out.lower().endswith(e)), out)
    return Path(stem + ".labels.json")


def names(session, objs: list[ObjectPrompts]) -> dict[int, str]:
    """Label -> name: a prompt file's ``name``, else the structure a text resolved to."""
    out = {}
    for obj, state in zip(objs, session.state.objects, strict=False):
        name = obj.name or state.name
        if name:
            out[state.label] = name
    return out


def write(args: argparse.Namespace, label_names: dict[int, str], tx) -> Path | None:
    """Stage ``MASK.labels.json`` into ``tx`` when it is wanted; returns its path."""
    from medseg.files import write_text

    path = sidecar(args)
    if path is None:
        return None
    text = json.dumps({str(k): v for k, v in sorted(label_names.items())}, indent=1) + "\n"
    return write_text(path, text, tx)
