"""``medseg segment SCAN -o LABELS --model RUN/model.pt`` without prompts: automatic SAM3D segmentation.

``cli/segment.py`` hands over here when no prompt is given and ``--model`` is a SAM3D model file
(recognised by its contents). ``--text NAME`` (repeatable) keeps only the named classes, one label each in
the order asked, names resolved against the model's class names (synonyms, laterality forms, typos).
Outputs, all or none (``medseg.files.Transaction``): the label map on the scan's exact geometry (or a
DICOM SEG of a DICOM series, with the class names as segment labels), a JSON sidecar ``LABELS`` with
``.json`` for its ending (class names and per-class volumes), and ``--report``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from medseg.errors import MedsegError

SIDE_ENDINGS = (".nii.gz", ".nii", ".nrrd", ".mha", ".npz", ".dcm")


def _resolve_texts(model, args: argparse.Namespace) -> list[tuple[str, list[int]]]:
    """``--text`` names resolved against the model's classes: [(name, label values)], empty without --text."""
    from medseg.text.automatic_route import AutomaticRoute

    texts = getattr(args, "text", None) or []
    if not texts:
        return []
    route = AutomaticRoute(model, name=f"SAM3D {args.model}")
    out = []
    for text in texts:
        if not isinstance(text, str) or not text.strip():
            raise MedsegError("empty text prompt: name one of the model's classes (medseg structures SCAN "
                              "--model RUN/model.pt lists them)")
        resolved = route.vocabulary.resolve(text)
        values = [v for key, side in resolved.parts for v in route.vocabulary.entry(key, side).values]
        out.append((resolved.name, values))
    return out


def _keep_named(labels, asked: list[tuple[str, list[int]]]):
    """The classes ``--text`` asked for, one label each in the order asked (1, 2, ...), names kept."""
    import numpy as np

    out = np.zeros_like(labels)
    names = {}
    for i, (name, values) in enumerate(asked, start=1):
        mask = np.isin(labels, values) & (out == 0)
        if not mask.any():
            raise MedsegError(f"text prompt {name!r}: the model found no {name} on this scan")
        out[mask] = i
        names[i] = name
    return out, names


def wanted(args: argparse.Namespace) -> bool:
    """True for a SAM3D model file without prompts; prompts given to a SAM3D model are refused."""
    from medseg.predict.automatic import is_sam3d_file

    if not is_sam3d_file(args.model):
        return False
    if args.box or args.point or args.negative_point or args.prompts:
        raise MedsegError(f"--model {args.model} is a SAM3D model: it segments its classes automatically; "
                          "drop the prompts (or use a promptable model)")
    return True


def sidecar_path(output: str) -> Path:
    """``labels.nii.gz`` -> ``labels.json`` (the class names and volumes beside the label map)."""
    path = Path(output).expanduser()
    name = path.name
    for end in SIDE_ENDINGS:
        if name.lower().endswith(end):
            return path.with_name(name[: -len(end)] + ".json")
    return path.with_name(name + ".json")


def run(args: argparse.Namespace) -> int:
    from medseg.cli import dicom_out
    from medseg.cli.outputs import check_outputs
    from medseg.files import Transaction, write_text
    from medseg.io import check_output_path, output_geometry, read_image, write_mask
    from medseg.predict.automatic import load_automatic, volumes_ml

    if args.overlay:
        raise MedsegError("--overlay draws prompts; a SAM3D run has none (open LABELS in a viewer)")
    sidecar = sidecar_path(args.output)
    report = getattr(args, "report", None)
    check_outputs({"--output": args.output, "sidecar": sidecar, "--report": report}, [args.input, args.model],
                  args.overwrite, {"--report": (".json",)})
    dicom = dicom_out.wanted(args)
    if dicom:
        dicom_out.check(args)
    else:
        check_output_path(args.output, args.input)
    model = load_automatic(args.model, args.engine)
    image = read_image(args.input, series=args.series)
    model.check(image)
    asked = _resolve_texts(model, args)  # every name checked before the network runs
    start = time.perf_counter()
    labels = model.segment(image, progress=True)
    class_names = model.class_names
    if asked:
        labels, class_names = _keep_named(labels, asked)
    seconds = time.perf_counter() - start
    volumes = volumes_ml(labels, image.geometry.spacing, class_names)
    from medseg.checkpoints import sha256_of

    info = {"model": Path(args.model).name, "checkpoint_sha256": sha256_of(Path(args.model))}
    summary = {"input": str(args.input), "output": str(args.output), "model": info,
               "encoder": model.encoder, "classes": {str(k): v for k, v in class_names.items()},
               "volumes_ml": volumes, "seconds": round(seconds, 2)}
    with Transaction() as tx:
        if dicom:
            from medseg.io.dicom_seg import write_dicom_seg

            present = {v: n for v, n in class_names.items() if volumes[n] > 0}
            path = write_dicom_seg(labels, args.input, args.output, present, info, geometry=image.geometry,
                                   semiautomatic=False, tx=tx)
        else:
            out_labels, geometry = output_geometry(image, labels, args.output)
            path = write_mask(out_labels, geometry, args.output, reference_path=args.input, tx=tx)
        write_text(sidecar, json.dumps(summary, indent=1), tx)
        if report:
            write_text(report, json.dumps(summary, indent=1), tx)
    width = max(len(n) for n in volumes)
    for name, ml in volumes.items():
        print(f"{name:<{width}}  {ml:10.2f} mL")
    print(f"labels: {path} ({len(class_names)} classes, {seconds:.1f} s); names and volumes: {sidecar}")
    return 0
