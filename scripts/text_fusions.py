"""Ways to combine the warped atlas label with LiteMedSAM's logits or the scan's intensities (issue 21's question:
can anything beat the warped atlas alone on T1 deep grey?).

For each case of ``scripts/eval_text.py`` (Colin27 <- MNI152 + Harvard-Oxford / + Neuromorphometrics, scored against
Colin27's AAL; MNI152 <- Colin27 + AAL, scored against Harvard-Oxford) and each of its 12 deep and 8 cortical
structures, the warped label (the prior) and LiteMedSAM's full-resolution logits on every axial slice the prior
touches (box of the prior's slice widened 3 px; box alone and box + the prior as mask prompt) are computed once
and cached in ``--cache``; then every rule below is scored:

- ``atlas``: the prior; ``box``, ``box+mask``: the model's mask (``medseg.text.prompting``);
- ``soft sS wW``: W x sigmoid(box+mask logits) + (1 - W) x the prior blurred with a Gaussian of S voxels, > 0.5;
- ``bandD``: the prior eroded D voxels, plus the model's mask in the band up to D voxels outside it;
- ``zsmooth``: the model's probabilities blurred along z (sigma 1 slice), alone and averaged with the soft prior;
- ``em sS rR``: the route's intensity step (``medseg.text.intensity.refine_by_intensity``, no model) with a spatial
  prior blurred by S voxels within the label dilated R voxels; ``em s1 r3 + model^W``: the same with
  sigmoid(box+mask logits)^W as a further likelihood.

Writes ``OUT/fusions.md``. Registration is read from the text cache (``medseg.text.atlas_route.cache_dir``).

    PYTHONPATH=src python scripts/text_fusions.py --out benchmarks/results/text   # ~8 min with cached registrations
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).parent))
from eval_text import CORTICAL, DEEP, dice, truth_mask  # noqa: E402

from medseg.text.intensity import refine_by_intensity  # noqa: E402
from medseg.text.prompting import LOW_RES, low_res_prior, widened_box  # noqa: E402

CASES = (("Colin27 T1 <- MNI152+HO", "colin27", "harvard_oxford"),
         ("Colin27 T1 <- MNI152+NMM", "colin27", "neuromorphometrics"),
         ("MNI152 <- Colin27+AAL", "atlases", "colin27_aal"))
PAD = 8  # voxels kept around the prior and the truth


def full_logits(low: np.ndarray, h: int, w: int) -> np.ndarray:
    """(H, W) bilinear upsampling of the (256, 256) low-res logits' valid part (longest side 256)."""
    scale = LOW_RES / max(h, w)
    sh, sw = max(int(round(h * scale)), 1), max(int(round(w * scale)), 1)
    ys = np.clip((np.arange(h) + 0.5) * sh / h - 0.5, 0, sh - 1)
    xs = np.clip((np.arange(w) + 0.5) * sw / w - 0.5, 0, sw - 1)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, sh - 1), np.minimum(x0 + 1, sw - 1)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    grid = low[:sh, :sw]
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x1] * fx
    bottom = grid[y1][:, x0] * (1 - fx) + grid[y1][:, x1] * fx
    return top * (1 - fy) + bottom * fy


def dump(title: str, dataset: str, pack: str, cache: Path, predictor) -> dict:
    """The case's per-structure crops (prior, truth, image, logits), from ``cache`` or computed."""
    path = cache / f"{pack}.npz"
    if path.is_file():
        with np.load(path) as data:
            return dict(data)
    from medseg.data.loaders import load_labelled
    from medseg.predict.volume import VolumeSession
    from medseg.text.atlas_route import AtlasRoute, load_pack
    from medseg.text.vocabulary import Vocabulary

    case = load_labelled(dataset, None if dataset == "colin27" else ["harvard_oxford"])[0]
    route = AtlasRoute(load_pack(pack))
    truth_vocab = Vocabulary([case.names])
    session = VolumeSession(predictor, progress=False)
    session.set_volume(case.image)
    out = {}
    for name in DEEP + CORTICAL:
        truth = truth_mask(case.labels, truth_vocab, name)
        if truth is None:
            continue
        prior = route.prior(case.image, route.vocabulary.resolve(name))
        zs, ys, xs = np.nonzero(prior | truth)
        lo = np.maximum([zs.min() - PAD, ys.min() - PAD, xs.min() - PAD], 0)
        hi = np.minimum([zs.max() + PAD + 1, ys.max() + PAD + 1, xs.max() + PAD + 1], prior.shape)
        crop = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
        h, w = prior.shape[1:]
        logits = {m: np.full(prior.shape, -20, np.float16)[crop].copy() for m in ("box", "box+mask")}
        for z in np.nonzero(prior.any(axis=(1, 2)))[0]:
            box = widened_box(prior[z], 3.0)
            x0, y0, x1, y1 = (int(round(v)) for v in box)
            for mode in logits:
                prompt = low_res_prior(prior[z]) if mode == "box+mask" else None
                pred = session._decode(int(z), box=box, mask_input=prompt)
                kept = np.full((h, w), -20.0, np.float32)
                kept[y0:y1 + 1, x0:x1 + 1] = full_logits(pred.low_res_logits[0], h, w)[y0:y1 + 1, x0:x1 + 1]
                logits[mode][z - lo[0]] = kept[crop[1], crop[2]]
        key = name.replace(" ", "_")
        out.update({f"{key}/prior": prior[crop], f"{key}/truth": truth[crop], f"{key}/image": case.image.array[crop],
                    f"{key}/box": logits["box"], f"{key}/box+mask": logits["box+mask"]})
        print(f"{title}: {name}", flush=True)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **out)
    return out


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x.astype(np.float32)))


def blurred(prior: np.ndarray, sigma: float) -> np.ndarray:
    return ndimage.gaussian_filter(prior.astype(np.float32), sigma)


def band(prior: np.ndarray, model: np.ndarray, width: int) -> np.ndarray:
    inner = ndimage.binary_erosion(prior, iterations=width)
    return inner | (ndimage.binary_dilation(prior, iterations=width) & model)


def rules():
    yield "atlas", lambda p, b, m, img: p
    yield "box", lambda p, b, m, img: b > 0
    yield "box+mask", lambda p, b, m, img: m > 0
    for s in (0.5, 1.0, 2.0):
        for w in (0.3, 0.5, 0.7):
            yield f"soft s{s:g} w{w:g}", lambda p, b, m, img, s=s, w=w: w * sigmoid(m) + (1 - w) * blurred(p, s) > 0.5
    for d in (1, 2, 3):
        yield f"band{d}", lambda p, b, m, img, d=d: band(p, m > 0, d)
    yield "zsmooth", lambda p, b, m, img: ndimage.gaussian_filter(sigmoid(m), (1.0, 0, 0)) > 0.5
    yield "zsmooth + soft s1", lambda p, b, m, img: (ndimage.gaussian_filter(sigmoid(m), (1.0, 0, 0))
                                                     + blurred(p, 1.0)) / 2 > 0.5
    for s in (0.75, 1.0, 1.5):
        for r in (3, 5):
            yield f"em s{s:g} r{r}", lambda p, b, m, img, s=s, r=r: refine_by_intensity(p, img, s, r)
    for w in (0.25, 0.5, 1.0):
        yield f"em s1 r3 + model^{w:g}", lambda p, b, m, img, w=w: refine_by_intensity(p, img, 1.0, 3,
                                                                                        probability=sigmoid(m),
                                                                                        weight=w)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/medseg_text_fusions"))
    args = parser.parse_args()
    from medseg.cpu import describe_machine
    from medseg.files import write_text
    from medseg.predict.predictor import load_predictor

    predictor = load_predictor()
    scores: dict[str, dict[str, dict[str, float]]] = {}
    for title, dataset, pack in CASES:
        data = dump(title, dataset, pack, args.cache, predictor)
        for key in sorted({k.split("/")[0] for k in data}):
            p, t, img = data[f"{key}/prior"], data[f"{key}/truth"], data[f"{key}/image"]
            b, m = data[f"{key}/box"], data[f"{key}/box+mask"]
            for name, rule in rules():
                scores.setdefault(name, {}).setdefault(title, {})[key.replace("_", " ")] = dice(rule(p, b, m, img), t)
    titles = [c[0] for c in CASES]
    lines = ["# Text prompts: the warped atlas combined with LiteMedSAM or the scan's intensities (mean Dice)", "",
             f"`scripts/text_fusions.py` (rules in its docstring). Machine: {describe_machine()}.", "",
             "| rule | " + " | ".join(f"{t}, deep" for t in titles) + " | all deep (36) | all cortical (24) |",
             "|---|" + "---|" * (len(titles) + 2)]
    for name, by_case in scores.items():
        deep = [np.mean([v for k, v in by_case[t].items() if k in DEEP]) for t in titles]
        all_deep = np.mean([v for t in titles for k, v in by_case[t].items() if k in DEEP])
        all_cortical = np.mean([v for t in titles for k, v in by_case[t].items() if k in CORTICAL])
        cells = " | ".join(f"{v:.3f}" for v in deep)
        lines.append(f"| {name} | {cells} | {all_deep:.3f} | {all_cortical:.3f} |")
    args.out.mkdir(parents=True, exist_ok=True)
    write_text(args.out / "fusions.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
