"""3D promptable segmentation: one prompt per structure, propagated through the volume, with clicks to
correct any slice and undo.

Coordinates are voxel indices in ITK order (x, y, z): x = column, y = row, z = slice, i.e.
``array[z, y, x]``. Box corners are inclusive. Each slice is encoded at most once while its embedding
stays in the cache (see EmbeddingCache); prompts, corrections and further objects on encoded slices
cost decoder time only.

Objects get labels 1, 2, ... in the order they are added. Overlap rule: where objects overlap, the
later object wins (as in ``segment_2d``).

This file holds the session and how it makes new objects; correction clicks are answered in
``medseg.predict.volume_corrections`` (the session's base class), and the objects' state lives in
``medseg.predict.volume_state``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

import numpy as np
from tqdm import tqdm

from medseg.errors import MedsegError
from medseg.io.image import Geometry, Image
from medseg.predict import propagate as prop
from medseg.predict.click import choices, empty_result, segment_click
from medseg.predict.correct import FollowMemo
from medseg.predict.embedding_cache import DEFAULT_BUDGET_MIB, EmbeddingCache
from medseg.predict.extent import (
    Plane,
    beside,
    box_from_planes,
    deepest_pixel,
    extent,
    familiar_range,
    joint_ranking,
    median_box,
    planes,
)
from medseg.predict.planes import AXES, majority, near_isotropic, on_volume, side_objects, transposed
from medseg.predict.predictor import Prediction, Predictor
from medseg.predict.propagate import Propagation, SliceResult, Track
from medseg.predict.refine import refined
from medseg.predict.segment import window_for
from medseg.predict.volume_corrections import Corrections
from medseg.predict.volume_state import (
    ObjectState,
    VolumeState,
    empty_mapping,
    holds_point,
    mask_slices,
    slices_track,
    walk_order,
)
from medseg.predict.zoom import TINY, Crop, Zoomed, crop_for, holds
from medseg.predict.zoom import decode as zoomed_decode
from medseg.preprocess.window import WindowChoice, WindowedVolume
from medseg.prompts import Box, Box3D, Point, check_box, check_point, check_slice, clip_box3d
from medseg.validate import coordinates, number

# the objects whose border a random walker draws again once segmented (medseg.predict.refine): a lone click's, a 3D
# box's and a propagated 2D box's, by the default propagation rule
REFINED = ("point", "box3d", "box")
# a lone click's readings kept for later negative clicks (VolumeSession._rechosen, medseg.predict.volume_corrections)
HYPOTHESES = 30


@dataclass
class _Volume:
    data: WindowedVolume  # (z, y, x), windowed to 0..255 as slices are read
    window: WindowChoice
    spacing: tuple[float, float, float]  # ITK order (x, y, z)
    history: list[VolumeState] = field(default_factory=list)


class VolumeSession(Corrections):
    """Segment structures of one volume from 3D boxes, 2D boxes or points, and correct them.

    Example:
        >>> s = VolumeSession(build_model())
        >>> s.set_volume(read_image("ch2.nii.gz"))
        >>> s.add_box3d(60, 100, 50, 80, 130, 80)     # x0, y0, z0, x1, y1, z1 (inclusive)
        >>> s.add_point(70, 115, 66, positive=False)   # correct slice 66 of that object
        >>> s.undo(); s.mask.shape                     # (z, y, x) uint8 label map

    Args:
        predictor_or_model: a Predictor, or a model to wrap in one; None: ``litemedsam-interactive``, whose
            decoder was trained for clicks and corrections (``Predictor.click_trained``).
        propagation: "default", "baseline" or a Propagation; objects may override it.
        budget_mib: memory budget of the embedding cache in MiB (4 MiB per LiteMedSAM slice).
        progress: show a tqdm bar over slices on stderr.
    """

    def __init__(self, predictor_or_model: Any = None, propagation: str | Propagation = "default",
                 budget_mib: float = DEFAULT_BUDGET_MIB, progress: bool = False) -> None:
        if predictor_or_model is None:  # clicks first: the click-trained model (medseg.registry.CLICK_MODEL)
            from medseg.predict.predictor import load_predictor
            from medseg.registry import CLICK_MODEL

            predictor_or_model = load_predictor(CLICK_MODEL)
        is_predictor = isinstance(predictor_or_model, Predictor)
        self.predictor = predictor_or_model if is_predictor else Predictor(predictor_or_model)
        self.propagation = prop.config(propagation)
        self.budget_mib = number(budget_mib, "embedding budget (MiB)", positive=True, maximum=2**30, example=1024)
        self.progress = progress
        self.cache = EmbeddingCache(self._encode, budget_mib)
        self._follows = FollowMemo()  # follow decodes of corrections, remembered for the volume
        self.state = VolumeState()
        self.messages: list[str] = []
        self.image: Image | None = None
        self.text_router = None  # medseg.text.routes.Router, made by the first add_text
        self._crop: Crop | None = None  # the crop decodes run in (medseg.predict.zoom): see _zoomed
        self.text_refine: str | None = None  # add_text's default refinement (None: medseg.text's)
        # a new object's click on a deep grey structure of a brain MR takes the atlas's structure (medseg.text.pointed)
        self.click_atlas = True
        # a new 3D object (REFINED) has its border drawn again by the scan's edges (medseg.predict.refine)
        self.refine = True
        # a lone click's 3D box: the median of its own and those of four positions beside it (extent.STEP)
        self.click_consensus = True
        # the 3D correction network (medseg.modeling.correction3d): "packaged" is medseg's own, loaded on first use;
        # None: the correction rules alone. It answers the corrections ``net_answers`` names: "refused", a negative
        # click on a click's object whose model region the rules refuse (it would remove too much, or misses the
        # click), where the rules had only an intensity fallback; "all", every correction (measured below the rules:
        # docs/interactive.md)
        self.correction_net: Any = "packaged"
        self.net_answers = "refused"
        self._planes = 1
        self._sides: dict[int, tuple[VolumeSession, tuple[int, int, int]]] = {}  # axis -> session on a transpose
        self._bar_name: str | None = None  # a side session's progress bar: "along y" / "along x"
        self._vol: _Volume | None = None

    # ----- volume and cache -------------------------------------------------------------------------
    def set_volume(self, image: Image | np.ndarray, window: str = "auto") -> WindowChoice:
        """Window a (z, y, x) volume to 0..255 and start afresh (clears objects, history and cache)."""
        if isinstance(image, np.ndarray):
            image = Image(image, Geometry.identity(3))
        if not image.is_volume:
            raise MedsegError("VolumeSession needs a 3D volume; use segment_2d for 2D images")
        choice = window_for(image, window)
        spacing = tuple(float(v) for v in image.geometry.spacing)
        self._vol = _Volume(WindowedVolume(image.array, choice), choice, spacing)
        self.image = image
        self.cache = EmbeddingCache(self._encode, self.budget_mib)
        self._follows = FollowMemo()
        self._sides = {}
        self.state = VolumeState()
        self.messages = []
        return choice

    @property
    def planes(self) -> int:
        """1: a new object's 3D box is segmented on the volume's z slices; 3: on near-isotropic volumes, along all
        three axes, the voxels two of them hold kept (``medseg.predict.planes``)."""
        return self._planes

    @planes.setter
    def planes(self, value: int) -> None:
        if value not in (1, 3):
            raise MedsegError(f"planes must be 1 or 3, not {value!r}")
        self._planes = int(value)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(z, y, x) of the volume."""
        return tuple(self._volume().data.shape)

    @property
    def encodes(self) -> int:
        """Slices encoded for this volume so far, those of the side sessions of ``planes = 3`` included."""
        return self.cache.encodes + sum(sub.encodes for sub, _ in self._sides.values())

    def _volume(self) -> _Volume:
        if self._vol is None:
            raise RuntimeError("call set_volume() first")
        return self._vol

    def _encode(self, key: int | Plane | Zoomed):
        return self.predictor.embed(self._image(key))

    def _image(self, key: int | Plane | Zoomed) -> np.ndarray:
        """The 0..255 image of a slice, a plane, or a crop of either."""
        data = self._volume().data
        crop = None
        if isinstance(key, Zoomed):
            key, crop = key.key, key.crop
        image = key.image(data) if isinstance(key, Plane) else data[key]
        return image if crop is None else image[crop[0]:crop[2], crop[1]:crop[3]]

    def _reading_ahead(self, order: list[int]):
        """Slices of ``order`` are encoded ahead while inside, where the engine can (``open_lanes``); inside
        ``_zoomed`` on a small object, its crops of those slices."""
        if self._crop is not None:
            order = [Zoomed(z, self._crop) for z in order]
        return self.cache.reading_ahead(order, lambda todo: self.predictor.read_ahead(todo, self._image))

    @contextmanager
    def _zoomed(self, xy: np.ndarray | None, holding: Point | None = None) -> Iterator[None]:
        """Decodes inside run in the crop of the xy box (x0, y0, x1, y1) when it is under TINY model pixels
        (``medseg.predict.zoom``), all of them in that one crop; on whole slices when the box is not small, is None,
        or its crop does not hold the ``holding`` click."""
        before = self._crop
        crop = None if xy is None else crop_for(xy, self.shape[1:], self.predictor.input_size, TINY)
        self._crop = crop if holding is None or holds(crop, holding.x, holding.y) else None
        try:
            yield
        finally:
            self._crop = before

    def _model_scale(self) -> float:
        """Model pixels per slice pixel of the decodes now running (a small object's crop is magnified)."""
        r0, c0, r1, c1 = self._crop if self._crop is not None else (0, 0, *self.shape[1:])
        return self.predictor.input_size / max(r1 - r0, c1 - c0)

    def _decode(self, z: int, **prompts) -> Prediction:
        """A decode on slice z's cached embedding, or on the small object's magnified crop of it (``_zoomed``)."""
        return zoomed_decode(self.predictor, self.cache.get, z, self.shape[1:], crop=self._crop, **prompts)

    def _plane_decoder(self, plane: Plane):
        """(the plane's 0..255 image, a decode function on its cached embedding)."""
        image = plane.image(self._volume().data)

        def decode(_z: int, **prompts) -> Prediction:  # whole planes: they serve a lone click's choice
            self.predictor.set_embedding(self.cache.get(plane), image.shape)
            return self.predictor.predict(**prompts)

        return image, decode

    def _plane_mask(self, plane: Plane, col: int, z: int) -> np.ndarray:
        """Mask of the structure under (col, z) on a coronal or sagittal plane (rows resampled)."""
        image, decode = self._plane_decoder(plane)
        # the earlier rule (no image): measured for the 2D box path; lone clicks choose in _joint_box
        return segment_click(decode, 0, col, z * plane.z_scale, image.shape, self.predictor.direct_clicks).mask

    def _box_around(self, x: float, y: float, z: int, x_range: tuple[int, int] | None,
                    y_range: tuple[int, int] | None) -> Box3D:
        """A 3D box for the structure under voxel (x, y, z), from its masks on the coronal and
        sagittal planes through it and its axial x/y ranges (``medseg.predict.extent``)."""
        depth = self.shape[0]
        col, row = int(round(x)), int(round(y))
        coronal, sagittal = planes(col, row, self._volume().spacing)
        found = []
        for plane, along in ((coronal, col), (sagittal, row)):
            mask = self._plane_mask(plane, along, z)
            cols, rows = extent(mask, 1), extent(mask, 0)
            found.append(None if cols is None else (cols, plane.rows_to_z(rows, depth)))
        rx, ry, rz = box_from_planes(x_range, y_range, found[0], found[1], (col, row, int(z)))
        return Box3D(rx[0], ry[0], max(rz[0], 0), rx[1], ry[1], min(rz[1], depth - 1))

    def _joint_box(self, x: float, y: float, z: int) -> tuple[SliceResult, Box3D | None, tuple]:
        """The axial mask under a lone click and the structure's 3D box, chosen together: the box proposals of
        the axial, coronal and sagittal planes through the click (``medseg.predict.click.choices``), the triple
        of masks whose scores plus AGREE x the overlap of their shared extents is highest
        (``medseg.predict.extent.joint_choice``). With ``click_consensus`` the box is the corner-wise median of that
        box and those chosen the same way from four positions beside the click (``extent.beside``); the seed mask and
        the other readings (``obj.hypotheses``) stay the click's own."""
        ranked = self._ranked(x, y, z)
        if not ranked:
            return empty_result(self.shape[1:]), None, ()
        seed, box = self._box3d(ranked[0])
        if self.click_consensus:  # the median with the boxes of four positions beside the click (extent.STEP)
            boxes = [box] + [self._box3d(r[0])[1] for bx, by in beside(x, y, self.shape[1:])
                             if (r := self._ranked(bx, by, z))]
            rx, ry, rz = median_box([((b.x0, b.x1), (b.y0, b.y1), (b.z0, b.z1)) for b in boxes],
                                    (int(round(x)), int(round(y)), int(z)))
            box = Box3D(rx[0], ry[0], rz[0], rx[1], ry[1], rz[1])
        return seed, box, tuple(self._box3d(r) for r in ranked[1:HYPOTHESES + 1])

    def _ranked(self, x: float, y: float, z: int) -> list:
        """``extent.joint_ranking`` of a lone click's proposals on the axial, coronal and sagittal planes through
        voxel (x, y, z): (total, axial SliceResult, x-, y-, z-range), best first; [] when the axial slice has none."""
        depth, shape = self.shape[0], self.shape[1:]
        col, row = int(round(x)), int(round(y))
        axial = choices(self._decode, z, x, y, shape, self._volume().data[z])
        if not axial:
            return []
        found = []
        for plane, along in zip(planes(col, row, self._volume().spacing), (col, row), strict=True):
            image, decode = self._plane_decoder(plane)
            found.append([(res.mask, score, plane) for res, score in
                          choices(decode, 0, along, z * plane.z_scale, image.shape, image)])
        return joint_ranking(axial, found[0], found[1], (col, row, int(z)), depth)

    def _box3d(self, entry: tuple) -> tuple[SliceResult, Box3D]:
        """(axial SliceResult, its 3D box clipped to the volume's slices) of a ``_ranked`` entry."""
        _, res, rx, ry, rz = entry
        return res, Box3D(rx[0], ry[0], max(rz[0], 0), rx[1], ry[1], min(rz[1], self.shape[0] - 1))

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
        return self._full(self._object(label))

    def _full(self, obj: ObjectState) -> np.ndarray:
        out = np.zeros(self.shape, bool)
        for z, m in obj.masks.items():
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
        z0, z1 = (number(v, f"add_box3d {n}", integer=True) for v, n in ((z0, "z0"), (z1, "z1")))
        box, note = clip_box3d(Box3D(x0, y0, z0, x1, y1, z1), self.shape)
        if note:
            self.messages.append(note)
        return self._box3d_object("box3d", box, (box.z0 + box.z1) // 2, prop.config(propagation or self.propagation))

    def _box3d_object(self, kind: str, box: Box3D, z: int, cfg: Propagation, clicks: tuple[Point, ...] = (),
                      replaces: int | None = None, prompt_clicks: bool = True,
                      chosen: SliceResult | None = None, hypotheses: tuple = (), commit: bool = True) -> Any:
        """A new object inside a (clipped) 3D box, seeded on slice z with the box and ``clicks`` (given to the
        decoder only with ``prompt_clicks``; they always seed the connectivity rule). ``chosen``: a lone click's
        mask on slice z, the seed when it holds the click and the box's mask does not."""
        xy = box.box2d().as_array()
        track = Track(box.z0, box.z1, limits=xy, fallback=xy, bounded=True)
        pts, labels = prop.click_arrays(clicks if prompt_clicks else ())
        # The seed slice is read ahead with the rest: its encode runs beside the next slice's. A small object's
        # decodes all run in its box's crop, under TINY model pixels (in 3D, crops of 16-32 model-pixel objects lost
        # as often as they gained: see medseg.predict.zoom).
        with self._zoomed(xy), self._reading_ahead([z, *walk_order(track, z, (1, -1))]):
            pred = self._decode(z, box=prop.with_clicks(xy, clicks) if prompt_clicks else xy, points=pts,
                                point_labels=labels)
            seed = prop.result_of(pred, xy, xy if cfg.method == "default" else None, best=0)
            if chosen is not None and holds_point(chosen.mask, clicks[0]) and not holds_point(seed.mask, clicks[0]):
                # the box alone missed the click: the click's chosen mask is the seed, so the object holds the click
                seed = SliceResult(prop.crop_to_box(chosen.mask, xy), chosen.logits, chosen.iou, xy)
            label = self._new_object(kind, z, track, cfg, seed, clicks={z: clicks} if clicks else None,
                                     replaces=replaces, hypotheses=hypotheses, commit=commit)
        if not commit:
            return label  # the ObjectState (one plane only: the caller commits it)
        if self.planes == 3:  # over the object's slices (a lone click's may have been trimmed)
            track = self._object(label).track
            self._three_planes(label, replace(box, z0=track.z_lo, z1=track.z_hi), cfg, kind)
        return label

    def _three_planes(self, label: int, box: Box3D, cfg: Propagation, kind: str) -> None:
        """Object ``label``, just made from ``box``, becomes the voxels that at least two of its mask and the box's
        masks along y and x hold (``medseg.predict.planes``). No undo step of its own: it is the same action."""
        spacing = self._volume().spacing
        if not near_isotropic(spacing):
            sizes = " x ".join(f"{v:g}" for v in spacing)
            self.messages.append(f"voxels of {sizes} mm are not near-isotropic: object {label} was segmented on "
                                 "its z slices only")
            return

        if box.z1 <= box.z0:
            self.messages.append(f"object {label}: a box one slice thick was segmented on that slice only")
            return
        own = self._object(label)
        fused = self._fused(own, side_objects(self._side, box, cfg, kind))
        if fused is not None:  # else the three axes share no voxel: the z slices' answer stays
            self.state = replace(self.state, objects=tuple(fused if o.label == label else o
                                                           for o in self.state.objects))

    def _fused(self, own: ObjectState, sides: list[ObjectState]) -> ObjectState | None:
        """The object whose masks are the voxels two of ``own`` (along z) and its ``sides`` (along y and x) hold,
        then the connectivity rule; None when they share no voxel."""
        from medseg.text.prompting import low_res_prior

        masks = [self._full(own)]
        for axis, side in zip(AXES, sides, strict=True):
            session, order = self._side(axis)
            masks.append(on_volume(session._full(side), order))
        fused = majority(masks)
        if not fused.any():
            return None
        xy = own.track.limits
        slices = {}
        for z in np.flatnonzero(fused.any(axis=(1, 2))):
            old = own.slices.get(int(z))
            slices[int(z)] = SliceResult(fused[z], low_res_prior(fused[z]), 1.0 if old is None else old.iou,
                                         xy if old is None or old.box is None else old.box)
        # the edits live in the axes' objects: the majority already holds them
        obj = replace(own, slices=MappingProxyType(slices), edits=(), priors=empty_mapping(), axes=(own, *sides))
        return replace(obj, masks=MappingProxyType(self._final(obj, slices)))

    def _side(self, axis: int) -> tuple[VolumeSession, tuple[int, int, int]]:
        """A session on the volume transposed to bring array ``axis`` first, made once per volume (its embeddings
        serve every object), and the transpose's order."""
        if axis not in self._sides:
            image, order = transposed(self.image, axis)
            sub = VolumeSession(self.predictor, self.propagation, self.budget_mib, self.progress)
            sub.click_atlas = False
            sub.correction_net, sub.net_answers = self.correction_net, self.net_answers
            sub._bar_name = f"along {'zyx'[axis]}"
            sub.set_volume(image, self._volume().window.name)
            self._sides[axis] = sub, order
        self._sides[axis][0].refine = self.refine
        self._sides[axis][0].click_consensus = self.click_consensus
        return self._sides[axis]

    def add_box(self, z: int, box: tuple[float, float, float, float], propagate: bool = True,
                propagation: str | Propagation | None = None) -> int:
        """A new object from a 2D box (x0, y0, x1, y1) on slice z; returns its label.

        With propagate, the structure is followed up and down until it ends: by the default rule, its
        z-range comes from its masks on the coronal and sagittal planes through the 2D mask's deepest
        pixel (``medseg.predict.extent``) and it is then segmented as a 3D box; the baseline rule
        follows the previous slice's box until a slice comes out empty.
        """
        depth, h, w = self.shape
        z = number(z, "add_box z", integer=True)
        check_slice(z, depth)
        box = tuple(coordinates(box, "add_box box", 4))
        check_box(Box(*box, z=z), (h, w))
        xy = np.asarray(box, np.float32)
        cfg = prop.config(propagation or self.propagation)
        with self._zoomed(xy):
            seed = prop.result_of(self._decode(z, box=xy), xy, best=0)
        if not propagate or cfg.method == "baseline" or not seed.area:
            track = Track(0, depth - 1) if propagate else Track(z, z)
            return self._new_object("box", z, track, cfg, seed)
        y, x = deepest_pixel(seed.mask)
        ranges = (int(np.floor(xy[0])), int(np.ceil(xy[2]))), (int(np.floor(xy[1])), int(np.ceil(xy[3])))
        return self._box3d_object("box", self._box_around(x, y, z, *ranges), z, cfg)

    def add_point(self, x: float, y: float, z: int, positive: bool = True, obj: int | None = None,
                  new_object: bool = False, propagate: bool = True,
                  propagation: str | Propagation | None = None) -> int:
        """A click at voxel (x, y, z).

        Without objects (or with new_object=True) a positive click starts a new object, segmented in 3D:
        the click decoded on its slice (a click-trained model; else box proposals around it,
        ``medseg.predict.click``), its extent from the coronal and sagittal planes through it, then each
        slice of that 3D box.
        Otherwise it corrects object ``obj`` (default: the latest): with a click model on its own
        (``Predictor.direct_clicks``) slice z is decoded again from its box, all its clicks and its latest
        logits, and the change is the edit; else (LiteMedSAM, also beside a click decoder) the edit is the
        region the box-proposal path finds under the click. The edit is followed to the slices
        around as long as it still changes the object (``medseg.predict.correct``). ``propagate=False``
        keeps a new object on its slice. Returns the object's label.
        """
        depth, h, w = self.shape
        z = number(z, "add_point z", integer=True)
        check_slice(z, depth)
        point = Point(float(number(x, "add_point x")), float(number(y, "add_point y")), z, positive)
        check_point(point, (h, w))
        if new_object or not self.state.objects:
            if not positive:
                raise MedsegError(f"a new object needs a positive point; {x:g},{y:g},{z} is negative")
            label = self._atlas_object(point) if propagate and self.click_atlas else None
            return label or self._point_object(point, prop.config(propagation or self.propagation), propagate)
        return self._correct(self._object(obj if obj is not None else self.state.objects[-1].label), point)

    def add_text(self, text: str, router=None, refine: str | None = None) -> int:
        """A new object for the structure ``text`` names ("left caudate"); returns its label.

        See ``medseg.text.session.add_text`` (routes, refinement); clicks correct it like any object.
        """
        from medseg.text.session import add_text

        self._volume()
        return add_text(self, text, router, refine)

    def _atlas_object(self, point: Point) -> int | None:
        """The structure an atlas route knows under a new object's click (``medseg.text.pointed``), as an object
        of kind "atlas"; None when no route serves the scan or the click is not on such a structure."""
        from medseg.text import pointed

        if not pointed.might_serve(self.image):
            return None
        from medseg.text.prompting import refine_slices
        from medseg.text.session import session_router

        try:
            router = session_router(self)
        except MedsegError as exc:  # the atlases are not fetched: the model answers clicks
            self.click_atlas = False
            self.messages.append(f"clicks answered by the model alone: {exc}")
            return None
        found = pointed.structure_at(router, self.image, point.x, point.y, int(point.z))
        if found is None:
            return None
        label = self.add_slices("atlas", refine_slices(self._decode, found.mask, "atlas"), name=found.resolved.name,
                                atlas=found.prior)
        self.messages.append(f"click at {point.x:g},{point.y:g},{point.z}: {found.resolved.name} via "
                             f"{found.route.describe()}")
        return label

    def add_slices(self, kind: str, slices: dict[int, SliceResult], name: str = "", atlas: Any = None) -> int:
        """A new object from ready per-slice results (z -> SliceResult); returns its label.

        Its track is the slices' z-range inside their boxes' union; it is not propagated further and keeps
        all its parts (no connectivity rule), so a structure of two sides stays whole. ``atlas``: the
        ``medseg.text.pointed.Prior`` an atlas object's corrections move.
        """
        if not slices:
            raise MedsegError(f"object {name or kind!r} has no voxel on this volume")
        cfg = replace(self.propagation, keep_connected=False)
        seed_z = max(slices, key=lambda z: slices[z].area)
        label = self.state.next_label
        if label > 255:
            raise MedsegError("255 objects exceed the labels of a uint8 mask")
        obj = ObjectState(label, kind, seed_z, slices_track(slices), cfg, max(slices[seed_z].area, 1),
                          MappingProxyType(dict(slices)), name=name, atlas=atlas)
        obj = replace(obj, masks=MappingProxyType(self._final(obj, dict(slices))))
        self._commit(VolumeState(self.state.objects + (obj,), label + 1))
        return label

    def add_mask(self, mask: np.ndarray, name: str = "") -> int:
        """A new object holding a given (z, y, x) mask (non-zero = inside), e.g. an initial segmentation;
        clicks correct it like any object (its slices' masks are their mask prompts). Returns its label."""
        inside = np.asarray(mask) != 0
        if inside.shape != self.shape:
            raise MedsegError(f"mask of shape {list(inside.shape)} differs from the volume's {list(self.shape)}")
        return self.add_slices("mask", mask_slices(inside, iou=1.0), name)

    def clear(self) -> None:
        """Drop every object and the undo history (not undoable); the embedding cache is kept."""
        self.state = VolumeState()
        self._volume().history.clear()

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

    def _point_object(self, point: Point, cfg: Propagation, propagate: bool = True,
                      replaces: int | None = None) -> int:
        z = int(point.z)
        joint = propagate and cfg.method != "baseline" and not self.predictor.direct_clicks
        if joint:
            seed, box, hypotheses = self._joint_box(point.x, point.y, z)
        else:
            seed = segment_click(self._decode, z, point.x, point.y, self.shape[1:], self.predictor.direct_clicks,
                                 image=self._volume().data[z])
        if not propagate or cfg.method == "baseline" or not seed.area:
            track = Track(0, self.shape[0] - 1) if propagate else Track(z, z)
            return self._new_object("point", z, track, cfg, seed, clicks={z: (point,)}, replaces=replaces)
        if not joint:
            box = self._box_around(point.x, point.y, z, extent(seed.mask, 1), extent(seed.mask, 0))
        # the 3D box alone prompts the seed slice: beside a box, LiteMedSAM's masks lose Dice to the click
        # (scripts/fit_click_choice.py's proposals: box + click below box alone on every held-out set)
        return self._box3d_object("point", box, z, cfg, (point,), replaces=replaces, prompt_clicks=False,
                                  chosen=seed, hypotheses=hypotheses if joint else ())

    def _new_object(self, kind: str, z: int, track: Track, cfg: Propagation, seed: SliceResult,
                    clicks: dict[int, tuple[Point, ...]] | None = None, replaces: int | None = None,
                    hypotheses: tuple = (), commit: bool = True) -> Any:
        """Propagate a new object from its seed and commit it (in place of object ``replaces``, if given); with
        ``commit`` False, the object itself, uncommitted."""
        label = self.state.next_label if replaces is None else replaces
        if label > 255:
            raise MedsegError("255 objects exceed the labels of a uint8 mask")
        obj = ObjectState(label, kind, z, track, cfg, max(seed.area, 1), MappingProxyType({z: seed}),
                          MappingProxyType(clicks or {}), hypotheses=hypotheses)
        obj = self._run(obj, z, (1, -1))
        if kind in ("point", "box") and track.bounded:  # a lone click or a 2D box: z-extent from the planes
            obj = self._trimmed(obj)
        # an object kept on its slice, or made by the CVPR24 rule (a reference's reproduction), stays the model's
        if kind in REFINED and track.z_hi > track.z_lo and cfg.method != "baseline":
            obj = self._refined(obj)
        if not commit:
            return obj
        if replaces is None:
            self._commit(VolumeState(self.state.objects + (obj,), label + 1))
        else:
            objects = tuple(obj if o.label == label else o for o in self.state.objects)
            self._commit(replace(self.state, objects=objects))
        return label

    def _trimmed(self, obj: ObjectState) -> ObjectState:
        """An object of a lone click or a propagated 2D box ended before the first slice each way whose mask's
        intensities are foreign to its seed slice's (``medseg.predict.extent.familiar_range``): past a lesion's end
        its 3D box holds lung or white matter, which the box-prompted masks there take in."""
        data = self._volume().data
        lo, hi = familiar_range(obj.masks, data.__getitem__, obj.seed_z, (obj.track.z_lo, obj.track.z_hi))
        if (lo, hi) == (obj.track.z_lo, obj.track.z_hi):
            return obj
        slices = {k: r for k, r in obj.slices.items() if lo <= k <= hi}
        obj = replace(obj, track=replace(obj.track, z_lo=lo, z_hi=hi), slices=MappingProxyType(slices))
        return replace(obj, masks=MappingProxyType(self._final(obj, slices)))

    def _refined(self, obj: ObjectState) -> ObjectState:
        """An object just segmented in 3D (a lone click's, a 3D box's, a propagated 2D box's, or a click object's box
        a correction grew) with its masks' border drawn again by the scan's edges (``medseg.predict.refine``), kept
        as its slices' masks: the corrections edit what the user sees. Unchanged while ``refine`` is off."""
        if not self.refine or not obj.masks:
            return obj
        clicks = {True: [], False: []}
        for z, points in obj.clicks.items():
            for p in points:
                clicks[p.positive].append((z, int(round(p.y)), int(round(p.x))))
        masks = refined(self._volume().data, obj.masks, self._volume().spacing, clicks[True], clicks[False])
        empty = np.zeros(self.shape[1:], bool)
        slices = {z: replace(r, mask=masks.get(z, empty)) for z, r in obj.slices.items()}
        return replace(obj, slices=MappingProxyType(slices), masks=MappingProxyType(self._final(obj, slices)))

    def _run(self, obj: ObjectState, z: int, directions: tuple[int, ...]) -> ObjectState:
        """Propagate from slice z in the given directions, replacing what lay beyond z there."""
        slices = dict(obj.slices)
        track = obj.track
        total = sum((track.z_hi - z) if d > 0 else (z - track.z_lo) for d in directions)
        bar = tqdm(total=total if track.bounded else None, unit="slice", file=sys.stderr, leave=False,
                   disable=not self.progress, desc=self._bar_name or f"object {obj.label}")
        walked = [d for d in directions if slices[z].area or track.bounded]
        try:
            with self._reading_ahead(walk_order(track, z, walked)):
                for d in directions:
                    for k in [k for k in slices if (k - z) * d > 0]:
                        del slices[k]
                    if d not in walked:
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
        for edit in obj.edits:
            masks = edit.apply(masks, self.shape[1:])
        if not obj.propagation.keep_connected:
            return masks
        seeds = [(z, int(y), int(x)) for z, pts in obj.clicks.items() for p in pts if p.positive
                 for x, y in [(round(p.x), round(p.y))]]
        seed = slices.get(obj.seed_z)
        if seed is not None and seed.area:
            ys, xs = np.nonzero(seed.mask)
            seeds += [(obj.seed_z, int(y), int(x)) for y, x in zip(ys[::7], xs[::7], strict=True)]
        return prop.keep_connected(masks, seeds)
