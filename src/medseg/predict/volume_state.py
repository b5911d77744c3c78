"""The state of a 3D session (``medseg.predict.volume.VolumeSession``) and the helpers that build and read it.

Objects are never mutated: every action builds new ones, so the undo history is a list of ``VolumeState``. Arrays are
(z, y, x); clicks (``Point``) are voxel indices (x, y, z).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from medseg.predict.correct import Edit
from medseg.predict.propagate import Propagation, SliceResult, Track
from medseg.prompts import Box3D, Point


def empty_mapping() -> MappingProxyType:
    """A new empty read-only mapping (the default of an object's per-slice fields)."""
    return MappingProxyType({})


@dataclass(frozen=True, eq=False)
class ObjectState:
    """One object of the session (never mutated; every action builds a new one).

    Attributes:
        label: value of the object in the label map.
        kind: "box3d", "box" (2D box, propagated or not), "point", "text" (``add_text``) or "atlas" (a click
            the atlas route answered, ``medseg.text.pointed``).
        seed_z: slice the first prompt was given on.
        track: z-range and xy limits propagation may use.
        propagation: the rule this object propagates with.
        ref_area: pixels of the seed mask (the stop rule's reference).
        slices: z -> SliceResult, raw per-slice results (propagation and corrections).
        clicks: z -> correction clicks on that slice, in order.
        edits: correction clicks read as regions to add or remove (``medseg.predict.correct``), in order.
        masks: z -> (H, W) bool, the final masks: propagated masks, then the edits, then the
            connectivity rule.
        priors: z -> (1, 256, 256) low-res logits of the latest correction decode on that slice (the mask
            prompt of the next correction there, with a click-trained model).
        name: the structure's name (text and atlas objects), else "".
        atlas: an atlas object's ``medseg.text.pointed.Prior`` (its corrections move it), else None.
        axes: an object segmented along three axes (``planes = 3``): its own answers along z, y and x (the y and x
            ones on the volume's transposes, ``medseg.predict.planes``), each corrected by every click; ``masks`` is
            their majority. Empty otherwise.
        hypotheses: a lone click's other readings, best first: (axial SliceResult, Box3D) of the proposal triples
            its choice ranked below the one taken (``medseg.predict.extent.joint_ranking``); a negative click deep
            inside the object takes the best one that leaves it out (``VolumeSession._rechosen``). Empty for other
            objects.
    """

    label: int
    kind: str
    seed_z: int
    track: Track
    propagation: Propagation
    ref_area: int
    slices: MappingProxyType = field(default_factory=empty_mapping)
    clicks: MappingProxyType = field(default_factory=empty_mapping)
    edits: tuple[Edit, ...] = ()
    masks: MappingProxyType = field(default_factory=empty_mapping)
    priors: MappingProxyType = field(default_factory=empty_mapping)
    name: str = ""
    atlas: Any = None
    axes: tuple[ObjectState, ...] = ()
    hypotheses: tuple[tuple[SliceResult, Box3D], ...] = ()

    @property
    def z_range(self) -> tuple[int, int] | None:
        zs = list(self.masks)
        return (min(zs), max(zs)) if zs else None


@dataclass(frozen=True, eq=False)
class VolumeState:
    """All objects of a session; the undo history is a list of these."""

    objects: tuple[ObjectState, ...] = ()
    next_label: int = 1


def holds_point(mask: np.ndarray, point: Point) -> bool:
    """Whether a (y, x) mask holds the click's pixel (rounded, clamped to the mask)."""
    row, col = int(round(point.y)), int(round(point.x))
    return bool(mask[min(row, mask.shape[0] - 1), min(col, mask.shape[1] - 1)])


def slices_track(slices: dict[int, SliceResult]) -> Track:
    """The track of an object made of ready slices: their z-range inside their boxes' union."""
    boxes = np.array([r.box for r in slices.values() if r.box is not None], np.float32)
    xy = (np.array([*boxes[:, :2].min(0), *boxes[:, 2:].max(0)], np.float32) if len(boxes) else None)
    return Track(min(slices), max(slices), limits=xy, fallback=xy, bounded=True)


def changed_slices(change: np.ndarray) -> MappingProxyType:
    """z -> (H, W) bool copy of each slice of a (z, y, x) change that holds something (an edit's regions; copies, so
    an edit in the undo history does not keep the whole volume's array alive)."""
    return MappingProxyType({int(z): change[z].copy() for z in np.flatnonzero(change.any((1, 2)))})


def mask_slices(mask: np.ndarray, iou: float) -> dict[int, SliceResult]:
    """z -> SliceResult of each slice a (z, y, x) bool mask holds: its mask (a copy), its low-res logits (a mask
    prompt) and its tight box."""
    from medseg.text.prompting import low_res_prior

    slices = {}
    for z in np.flatnonzero(mask.any(axis=(1, 2))):
        ys, xs = np.nonzero(mask[z])
        box = np.array([xs.min(), ys.min(), xs.max(), ys.max()], np.float32)
        slices[int(z)] = SliceResult(mask[z].copy(), low_res_prior(mask[z]), iou, box)
    return slices


def in_box(track: Track, col: int, row: int, z: int) -> bool:
    """Whether voxel (col, row, z) lies in the 3D box of a track bounded in z and xy."""
    if not track.bounded or track.limits is None:
        return False
    x0, y0, x1, y1 = (float(v) for v in track.limits)
    return x0 <= col <= x1 and y0 <= row <= y1 and track.z_lo <= z <= track.z_hi


def walk_order(track: Track, z: int, directions: Iterable[int]) -> list[int]:
    """The slices walks from z in ``directions`` may visit, in the order they visit them."""
    return [zz for d in directions
            for zz in (range(z + 1, track.z_hi + 1) if d > 0 else range(z - 1, track.z_lo - 1, -1))]
