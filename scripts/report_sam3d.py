"""Tables (results.md) and plots (PNG) of scripts/eval_sam3d.py's results.json.

    PYTHONPATH=src python scripts/report_sam3d.py benchmarks/results/sam3d
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

METHODS = (("sam3d", "SAM3D"), ("dynunet", "DynUNet"), ("label_transfer", "label transfer"))


def _fmt(x, digits=3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def brain_table(brain: dict) -> list[str]:
    lines = [f"## Brain: 12 deep structures across subjects and label sources ({_budget(brain)} per training)",
             ""]
    for fold in brain["folds"]:
        methods = [(k, n) for k, n in METHODS if k in fold]
        lines += [f"### train {fold['train'][0]} -> test {fold['test']}", "",
                  "| structure | " + " | ".join(f"{n} Dice | {n} HD95 mm" for _, n in methods) + " |",
                  "|---|" + "---|---|" * len(methods)]
        classes = list(fold["sam3d"]["scores"])
        for c in classes:
            cells = [f"{_fmt(fold[k]['scores'][c]['dice'])} | {_fmt(fold[k]['scores'][c]['hd95'], 1)}"
                     for k, _ in methods]
            lines.append(f"| {c} | " + " | ".join(cells) + " |")
        means = [f"**{_fmt(_mean(fold[k]['scores'][c]['dice'] for c in classes))}** | "
                 f"{_fmt(_mean(fold[k]['scores'][c]['hd95'] for c in classes), 1)}" for k, _ in methods]
        lines += ["| **mean** | " + " | ".join(means) + " |", "", _cost(fold), ""]
    if "fp16_parity" in brain:
        p = brain["fp16_parity"]
        lines += [f"float16 parity ({p['voxels']:,} output voxels of slices {p['slices'][0]}..{p['slices'][1] - 1}, "
                  f"{p['foreground_voxels']:,} foreground): labels agree with float32 embeddings on "
                  f"{100 * p['agree_fp16_embeddings']:.3f} % of voxels ({p['foreground_changed_fp16']} foreground "
                  f"voxels changed), {100 * p['agree_fp16_embeddings_and_weights']:.3f} % with float16 weights too; "
                  f"largest embedding rounding error {p['max_abs_embedding_error']:.2g}.", ""]
    return lines


def _budget(task: dict) -> str:
    clock = "CPU min of one thread" if task.get("clock") == "cpu" else "min"
    copies = f", {task['augment']} augmented copies of each training volume" if task.get("augment") else ""
    return f"{task['minutes']} {clock}{copies}"


def _cost(fold: dict) -> str:
    s, b = fold["sam3d"], fold["dynunet"]
    enc = fold.get("encode_seconds")
    enc_text = f"{enc:.0f} s encoding {fold['test_slices']} slices + " if enc else ""
    return (f"SAM3D: {s['parameters']:,} trainable parameters, {s['steps']} steps in {s['train_minutes']} min, "
            f"inference {enc_text}{s['decoder_seconds']} s decoder. DynUNet: {b['parameters']:,} parameters, "
            f"{b['steps']} steps in {b['train_minutes']} min, inference {b['seconds']} s.")


def lung_table(lung: dict) -> list[str]:
    lines = [f"## Lung tumours in CT, leave-one-case-out ({_budget(lung)} per training)", "",
             "| held-out case | slices | SAM3D Dice | SAM3D HD95 mm | DynUNet Dice | DynUNet HD95 mm | SAM3D steps | "
             "DynUNet steps | encode s | SAM3D decoder s | DynUNet s |", "|---|" + "---|" * 10]
    for f in lung["folds"]:
        s, b = f["sam3d"], f["dynunet"]
        lines.append(f"| {f['test']} | {f['test_slices']} | {_fmt(s['scores']['GTV']['dice'])} | "
                     f"{_fmt(s['scores']['GTV']['hd95'], 1)} | {_fmt(b['scores']['GTV']['dice'])} | "
                     f"{_fmt(b['scores']['GTV']['hd95'], 1)} | {s['steps']} | {b['steps']} | "
                     f"{_fmt(f.get('encode_seconds'), 0)} | {s['decoder_seconds']} | {b['seconds']} |")
    sd = _mean(f["sam3d"]["scores"]["GTV"]["dice"] for f in lung["folds"])
    bd = _mean(f["dynunet"]["scores"]["GTV"]["dice"] for f in lung["folds"])
    lines += [f"| **mean** | | **{_fmt(sd)}** | | **{_fmt(bd)}** | | | | | | |", "",
              f"SAM3D trainable parameters: {lung['folds'][0]['sam3d']['parameters']:,}; DynUNet: "
              f"{lung['folds'][0]['dynunet']['parameters']:,}.", ""]
    return lines


def plot(results: dict, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from medseg.files import write_file

    made = []
    if "brain" in results:
        folds = results["brain"]["folds"]
        fig, axes = plt.subplots(len(folds), 1, figsize=(11, 3.4 * len(folds)), squeeze=False)
        for ax, fold in zip(axes[:, 0], folds, strict=True):
            classes = list(fold["sam3d"]["scores"])
            x = np.arange(len(classes))
            methods = [(k, n) for k, n in METHODS if k in fold]
            for i, (k, n) in enumerate(methods):
                ax.bar(x + (i - 1) * 0.27, [fold[k]["scores"][c]["dice"] for c in classes], 0.27, label=n)
            ax.set_xticks(x, [c.replace("_", " ") for c in classes], rotation=30, ha="right", fontsize=8)
            ax.set(ylim=(0, 1), ylabel="Dice", title=f"train {fold['train'][0]} -> test {fold['test']}")
            ax.legend(fontsize=8)
        fig.tight_layout()
        made.append(write_file(out / "brain_dice.png", lambda t: fig.savefig(t, dpi=90, format="png")))
        plt.close(fig)
    if "lung" in results:
        folds = results["lung"]["folds"]
        fig, ax = plt.subplots(figsize=(8, 3.4))
        x = np.arange(len(folds))
        for i, (k, n) in enumerate(METHODS[:2]):
            ax.bar(x + (i - 0.5) * 0.4, [f[k]["scores"]["GTV"]["dice"] for f in folds], 0.4, label=n)
        ax.set_xticks(x, [f["test"].split("/")[-1] for f in folds])
        ax.set(ylim=(0, 1), ylabel="Dice (held-out case)", title="Lung tumour, leave-one-case-out")
        ax.legend()
        fig.tight_layout()
        made.append(write_file(out / "lung_dice.png", lambda t: fig.savefig(t, dpi=90, format="png")))
        plt.close(fig)
    return made


def write_report(results: dict, out: Path) -> None:
    from medseg.files import write_text

    lines = ["# SAM3D vs a from-scratch DynUNet (scripts/eval_sam3d.py)", "",
             f"Machine: {results.get('machine', '?')}. Both models train on the same windows for the same "
             "time (the CPU time of one thread where a task says so, else wall-clock); SAM3D's encoder "
             "(frozen LiteMedSAM) runs once per slice and is counted in inference. "
             "Numbers are from single runs (seed 0) on very few cases: read them as a sanity check, not a ranking.", ""]
    if "brain" in results:
        lines += brain_table(results["brain"])
    if "lung" in results:
        lines += lung_table(results["lung"])
    plot(results, out)
    write_text(out / "results.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/results/sam3d")
    write_report(json.loads((folder / "results.json").read_text()), folder)
