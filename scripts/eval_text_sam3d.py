"""Text prompts through a trained SAM3D model (the automatic route) on its held-out brain: issue 21's item 4.

A SAM3D model is trained on one brain (its 12 deep grey structures, named ``Left_Caudate`` ...) exactly as
``scripts/eval_sam3d.py`` trains it (same decoder, window, crop, CPU budget and augmented copies), then each
structure is asked by name (``"left caudate"``, ...) on the other brain through
``medseg.text.automatic_route.AutomaticRoute`` and scored against that brain's own atlas:

- train Colin27 (skull-stripped) + AAL -> ask on the FSL MNI152 template, truth Harvard-Oxford;
- train MNI152 + Harvard-Oxford -> ask on Colin27, truth AAL.

A name the model does not find on the scan is a one-line error (the route's) and scores 0. Reported beside it:
the atlas route's result on the same scans (``benchmarks/results/text/text_dice.md``). Writes
``benchmarks/results/text/sam3d_text.{md,json}``.

    PYTHONPATH=src python scripts/eval_text_sam3d.py --minutes 10 --augment 4     # ~35 min
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from eval_sam3d import BRAIN, CROP, DEPTH, WIDTHS, brain_cases  # noqa: E402
from eval_text import DEEP, dice  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "text"


def train(case, minutes: float, augment: int, work: Path, cache: Path) -> Path:
    from medseg.train.sam3d_trainer import Sam3DTrainConfig, train_sam3d

    cfg = Sam3DTrainConfig(out=str(work), max_steps=100000, minutes=minutes, val_fraction=0, cache=str(cache),
                           depth=DEPTH, crop=CROP, widths=WIDTHS, progress=False, seed=0, save_every=1000,
                           augment=augment, extra={"clock": "cpu"})
    if work.exists():
        shutil.rmtree(work)
    result = train_sam3d([case], {i: name for i, name in enumerate(BRAIN, start=1)}, cfg)
    print(f"trained on {case.name}: {result.steps} steps in {result.seconds / 60:.1f} min", flush=True)
    return Path(result.model_path)


def ask(model_path: Path, case) -> list[dict]:
    from medseg.errors import MedsegError
    from medseg.predict.automatic import load_automatic
    from medseg.text.automatic_route import AutomaticRoute
    from medseg.text.routes import Router

    router = Router([AutomaticRoute(load_automatic(model_path), "sam3d run", modality=None)])
    rows = []
    for name in DEEP:
        start = time.perf_counter()
        route, resolved = router.resolve(case.image, name)
        truth = case.labels == BRAIN.index(_class_of(name)) + 1  # brain_cases numbers the classes as BRAIN
        try:
            mask = route.prior(case.image, resolved)
            score, note = dice(mask, truth), ""
        except MedsegError as err:
            score, note = 0.0, str(err)
        rows.append({"test": case.name, "name": name, "understood": resolved.name, "dice": score,
                     "seconds": time.perf_counter() - start, "note": note})
        print(f"{case.name:24s} {name:20s} -> {resolved.name:20s} Dice {score:.3f} {note}", flush=True)
    return rows


def _class_of(name: str) -> str:
    side, part = name.split(" ", 1)
    return f"{side.capitalize()}_{part.capitalize()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="CPU minutes of one thread per model")
    parser.add_argument("--augment", type=int, default=4, help="augmented copies of the training brain")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/medseg_eval_sam3d_cache"))
    args = parser.parse_args()
    from medseg.cpu import describe_machine
    from medseg.files import write_text

    colin, mni = brain_cases()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for training, test in ((colin, mni), (mni, colin)):
            path = train(training, args.minutes, args.augment, Path(tmp) / training.name, args.cache)
            rows += ask(path, test)
    lines = ["# Text prompts through a trained SAM3D model on its held-out brain (Dice)", "",
             f"`scripts/eval_text_sam3d.py --minutes {args.minutes:g} --augment {args.augment}`. "
             f"Machine: {describe_machine()}. SAM3D trained on one brain (12 deep grey structures, "
             f"{args.minutes:g} CPU minutes of one thread, {args.augment} augmented copies), each structure "
             "asked by name on the other brain through the automatic route.", "",
             "| held-out brain (truth) | mean Dice (12) | names resolved | found by the model | "
             "first name, s (segmenting the scan) | later names, median s |", "|---|---|---|---|---|---|"]
    for test in dict.fromkeys(r["test"] for r in rows):
        sub = [r for r in rows if r["test"] == test]
        found = sum(not r["note"] for r in sub)
        lines.append(f"| {test} | {statistics.mean(r['dice'] for r in sub):.3f} | {len(sub)}/12 | {found}/12 | "
                     f"{sub[0]['seconds']:.1f} | {statistics.median(r['seconds'] for r in sub[1:]):.2f} |")
    lines += ["", "| held-out brain | name | resolved to | Dice | note |", "|---|---|---|---|---|"]
    lines += [f"| {r['test']} | {r['name']} | {r['understood']} | {r['dice']:.3f} | {r['note']} |" for r in rows]
    OUT.mkdir(parents=True, exist_ok=True)
    write_text(OUT / "sam3d_text.md", "\n".join(lines) + "\n")
    write_text(OUT / "sam3d_text.json", json.dumps(rows, indent=1) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
