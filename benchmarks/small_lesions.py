"""Clicks against a tight 3D box on smaller lesions: the five real tumours resampled to coarser pixels.

The lesions medseg can fetch are large in pixels (RIDER's lung tumour is ~100 px across, pycerr's 33-100 px).
Lesions in practice are often a few pixels to a few tens of pixels across. Here each tumour's volume is cropped to
its slices (8 around) and resampled in-plane by ``--scales`` (linear for the image, the label's linear resample
> 0.5; the spacing grows by 1 / scale and the origin moves to the first slice kept).

The model sees a slice resized so that its longer side is 256 pixels, so what makes a lesion small for it is its
size against the field of view, not its pixels. Resampling a cropped case shrinks the field of view with the lesion
(pycerr's cases are crops of 136-204 pixels: at 1/4 a lesion of 9 pixels still spans 60 model pixels). So
``--fov 512`` (the default) pads each slice back to a 512 x 512 matrix, as a CT's, with the volume's minimum (air):
at scale 1 each lesion has its true pixel size in a typical CT matrix, at 1/2 and 1/4 it is a smaller lesion in
the same field of view. ``--fov 0`` keeps the crops as they are (the table of 2026-12-05, stop 33). Padding with
air is itself unnatural for pycerr's crops: their tissue becomes a bright rectangle in the dark, a salient object
that a lone click's box proposals can take (pat_3 at scale 1: one click 0.06 padded, 0.55-0.71 cropped); RIDER's
slices, a whole chest in air, stay natural. Read the box columns, and RIDER's clicks.

Each scaled case then runs the CVPR25 3D protocol (first click at the deepest voxel, each later click at the deepest
voxel of the largest error, no box) and the tight 3D box protocol (``medseg.evaluate.protocols``). ``--no-zoom``
turns off the decoding of small objects from magnified crops (``medseg.predict.zoom``), for the before column.

Cases: RIDER lung CT (manual SEG, CC BY 4.0) and pycerr radiomics phantom pat_1-4 (CC BY-NC 3.0: evaluation only,
never trained on). Prints a markdown table and writes it with the raw numbers to --out.

    PYTHONPATH=src .venv/bin/python benchmarks/small_lesions.py [--scales 1,0.5,0.25] [--clicks 10] [--fov 512]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from medseg.cpu import describe_machine
from medseg.data.loaders import load_labelled
from medseg.evaluate.protocols import ProtocolConfig, run_case
from medseg.files import write_text
from medseg.io.image import Geometry, Image
from medseg.predict.predictor import load_predictor

OUT = Path(__file__).resolve().parent / "results" / "interactive" / "small_lesions"
CASES = (("rider_lung", "seg_manual"), ("radiomics_phantom", "pat_1"), ("radiomics_phantom", "pat_2"),
         ("radiomics_phantom", "pat_3"), ("radiomics_phantom", "pat_4"))
MARGIN = 8  # slices kept beyond the lesion's first and last


def scaled(image: Image, truth: np.ndarray, scale: float, fov: int = 0) -> tuple[Image, np.ndarray]:
    """The lesion's slices (MARGIN around), resampled in-plane by ``scale``: the spacing grown by 1 / scale, the origin
    moved to the first slice kept. With ``fov``, each slice is then padded (centred, with the volume's minimum: air
    in CT) to at least ``fov`` x ``fov`` pixels, the origin moved back by the padding."""
    from scipy import ndimage

    zs = np.flatnonzero(truth.any(axis=(1, 2)))
    lo, hi = max(int(zs[0]) - MARGIN, 0), min(int(zs[-1]) + MARGIN + 1, truth.shape[0])
    array = image.array[lo:hi].astype(np.float32)
    mask = truth[lo:hi].astype(np.float32)
    if scale != 1.0:
        array = ndimage.zoom(array, (1, scale, scale), order=1)
        mask = ndimage.zoom(mask, (1, scale, scale), order=1)
    g = image.geometry
    spacing = (g.spacing[0] / scale, g.spacing[1] / scale, g.spacing[2])
    axes = np.reshape(g.direction, (3, 3))
    origin = np.asarray(g.origin, float) + axes[:, 2] * lo * g.spacing[2]
    (h, w), before = array.shape[1:], (0, 0)
    if fov and max(h, w) < fov:
        before = ((max(fov, h) - h) // 2, (max(fov, w) - w) // 2)
        pad = ((0, 0), (before[0], max(fov, h) - h - before[0]), (before[1], max(fov, w) - w - before[1]))
        array = np.pad(array, pad, constant_values=float(image.array.min()))
        mask = np.pad(mask, pad)
        origin = origin - axes[:, 0] * before[1] * spacing[0] - axes[:, 1] * before[0] * spacing[1]
    return Image(array, Geometry(spacing, tuple(float(v) for v in origin), g.direction)), mask > 0.5


def run(predictor, scales: list[float], clicks: int, fov: int = 0) -> list[dict]:
    rows = []
    jobs = [(ds, case, s) for ds, case in CASES for s in scales]
    for ds, case, scale in tqdm(jobs, unit="case", desc="small lesions"):
        source = load_labelled(ds, [case])[0]
        image, truth = scaled(source.image, source.labels == 1, scale, fov)
        labels = truth.astype(np.uint8)
        rng = np.random.default_rng(0)
        out = run_case("interactive", predictor, image, labels, [1],
                       ProtocolConfig(protocol="interactive", clicks=clicks, with_box=False), rng)
        box = run_case("box3d", predictor, image, labels, [1], ProtocolConfig(protocol="box3d"), rng)
        cols = np.flatnonzero(truth.any(axis=(0, 1)))
        rows.append({"case": f"{ds}/{case}", "scale": scale, "width_px": int(cols[-1] - cols[0] + 1),
                     "voxels": int(truth.sum()), "dice": [round(s["dice"], 4) for s in out.rows[0]["steps"]],
                     "box3d_dice": round(float(box.rows[0]["dice"]), 4)})
    return rows


def report(rows: list[dict], clicks: int) -> str:
    marks = [k for k in (1, 5, 10) if k <= clicks]
    head = "| case | scale | width (px) | voxels | " + " | ".join(f"Dice {k}" for k in marks) + " | tight 3D box |"
    lines = [head, "|" + "---|" * (5 + len(marks))]
    for r in rows:
        vals = " | ".join(f"{r['dice'][k - 1]:.3f}" for k in marks)
        size = f"{r['width_px']} | {r['voxels']}"
        lines.append(f"| {r['case']} | {r['scale']:g} | {size} | {vals} | {r['box3d_dice']:.3f} |")
    for scale in sorted({r["scale"] for r in rows}, reverse=True):
        sub = [r for r in rows if r["scale"] == scale]
        vals = " | ".join(f"{np.mean([r['dice'][k - 1] for r in sub]):.3f}" for k in marks)
        box = np.mean([r["box3d_dice"] for r in sub])
        lines.append(f"| **mean, scale {scale:g}** | | | | {vals} | {box:.3f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scales", default="1,0.5,0.25", help="in-plane resampling factors")
    ap.add_argument("--clicks", type=int, default=10)
    ap.add_argument("--model", default="litemedsam-interactive")
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--fov", type=int, default=512, help="pad slices to this many pixels a side (0: no padding)")
    ap.add_argument("--no-zoom", action="store_true", help="every decode on the whole slice (medseg.predict.zoom off)")
    args = ap.parse_args()
    if args.no_zoom:
        from medseg.predict import zoom

        zoom.ON = False
    predictor = load_predictor(args.model)
    rows = run(predictor, [float(v) for v in args.scales.split(",")], args.clicks, args.fov)
    table = report(rows, args.clicks)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "results.json", json.dumps(rows, indent=1) + "\n")
    setting = f"{args.model}, {args.clicks} clicks, field of view {args.fov or 'as cropped'}" + (
        ", zoom off" if args.no_zoom else "")
    write_text(out / "README.md", f"# Clicks vs a tight 3D box on smaller lesions\n\nWritten by "
               f"`benchmarks/small_lesions.py` ({setting}). Machine: {describe_machine()}."
               f"\n\n{table}\n")
    print(table)


if __name__ == "__main__":
    main()
