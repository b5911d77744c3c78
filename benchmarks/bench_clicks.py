"""Milliseconds per click on encoded slices, litemedsam-interactive (decoder work only).

- 2D: one ``Predictor.predict`` with all clicks so far and the previous logits as mask prompt, on an
  encoded slice (the decode a correction costs in 2D);
- 3D: one ``VolumeSession.add_point`` correction (CVPR25 click at the deepest voxel of the largest error)
  on a spine MR vertebra (held-out data) after its first click, every slice it touches already encoded
  (``encodes`` is checked unchanged).

Medians over the clicks; prints a markdown table and writes it to benchmarks/results/interactive/speed.md.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_clicks.py
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from medseg.cpu import describe_machine
from medseg.data.loaders import load_labelled
from medseg.evaluate.protocols import cvpr25_click
from medseg.files import write_text
from medseg.predict.extent import deepest_pixel
from medseg.predict.predictor import load_predictor
from medseg.predict.segment import windowed
from medseg.predict.volume import VolumeSession

OUT = Path(__file__).resolve().parent / "results" / "interactive" / "speed.md"


def bench_2d(predictor, image: np.ndarray, truth: np.ndarray, clicks: int) -> list[float]:
    predictor.set_image(image)
    row, col = deepest_pixel(truth)
    pts, labs, prior, times = [[col, row]], [1], None, []
    for _ in range(clicks):
        start = time.perf_counter()
        pred = predictor.predict(points=np.array(pts, np.float32), point_labels=np.array(labs), mask_input=prior,
                                 correction=prior is not None)
        times.append(time.perf_counter() - start)
        prior = pred.low_res_logits[:1]
        click = cvpr25_click(pred.masks[0], truth)
        if click is None:
            break
        (x, y), positive = click
        pts.append([x, y])
        labs.append(int(positive))
    return times


def bench_3d(session: VolumeSession, case, label: int, clicks: int) -> tuple[list[float], int]:
    session.reset()  # the embedding cache is kept
    truth = case.labels == label
    (x, y, z), _ = cvpr25_click(np.zeros_like(truth), truth)
    obj = session.add_point(x, y, z, new_object=True)
    # encode every slice once, so the timed corrections are decoder work only
    for k in range(truth.shape[0]):
        session.cache.get(k)
    encodes, times = session.encodes, []
    for _ in range(clicks):
        click = cvpr25_click(session.object_mask(obj), truth)
        if click is None:
            break
        (x, y, z), positive = click
        start = time.perf_counter()
        session.add_point(x, y, z, positive=positive, obj=obj)
        times.append(time.perf_counter() - start)
    return times, session.encodes - encodes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="litemedsam-interactive")
    ap.add_argument("--clicks", type=int, default=10)
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    predictor = load_predictor(args.model)
    case = load_labelled("spine", ["mr_vert"])[0]
    data, _ = windowed(case.image, "auto")
    t2d = []
    for lab in (5, 6, 7):
        m = case.labels == lab
        z = int(np.argmax(m.reshape(len(m), -1).sum(1)))
        t2d += bench_2d(predictor, data[z], m[z], args.clicks)
    t3d, extra = [], 0
    session = VolumeSession(predictor)
    session.set_volume(case.image)
    for lab in (5, 6, 7):
        times, enc = bench_3d(session, case, lab, args.clicks)
        t3d += times
        extra += enc
    engine = getattr(predictor.engine, "name", type(predictor.engine).__name__)
    text = "\n".join([
        f"# ms per click on encoded slices ({args.model})", "",
        f"Machine: {describe_machine()}; engine {engine}. "
        "Written by `benchmarks/bench_clicks.py` (spine MR C5-C7, held-out data).", "",
        "| what | clicks | median ms | p90 ms |", "|---|---|---|---|",
        f"| 2D: one correction decode (click decoder: all clicks + previous logits) | {len(t2d)} | "
        f"{np.median(t2d) * 1e3:.1f} | "
        f"{np.percentile(t2d, 90) * 1e3:.1f} |",
        f"| 3D: one VolumeSession correction (the region under the click, followed through the volume) | "
        f"{len(t3d)} | "
        f"{np.median(t3d) * 1e3:.1f} | {np.percentile(t3d, 90) * 1e3:.1f} |", "",
        f"Slices encoded during the timed corrections: {extra} (decoder work only).", ""])
    print(text)
    write_text(args.out, text)


if __name__ == "__main__":
    main()
