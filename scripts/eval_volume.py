"""3D Dice of medseg's volume propagation (baseline vs default) on real labelled volumes.

Each structure is asked for from its ground truth (a tight 3D box, one click at its deepest voxel, or a
tight 2D box on its largest slice, ``--prompts``) and segmented once with the CVPR24 baseline rule and
once with medseg's default rule; all runs share one embedding cache per volume, so every slice is encoded
at most once per volume. Prints a markdown table and writes it to benchmarks/results/volume_dice.md.

    .venv/bin/python scripts/eval_volume.py --mni-slab 40 --prompts box3d point box2d  # the committed table
    .venv/bin/python scripts/eval_volume.py --only colin27 --structures Hippocampus_L Caudate_R
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from medseg.build import build_model
from medseg.data import sample
from medseg.io import read_image
from medseg.predict.propagate import Propagation
from medseg.predict.volume import VolumeSession

AAL = [f"{s}_{side}" for s in ("Hippocampus", "Amygdala", "Caudate", "Putamen", "Pallidum", "Thalamus")
       for side in "LR"]
OUT = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "volume_dice.md"
# extra rules for --variants (exploration; the table always has baseline and default)
VARIANTS = {
    "previous-default": Propagation(consistency=True),  # widened box in the 3D box + logits + overlap: 0.404
    "widen15-in-box": Propagation(widen=15.0, mask_prompt=False),  # 0.531 with keep_connected off
}


@dataclass
class Row:
    volume: str
    structure: str
    prompt: str
    slices: int
    new_encodes: int
    encode_s: float
    dice: dict[str, float]
    decode_s: dict[str, float]


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = a.sum() + b.sum()
    return float(2 * np.logical_and(a, b).sum() / total) if total else 1.0


def box_of(gt: np.ndarray) -> tuple[int, ...]:
    """Tight 3D box (x0, y0, z0, x1, y1, z1) of a (z, y, x) mask."""
    zs, ys, xs = np.nonzero(gt)
    return int(xs.min()), int(ys.min()), int(zs.min()), int(xs.max()), int(ys.max()), int(zs.max())


def deepest_voxel(gt: np.ndarray) -> tuple[int, int, int]:
    """(x, y, z) of the voxel farthest from the structure's surface: where a user would click."""
    depth = ndimage.distance_transform_edt(np.pad(gt, 1))[1:-1, 1:-1, 1:-1]
    z, y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return int(x), int(y), int(z)


def box2d_of(gt: np.ndarray) -> tuple[int, tuple[int, int, int, int]]:
    """(z, tight 2D box) on the slice where the structure is largest."""
    z = int(np.argmax(gt.sum(axis=(1, 2))))
    ys, xs = np.nonzero(gt[z])
    return z, (int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max()))


def add(session: VolumeSession, prompt: str, gt: np.ndarray, rule) -> int:
    """Prompt the session for one structure: a tight 3D box, one click at the deepest voxel, or a
    tight 2D box on the largest slice propagated."""
    if prompt == "box3d":
        return session.add_box3d(*box_of(gt), propagation=rule)
    if prompt == "point":
        return session.add_point(*deepest_voxel(gt), new_object=True, propagation=rule)
    z, box = box2d_of(gt)
    return session.add_box(z, box, propagate=True, propagation=rule)


def run_structure(session: VolumeSession, volume: str, name: str, gt: np.ndarray,
                  rules: dict[str, str | Propagation], prompt: str = "box3d") -> Row:
    box = box_of(gt)
    enc0, enc_s0 = session.encodes, session.cache.encode_seconds
    scores, seconds = {}, {}
    for rule_name, rule in rules.items():
        session.reset()
        session.refine = rule_name != "unrefined"  # the default rule, the objects' borders the model's
        start, enc_s = time.perf_counter(), session.cache.encode_seconds
        label = add(session, prompt, gt, rule)
        seconds[rule_name] = time.perf_counter() - start - (session.cache.encode_seconds - enc_s)
        scores[rule_name] = dice(session.object_mask(label), gt)
    row = Row(volume, name, prompt, box[5] - box[2] + 1, session.encodes - enc0, session.cache.encode_seconds - enc_s0,
              scores, seconds)
    print(f"  {name} ({prompt}): " + ", ".join(f"{k} {v:.3f}" for k, v in scores.items())
          + f" | {row.slices} slices, {row.new_encodes} new encodes", flush=True)
    return row


def cases(only: list[str] | None, structures: list[str] | None, slab: int):
    """(volume name, image path, [(structure, gt mask)]) for each volume."""
    if not only or "colin27" in only:
        aal = read_image(sample.path("colin27", "aal.nii.gz")).array
        ids = sample.aal_labels()
        names = structures or AAL
        yield "colin27", sample.path("colin27", "ch2.nii.gz"), [(n, aal == ids[n]) for n in names]
    for vol, img, mask in (("mni152", ("mni152", "t1.nii.gz"), ("mni152", "brain_mask.nii.gz")),
                           ("itk_t1", ("itk_t1", "KmeansTest_T1UCharRaw.nii.gz"),
                            ("itk_t1", "KmeansTest_T1RawSkullStrip.nii.gz"))):
        if only and vol not in only:
            continue
        if not sample.is_fetched(vol):
            print(f"{vol}: not fetched (run `medseg fetch-data`); skipped")
            continue
        gt = read_image(sample.path(*mask)).array > 0
        name = "brain"
        if slab and vol == "mni152":
            zs = np.nonzero(gt.any(axis=(1, 2)))[0]
            mid = (zs.min() + zs.max()) // 2
            keep = np.zeros(gt.shape[0], bool)
            keep[mid - slab // 2: mid - slab // 2 + slab] = True
            gt = gt & keep[:, None, None]
            name = f"brain (central {slab} slices)"
        yield vol, sample.path(*img), [(name, gt)]


def _fmt(values: dict[str, float], key: str, spec: str) -> str:
    return format(values[key], spec) if key in values else ""


def table(rows: list[Row], rules: list[str], per_volume: dict[str, float]) -> str:
    head = ["volume", "structure", "prompt", "slices", "encodes", "encode s"]
    head += [f"{r} Dice" for r in rules] + [f"{r} decode s" for r in rules]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r.volume, r.structure, r.prompt, str(r.slices), str(r.new_encodes), f"{r.encode_s:.1f}"]
        cells += [_fmt(r.dice, k, ".3f") for k in rules] + [_fmt(r.decode_s, k, ".1f") for k in rules]
        lines.append("| " + " | ".join(cells) + " |")
    for vol, prompt in dict.fromkeys((r.volume, r.prompt) for r in rows):
        sub = [r for r in rows if r.volume == vol and r.prompt == prompt]
        cells = [vol, f"**mean of {len(sub)}**", prompt, str(sum(r.slices for r in sub)),
                 str(sum(r.new_encodes for r in sub)), f"{sum(r.encode_s for r in sub):.1f}"]
        have = [k for k in rules if all(k in r.dice for r in sub)]
        cells += [f"**{np.mean([r.dice[k] for r in sub]):.3f}**" if k in have else "" for k in rules]
        cells += [f"{sum(r.decode_s[k] for r in sub):.1f}" if k in have else "" for k in rules]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Seconds per volume (all structures: encodes + every rule): "
                 + ", ".join(f"{v} {s:.0f} s" for v, s in per_volume.items()) + ". "
                 "Slices encoded per prompt: a 3D box encodes exactly the slices of its z-range (`slices`), "
                 "each once, whatever the rule; `encodes` counts the ones not already cached by an earlier "
                 "structure of the same volume.")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", help="volumes: colin27 mni152 itk_t1")
    ap.add_argument("--structures", nargs="*", help="AAL names (default: 12 subcortical structures)")
    ap.add_argument("--mni-slab", type=int, default=0, help="evaluate the MNI152 brain on its central N slices")
    ap.add_argument("--variants", action="store_true", help="also run the exploration rules in VARIANTS")
    ap.add_argument("--prompts", nargs="*", default=["box3d"], choices=("box3d", "point", "box2d"),
                    help="how each structure is asked for (default: box3d)")
    ap.add_argument("--unrefined", action="store_true",
                    help="also the default rule with the objects' borders the model's (medseg.predict.refine off)")
    ap.add_argument("--no-write", action="store_true", help="print only")
    ap.add_argument("--out", type=Path, default=OUT, help="the table (default: benchmarks/results/volume_dice.md)")
    args = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    rules: dict[str, str | Propagation] = {"baseline": "baseline", "default": "default"}
    if args.variants:
        rules.update(VARIANTS)
    if args.unrefined:
        rules["unrefined"] = "default"
    session = VolumeSession(build_model())
    rows, per_volume = [], {}
    for vol, path, structures in cases(args.only, args.structures, args.mni_slab):
        start = time.perf_counter()
        choice = session.set_volume(read_image(path))
        print(f"{vol}: {path.name}, window {choice.name}", flush=True)
        rows += [run_structure(session, vol, n, gt, rules, prompt) for prompt in args.prompts for n, gt in structures]
        per_volume[vol] = time.perf_counter() - start
    text = table(rows, list(rules), per_volume)
    print(text)
    if not args.no_write:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        note = ("# 3D Dice, LiteMedSAM, prompts from the ground truth\n\n"
                "`.venv/bin/python scripts/eval_volume.py " + " ".join(sys.argv[1:]) + "`; engine "
                + session.predictor.engine.__class__.__name__ + ", " + str(torch.get_num_threads())
                + " threads on a shared CPU.\n\n"
                "Rules: `baseline` = CVPR24 MedSAM-on-laptop (middle slice with the box, then each next slice "
                "with the previous mask's bounding box + 3 px, the box again after an empty slice); `default` "
                "= the 3D box on every slice of its z-range, masks cut to the box, the 3D component connected "
                "to the middle slice's mask kept (`medseg.predict.propagate.DEFAULT`).\n\n"
                "Prompts: `box3d` = the structure's tight 3D box; `point` = one click at its deepest voxel; "
                "`box2d` = its tight 2D box on the slice where it is largest, propagated. For `point` and "
                "`box2d` the baseline follows the previous slice's mask (box + 3 px) until a slice comes out "
                "empty; the default reads a 3D box off the masks on the axial, coronal and sagittal planes "
                "through the prompt (`medseg.predict.extent`; 2 extra encodes) and segments it as a 3D box. "
                "A click is segmented with box proposals around it (`medseg.predict.click`), or on a deep grey "
                "structure of a brain MR by the atlas route (`medseg.text.pointed`). Every rule but `unrefined` "
                "draws the objects' borders again by the scan's edges (`medseg.predict.refine`).\n\n"
                "`encodes`: new slice encodes for that structure (the cache is shared across structures of a "
                "volume and between the rules); `encode s`: their seconds; `decode s`: seconds of that rule "
                "without encoding.\n\n")
        args.out.write_text(note + text + "\n")
        print(f"written: {args.out}")


if __name__ == "__main__":
    main()
