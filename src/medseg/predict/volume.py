"""3D promptable segmentation: one prompt per structure, propagated through the volume, with clicks to
correct any slice and undo.

Coordinates are voxel indices in ITK order (x, y, z): x = column, y = row, z = slice, i.e.
``array[z, y, x]``. Box corners are inclusive. Each slice is encoded at most once while its embedding
stays in the cache (see EmbeddingCache); prompts, corrections and further objects on encoded slices
cost decoder time only.

Objects get labels 1, 2, ... in the order they are added. Overlap rule: where objects overlap, the
later object wins (as in ``segment_2d``).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

import numpy as np
from tqdm import tqdm

from medseg.errors import MedsegError
from medseg.io.image import Geometry, Image
from medseg.predict import propagate as prop
from medseg.predict.embedding_cache import DEFAULT_BUDGET_MIB, EmbeddingCache
from medseg.predict.predictor import Prediction, Predictor
from medseg.predict.propagate import Propagation, SliceResult, Track
from medseg.predict.segment import windowed
from medseg.preprocess.window import WindowChoice
from medseg.prompts import Box, Box3D, Point, check_box, check_point, check_slice, clip_box3d


def _empty() -> MappingProxyType:
    return MappingProxyType({})


@dataclass(frozen=True, eq=False)
class ObjectState:
    """One object of the session (never mutated; every action builds a new one).

    Attributes:
        label: value of the object in the label map.
        kind: "box3d", "box" (2D box, propagated or not) or "point".
        seed_z: slice the first prompt was given on.
        track: z-range and xy limits propagation may use.
        propagation: the rule this object propagates with.
        ref_area: pixels of the seed mask (the stop rule's reference).
        slices: z -> SliceResult, raw per-slice results (propagation and corrections).
        clicks: z -> correction clicks on that slice, in order.
        masks: z -> (H, W) bool, the final masks after the connectivity rule.
    """

    label: int
    kind: str
    seed_z: int
    track: Track
    propagation: Propagation
    ref_area: int
    slices: MappingProxyType = field(default_factory=_empty)
    clicks: MappingProxyType = field(default_factory=_empty)
    masks: MappingProxyType = field(default_factory=_empty)

    @property
    def z_range(self) -> tuple[int, int] | None:
        zs = list(self.masks)
        return (min(zs), max(zs)) if zs else None


@dataclass(frozen=True, eq=False)
class VolumeState:
    """All objects of a session; the undo history is a list of these."""

    objects: tuple[ObjectState, ...] = ()
    next_label: int = 1


@dataclass
class _Volume:
    data: np.ndarray  # (z, y, x) uint8-range windowed volume
    window: WindowChoice
    history: list[VolumeState] = field(default_factory=list)


class VolumeSession:
    """Segment structures of one volume from 3D boxes, 2D boxes or points, and correct them.

    Example:
        >>> s = VolumeSession(build_model())
        >>> s.set_volume(read_image("ch2.nii.gz"))
        >>> s.add_box3d(60, 100, 50, 80, 130, 80)     # x0, y0, z0, x1, y1, z1 (inclusive)
        >>> s.add_point(70, 115, 66, positive=False)   # correct slice 66 of that object
        >>> s.undo(); s.mask.shape                     # (z, y, x) uint8 label map

    Args:
        predictor_or_model: a Predictor, or a model to wrap in one.
        propagation: "default", "baseline" or a Propagation; objects may override it.
        budget_mib: memory budget of the embedding cache in MiB (4 MiB per LiteMedSAM slice).
        progress: show a tqdm bar over slices on stderr.
    """

    def __init__(self, predictor_or_model: Any, propagation: str | Propagation = "default",
                 budget_mib: float = DEFAULT_BUDGET_MIB, progress: bool = False) -> None:
        is_predictor = isinstance(predictor_or_model, Predictor)
        self.predictor = predictor_or_model if is_predictor else Predictor(predictor_or_model)
        self.propagation = prop.config(propagation)
        self.budget_mib = budget_mib
        self.progress = progress
        self.cache = EmbeddingCache(self._encode, budget_mib)
        self.state = VolumeState()
        self.messages: list[str] = []
        self._vol: _Volume | None = None

    # ----- volume and cache -------------------------------------------------------------------------
    def set_volume(self, image: Image | np.ndarray, window: str = "auto") -> WindowChoice:
        """Window a (z, y, x) volume to 0..255 and start afresh (clears objects, history and cache)."""
        if isinstance(image, np.ndarray):
            image = Image(image, Geometry.identity(3))
        if not image.is_volume:
            raise MedsegError("VolumeSession needs a 3D volume; use segment_2d for 2D images")
        data, choice = windowed(image, window)
        self._vol = _Volume(data, choice)
        self.cache = EmbeddingCache(self._encode, self.budget_mib)
        self.state = VolumeState()
        self.messages = []
        return choice

    @property
    def shape(self) -> tuple[int, int, int]:
        """(z, y, x) of the volume."""
        return tuple(self._volume().data.shape)

    @property
    def encodes(self) -> int:
        return self.cache.encodes

    def _volume(self) -> _Volume:
        if self._vol is None:
            raise RuntimeError("call set_volume() first")
        return self._vol

    def _encode(self, z: int):
        self.predictor.set_image(self._volume().data[z])
        return self.predictor.embedding

    def _decode(self, z: int, **prompts) -> Prediction:
        self.predictor.set_embedding(self.cache.get(z), self.shape[1:])
        return self.predictor.predict(**prompts)

    # ----- results ----------------------------------------------------------------------------------
    @property
    def mask(self) -> np.ndarray:
        """(z, y, x) uint8 label map; object k has label k, later objects win where they overlap."""
        labels = np.zeros(self.shape, np.uint8)
        for obj in self.state.objects:
            for z, m in obj.masks.items():
                labels[z][m] = obj.label
        return labels

    def object_mask(self, label: int) -> np.ndarray:
        """(z, y, x) bool mask of one object, before the overlap rule."""
        out = np.zeros(self.shape, bool)
        for z, m in self._object(label).masks.items():
            out[z] = m
        return out

    def _object(self, label: int) -> ObjectState:
        for obj in self.state.objects:
            if obj.label == label:
                return obj
        raise MedsegError(f"no object with label {label}; labels are {[o.label for o in self.state.objects]}")

    # ----- prompts ----------------------------------------------------------------------------------
    def add_box3d(self, x0: float, y0: float, z0: int, x1: float, y1: float, z1: int,
                  propagation: str | Propagation | None = None) -> int:
        """A new object inside a 3D box (inclusive voxel corners); returns its label.

        A box partly outside the volume is clipped (the note lands in ``messages``); an inverted,
        zero-extent or fully outside box raises MedsegError.
        """
        box, note = clip_box3d(Box3D(x0, y0, int(z0), x1, y1, int(z1)), self.shape)
        if note:
            self.messages.append(note)
        xy = box.box2d().as_array()
        cfg = prop.config(propagation or self.propagation)
        zm = (box.z0 + box.z1) // 2
        track = Track(box.z0, box.z1, limits=xy, fallback=xy, bounded=True)
        seed = prop.result_of(self._decode(zm, box=xy), xy, xy if cfg.method == "default" else None, best=0)
        return self._new_object("box3d", zm, track, cfg, seed)

    def add_box(self, z: int, box: tuple[float, float, float, float], propagate: bool = True,
                propagation: str | Propagation | None = None) -> int:
        """A new object from a 2D box (x0, y0, x1, y1) on slice z; with propagate, followed up and
        down until the structure ends. Returns its label."""
        depth, h, w = self.shape
        check_slice(int(z), depth)
        check_box(Box(*box, z=int(z)), (h, w))
        xy = np.asarray(box, np.float32)
        cfg = prop.config(propagation or self.propagation)
        track = Track(0, depth - 1) if propagate else Track(int(z), int(z))
        seed = prop.result_of(self._decode(int(z), box=xy), xy, best=0)
        return self._new_object("box", int(z), track, cfg, seed)

    def add_point(self, x: float, y: float, z: int, positive: bool = True, obj: int | None = None,
                  new_object: bool = False, propagate: bool = True,
                  propagation: str | Propagation | None = None) -> int:
        """A click at voxel (x, y, z).

        Without objects (or with new_object=True) a positive click starts a new object, segmented in 3D:
        multimask output on its slice, the best mask by predicted IoU, then propagation up and down.
        Otherwise it corrects object ``obj`` (default: the latest): slice z is re-segmented from all
        clicks on it, its box and its previous logits, and the slices beyond it (away from the seed) are
        propagated again. ``propagate=False`` keeps a new object on its slice. Returns the object's label.
        """
        depth, h, w = self.shape
        check_slice(int(z), depth)
        point = Point(float(x), float(y), int(z), positive)
        check_point(point, (h, w))
        if new_object or not self.state.objects:
            if not positive:
                raise MedsegError(f"a new object needs a positive point; {x:g},{y:g},{z} is negative")
            return self._point_object(point, prop.config(propagation or self.propagation), propagate)
        return self._correct(self._object(obj if obj is not None else self.state.objects[-1].label), point)

    def undo(self) -> bool:
        """Return to the state before the last action; False when there is nothing to undo."""
        history = self._volume().history
        if not history:
            return False
        self.state = history.pop()
        return True

    def reset(self) -> None:
        """Drop every object (undoable); the embedding cache is kept."""
        self._commit(VolumeState())

    # ----- internals --------------------------------------------------------------------------------
    def _commit(self, state: VolumeState) -> None:
        self._volume().history.append(self.state)
        self.state = state

    def _point_object(self, point: Point, cfg: Propagation, propagate: bool = True) -> int:
        z = int(point.z)
        pred = self._decode(z, points=np.array([[point.x, point.y]], np.float32), point_labels=np.array([1]),
                            multimask=True)
        seed = prop.result_of(pred, None)
        if seed.area:
            seed = replace(seed, box=prop.widened_box(seed.mask, 0))
        track = Track(0, self.shape[0] - 1) if propagate else Track(z, z)
        return self._new_object("point", z, track, cfg, seed, clicks={z: (point,)})

    def _new_object(self, kind: str, z: int, track: Track, cfg: Propagation, seed: SliceResult,
                    clicks: dict[int, tuple[Point, ...]] | None = None) -> int:
        label = self.state.next_label
        if label > 255:
            raise MedsegError("255 objects exceed the labels of a uint8 mask")
        obj = ObjectState(label, kind, z, track, cfg, max(seed.area, 1), MappingProxyType({z: seed}),
                          MappingProxyType(clicks or {}))
        obj = self._run(obj, z, (1, -1))
        self._commit(VolumeState(self.state.objects + (obj,), label + 1))
        return label

    def _correct(self, obj: ObjectState, point: Point) -> int:
        z = int(point.z)
        clicks = dict(obj.clicks)
        clicks[z] = clicks.get(z, ()) + (point,)
        current = obj.slices.get(z)
        neighbour = obj.slices.get(z - 1 if z > obj.seed_z else z + 1)
        base = current or neighbour
        box = base.box if current is not None else (prop.widened_box(base.mask, 3) if base is not None else None)
        box = prop.with_clicks(box, clicks[z])
        pts, labels = prop.click_arrays(clicks[z])
        prior = base.logits if base is not None else None
        pred = self._decode(z, box=box, points=pts, point_labels=labels, mask_input=prior)
        res = prop.result_of(pred, box, obj.track.limits, best=0)
        slices = dict(obj.slices)
        slices[z] = res
        obj = replace(obj, slices=MappingProxyType(slices), clicks=MappingProxyType(clicks))
        if z == obj.seed_z:
            directions: tuple[int, ...] = (1, -1)
        else:
            directions = (1,) if z > obj.seed_z else (-1,)
        if not obj.track.z_lo <= z <= obj.track.z_hi:
            directions = ()
        obj = self._run(obj, z, directions)
        objects = tuple(obj if o.label == obj.label else o for o in self.state.objects)
        self._commit(replace(self.state, objects=objects))
        return obj.label

    def _run(self, obj: ObjectState, z: int, directions: tuple[int, ...]) -> ObjectState:
        """Propagate from slice z in the given directions, replacing what lay beyond z there."""
        slices = dict(obj.slices)
        track = obj.track
        total = sum((track.z_hi - z) if d > 0 else (z - track.z_lo) for d in directions)
        bar = tqdm(total=total if track.bounded else None, unit="slice", file=sys.stderr, leave=False,
                   disable=not self.progress, desc=f"object {obj.label}")
        try:
            for d in directions:
                for k in [k for k in slices if (k - z) * d > 0]:
                    del slices[k]
                if slices[z].area == 0 and not track.bounded:
                    continue
                for zz, res in self._walk(obj, z, slices[z], d):
                    slices[zz] = res
                    bar.update(1)
        finally:
            bar.close()
        return replace(obj, slices=MappingProxyType(slices), masks=MappingProxyType(self._final(obj, slices)))

    def _walk(self, obj: ObjectState, z: int, start: SliceResult, d: int) -> Iterator[tuple[int, SliceResult]]:
        return prop.propagate(self._decode, z, start, d, obj.track, obj.propagation, obj.ref_area, obj.clicks)

    def _final(self, obj: ObjectState, slices: dict[int, SliceResult]) -> dict[int, np.ndarray]:
        masks = {z: r.mask for z, r in slices.items() if r.area}
        if not obj.propagation.keep_connected:
            return masks
        seeds = [(z, int(y), int(x)) for z, pts in obj.clicks.items() for p in pts if p.positive
                 for x, y in [(round(p.x), round(p.y))]]
        seed = slices.get(obj.seed_z)
        if seed is not None and seed.area:
            ys, xs = np.nonzero(seed.mask)
            seeds += [(obj.seed_z, int(y), int(x)) for y, x in zip(ys[::7], xs[::7], strict=True)]
        return prop.keep_connected(masks, seeds)
