"""`medseg segment ... -o out.dcm` (or ``--format dicom-seg``): the DICOM SEG output of a segmentation.

Kept apart from ``cli/segment.py`` so the command keeps a two-line hook: ``check`` before any work,
``write`` in place of ``write_mask``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from medseg.errors import MedsegError

FORMAT = "dicom-seg"


def wanted(args: argparse.Namespace) -> bool:
    """True when the output is a DICOM SEG: ``--format dicom-seg`` or an output ending in ``.dcm``."""
    return getattr(args, "format", None) == FORMAT or str(args.output).lower().endswith(".dcm")


def check(args: argparse.Namespace) -> Path:
    """Before any work: the input is a DICOM series folder and the output a writable file path (not the input)."""
    from medseg.io.dicom_seg import read_series_for

    out = Path(args.output).expanduser()
    source = Path(args.input).expanduser()
    if not source.is_dir():
        raise MedsegError(f"-o {args.output}: a DICOM SEG output needs a DICOM series folder as input, "
                          f"and {args.input} is not a folder; write .nii.gz, .nrrd, .mha, .png or .npz instead")
    read_series_for(source)
    if out.is_dir():
        raise MedsegError(f"-o {args.output}: is a folder; give a file name for the DICOM SEG")
    return out


def object_names(prompt_file: str | None, count: int) -> dict[int, str]:
    """Label k -> the ``"name"`` of object k in the prompt file (when given and a string), else "object k"."""
    names = {k: f"object {k}" for k in range(1, count + 1)}
    if prompt_file:
        objects = json.loads(Path(prompt_file).read_text()).get("objects", [])  # already validated by from_file
        for k, spec in enumerate(objects, start=1):
            if isinstance(spec, dict) and isinstance(spec.get("name"), str) and spec["name"].strip():
                names[k] = spec["name"].strip()
    return names


def model_info(model: str | None, checkpoint: str | None) -> dict[str, str]:
    """{"model": name, "checkpoint_sha256": hex} of the model ``medseg segment`` ran (no torch import)."""
    from medseg.checkpoints import CHECKPOINT_ENV, resolve_checkpoint, sha256_of
    from medseg.registry import DEFAULT_MODEL, MODELS

    if model and Path(model).is_file():  # a fine-tuned model.pt from `medseg train`
        return {"model": Path(model).name, "checkpoint_sha256": sha256_of(Path(model))}
    card = MODELS.get(model or DEFAULT_MODEL)
    if card is None:
        return {"model": str(model)}
    extra = {"decoder_sha256": card.decoder.sha256} if card.decoder else {}  # a card shipping its own decoder
    if not (checkpoint or os.environ.get(CHECKPOINT_ENV)) and card.checkpoint is not None:
        return {"model": card.name, "checkpoint_sha256": card.checkpoint.sha256, **extra}  # verified when loaded
    return {"model": card.name, "checkpoint_sha256": sha256_of(resolve_checkpoint(card, checkpoint)), **extra}


def write(args: argparse.Namespace, labels, geometry, tx=None, names: dict[int, str] | None = None) -> Path:
    """Write the labels of ``medseg segment`` as a DICOM SEG referencing the input series (staged into ``tx``);
    ``names`` (label -> name, e.g. of text prompts) override the prompt file's."""
    from medseg.io.dicom_seg import write_dicom_seg

    count = int(labels.max()) if labels.size else 0
    return write_dicom_seg(labels, args.input, args.output, {**object_names(args.prompts, count), **(names or {})},
                           model_info(args.model, args.checkpoint), geometry=geometry, tx=tx)
