"""SAM3D vs a from-scratch MONAI DynUNet on real data, honestly split; writes benchmarks/results/sam3d/.

Tasks:
- lung: CT tumours, leave-one-case-out over the pycerr phantom GTVs pat_1..pat_4 (CC BY-NC 3.0: evaluation
  only) and the RIDER manual tumour SEG (CC BY 4.0).
- brain: 12 deep grey structures (L/R caudate, putamen, pallidum, thalamus, hippocampus, amygdala) across
  two subjects and two label sources: Colin27 (skull-stripped, ch2bet) + AAL and the FSL MNI152 template
  (brain-extracted) + Harvard-Oxford; train
  on one, test on the other, both directions. Both brains are in MNI space, so "label transfer" (the
  training labels copied by physical position, no learning) is reported as the reference to beat.

Both models train on the same windows (with ``--augment N``: the training volumes and N augmented copies
of each, ``medseg.train.sam3d_augment``) for the same CPU time of one thread (SAM3D's step time, counted
by ``time.thread_time``, so other jobs on the machine do not change what a budget buys; encoding the
slices, done once and cached, is reported apart as part of inference). Scores: Dice and HD95 (mm) per
class on each test scan's own grid. Run (about 85 min with these budgets, encodings cached):

    PYTHONPATH=src python scripts/eval_sam3d.py --minutes-brain 10 --minutes-lung 3 --augment 4
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import time
from pathlib import Path

import numpy as np

from medseg.cpu import describe_machine

BRAIN = ["Left_Caudate", "Right_Caudate", "Left_Putamen", "Right_Putamen", "Left_Pallidum", "Right_Pallidum",
         "Left_Thalamus", "Right_Thalamus", "Left_Hippocampus", "Right_Hippocampus", "Left_Amygdala",
         "Right_Amygdala"]
AAL = {"Caudate": 71, "Putamen": 73, "Pallidum": 75, "Thalamus": 77, "Hippocampus": 37, "Amygdala": 41}  # _L; _R = +1
HO = {"Left_Thalamus": 98, "Left_Caudate": 99, "Left_Putamen": 100, "Left_Pallidum": 101, "Left_Hippocampus": 103,
      "Left_Amygdala": 104, "Right_Thalamus": 107, "Right_Caudate": 108, "Right_Putamen": 109, "Right_Pallidum": 110,
      "Right_Hippocampus": 111, "Right_Amygdala": 112}


BRAIN_MARGIN = 8  # slices kept above and below the structures
LUNG_MARGIN = 20  # RIDER's tumour slab, comparable to the phantom crops (41-60 slices)
DEPTH = 8  # slices per window
CROP = 96  # in-plane training crop (model pixels)
WIDTHS = (32, 16, 8)  # a quarter of the default decoder's compute: more steps in the CPU budget


def remap(labels: np.ndarray, table: dict[int, int]) -> np.ndarray:
    lut = np.zeros(int(labels.max()) + 1, np.uint16)
    for src, dst in table.items():
        if src < len(lut):
            lut[src] = dst
    return lut[labels]


def brain_cases():
    from dataclasses import replace

    from medseg.data import sample
    from medseg.data.loaders import load_labelled
    from medseg.io import read_image
    from medseg.train.sam3d_data import VolumeCase

    colin = load_labelled("colin27")[0]
    # Colin27's skull-stripped T1 (ch2bet, same grid): the FSL MNI152 template it is compared with is
    # brain-extracted, and a skull on one side only is a difference the models cannot learn from one case.
    stripped = read_image(sample.path("colin27", "ch2bet.nii.gz")).array
    if stripped.shape != colin.image.array.shape:
        raise RuntimeError(f"ch2bet {stripped.shape} is not on Colin27's grid {colin.image.array.shape}")
    colin_image = replace(colin.image, array=stripped.astype(colin.image.array.dtype))
    aal = {}
    for i, name in enumerate(BRAIN, start=1):
        side, part = name.split("_")
        aal[AAL[part] + (0 if side == "Left" else 1)] = i
    ho = load_labelled("atlases", ["harvard_oxford"])[0]
    return [crop_z(VolumeCase("colin27bet+AAL", colin_image, remap(colin.labels, aal)), BRAIN_MARGIN),
            crop_z(VolumeCase("MNI152+HarvardOxford", ho.image,
                              remap(ho.labels, {v: BRAIN.index(k) + 1 for k, v in HO.items()})), BRAIN_MARGIN)]


def lung_cases():
    from medseg.data.loaders import load_labelled
    from medseg.train.sam3d_data import VolumeCase

    cases = load_labelled("radiomics_phantom") + load_labelled("rider_lung", ["seg_manual"])
    out = [VolumeCase(c.name, c.image, (c.labels > 0).astype(np.uint16)) for c in cases]
    return [crop_z(c, LUNG_MARGIN) if len(c.labels) > 80 else c for c in out]  # RIDER: 236 -> a slab like the crops


def crop_z(case, margin: int):
    """The axial slab holding every label (+- margin slices), geometry adjusted (origin moved along z)."""
    from dataclasses import replace

    from medseg.train.sam3d_data import VolumeCase

    zs = np.flatnonzero(case.labels.reshape(len(case.labels), -1).any(1))
    z0, z1 = max(0, zs[0] - margin), min(len(case.labels), zs[-1] + margin + 1)
    g = case.image.geometry
    direction = np.asarray(g.direction, float).reshape(3, 3)
    origin = tuple((np.asarray(g.origin) + direction @ np.array([0, 0, z0 * g.spacing[2]])).tolist())
    image = replace(case.image, array=case.image.array[z0:z1], geometry=replace(g, origin=origin))
    return VolumeCase(case.name, image, case.labels[z0:z1])


def scores(pred: np.ndarray, gt: np.ndarray, names: dict[int, str], spacing) -> dict:
    from medseg.evaluate.metrics import score

    out = {}
    for value, name in names.items():
        s = score(pred == value, gt == value, tuple(spacing))
        out[name] = {"dice": round(s.dice, 4), "hd95": None if math.isinf(s.hd95) else round(s.hd95, 2)}
    return out


def label_transfer(train_case, test_case) -> np.ndarray:
    """The training labels resampled (nearest, identity transform) onto the test scan's grid."""
    import SimpleITK as sitk

    def itk(array, geometry):
        img = sitk.GetImageFromArray(array)
        img.SetSpacing(geometry.spacing)
        img.SetOrigin(geometry.origin)
        img.SetDirection(geometry.direction)
        return img

    src = itk(train_case.labels.astype(np.uint16), train_case.image.geometry)
    ref = itk(np.zeros(test_case.labels.shape, np.uint8), test_case.image.geometry)
    moved = sitk.Resample(src, ref, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt16)
    return sitk.GetArrayFromImage(moved)


def run_fold(train, test, names, minutes, work: Path, cache: Path, augment: int = 0, seed=0) -> dict:
    import torch

    from medseg.evaluate.unet_baseline import train_baseline
    from medseg.predict.automatic import load_automatic, sliding_window
    from medseg.predict.orient import orientation
    from medseg.train.sam3d_augment import augmented_copies
    from medseg.train.sam3d_data import modality_of, prepare, window_name
    from medseg.train.sam3d_trainer import Sam3DTrainConfig, encoder_identity, lazy_encoder, train_sam3d

    cfg = Sam3DTrainConfig(out=str(work), max_steps=100000, minutes=minutes, val_fraction=0, cache=str(cache),
                           depth=DEPTH, crop=CROP, widths=WIDTHS, progress=False, seed=seed, save_every=1000,
                           augment=augment, extra={"clock": "cpu"})
    if work.exists():  # this script's own scratch folder from an earlier run
        shutil.rmtree(work)
    result = train_sam3d(train, names, cfg)
    model = load_automatic(result.model_path)
    identity = encoder_identity()
    t0 = time.perf_counter()
    encoder = lazy_encoder("litemedsam", "auto", 2)
    prep = prepare(test, window_name(modality_of(test.image)), encoder, identity["sha256"], cache)
    encode_s = time.perf_counter() - t0
    fetch = lambda zs: (prep.embeddings[zs], prep.grey[zs])  # noqa: E731
    t0 = time.perf_counter()
    turn = orientation(test.image.geometry.direction)  # predictions are in the canonical axis order
    truth, spacing = turn.canonical(test.labels), turn.spacing(test.image.geometry.spacing)
    pred = sliding_window(model.decoder, len(prep.labels), truth.shape[1:], fetch, model.depth)
    sam_s = time.perf_counter() - t0
    sam = scores(pred, truth, names, spacing)
    copies = [a for c in train for a in augmented_copies(c, augment, seed)]  # the volumes train_sam3d made
    prepared = [prepare(c, window_name(modality_of(c.image)), encoder, identity["sha256"], cache)
                for c in train + copies]
    unet, steps, spent = train_baseline(prepared, len(names) + 1, cfg, result.seconds, seed)
    t0 = time.perf_counter()
    with torch.no_grad():
        base_pred = sliding_window(unet, len(prep.labels), truth.shape[1:], fetch, model.depth)
    base_s = time.perf_counter() - t0
    base = scores(base_pred, truth, names, spacing)
    return {"test": test.name, "train": [c.name for c in train], "test_slices": len(prep.labels),
            "sam3d": {"scores": sam, "steps": result.steps, "train_minutes": round(result.seconds / 60, 2),
                      "parameters": result.parameters, "decoder_seconds": round(sam_s, 1),
                      "encode_seconds_cached_run": round(encode_s, 2)},
            "dynunet": {"scores": base, "steps": steps, "train_minutes": round(spent / 60, 2),
                        "parameters": sum(p.numel() for p in unet.parameters()), "seconds": round(base_s, 1)},
            "model_path": str(result.model_path), "encode_seconds": encode_seconds(test, cache)}


def encode_seconds(case, cache: Path) -> float | None:
    """Seconds the engine took to encode this case's slices (recorded when first cached)."""
    path = cache / "encode_seconds.json"
    return json.loads(path.read_text()).get(case.name) if path.is_file() else None


def time_encoding(cases, cache: Path) -> None:
    """Encode every case once (filling the cache) and record how long each took."""
    from medseg.files import write_text
    from medseg.train.sam3d_data import modality_of, prepare, window_name
    from medseg.train.sam3d_trainer import encoder_identity, lazy_encoder

    path = cache / "encode_seconds.json"
    cache.mkdir(parents=True, exist_ok=True)
    record = json.loads(path.read_text()) if path.is_file() else {}
    encoder = lazy_encoder("litemedsam", "auto", 2)
    sha = encoder_identity()["sha256"]
    encoder()  # build (and export) the engine outside the timing
    for case in cases:
        before = set(cache.glob("*.npy"))
        t0 = time.perf_counter()
        prepare(case, window_name(modality_of(case.image)), encoder, sha, cache, progress=True)
        took = time.perf_counter() - t0
        if set(cache.glob("*.npy")) != before:  # encoded now (not read from the cache)
            record[case.name] = round(took, 1)
        print(f"{case.name}: {len(case.labels)} slices, {record[case.name]} s to encode", flush=True)
        write_text(path, json.dumps(record, indent=1))


def fp16_parity(model_path: str, case, cache: Path) -> dict:
    """Agreement of the decoder's labels with float32 vs float16 embeddings (and float16 weights) on the
    16 slices of ``case`` with most foreground, encoded afresh in float32."""
    import torch

    from medseg.predict import slice_stack
    from medseg.predict.automatic import load_automatic
    from medseg.preprocess.window import apply_window, choose_window
    from medseg.train.sam3d_trainer import lazy_encoder

    model = load_automatic(model_path)
    z_fg = case.labels.reshape(len(case.labels), -1).astype(bool).sum(1)
    z0 = int(np.clip(np.argmax(np.convolve(z_fg, np.ones(16), "valid")), 0, max(0, len(case.labels) - 16)))
    from medseg.predict.orient import orientation

    windowed = apply_window(case.image.array, choose_window(case.image.array, case.image.modality,
                                                            model.inputs["window"]))[z0:z0 + 16]
    windowed = orientation(case.image.geometry.direction).canonical(windowed)
    grey = slice_stack.intensities(windowed)
    enc = lazy_encoder("litemedsam", "auto", 2)()
    emb32 = np.concatenate([enc(np.repeat(grey[i:i + 4, None], 3, 1)) for i in range(0, len(grey), 4)])
    g = torch.from_numpy(grey[None, None])

    def labels(emb, dec):
        with torch.no_grad():
            return dec(torch.from_numpy(np.moveaxis(emb, 0, 1)[None].astype(np.float32)), g).argmax(1).numpy()

    ref = labels(emb32, model.decoder)
    half_emb = labels(emb32.astype(np.float16), model.decoder)
    dec16 = load_automatic(model_path).decoder
    for p in dec16.parameters():
        p.data = p.data.half().float()
    both = labels(emb32.astype(np.float16), dec16)
    fg = ref > 0
    return {"slices": [z0, z0 + len(grey)], "voxels": int(ref.size), "foreground_voxels": int(fg.sum()),
            "agree_fp16_embeddings": float((half_emb == ref).mean()),
            "agree_fp16_embeddings_and_weights": float((both == ref).mean()),
            "foreground_changed_fp16": int(((half_emb != ref) & (fg | (half_emb > 0))).sum()),
            "max_abs_embedding_error": float(np.abs(emb32.astype(np.float16).astype(np.float32) - emb32).max())}


def main() -> None:
    import torch

    from medseg.files import write_text

    p = argparse.ArgumentParser()
    p.add_argument("--minutes-lung", type=float, default=2.5)
    p.add_argument("--minutes-brain", type=float, default=4.0)
    p.add_argument("--out", default="benchmarks/results/sam3d")
    p.add_argument("--work", default=str(Path.home() / ".cache" / "medseg" / "sam3d-eval"))
    p.add_argument("--tasks", default="brain,lung")
    p.add_argument("--augment", type=int, default=0, help="augmented copies of each training volume")
    args = p.parse_args()
    torch.set_num_threads(1)
    out, work = Path(args.out), Path(args.work)
    cache = work / "embeddings"
    results = json.loads((out / "results.json").read_text()) if (out / "results.json").is_file() else {}
    results["machine"] = f"{describe_machine()}; torch 1 thread per training"
    tasks = args.tasks.split(",")
    if "brain" in tasks:
        cases = brain_cases()
        time_encoding(cases, cache)
        names = dict(enumerate(BRAIN, start=1))
        folds = []
        for i in range(2):
            train, test = [cases[i]], cases[1 - i]
            fold = run_fold(train, test, names, args.minutes_brain, work / f"brain_{i}", cache, args.augment)
            fold["label_transfer"] = {"scores": scores(label_transfer(train[0], test), test.labels, names,
                                                       test.image.geometry.spacing)}
            folds.append(fold)
            print(json.dumps({k: v for k, v in fold.items() if k != "train"}), flush=True)
        results["brain"] = {"minutes": args.minutes_brain, "augment": args.augment, "clock": "cpu", "folds": folds,
                            "fp16_parity": fp16_parity(folds[0]["model_path"], cases[1], cache)}
        write_text(out / "results.json", json.dumps(results, indent=1))
    if "lung" in tasks:
        cases = lung_cases()
        time_encoding(cases, cache)
        names = {1: "GTV"}
        folds = []
        for i, test in enumerate(cases):
            fold = run_fold([c for c in cases if c is not test], test, names, args.minutes_lung, work / f"lung_{i}",
                            cache, args.augment)
            folds.append(fold)
            print(json.dumps({k: v for k, v in fold.items() if k != "train"}), flush=True)
        results["lung"] = {"minutes": args.minutes_lung, "augment": args.augment, "clock": "cpu", "folds": folds}
        write_text(out / "results.json", json.dumps(results, indent=1))
    try:
        from report_sam3d import write_report
    except ImportError:
        print("report_sam3d not found: results.json only")
        return
    write_report(results, out)


if __name__ == "__main__":
    main()
