"""`medseg segment`: prompts in, a mask file with the input's geometry out.

Outputs (the mask and ``--overlay``) appear together or not at all (``medseg.files.Transaction``):
if the overlay cannot be written, no mask is left either. They are checked before any work
(``medseg.cli.outputs``): never an input, an existing file only with ``--overwrite``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from medseg.cli import dicom_out, prompt_args, text_names
from medseg.engine import ENGINE_NAMES
from medseg.errors import MedsegError
from medseg.preprocess.window import WINDOW_NAMES
from medseg.validate import option, whole

NAME = "segment"
HELP = "Segment structures of an image or volume from box / point prompts or a structure's name (--text)."


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="image file (NIfTI, NRRD, MHA, DICOM file or folder, PNG/JPEG/TIFF, npz)")
    p.add_argument("-o", "--output", required=True,
                   help="mask file (.nii.gz, .nrrd, .mha, .png, .npz; .dcm: a DICOM SEG of a DICOM series input)")
    p.add_argument("--model", default=None,
                   help="model name (see `medseg info`; default litemedsam; litemedsam-interactive: the "
                        "click-trained decoder), fine-tuned model.pt, or a SAM3D model.pt (no prompts: "
                        "segments its classes automatically, docs/sam3d.md)")
    p.add_argument("--checkpoint", default=None, help="checkpoint file (overrides $MEDSEG_CHECKPOINT)")
    p.add_argument("--box", action="append", default=[], metavar="X0,Y0,X1,Y1 | X0,Y0,Z0,X1,Y1,Z1",
                   help="2D box (with --slice) or 3D box, inclusive voxel corners (x = column, y = row, "
                        "z = slice); repeat for more 3D objects")
    p.add_argument("--slice", type=whole("--slice", 0), default=None, help="slice index z of the 2D prompt in a volume")
    p.add_argument("--point", action="append", default=[], metavar="X,Y[,Z]", help="positive click")
    p.add_argument("--negative-point", action="append", default=[], metavar="X,Y[,Z]", help="negative click")
    p.add_argument("--prompts", help="JSON file of objects and their interactions")
    p.add_argument("--text", action="append", default=[], metavar="NAME",
                   help="a structure's name, e.g. 'left hippocampus' (repeat for more; one label each; see "
                        "`medseg structures SCAN`); the names go to MASK's .labels.json beside it; with a SAM3D "
                        "--model: its named classes only")
    p.add_argument("--text-refine", default=None, choices=("atlas", "intensity", "box", "box+mask"),
                   help="text objects: the warped atlas label itself, moved by the scan's intensities, or "
                        "LiteMedSAM prompted per slice with its box (+ the label as mask prompt); default: the "
                        "measured best (intensity; box+mask for 'brain')")
    p.add_argument("--no-click-atlas", action="store_true",
                   help="a first click on a deep grey structure of a brain MR is answered by the model alone, not "
                        "by the atlas route's structure (docs/interactive.md)")
    p.add_argument("--no-refine", action="store_true",
                   help="3D: a lone click's, a 3D box's or a propagated 2D box's object keeps the model's border, not "
                        "drawn again by the scan's edges (docs/3d.md)")
    p.add_argument("--no-correction-net", action="store_true",
                   help="3D: a negative click the correction rules refuse is answered by their intensity fallback, "
                        "not by medseg's 3D correction network (docs/interactive.md)")
    p.add_argument("--planes", type=int, default=1, choices=(1, 3),
                   help="3: on a near-isotropic volume each new object (a 3D box, a propagated 2D box, a click's "
                        "box) is segmented along all three axes and the voxels two of them hold are kept; correction "
                        "clicks are applied along all three too; about 3x the time (docs/3d.md)")
    p.add_argument("--propagate", action="store_true",
                   help="propagate the 2D box (or point) on --slice up and down until the structure ends")
    p.add_argument("--propagation", default="default", choices=("default", "baseline"),
                   help="slice-to-slice rule for 3D prompts (baseline: CVPR24 MedSAM-on-laptop)")
    p.add_argument("--embedding-budget", type=option("--embedding-budget", positive=True, maximum=2**30, example=1024),
                   default=1024, metavar="MIB",
                   help="memory for cached slice embeddings, MiB (4 MiB per slice; default 1024)")
    p.add_argument("--window", default="auto", choices=WINDOW_NAMES, help="intensity window (default auto)")
    p.add_argument("--overlay", help="also write a PNG (ending .png) of the prompted slice with the mask drawn on it")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files (refused without it)")
    p.add_argument("--series", default=None, metavar="UID",
                   help="Series Instance UID to read from a DICOM folder holding several series")
    p.add_argument("--format", choices=("auto", "dicom-seg"), default="auto",
                   help="output format: by the output's ending (default; .dcm is a DICOM SEG), or dicom-seg")
    p.add_argument("--engine", default="auto", choices=ENGINE_NAMES,
                   help="how the network runs (default auto: the fastest installed runtime)")
    p.add_argument("--report", default=None, metavar="JSON",
                   help="SAM3D models: also write the class names and per-class volumes (mL) here")


def _check_paths(args: argparse.Namespace) -> None:
    from medseg.cli.outputs import check_outputs
    from medseg.io import check_output_path

    check_outputs({"--output": args.output, "--overlay": args.overlay, "--text": text_names.sidecar(args)},
                  [args.input, args.prompts, args.checkpoint], args.overwrite, {"--overlay": (".png",)})
    if dicom_out.wanted(args):
        dicom_out.check(args)
    else:
        check_output_path(args.output, args.input)


def default_model(objects: list) -> str | None:
    """``medseg.registry.CLICK_MODEL`` when any object has clicks (what measures best on held-out clicks,
    benchmarks/results/interactive), else the default."""
    from medseg.registry import CLICK_MODEL

    return CLICK_MODEL if any(o.points for o in objects) else None


def run(args: argparse.Namespace) -> int:
    from medseg.cli import segment_auto

    if segment_auto.wanted(args):  # a SAM3D model file and no prompt: automatic segmentation
        return segment_auto.run(args)
    if args.report:
        raise MedsegError("--report lists the classes of a SAM3D model; --model is not one")
    from medseg.files import Transaction
    from medseg.io import output_geometry, read_image, write_mask
    from medseg.predict.predictor import load_predictor
    from medseg.predict.segment import segment_2d, validate_2d

    _check_paths(args)
    objects = prompt_args.from_file(args.prompts) if args.prompts else []
    objects += prompt_args.objects_from_flags(args.box, args.slice, args.point, args.negative_point, args.propagate)
    objects += text_names.objects(args.text)
    if not objects:
        raise MedsegError("no prompt given: use --box, --point, --text or --prompts")
    image = read_image(args.input, series=args.series)
    for key in sorted(k for k in image.meta if k.endswith("_note")):
        print(f"note: {image.meta[key]}")
    volume = any(o.is_3d for o in objects)
    if volume:
        from medseg.predict.segment_volume import validate_volume

        validate_volume(image, objects)
    else:
        validate_2d(image, objects)
    start = time.perf_counter()
    # runs without torch when the ONNX graphs are cached (load_predictor)
    args.model = args.model or default_model(objects)  # the DICOM SEG names the model that ran
    predictor = load_predictor(args.model, args.checkpoint, args.engine)
    encodes, names = None, {}
    if volume:
        from medseg.predict.segment_volume import segment_volume
        from medseg.predict.volume import VolumeSession

        session = VolumeSession(predictor, args.propagation, args.embedding_budget, progress=True)
        session.text_refine = args.text_refine
        session.click_atlas = not args.no_click_atlas
        session.refine = not args.no_refine
        if args.no_correction_net:
            session.correction_net = None
        session.planes = args.planes
        result = segment_volume(session, image, objects, args.window)
        for note in session.messages:
            print(f"note: {note}")
        encodes = session.encodes
        names = text_names.names(session, objects)
    else:
        result = segment_2d(predictor, image, objects, args.window)
    with Transaction() as tx:  # the mask and the overlay appear together or not at all
        if dicom_out.wanted(args):
            path = dicom_out.write(args, result.labels, image.geometry, tx, names)
        else:
            labels, geometry = output_geometry(image, result.labels, args.output)
            path = write_mask(labels, geometry, args.output, reference_path=args.input, tx=tx)
        sidecar = text_names.write(args, names, tx)
        overlay = _write_overlay(image, result, objects, args.overlay, tx) if args.overlay else None
    print(f"window: {result.window.name} ({result.window.reason})")
    for label, z in result.slices.items():
        print(_describe(result.labels == label, label, z, result.iou[label], image.is_volume))
    if encodes is not None:
        print(f"slices encoded: {encodes} ({args.propagation} propagation)")
    print(f"mask: {path} ({time.perf_counter() - start:.1f} s)")
    if overlay:
        print(f"overlay: {overlay}")
    if sidecar:
        print(f"names: {sidecar}")
    return 0


def _describe(mask, label: int, z: int, iou: float, is_volume: bool) -> str:
    voxels = int(mask.sum())
    if not is_volume:
        return f"object {label}: {voxels} voxels, predicted IoU {iou:.2f}"
    zs = mask.any(axis=(1, 2)).nonzero()[0]
    span = f"slices {zs.min()}..{zs.max()}" if len(zs) > 1 else f"slice {zs[0] if len(zs) else z}"
    quality = f", predicted IoU {iou:.2f}" if iou == iou else ""  # NaN: no model mask (a text object's atlas label)
    return f"object {label} on {span} (prompt on slice {z}): {voxels} voxels{quality}"


def _write_overlay(image, result, objects, target: str, tx) -> Path:
    from medseg.predict.segment import windowed
    from medseg.visual import overlay, radiological, save_png

    data, _ = windowed(image, result.window.name)
    z = next(iter(result.slices.values()))
    slice_2d = data[z] if image.is_volume else data
    labels = result.labels[z] if image.is_volume else result.labels
    boxes = [(o.box.x0, o.box.y0, o.box.x1, o.box.y1) for o in objects if o.box and (o.box.z or 0) == z]
    points = [(p.x, p.y, p.positive) for o in objects for p in o.points if (p.z or 0) == z]
    picture = overlay(slice_2d, labels, boxes, points)
    if image.is_volume:
        picture = radiological(picture, image.geometry.direction)
    return save_png(picture, target, tx)
