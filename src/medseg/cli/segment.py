"""`medseg segment`: prompts in, a mask file with the input's geometry out."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from medseg.cli import prompt_args
from medseg.errors import MedsegError
from medseg.preprocess.window import WINDOW_NAMES

NAME = "segment"
HELP = "Segment structures of an image or volume from box / point prompts."


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="image file (NIfTI, NRRD, MHA, DICOM file or folder, PNG/JPEG/TIFF, npz)")
    p.add_argument("-o", "--output", required=True, help="mask file (.nii.gz, .nrrd, .mha, .png, .npz)")
    p.add_argument("--model", default=None, help="model name (see `medseg info`)")
    p.add_argument("--checkpoint", default=None, help="checkpoint file (overrides $MEDSEG_CHECKPOINT)")
    p.add_argument("--box", help="X0,Y0,X1,Y1 inclusive voxel corners (x = column, y = row)")
    p.add_argument("--slice", type=int, default=None, help="slice index z of the 2D prompt in a volume")
    p.add_argument("--point", action="append", default=[], metavar="X,Y[,Z]", help="positive click")
    p.add_argument("--negative-point", action="append", default=[], metavar="X,Y[,Z]", help="negative click")
    p.add_argument("--prompts", help="JSON file of objects and their interactions")
    p.add_argument("--window", default="auto", choices=WINDOW_NAMES, help="intensity window (default auto)")
    p.add_argument("--overlay", help="also write a PNG of the prompted slice with the mask drawn on it")
    p.add_argument("--engine", default="auto", choices=("auto", "eager", "onnx", "openvino"),
                   help="how the network runs (default auto: the fastest installed runtime)")


def _check_paths(args: argparse.Namespace) -> None:
    from medseg.io.write import WRITE_ENDINGS, _refuse_input
    from medseg.io._common import ending

    out = Path(args.output)
    if ending(out) not in WRITE_ENDINGS:
        raise MedsegError(f"{out}: unsupported output ending; use one of {', '.join(WRITE_ENDINGS)}")
    _refuse_input(out, args.input)
    if args.overlay and Path(args.overlay).resolve() in (Path(args.input).resolve(), out.resolve()):
        raise MedsegError(f"--overlay {args.overlay} would overwrite the input or the mask")


def run(args: argparse.Namespace) -> int:
    from medseg.build import build_model
    from medseg.io import read_image, write_mask
    from medseg.predict.predictor import Predictor
    from medseg.predict.segment import segment_2d

    _check_paths(args)
    objects = prompt_args.from_file(args.prompts) if args.prompts else []
    flag_object = prompt_args.from_flags(args.box, args.slice, args.point, args.negative_point)
    if flag_object:
        objects.append(flag_object)
    if not objects:
        raise MedsegError("no prompt given: use --box, --point or --prompts")
    image = read_image(args.input)
    start = time.perf_counter()
    predictor = Predictor(build_model(args.model, args.checkpoint), engine=args.engine)
    result = segment_2d(predictor, image, objects, args.window)
    path = write_mask(result.labels, image.geometry, args.output, reference_path=args.input)
    print(f"window: {result.window.name} ({result.window.reason})")
    for label, z in result.slices.items():
        where = f" on slice {z}" if image.is_volume else ""
        voxels = int((result.labels == label).sum())
        print(f"object {label}{where}: {voxels} voxels, predicted IoU {result.iou[label]:.2f}")
    print(f"mask: {path} ({time.perf_counter() - start:.1f} s)")
    if args.overlay:
        print(f"overlay: {_write_overlay(image, result, objects, args.overlay)}")
    return 0


def _write_overlay(image, result, objects, target: str) -> Path:
    from medseg.predict.segment import windowed
    from medseg.visual import overlay, save_png

    data, _ = windowed(image, result.window.name)
    z = next(iter(result.slices.values()))
    slice_2d = data[z] if image.is_volume else data
    labels = result.labels[z] if image.is_volume else result.labels
    boxes = [(o.box.x0, o.box.y0, o.box.x1, o.box.y1) for o in objects if o.box and (o.box.z or 0) == z]
    points = [(p.x, p.y, p.positive) for o in objects for p in o.points if (p.z or 0) == z]
    return save_png(overlay(slice_2d, labels, boxes, points), target)
