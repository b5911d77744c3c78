"""Clicks before vs after the interactive model, on held-out data, with the published protocols.

Models: ``litemedsam`` (before: clicks through box proposals and region edits) and
``litemedsam-interactive`` (after; ``--decoder FILE`` evaluates an unshipped decoder file instead).
Both share LiteMedSAM's encoder, so every slice is encoded once for both (an in-memory cache).

Held-out data (never trained on, ``medseg.interactive.data.HELD_OUT``): the FSL MNI152 template with six
Harvard-Oxford subcortical structures, the RIDER lung tumour (manual SEG), pycerr pat_4 (CC BY-NC:
evaluation only), the spine MR vertebrae C5-C7, PyRadiomics's five lesions (whole scans: brain MR x 2, breast MR,
lung CT x 2; evaluation only) and the held-out half of the stardist nuclei.

- 3D (SAM-Med3D / CVPR25): the first click at the deepest voxel of the structure, then each click at
  the deepest voxel of the largest error component (positive in a miss), up to 10; Dice and NSD (2 mm,
  counted where Dice > 0.2) after every click (``medseg.evaluate.protocols``, ``interactive`` without a
  box), and the tight 3D box (``box3d``) for reference.
  ``--protocol sammed3d``: SAM-Med3D's own clicks instead, the first uniform in the structure and each next one
  uniform in the error (positive in a miss), from ``--seed``; the tight 3D box as before.
- 2D (SAM-Med2D): on each structure's largest axial slice (and each held-out nucleus): k points = the
  first at the deepest pixel then k-1 corrections at the deepest pixel of the largest error, each with
  the previous logits as mask prompt, for k = 1, 3, 5; a tight box; box + 2 such correction points.

    PYTHONPATH=src .venv/bin/python benchmarks/interactive_eval.py --out benchmarks/results/interactive
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np

from medseg.build import build_model, load_decoder
from medseg.checkpoints import sha256_of
from medseg.evaluate.protocols import ProtocolConfig, cvpr25_click, run_case
from medseg.files import write_file, write_text
from medseg.interactive.data import nuclei_split
from medseg.predict.extent import deepest_pixel
from medseg.predict.predictor import Predictor
from medseg.predict.propagate import widened_box
from medseg.predict.segment import one_way, windowed

# Harvard-Oxford left thalamus, caudate, putamen, hippocampus, right pallidum, amygdala (six of the 14
# subcortical structures: the 3D protocol of both models has to fit the shared 2-core machine)
HO_SUBCORTICAL = (98, 99, 100, 103, 110, 112)
CASES3D = (("atlases", "harvard_oxford", HO_SUBCORTICAL), ("rider_lung", "seg_manual", (1,)),
           ("radiomics_phantom", "pat_4", (1,)), ("spine", "mr_vert", (5, 6, 7)),
           *(("pyradiomics", case, (1,)) for case in ("brain1", "brain2", "breast1", "lung1", "lung2")))
ATLAS_PACK = {"atlases/harvard_oxford": "colin27_aal"}


class SharedEncodes(Predictor):
    """A Predictor whose slice embeddings are shared with other predictors (same encoder): in a dict, and
    in ``folder`` (one .npy per slice) when given, so a later run reuses them."""

    def __init__(self, model, store: dict, engine: str = "auto", folder: Path | None = None) -> None:
        super().__init__(model, engine)
        self.store, self.folder = store, folder

    def embed(self, slice_0_255, lane=False, tag=None):
        import torch

        key = hashlib.sha1(np.ascontiguousarray(slice_0_255).tobytes() + str(slice_0_255.shape).encode()).hexdigest()
        if key in self.store:
            return self.store[key]
        file = None if self.folder is None else self.folder / f"{key}.npy"
        if file is not None and file.is_file():
            emb = torch.from_numpy(np.load(file))
        else:
            emb = super().embed(slice_0_255)
            if file is not None:
                array = emb.numpy()
                write_file(file, lambda t: _save(t, array))
        self.store[key] = emb
        return emb

    def open_lanes(self) -> int:
        return 1


def _save(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as handle:
        np.save(handle, array)


def load(name: str, decoder: str | None, store: dict, engine: str, folder: Path | None) -> SharedEncodes:
    """``litemedsam``; ``litemedsam-interactive`` (its decoder answers every prompt); and
    ``litemedsam-interactive+boxes`` (box-only prompts answered by LiteMedSAM's decoder, ``Predictor.box_decoder``)."""
    base = name.removesuffix("+boxes")
    if decoder and base != "litemedsam":
        model = build_model("litemedsam")
        load_decoder(model, Path(decoder))
        model.decoder_sha256 = sha256_of(Path(decoder))
    else:
        model = build_model(base)
    p = SharedEncodes(model, store, engine, folder)
    if name.endswith("+boxes"):
        p.box_decoder = SharedEncodes(build_model("litemedsam"), store, engine, folder)
    return p


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = a.sum() + b.sum()
    return float(2 * (a & b).sum() / total) if total else 1.0


def clicks_2d(p: Predictor, truth: np.ndarray, n: int, box: np.ndarray | None = None,
              image: np.ndarray | None = None) -> list[float]:
    """Dice after each of n clicks (first at the deepest pixel unless a box starts), corrections at the deepest
    pixel of the largest error, previous logits as the mask prompt; with a box, Dice of the box first."""
    from medseg.predict.zoom import on_slice

    # as medseg.predict.segment: small boxes decoded from magnified crops (medseg.predict.zoom)
    decode = on_slice(p, image) if image is not None else (lambda _z=0, **kw: p.predict(**kw))
    pts, labs, prior, out, mask = [], [], None, [], None
    if box is not None:
        pred = decode(box=box)
        out.append(dice(pred.masks[0], truth))
        prior, mask = pred.low_res_logits[:1], pred.masks[0]
    else:
        row, col = deepest_pixel(truth)
        pts, labs = [[col, row]], [1]
    for k in range(n):
        if box is not None or k > 0:
            click = cvpr25_click(mask, truth)
            if click is None:
                out.append(out[-1])
                continue
            (x, y), positive = click
            pts.append([x, y])
            labs.append(int(positive))
        if not p.direct_clicks and box is None and k == 0:  # box proposals for a lone click (medseg.predict.click)
            from medseg.predict.click import segment_click

            res = segment_click(lambda _z, **kw: p.predict(**kw), 0, pts[0][0], pts[0][1], truth.shape, image=image)
            mask, prior = res.mask, res.logits
            box_k = widened_box(res.mask, 0)  # as medseg.predict.segment: later clicks keep the seed's tight box
        else:
            pred = decode(box=box if box is not None else (box_k if not p.direct_clicks else None),
                             points=np.array(pts, np.float32), point_labels=np.array(labs), mask_input=prior,
                             correction=prior is not None)
            # as medseg.predict.segment: a correction of an earlier mask goes one way
            mask = pred.masks[0] if mask is None else one_way(mask, pred.masks[0], positive)
            prior = pred.low_res_logits[:1]
        out.append(dice(mask, truth))
    return out


def slices_2d() -> list[tuple[str, np.ndarray, list[np.ndarray]]]:
    """(dataset, 0..255 slice, object masks): each held-out structure's largest axial slice, the nuclei."""
    from medseg.data.loaders import load_labelled

    out = []
    for dataset, case, labels in CASES3D:
        c = load_labelled(dataset, [case])[0]
        data, _ = windowed(c.image, "auto")
        for lab in labels:
            m = c.labels == lab
            z = int(np.argmax(m.reshape(len(m), -1).sum(1)))
            out.append((f"{dataset}/{case}", data[z], [m[z]]))
    picture, instances, _, held = nuclei_split(0)
    out.append(("nuclei/held_out_half", picture, [instances == i for i in held]))
    return out


def eval_2d(p: Predictor) -> dict[str, dict[str, list[float]]]:
    res: dict[str, dict[str, list[float]]] = {}
    for name, image, masks in slices_2d():
        p.set_image(image)
        r = res.setdefault(name, {"1 point": [], "3 points": [], "5 points": [], "box": [], "box + 2 points": []})
        for m in masks:
            ys, xs = np.nonzero(m)
            box = np.array([xs.min(), ys.min(), xs.max(), ys.max()], np.float32)
            pts = clicks_2d(p, m, 5, image=image)
            r["1 point"].append(pts[0])
            r["3 points"].append(pts[2])
            r["5 points"].append(pts[4])
            bp = clicks_2d(p, m, 2, box, image=image)
            r["box"].append(bp[0])
            r["box + 2 points"].append(bp[2])
    return res


def eval_3d(p: Predictor, clicks: int, cases: list[str] | None = None, labels_only: list[int] | None = None,
            save=None, click_atlas: bool = True, refine: bool = True,
            correction_net: bool = True, protocol: str = "interactive", seed: int = 0) -> dict[str, list[dict]]:
    """Per 3D case, one row per structure; ``save(out)`` after every structure (partial results survive).
    ``protocol``: "interactive" (CVPR25's clicks at the deepest voxels) or "sammed3d" (uniform clicks, ``seed``)."""
    from medseg.data.loaders import load_labelled

    out: dict[str, list[dict]] = {}
    for dataset, case, labels in CASES3D:
        if cases is not None and f"{dataset}/{case}" not in cases:
            continue
        c = load_labelled(dataset, [case])[0]
        rows = out[f"{dataset}/{case}"] = []
        # the Harvard-Oxford case's scan is the template of medseg's default atlas pack: its clicks take the
        # Colin27 AAL pack (another subject, another atlas), as any scan's clicks would
        cfg = ProtocolConfig(protocol=protocol, clicks=clicks, with_box=False, click_atlas=click_atlas,
                             atlas_pack=ATLAS_PACK.get(f"{dataset}/{case}", ""), refine=refine,
                             correction_net=correction_net)
        for lab in [lab for lab in labels if labels_only is None or lab in labels_only]:
            start = time.perf_counter()
            inter = run_case(protocol, p, c.image, c.labels, [lab], cfg, np.random.default_rng(seed)).rows[0]
            box = run_case("box3d", p, c.image, c.labels, [lab], ProtocolConfig(protocol="box3d", refine=refine),
                           np.random.default_rng(0)).rows[0]
            rows.append({"label": lab, "name": c.names.get(lab, str(lab)),
                         "dice": [s["dice"] for s in inter["steps"]], "nsd": [s["nsd"] for s in inter["steps"]],
                         "seconds": [s["seconds"] for s in inter["steps"]], "box3d_dice": box["dice"],
                         "box3d_nsd": box["nsd"], "wall": time.perf_counter() - start})
            print(f"{dataset}/{case} {lab}: clicks {[round(d, 3) for d in rows[-1]['dice']]} box {box['dice']:.3f}",
                  flush=True)
            if save is not None:
                save(out)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="benchmarks/results/interactive")
    ap.add_argument("--models", default="litemedsam,litemedsam-interactive")
    ap.add_argument("--decoder", default=None, help="decoder file for the interactive model (default: shipped)")
    ap.add_argument("--clicks", type=int, default=10)
    ap.add_argument("--engine", default="auto")
    ap.add_argument("--skip-3d", action="store_true")
    ap.add_argument("--skip-2d", action="store_true")
    ap.add_argument("--cases", default=None, help="comma list of 3D dataset/case to run (default all)")
    ap.add_argument("--labels", default=None, help="comma list of 3D label values to run (default all)")
    ap.add_argument("--report-only", action="store_true", help="only write the report of the --merge results")
    ap.add_argument("--encodes", default=None, help="folder keeping slice embeddings between runs")
    ap.add_argument("--merge", action="append", help="results.json of an earlier run to report beside this one")
    ap.add_argument("--no-zoom", action="store_true", help="every decode on the whole slice (medseg.predict.zoom off)")
    ap.add_argument("--no-refine", action="store_true",
                    help="3D: the objects keep the model's border (medseg.predict.refine off)")
    ap.add_argument("--no-correction-net", action="store_true",
                    help="3D: refused negative corrections by the rules' fallback (the correction network off)")
    ap.add_argument("--no-click-atlas", action="store_true",
                    help="first clicks answered by the model alone (medseg.text.pointed off)")
    ap.add_argument("--protocol", default="interactive", choices=("interactive", "sammed3d"),
                    help="3D clicks: CVPR25's at the deepest voxels (default) or SAM-Med3D's uniform ones")
    ap.add_argument("--seed", type=int, default=0, help="--protocol sammed3d: the clicks' random seed")
    args = ap.parse_args()
    if args.no_zoom:
        from medseg.predict import zoom

        zoom.ON = False
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    store: dict = {}
    results = {}
    for earlier in args.merge or []:  # results from earlier (or parallel) runs of this script, merged per part
        for model, parts in json.loads(Path(earlier).read_text()).items():
            for part, value in parts.items():
                mine = results.setdefault(model, {})
                mine[part] = {**mine.get(part, {}), **value} if isinstance(value, dict) else value
    for name in [] if args.report_only else args.models.split(","):
        folder = Path(args.encodes) if args.encodes else None
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
        p = load(name, args.decoder, store, args.engine, folder)
        t0 = time.perf_counter()
        results[name] = {}
        if not args.skip_2d:
            results[name]["2d"] = eval_2d(p)
            means = {k: {m: round(float(np.mean(v)), 3) for m, v in r.items()} for k, r in results[name]["2d"].items()}
            print(name, "2d", means, flush=True)
        if not args.skip_3d:
            cases = args.cases.split(",") if args.cases else None
            labels_only = [int(v) for v in args.labels.split(",")] if args.labels else None

            def save(partial, name=name):
                results[name]["3d"] = partial
                write_text(out / "results.json", json.dumps(results, indent=1) + "\n")

            kind = args.protocol if args.protocol == "interactive" else f"sammed3d seed {args.seed}"
            results[name]["protocol"] = kind
            results[name]["3d"] = eval_3d(p, args.clicks, cases, labels_only, save, not args.no_click_atlas,
                                          not args.no_refine, not args.no_correction_net, args.protocol,
                                          args.seed)
        results[name]["seconds"] = time.perf_counter() - t0
        write_text(out / "results.json", json.dumps(results, indent=1) + "\n")
    report(results, out)


def _m(values) -> str:
    return f"{float(np.mean(values)):.3f}" if len(values) else "-"


def report(results: dict, out: Path) -> None:
    """README.md (tables) and one Dice/NSD-per-click curve per 3D dataset (PNG)."""
    import matplotlib

    from medseg.io.verify import verify_for

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    lines = ["# Clicks before vs after the interactive model (held-out data)", "",
             "Written by `benchmarks/interactive_eval.py` (protocols in its docstring). Before = `litemedsam` "
             "(lone clicks through box proposals, corrections by the box-trained decoder). After = "
             "`litemedsam-interactive+boxes`, what the card ships: LiteMedSAM's decoder for boxes and the first "
             "click's proposals, the click-trained decoder for the corrections. `litemedsam-interactive` alone "
             "(its click decoder answering every prompt, the lone click decoded directly) is the ablation.",
             "", "## SAM-Med2D 2D protocol (mean Dice)", ""]
    kinds = ["1 point", "3 points", "5 points", "box", "box + 2 points"]
    lines += ["| data (objects) | model | " + " | ".join(kinds) + " |", "|---|---|" + "---|" * len(kinds)]
    both_2d = all("2d" in results[n] for n in names)
    for data in results[names[0]]["2d"] if both_2d else []:
        for n in names:
            r = results[n]["2d"][data]
            lines.append(f"| {data} ({len(r['box'])}) | {n} | " + " | ".join(_m(r[k]) for k in kinds) + " |")
    names = [n for n in names if "3d" in results[n]]  # the models the 3D protocol ran
    if names:
        kind = {results[n].get("protocol", "interactive") for n in names}
        title = ("CVPR25 3D protocol, clicks at the deepest voxels" if kind == {"interactive"} else
                 "SAM-Med3D 3D protocol, uniform clicks (" + ", ".join(sorted(kind)) + ")")
        lines += ["", f"## {title} (mean Dice / NSD after k clicks; tight 3D box)", ""]
        heads = ["1", "3", "5", "10"]
        lines += ["| data (structures) | model | " + " | ".join(f"Dice {h}" for h in heads) + " | NSD 1 | NSD 5 | "
                  "3D box Dice | 5 clicks >= box |", "|---|---|" + "---|" * (len(heads) + 4)]
        every = {n: {"dice": [], "box": []} for n in names}
        for data in [d for d in results[names[0]]["3d"] if all(d in results[n]["3d"] for n in names)]:
            fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.5))
            common = set.intersection(*({r["label"] for r in results[n]["3d"][data]} for n in names))
            if not common:
                plt.close(fig)
                continue
            for n in names:
                rows = [r for r in results[n]["3d"][data] if r["label"] in common]  # structures both models ran
                d, nsd = np.array([r["dice"] for r in rows]), np.array([r["nsd"] for r in rows])
                box = [r["box3d_dice"] for r in rows]
                every[n]["dice"] += d.tolist()
                every[n]["box"] += box
                cells = [f"{d[:, int(h) - 1].mean():.3f}" if d.shape[1] >= int(h) else "-" for h in heads]
                wins = sum(r["dice"][min(4, len(r["dice"]) - 1)] >= r["box3d_dice"] for r in rows)
                lines.append(f"| {data} ({len(rows)}) | {n} | " + " | ".join(cells) +
                             f" | {nsd[:, 0].mean():.3f} | {nsd[:, min(4, nsd.shape[1] - 1)].mean():.3f} | "
                             f"{np.mean(box):.3f} | {wins}/{len(rows)} |")
                steps = np.arange(1, d.shape[1] + 1)
                a1.plot(steps, d.mean(0), marker="o", label=n)
                a2.plot(steps, nsd.mean(0), marker="o", label=n)
                a1.axhline(np.mean(box), ls="--", lw=0.8, color=a1.lines[-1].get_color())
            a1.set(title=f"{data}: Dice (dashed: 3D box)", xlabel="clicks", ylim=(0, 1))
            a2.set(title="NSD 2 mm", xlabel="clicks", ylim=(0, 1))
            a1.legend(fontsize=7)
            fig.tight_layout()
            png = out / f"curve_{data.replace('/', '_')}.png"
            write_file(png, lambda t, f=fig: f.savefig(t, dpi=90, format="png"), verify_for(png))
            plt.close(fig)
            lines.append("")
        lines += ["", "All held-out 3D structures:", "", "| model | Dice 1 | Dice 5 | Dice 10 | 3D box Dice |",
                  "|---|---|---|---|---|"]
        for n in names:
            d = np.array(every[n]["dice"])
            lines.append(f"| {n} | {d[:, 0].mean():.3f} | {d[:, min(4, d.shape[1] - 1)].mean():.3f} | "
                         f"{d[:, -1].mean():.3f} | {np.mean(every[n]['box']):.3f} |")
    write_text(out / "README.md", "\n".join(line for line in lines) + "\n")


if __name__ == "__main__":
    main()
