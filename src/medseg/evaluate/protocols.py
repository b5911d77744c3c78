"""Prompting protocols from the literature, driven by prompts simulated from the ground truth.

* ``box2d`` (MedSAM, SAM-Med2D): a tight box per slice per structure (optionally one per instance),
  each side moved by a uniform integer jitter in [-jitter, jitter] pixels.
* ``box3d`` (CVPR24 "SAM on laptop"): one tight 3D box per structure; DSC, and NSD at 2 mm counted
  only where DSC > 0.2 (0 otherwise).
* ``interactive`` (CVPR25 "foundation models for interactive 3D segmentation"): an optional 3D box,
  then clicks, each at the maximum of the Euclidean distance transform of the largest connected error
  component, positive when it falls inside the structure; DSC/NSD after every step, AUC over the
  click steps (trapezoid, unit step, so 5 clicks give a value in 0..4) and the final DSC/NSD.
* ``sammed3d`` (SAM-Med3D): the first click uniform inside the structure, each later click uniform
  inside the error region (positive if it is a false negative).

Coordinates handed to models are voxel indices (x, y, z); arrays are (z, y, x). All randomness comes
from the ``rng`` passed in (seeded per case by the runner), so runs are reproducible.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from medseg.errors import MedsegError
from medseg.evaluate.metrics import score
from medseg.io.image import Image

PROTOCOLS = ("box2d", "box3d", "interactive", "sammed3d")


@dataclass(frozen=True)
class ProtocolConfig:
    """Settings of one protocol run (stored in the run folder; a resumed run must match them)."""

    protocol: str
    seed: int = 0
    jitter: int = 0  # box2d: pixels
    clicks: int = 5  # interactive / sammed3d
    with_box: bool = True  # interactive: start from a 3D box
    nsd_tolerance: float = 2.0
    nsd_min_dice: float = 0.2  # 3D protocols: NSD counted only when DSC exceeds this
    slices: int = 0  # box2d on volumes: 0 = every slice (3D scores), N = N slices scored in 2D
    window: str = "auto"
    click_atlas: bool = True  # interactive / sammed3d: a first click on a deep grey structure takes the atlas's
    atlas_pack: str = ""  # the atlas route's pack for text and clicks ("": medseg.text's default)
    planes: int = 1  # 3 = objects and their corrections along three axes on near-isotropic volumes (predict.planes)
    refine: bool = True  # 3D objects' borders drawn again by the scan's edges (medseg.predict.refine)
    correction_net: bool = True  # 3D: refused negative corrections answered by medseg's correction network


@dataclass
class CaseOutput:
    """Rows (one per scored structure) and the predicted label map on the image grid."""

    rows: list[dict]
    prediction: np.ndarray


# ----- prompt simulation (pure numpy) ---------------------------------------------------------------
def jittered_box(mask: np.ndarray, jitter: int, rng: np.random.Generator) -> np.ndarray | None:
    """(x0, y0, x1, y1) tight box of a (H, W) mask, sides moved by up to ``jitter`` px; None if empty."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    box = np.array([xs.min(), ys.min(), xs.max(), ys.max()], float)
    if jitter > 0:
        box += rng.integers(-jitter, jitter + 1, size=4)
    h, w = mask.shape
    box = np.clip(box, 0, [w - 1, h - 1, w - 1, h - 1])
    box[2], box[3] = max(box[2], box[0]), max(box[3], box[1])
    return box.astype(np.float32)


def box3d_of(mask: np.ndarray) -> tuple[int, int, int, int, int, int]:
    """Tight inclusive box (x0, y0, z0, x1, y1, z1) of a non-empty (z, y, x) mask."""
    zs, ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(zs.min()), int(xs.max()), int(ys.max()), int(zs.max())


# how cvpr25_click picks a voxel, kept in an interactive run's config.json (medseg.evaluate.runner)
CVPR25_CLICK_RULE = "CVPR25_iter_eval: 26-connected errors, ties picked by numpy seeded 42"


def cvpr25_click(pred: np.ndarray, gt: np.ndarray) -> tuple[tuple[int, ...], bool] | None:
    """Next click: the voxel deepest inside (max EDT, voxel units) the largest connected error component.

    As the challenge's own code (CVPR25_iter_eval.py) does it: components are 26-connected (8 in 2D), the image
    border counts as the component's boundary, and among equally deep voxels (a lesion on three thick slices has
    hundreds) the one numpy's generator seeded 42 picks from their list in (z, y, x) order, not the first of them.

    Returns:
        ((x, y[, z]) voxel index in ITK order, positive) or None when prediction equals ground truth.
    """
    error = pred != gt
    if not error.any():
        return None
    components, _ = ndimage.label(error, structure=np.ones((3,) * error.ndim, bool))
    sizes = np.bincount(components.ravel())
    sizes[0] = 0
    largest = components == int(np.argmax(sizes))
    depth = ndimage.distance_transform_edt(np.pad(largest, 1))[(slice(1, -1),) * largest.ndim]
    deepest = np.argwhere(depth == depth.max())
    index = tuple(int(v) for v in deepest[np.random.RandomState(42).choice(len(deepest))])
    return tuple(reversed(index)), bool(gt[index])


def sammed3d_click(pred: np.ndarray | None, gt: np.ndarray,
                   rng: np.random.Generator) -> tuple[tuple[int, ...], bool] | None:
    """Next click: uniform in the structure (first click, pred None) or in the error region."""
    region = gt if pred is None else pred != gt
    candidates = np.argwhere(region)
    if len(candidates) == 0:
        return None
    index = tuple(candidates[int(rng.integers(len(candidates)))])
    return tuple(int(v) for v in reversed(index)), bool(gt[index])


# ----- protocols ------------------------------------------------------------------------------------
def run_case(protocol: str, predictor, image: Image, gt: np.ndarray, labels: list[int], cfg: ProtocolConfig,
             rng: np.random.Generator, instances: np.ndarray | None = None) -> CaseOutput:
    """Run one protocol on one case; structures absent from ``gt`` are skipped.

    3D protocols share one slice-embedding cache across the case's structures; a row's ``encodes``
    counts the slices newly encoded for that structure (so its ``seconds`` exclude cached slices).
    """
    labels = [lab for lab in labels if (gt == lab).any()]
    if protocol == "box2d":
        return box2d(predictor, image, gt, labels, cfg, rng, instances)
    if not image.is_volume:
        raise MedsegError(f"protocol {protocol} needs 3D volumes; {image.path} is 2D (use --protocol box2d)")
    from medseg.predict.volume import VolumeSession

    session = VolumeSession(predictor, progress=False)
    session.set_volume(image, cfg.window)
    session.click_atlas = cfg.click_atlas
    session.planes = cfg.planes
    session.refine = cfg.refine
    session.correction_net = "packaged" if cfg.correction_net else None
    if cfg.atlas_pack:
        from medseg.text.atlas_route import AtlasRoute
        from medseg.text.routes import Router

        session.text_router = Router([AtlasRoute(cfg.atlas_pack)])
    runner = {"box3d": _box3d, "interactive": _interactive, "sammed3d": _sammed3d}.get(protocol)
    if runner is None:
        raise MedsegError(f"unknown protocol '{protocol}'; choose from {', '.join(PROTOCOLS)}")
    prediction = np.zeros(gt.shape, np.uint8)
    rows = []
    for label in labels:
        session.reset()
        before = session.encodes  # the embedding cache is shared by the case's structures
        row, mask = runner(session, gt == label, image.geometry.spacing, cfg, rng)
        prediction[mask] = label
        rows.append({"label": label, **row, "encodes": session.encodes - before})
    return CaseOutput(rows, prediction)


def _gated(mask: np.ndarray, truth: np.ndarray, spacing, cfg: ProtocolConfig) -> dict:
    s = score(mask, truth, spacing, cfg.nsd_tolerance)
    nsd = s.nsd if s.dice > cfg.nsd_min_dice else 0.0
    return {"dice": s.dice, "nsd": nsd, "hd95": s.hd95}


def _box3d(session, truth, spacing, cfg, rng) -> tuple[dict, np.ndarray]:
    start = time.perf_counter()
    obj = session.add_box3d(*box3d_of(truth))
    mask = session.object_mask(obj)
    seconds = time.perf_counter() - start
    return {**_gated(mask, truth, spacing, cfg), "seconds": seconds}, mask


def _steps_row(steps: list[dict], n_clicks: int) -> dict:
    clicks = steps[-n_clicks:] if n_clicks else []
    auc = {}
    for key in ("dice", "nsd"):
        values = [s[key] for s in clicks]
        auc[f"{key}_auc"] = float(np.trapezoid(values)) if len(values) > 1 else None
    final = steps[-1]
    return {"dice": final["dice"], "nsd": final["nsd"], "hd95": final["hd95"], **auc,
            "seconds": float(sum(s["seconds"] for s in steps)), "steps": steps}


def _click_loop(session, truth, spacing, cfg, rng, next_click, obj: int | None, mask, steps) -> np.ndarray:
    for i in range(cfg.clicks):
        click = next_click(mask, truth, rng)
        if click is None:  # perfect already: the score stays
            steps.append({**steps[-1], "step": f"click{i + 1}", "seconds": 0.0})
            continue
        (x, y, z), positive = click
        start = time.perf_counter()
        if obj is None:
            obj = session.add_point(x, y, z, positive=True, new_object=True)
        else:
            session.add_point(x, y, z, positive=positive, obj=obj)
        mask = session.object_mask(obj)
        seconds = time.perf_counter() - start
        steps.append({"step": f"click{i + 1}", "point": [x, y, z], "positive": positive,
                      **_gated(mask, truth, spacing, cfg), "seconds": seconds})
    return mask


def _interactive(session, truth, spacing, cfg, rng) -> tuple[dict, np.ndarray]:
    steps: list[dict] = []
    obj, mask = None, np.zeros_like(truth)
    if cfg.with_box:
        start = time.perf_counter()
        obj = session.add_box3d(*box3d_of(truth))
        mask = session.object_mask(obj)
        steps.append({"step": "box", **_gated(mask, truth, spacing, cfg), "seconds": time.perf_counter() - start})
    mask = _click_loop(session, truth, spacing, cfg, rng, lambda m, t, _r: cvpr25_click(m, t), obj, mask, steps)
    return _steps_row(steps, cfg.clicks), mask


def _sammed3d(session, truth, spacing, cfg, rng) -> tuple[dict, np.ndarray]:
    steps: list[dict] = []
    first = [True]

    def next_click(mask, t, r):
        pred = None if first[0] else mask
        first[0] = False
        return sammed3d_click(pred, t, r)

    mask = _click_loop(session, truth, spacing, cfg, rng, next_click, None, np.zeros_like(truth), steps)
    return _steps_row(steps, cfg.clicks), mask


def box2d(predictor, image: Image, gt: np.ndarray, labels: list[int], cfg: ProtocolConfig,
          rng: np.random.Generator, instances: np.ndarray | None = None) -> CaseOutput:
    """Tight (jittered) box per slice per structure, one per instance if ``instances`` is given.

    Volumes are scored in 3D per structure when every slice is prompted (cfg.slices == 0); with
    cfg.slices = N, N slices spread over the structures' extent are prompted and each is scored in 2D
    (rows get ``"slice": z``). A volume's slices are encoded ahead on the engine's lanes
    (``medseg.predict.read_ahead``), so a slice's seconds are the wait for its embedding plus its prompts.
    """
    from medseg.predict.segment import windowed

    data, _ = windowed(image, cfg.window)
    volume = image.is_volume
    gt3, data3 = (gt, data) if volume else (gt[None], data[None])
    inst3 = None if instances is None else (instances if volume else instances[None])
    zs = [z for z in range(gt3.shape[0]) if np.isin(gt3[z], labels).any()]
    if volume and cfg.slices:
        zs = [zs[int(i)] for i in np.unique(np.linspace(0, len(zs) - 1, cfg.slices).round())] if zs else []
    prediction = np.zeros(gt3.shape, np.uint8)
    per_label = {lab: np.zeros(gt3.shape, bool) for lab in labels}
    seconds: dict[int, float] = {}  # per slice: waiting for its embedding, then its prompts
    ahead = predictor.read_ahead(zs, data3.__getitem__) if len(zs) > 1 and hasattr(predictor, "read_ahead") else None
    try:
        for z in zs:
            start = time.perf_counter()
            if ahead is None:
                predictor.set_image(data3[z])
            else:
                predictor.set_embedding(ahead.take(z), data3[z].shape[:2])
            seconds[z] = time.perf_counter() - start
            for lab in labels:
                t0 = time.perf_counter()
                per_label[lab][z] = _box2d_slice(predictor, gt3[z] == lab, None if inst3 is None else inst3[z],
                                                 cfg.jitter, rng)
                seconds[z] += time.perf_counter() - t0
                prediction[z][per_label[lab][z]] = lab
    finally:
        if ahead is not None:
            ahead.close()
    rows = _box2d_rows(per_label, gt3, zs, image, cfg, seconds, inst3)
    return CaseOutput(rows, prediction if volume else prediction[0])


def _box2d_slice(predictor, truth: np.ndarray, instances: np.ndarray | None, jitter: int,
                 rng: np.random.Generator) -> np.ndarray:
    if not truth.any():
        return np.zeros_like(truth)
    ids = [0] if instances is None else [int(i) for i in np.unique(instances[truth]) if i != 0]
    parts = [truth if instances is None else truth & (instances == i) for i in ids]
    boxes = [b for b in (jittered_box(p, jitter, rng) for p in parts) if b is not None]
    masks = predictor.predict_boxes(np.stack(boxes))
    return masks.any(axis=0)


def _box2d_rows(per_label, gt3, zs, image: Image, cfg: ProtocolConfig, seconds, inst3) -> list[dict]:
    spacing = image.geometry.spacing
    slice_rows = bool(image.is_volume and cfg.slices)
    rows = []
    for lab, pred in per_label.items():
        truth = gt3 == lab
        if not slice_rows:
            zs_lab = [z for z in zs if truth[z].any()]
            p, t = (pred, truth) if image.is_volume else (pred[0], truth[0])
            s = score(p, t, spacing, cfg.nsd_tolerance)
            row = {"label": lab, **s.as_dict(), "slices": len(zs_lab),
                   "seconds": float(sum(seconds[z] for z in zs_lab))}
            if inst3 is not None:
                row["instances"] = int(len(np.unique(inst3[truth])))
            rows.append(row)
            continue
        for z in zs:
            if truth[z].any():
                s = score(pred[z], truth[z], spacing[:2], cfg.nsd_tolerance)
                rows.append({"label": lab, "slice": z, **s.as_dict(), "seconds": seconds[z]})
    return rows
