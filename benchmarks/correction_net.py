"""3D corrections by a correction network (``VolumeSession.correction_net``) against the shipped rules.

Per held-out structure and lesion (``interactive_eval.CASES3D``; the Harvard-Oxford clicks with the Colin27 + AAL
pack, as there): the shipped session answers ten CVPR25 clicks (the first at the deepest voxel, then each at the
deepest voxel of the largest error); then, from the same first-click object, clicks 2-10 are answered by the
network instead (``medseg.predict.correct3d.corrected``, the scan, the object's mask and every click so far).
Dice per click for both.

    PYTHONPATH=src .venv/bin/python benchmarks/correction_net.py --net correction3d.pt --encodes DIR --out J

The network file: ``scripts/train_correction3d.py``'s output (config + state_dict).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from interactive_eval import ATLAS_PACK, CASES3D, load  # noqa: E402

from medseg.build import load_correction_net  # noqa: E402
from medseg.data.loaders import load_labelled  # noqa: E402
from medseg.evaluate.protocols import cvpr25_click  # noqa: E402
from medseg.predict.correct3d import corrected  # noqa: E402
from medseg.predict.volume import VolumeSession  # noqa: E402


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / max(a.sum() + b.sum(), 1))


def session_for(p, name: str, image) -> VolumeSession:
    session = VolumeSession(p, progress=False)
    session.set_volume(image, "auto")
    if name in ATLAS_PACK:
        from medseg.text.atlas_route import AtlasRoute
        from medseg.text.routes import Router

        session.text_router = Router([AtlasRoute(ATLAS_PACK[name])])
    return session


def shipped(session: VolumeSession, truth: np.ndarray, clicks: int) -> tuple[list[float], np.ndarray]:
    """Dice after each of ``clicks`` CVPR25 clicks answered by the session's rules; the mask after the first."""
    mask, label, out, first = np.zeros_like(truth), None, [], None
    for _ in range(clicks):
        (x, y, z), positive = cvpr25_click(mask, truth)
        if label is None:
            label = session.add_point(x, y, z, new_object=True)
        else:
            session.add_point(x, y, z, positive=positive, obj=label)
        mask = session.object_mask(label).astype(bool)
        out.append(dice(mask, truth))
        first = mask.copy() if first is None else first
    return out, first


def by_network(net, volume, first: np.ndarray, truth: np.ndarray, clicks: int) -> list[float]:
    """Dice after each click when clicks 2.. are answered by ``net`` from the first click's object."""
    (x, y, z), _ = cvpr25_click(np.zeros_like(truth), truth)
    points, mask, out = [(z, y, x, True)], first, [dice(first, truth)]
    for _ in range(clicks - 1):
        click = cvpr25_click(mask, truth)
        if click is not None:
            (x, y, z), positive = click
            points.append((z, y, x, positive))
            mask = corrected(net, volume, mask, points)
        out.append(dice(mask, truth))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--net", type=Path, required=True)
    ap.add_argument("--encodes", type=Path, help="folder keeping slice embeddings between runs")
    ap.add_argument("--clicks", type=int, default=10)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    net, p = load_correction_net(args.net), load("litemedsam", None, {}, "auto", args.encodes)
    rows = []
    for dataset, case, labels in CASES3D:
        found = load_labelled(dataset, [case])[0]
        name = f"{dataset}/{case}"
        session = session_for(p, name, found.image)
        for label in labels:
            truth = found.labels == label
            session.reset()
            rules, first = shipped(session, truth, args.clicks)
            network = by_network(net, session._volume().data, first, truth, args.clicks)
            rows.append({"case": name, "label": label, "rules": rules, "network": network})
            print(f"{name} {label}: rules {rules[0]:.3f} / {rules[4]:.3f} / {rules[-1]:.3f}, network "
                  f"{network[4]:.3f} / {network[-1]:.3f}", flush=True)
            args.out.write_text(json.dumps({"net": str(args.net), "rows": rows}, indent=1))
    for group, keep in (("lesions", lambda r: r["case"].startswith("pyradiomics")),
                        ("11 held-out structures", lambda r: not r["case"].startswith("pyradiomics"))):
        sel = [r for r in rows if keep(r)]
        for key in ("rules", "network"):
            curve = np.mean([r[key] for r in sel], 0)
            print(f"{group} ({len(sel)}) {key}: one / three / five / ten {curve[0]:.3f} / {curve[2]:.3f} / "
                  f"{curve[4]:.3f} / {curve[-1]:.3f}")


if __name__ == "__main__":
    main()
