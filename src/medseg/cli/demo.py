"""`medseg demo`: segment a real brain structure of Colin27 from a box and show the result."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

NAME = "demo"
HELP = "Segment the left putamen of the Colin27 T1 scan from a box prompt; write mask and overlay."
STRUCTURE = "Putamen_L"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="out/demo",
                   help="folder for the mask and the overlay (default out/demo); the demo's own two files there "
                        "are replaced by a new run, and it says so")
    p.add_argument("--structure", default=STRUCTURE, help=f"AAL structure name (default {STRUCTURE})")


def run(args: argparse.Namespace) -> int:
    from medseg.build import build_model
    from medseg.data import sample
    from medseg.errors import MedsegError
    from medseg.files import Transaction
    from medseg.io import read_image, write_mask
    from medseg.predict.predictor import Predictor
    from medseg.predict.segment import ObjectPrompts, segment_2d, windowed
    from medseg.prompts import Box, box_from_mask
    from medseg.visual import overlay, radiological, save_png

    labels = sample.aal_labels()
    if args.structure not in labels:
        raise MedsegError(f"--structure {args.structure!r}: not an AAL structure; e.g. Hippocampus_L, Thalamus_R")
    scan_path = sample.path("colin27", "ch2.nii.gz")
    scan = read_image(scan_path)
    truth = read_image(sample.path("colin27", "aal.nii.gz")).array == labels[args.structure]
    z = int(np.argmax(truth.sum(axis=(1, 2))))  # the axial slice where the structure is largest
    tight = box_from_mask(truth[z])
    box = Box(tight.x0, tight.y0, tight.x1, tight.y1, z)
    print(f"scan: {scan_path} {scan.array.shape[::-1]} (x, y, z)")
    print(f"prompt: box {box.x0:g},{box.y0:g},{box.x1:g},{box.y1:g} on slice {z} (tight box of AAL {args.structure})")

    start = time.perf_counter()
    result = segment_2d(Predictor(build_model()), scan, [ObjectPrompts(box=box)])
    seconds = time.perf_counter() - start
    out = Path(args.out)
    targets = [out / f"colin27_{args.structure}.nii.gz", out / f"colin27_{args.structure}.png"]
    replaced = [t for t in targets if t.is_file()]
    data, _ = windowed(scan, result.window.name)
    picture = overlay(data[z], result.labels[z], boxes=[(box.x0, box.y0, box.x1, box.y1)])
    picture = radiological(picture, scan.geometry.direction)
    with Transaction() as tx:  # both files or neither
        mask_path = write_mask(result.labels, scan.geometry, targets[0], reference_path=scan_path, tx=tx)
        png = save_png(picture.resize((picture.width * 3, picture.height * 3)), targets[1], tx)
    pred = result.labels[z] > 0
    dice = 2 * (pred & truth[z]).sum() / max(pred.sum() + truth[z].sum(), 1)
    print(f"window: {result.window.name} ({result.window.reason}); model + segmentation {seconds:.1f} s")
    print(f"Dice against the AAL atlas on slice {z}: {dice:.3f}")
    print(f"mask:    {mask_path.resolve()}")
    print(f"overlay: {png.resolve()}")
    if replaced:
        print(f"note: replaced the previous demo output{'s' if len(replaced) > 1 else ''} in {out}")
    return 0
