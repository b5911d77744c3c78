"""Text prompts on real data with independent labels: the warped atlas alone vs the promptable model's mask.

Cases (each structure asked by name; the truth is found by resolving the same name in the truth's atlas):

- Colin27 T1 (with skull, ``colin27/ch2``) with the FSL MNI152 template + Harvard-Oxford and + Neuromorphometrics,
  scored against Colin27's own AAL labels;
- the reverse: the FSL MNI152 template as the scan, Colin27 (skull-stripped) + AAL as the template, scored
  against Harvard-Oxford drawn on MNI152;
- "brain" on the ITK T1 (2x2x3 mm, with skull) against its skull-strip mask.

Per structure: Dice of the warped atlas label (``atlas``), of the label moved by the scan's intensities
(``intensity``, ``medseg.text.intensity``: the route's default but for "brain"), of LiteMedSAM prompted per axial
slice with the prior's box (``box``) and with box + the prior as mask prompt (``box+mask``); time to the first name (the
registration included) and for later names. Writes benchmarks/results/text/text_dice.{md,json}.

    nice -n 5 .venv/bin/python scripts/eval_text.py      # ~15 min on 2 shared cores
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from medseg.cpu import describe_machine
from medseg.data import sample
from medseg.data.loaders import load_labelled
from medseg.io import read_image
from medseg.predict.predictor import load_predictor
from medseg.predict.volume import VolumeSession
from medseg.text.atlas_route import AtlasRoute, load_pack
from medseg.text.prompting import refine_slices
from medseg.text.vocabulary import Vocabulary

OUT = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "text"
DEEP = [f"{side} {s}" for s in ("caudate", "putamen", "pallidum", "thalamus", "hippocampus", "amygdala")
        for side in ("left", "right")]
CORTICAL = [f"{side} {s}" for s in ("precentral gyrus", "postcentral gyrus", "lingual gyrus", "angular gyrus")
            for side in ("left", "right")]
MODES = ("atlas", "intensity", "box", "box+mask")


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum()) + int(b.sum())
    return float(2 * np.logical_and(a, b).sum() / total) if total else 1.0


def truth_mask(labels: np.ndarray, vocab: Vocabulary, name: str) -> np.ndarray | None:
    resolved = vocab.resolve(name)
    values = [v for key, side in resolved.parts for v in vocab.entry(key, side).values]
    mask = np.isin(labels, values)
    return mask if mask.any() else None


def run_case(title: str, image, truth_labels, truth_names, pack: str, names: list[str], predictor,
             margin: float) -> list[dict]:
    route = AtlasRoute(load_pack(pack), use_cache=False)
    truth_vocab = Vocabulary([truth_names])
    session = VolumeSession(predictor)
    session.set_volume(image)
    rows = []
    for k, name in enumerate(names):
        truth = truth_mask(truth_labels, truth_vocab, name)
        if truth is None:
            continue
        start = time.perf_counter()
        resolved = route.vocabulary.resolve(name)
        prior = route.prior(image, resolved)
        t_prior = time.perf_counter() - start
        row = {"case": title, "pack": pack, "name": name, "understood": resolved.name, "atlas": dice(prior, truth),
               "prior_s": t_prior, "first": k == 0}
        for mode in MODES[1:]:
            t0 = time.perf_counter()
            slices = refine_slices(session._decode, prior, mode, margin, image=image.array)
            mask = np.zeros_like(prior)
            for z, res in slices.items():
                mask[z] = res.mask
            row[mode] = dice(mask, truth)
            row[f"{mode}_s"] = time.perf_counter() - t0
        rows.append(row)
        print(f"{title:28s} {name:24s} atlas {row['atlas']:.3f} intensity {row['intensity']:.3f} "
              f"box {row['box']:.3f} box+mask {row['box+mask']:.3f}  prior {t_prior:5.1f} s  "
              f"intensity {row['intensity_s']:4.2f} s  box {row['box_s']:5.1f} s", flush=True)
    return rows


def table(rows: list[dict]) -> list[str]:
    lines = ["| case | structure | atlas alone | intensity | box | box + mask prompt |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['case']} | {r['name']} | {r['atlas']:.3f} | {r['intensity']:.3f} | {r['box']:.3f} | "
                     f"{r['box+mask']:.3f} |")
    return lines


def summary(rows: list[dict], names: list[str], what: str) -> list[str]:
    picked = [r for r in rows if r["name"] in names]
    if not picked:
        return []
    out = []
    for case in dict.fromkeys(r["case"] for r in picked):
        sub = [r for r in picked if r["case"] == case]
        means = " / ".join(f"{statistics.mean(r[m] for r in sub):.3f}" for m in MODES)
        out.append(f"| {what} | {case} | {len(sub)} | {means} |")
    means = " / ".join(f"{statistics.mean(r[m] for r in picked):.3f}" for m in MODES)
    out.append(f"| {what} | **all** | {len(picked)} | **{means}** |")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--margin", type=float, default=3.0, help="box widening, pixels")
    parser.add_argument("--quick", action="store_true", help="deep structures on Colin27 + Harvard-Oxford only")
    args = parser.parse_args()
    predictor = load_predictor()
    colin = load_labelled("colin27")[0]
    atlases = load_labelled("atlases", ["harvard_oxford"])[0]
    rows = []
    with tempfile.TemporaryDirectory():
        rows += run_case("Colin27 T1 <- MNI152+HO", colin.image, colin.labels, colin.names, "harvard_oxford",
                         DEEP + CORTICAL, predictor, args.margin)
        if not args.quick:
            rows += run_case("Colin27 T1 <- MNI152+NMM", colin.image, colin.labels, colin.names,
                             "neuromorphometrics", DEEP + CORTICAL, predictor, args.margin)
            rows += run_case("MNI152 <- Colin27+AAL", atlases.image, atlases.labels, atlases.names, "colin27_aal",
                             DEEP + CORTICAL, predictor, args.margin)
            itk = read_image(sample.path("itk_t1", "KmeansTest_T1UCharRaw.nii.gz"))
            strip = read_image(sample.path("itk_t1", "KmeansTest_T1RawSkullStrip.nii.gz")).array > 0
            rows += run_case("ITK T1 (2x2x3 mm)", itk, strip.astype(np.uint16), {1: "Brain"}, "harvard_oxford",
                             ["brain"], predictor, args.margin)
    lines = ["# Text prompts: warped atlas alone vs the intensity step and LiteMedSAM prompted from it (Dice)", "",
             f"Machine: {describe_machine()}. "
             f"Box margin {args.margin:g} px, axial slices. `scripts/eval_text.py`.", "",
             "| group | case | n | mean Dice atlas / intensity / box / box+mask |", "|---|---|---|---|",
             *summary(rows, DEEP, "deep grey (12)"), *summary(rows, CORTICAL, "cortical (8)"),
             *summary(rows, ["brain"], "brain"), "", "## Timing", "",
             "| case | first name (registration + prior), s | later names (prior), median s | "
             "intensity step, median s | box refine, median s |", "|---|---|---|---|---|"]
    for case in dict.fromkeys(r["case"] for r in rows):
        sub = [r for r in rows if r["case"] == case]
        later = [r["prior_s"] for r in sub if not r["first"]] or [float("nan")]
        lines.append(f"| {case} | {sub[0]['prior_s']:.1f} | {statistics.median(later):.2f} | "
                     f"{statistics.median(r['intensity_s'] for r in sub):.2f} | "
                     f"{statistics.median(r['box_s'] for r in sub):.1f} |")
    lines += ["", "## Per structure", "", *table(rows), ""]
    OUT.mkdir(parents=True, exist_ok=True)
    from medseg.files import write_text

    write_text(OUT / "text_dice.md", "\n".join(lines))
    write_text(OUT / "text_dice.json", json.dumps(rows, indent=1) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
