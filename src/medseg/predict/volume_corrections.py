"""How a 3D session answers a correction click (``VolumeSession.add_point`` on an object): the rules' region edit
(``medseg.predict.correct``), a lone click's other reading, the correction network, an atlas object's moved prior.

``Corrections`` is a part of ``VolumeSession`` (its base class) kept in its own file; it uses the session's decoding,
zooming and propagation. Coordinates: clicks (``Point``) are voxel indices (x, y, z); arrays (z, y, x).
"""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType

import numpy as np

from medseg.predict import propagate as prop
from medseg.predict.click import CORRECTION_SMALLEST, segment_click
from medseg.predict.correct import (
    BAND,
    MAX_REMOVE,
    Edit,
    band_3d,
    box_span,
    click_depth,
    depth_from_border,
    disc_edit,
    follow,
    grown_box,
    grown_region,
    largest_area,
    touches,
    within_limits,
    z_cut,
)
from medseg.predict.planes import side_corrected
from medseg.predict.propagate import SliceResult, Track
from medseg.predict.rim import rim_edit
from medseg.predict.volume_state import ObjectState, changed_slices, in_box, slices_track, walk_order
from medseg.predict.walked import walked_region
from medseg.prompts import Box3D, Point

# a negative click deep inside a lone click's object takes the best of its other readings that leaves it out
# (Corrections._rechosen): whether that is on, how much smaller the reading's box must be, how deep the click
RECHOOSE = True
SHRINK = 0.5
DEEP = 0.5


class Corrections:
    """The correction half of ``VolumeSession`` (see ``medseg.predict.volume``)."""

    def _correct(self, obj: ObjectState, point: Point) -> int:
        """A correction click: the region under it is added or removed on its slice and followed to the
        slices around (``medseg.predict.correct``); decoder work only. A negative click whose region is refused is
        answered by the correction network (``_net_corrected``), every click when ``net_answers`` is "all"."""
        if self.net_answers == "all" and obj.masks and self._net() is not None:
            return self._commit_object(self._net_corrected(obj, point))
        if obj.atlas is not None:  # the atlas's structure: the click moves its prior (medseg.text.pointed)
            return self._atlas_correct(obj, point)
        if point.positive and not obj.masks:  # nothing segmented yet: start the object again from this click
            return self._point_object(point, obj.propagation, replaces=obj.label)
        if obj.axes:  # segmented along three axes: each axis corrected, the majority again
            own = self._corrected(obj.axes[0], point) or self._net_corrected(obj.axes[0], point)
            sides = side_corrected(self._side, obj.axes[1:], point.x, point.y, int(point.z), point.positive)
            obj = self._fused(own, sides) or own  # no voxel two axes hold: the z slices' answer
        else:
            # None: the rules leave the click to a lone click's next reading (_reading) or refuse it (the network)
            obj = self._corrected(obj, point) or self._rechosen(obj, point) or self._net_corrected(obj, point)
        return self._commit_object(obj)

    def _net(self):
        """The correction network (loaded on first use), or None."""
        if isinstance(self.correction_net, str):
            from medseg.build import load_correction_net

            self.correction_net = load_correction_net(None if self.correction_net == "packaged" else
                                                      self.correction_net)
        return self.correction_net

    def _commit_object(self, obj: ObjectState) -> int:
        """Commit ``obj`` in place of the object with its label; returns the label."""
        objects = tuple(obj if o.label == obj.label else o for o in self.state.objects)
        self._commit(replace(self.state, objects=objects))
        return obj.label

    def _corrected(self, obj: ObjectState, point: Point) -> ObjectState | None:
        """``obj`` with the correction click's edit (uncommitted); None when the click is to be answered by the
        correction network (a refused negative region, ``_edit``)."""
        z = int(point.z)
        clicks = dict(obj.clicks)
        clicks[z] = clicks.get(z, ()) + (point,)
        # a correction's decodes (its region's proposals, the follow) run in the object's own crop when the object is
        # under TINY model pixels and the click lies in it, else on whole slices (the correction rules were measured
        # there; crops of 20-30 model-pixel objects lost Dice), never in crops of their own small boxes
        with self._zoomed(self._xy_extent(obj), holding=point):
            edit, prior = self._edit(obj, point)
        if edit is None:
            return None
        priors = dict(obj.priors) if prior is None else {**obj.priors, z: prior}
        grown = None
        if point.positive and obj.kind == "point" and obj.track.limits is not None:
            grown = grown_box(obj.track.limits, (obj.track.z_lo, obj.track.z_hi), int(round(point.x)),
                              int(round(point.y)), z, edit.regions.get(z))
        obj = replace(obj, clicks=MappingProxyType(clicks), edits=obj.edits + (edit,), priors=MappingProxyType(priors))
        if grown is not None:
            obj = self._rebox(obj, grown)
        return replace(obj, masks=MappingProxyType(self._final(obj, dict(obj.slices))))

    def _rechosen(self, obj: ObjectState, point: Point) -> ObjectState | None:
        """A negative click deep inside a lone click's object, which one of the lone click's other readings leaves out
        (``_reading``): the object segmented again from that reading's 3D box (uncommitted; its clicks and edits
        kept, the readings ranked after it kept for later clicks). None when no reading qualifies, or off."""
        i = self._reading(obj, point)
        if i is None:
            return None
        seed, box = obj.hypotheses[i]
        first = obj.clicks[obj.seed_z][0]
        new = self._box3d_object("point", box, obj.seed_z, obj.propagation, (first,), replaces=obj.label,
                                 prompt_clicks=False, chosen=seed, hypotheses=obj.hypotheses[i + 1:], commit=False)
        clicks = {**obj.clicks, int(point.z): obj.clicks.get(int(point.z), ()) + (point,)}
        new = replace(new, clicks=MappingProxyType(clicks), edits=obj.edits)
        return replace(new, masks=MappingProxyType(self._final(new, dict(new.slices))))

    def _reading(self, obj: ObjectState, point: Point) -> int | None:
        """Index of the best-ranked of a lone click's other readings (``obj.hypotheses``) whose 3D box leaves out
        the negative click ``point`` and every earlier one and holds every positive click, when the click
        lies at least DEEP of the slice mask's greatest depth inside it and that box, within the object's slices, is at
        most SHRINK of the object's box; else None (docs/interactive.md, benchmarks/results/interactive/rechosen.md)."""
        if not (RECHOOSE and obj.hypotheses and not point.positive and self.planes == 1):
            return None
        current, col, row = obj.masks.get(int(point.z)), int(round(point.x)), int(round(point.y))
        now = obj.track.limits
        if current is None or not current[row, col] or now is None:
            return None
        every = [p for ps in obj.clicks.values() for p in ps] + [point]

        def inside(box: Box3D, p: Point) -> bool:
            return box.x0 <= round(p.x) <= box.x1 and box.y0 <= round(p.y) <= box.y1 and box.z0 <= p.z <= box.z1

        def volume(x0, y0, z0, x1, y1, z1) -> float:
            return float((x1 - x0 + 1) * (y1 - y0 + 1) * (z1 - z0 + 1))

        # every click in 3D: a reading whose slices stop short of a positive click leaves out what it marked (stop 58
        # asked it of the clicks on the reading's slices only; SAM-Med3D's clicks on RIDER, seed 2: a reading of 11
        # slices, taken past a positive click below them, lost 0.32 Dice)
        found = next((i for i, (_, box) in enumerate(obj.hypotheses)
                      if all(inside(box, p) == p.positive for p in every)), None)
        if found is None:
            return None
        # against the object's box: the reading's z-range within the object's (a lone click's is trimmed)
        box = obj.hypotheses[found][1]
        z0, z1 = max(box.z0, obj.track.z_lo), min(box.z1, obj.track.z_hi)
        if volume(box.x0, box.y0, z0, box.x1, box.y1, max(z1, z0)) > SHRINK * volume(
                now[0], now[1], obj.track.z_lo, now[2], now[3], obj.track.z_hi):
            return None
        # a click deep inside the object's slice says most of it there is wrong (a random click beside a lesion in
        # the whole head it took); one near the border is a local error (the rules' or the network's). Tested last:
        # the slice's distance transform is the costliest test.
        rows, cols = np.flatnonzero(current.any(axis=1)), np.flatnonzero(current.any(axis=0))
        y0, x0 = max(rows[0] - 1, 0), max(cols[0] - 1, 0)
        depth = depth_from_border(current[y0:rows[-1] + 2, x0:cols[-1] + 2], False)
        return found if depth[row - y0, col - x0] >= DEEP * depth.max() else None

    def _net_corrected(self, obj: ObjectState, point: Point) -> ObjectState:
        """``obj`` corrected by the 3D correction network from the scan, its mask and all its clicks (uncommitted).
        The network's change is kept as two edits (what it removed, what it added) on top of the object's slices, as
        the rules' corrections are, so that a later segmentation of the object (a positive click that grows its box,
        ``_rebox``) keeps it instead of losing it."""
        from medseg.predict.correct3d import corrected

        z = int(point.z)
        clicks = {**obj.clicks, z: obj.clicks.get(z, ()) + (point,)}
        points = [(k, int(round(p.y)), int(round(p.x)), p.positive) for k, ps in clicks.items() for p in ps]
        old = self._full(obj)
        new = corrected(self._net(), self._volume().data, old, points)
        edits = tuple(Edit(sign, changed_slices(change)) for sign, change in ((False, old & ~new), (True, new & ~old))
                      if change.any())
        obj = replace(obj, clicks=MappingProxyType(clicks), edits=obj.edits + edits, axes=(), atlas=None)
        return replace(obj, masks=MappingProxyType(self._final(obj, dict(obj.slices))))

    def _atlas_correct(self, obj: ObjectState, point: Point) -> int:
        """A correction of an atlas object: the intensity step again with the click as a bump on its prior
        (``medseg.text.pointed.corrected``); no model work."""
        from medseg.text.pointed import corrected
        from medseg.text.prompting import refine_slices

        z, row, col = int(point.z), int(round(point.y)), int(round(point.x))
        current = np.zeros(self.shape, bool)
        for k, m in obj.masks.items():
            current[k] = m
        clicks = {**obj.clicks, z: obj.clicks.get(z, ()) + (point,)}
        obj = replace(obj, clicks=MappingProxyType(clicks))
        if bool(current[z, row, col]) != point.positive:  # else nothing to change under the click
            spacing = tuple(reversed(self._volume().spacing))
            atlas, mask = corrected(obj.atlas, current, self.image.array, spacing, (z, row, col), point.positive)
            slices = refine_slices(self._decode, mask, "atlas")
            if slices:
                obj = replace(obj, atlas=atlas, slices=MappingProxyType(slices), track=slices_track(slices))
                obj = replace(obj, masks=MappingProxyType(self._final(obj, slices)))
        return self._commit_object(obj)

    @staticmethod
    def _xy_extent(obj: ObjectState) -> np.ndarray | None:
        """(x0, y0, x1, y1) of the object's masks over all its slices, or None."""
        found = prop.occupied(obj.masks.values())
        if found is None:
            return None
        rows, cols = found
        return np.array([cols[0], rows[0], cols[-1], rows[-1]], np.float32)

    def _rebox(self, obj: ObjectState, xy: np.ndarray) -> ObjectState:
        """``obj`` segmented again inside its grown xy box over the same slices, from its seed slice; its clicks
        and edits are kept (they apply on top, ``_final``)."""
        track = Track(obj.track.z_lo, obj.track.z_hi, limits=xy, fallback=xy, bounded=True)
        z = obj.seed_z
        with self._zoomed(xy), \
                self._reading_ahead([z, *walk_order(track, z, (1, -1))]):
            seed = prop.result_of(self._decode(z, box=xy), xy, xy if obj.propagation.method == "default" else None,
                                  best=0)
            obj = replace(obj, track=track, ref_area=max(seed.area, 1), slices=MappingProxyType({z: seed}))
            obj = self._run(obj, z, (1, -1))
        return self._refined(obj)

    def _edit(self, obj: ObjectState, point: Point) -> tuple[Edit | None, np.ndarray | None]:
        """The region edit a click asks for (see ``medseg.predict.correct``), and the logits of the slice's
        new decode (a click-trained model) or None; (None, None) for a refused negative region when a correction
        network is there to answer it."""
        z, shape = int(point.z), self.shape[1:]
        col, row = int(round(point.x)), int(round(point.y))
        empty = np.zeros(shape, bool)
        masks = obj.masks
        current = masks.get(z, empty)
        if bool(current[row, col]) == point.positive:
            return Edit(point.positive, MappingProxyType({})), None  # nothing to change under the click
        if not point.positive and obj.kind == "point":
            cut = z_cut(masks, obj.seed_z, (obj.track.z_lo, obj.track.z_hi), z, row, col)
            if cut:  # the object ends before this slice (its z-extent came from a lone click)
                gone = np.ones(shape, bool)
                return Edit(False, MappingProxyType({k: gone for k in cut})), None
            if self._reading(obj, point) is not None:
                return None, None  # the lone click's next reading leaves the click out (_rechosen)
        if point.positive and current.any():
            # on the rim of a high-contrast object, at a level between its core and surroundings: the border moves out
            # to that level near the click (medseg.predict.rim)
            rim = rim_edit(self.image.array, masks, z, row, col, self._volume().spacing)
            if rim:
                return Edit(True, MappingProxyType(rim)), None
        prior = None
        if self.predictor.direct_clicks:
            # a click model on its own: the slice decoded again from its box, all its clicks and its last
            # logits; the edit is the change. Beside a box decoder (litemedsam-interactive) the region path below
            # measures better in 3D (benchmarks/results/interactive), so that one is taken.
            redone = self._redecode(obj, point)
            region = redone.mask & ~current if point.positive else current & ~redone.mask
            prior = redone.logits
        else:
            region = segment_click(self._decode, z, point.x, point.y, shape, climb=False,
                                   smallest=CORRECTION_SMALLEST / self._model_scale()).mask
            region = region & ~current if point.positive else region & current
        # a positive region on a slice the object does not reach is measured against its largest slice
        reference = largest_area({k: int(np.count_nonzero(m)) for k, m in masks.items()}) if point.positive else 0
        if not region[row, col] or not within_limits(region, current, point.positive, reference):
            # no region under the click, or one that would take the object over: a positive click's missed part is
            # found by a random walker from the click and the object (medseg.predict.walked); else, or when the walk
            # leaves the click out, the region is grown from the click by intensity in 3D; a negative one that would
            # remove more than MAX_REMOVE of the object takes a small disc. With a correction network, it answers a
            # refused negative click on a click's object instead (benchmarks/results/interactive/refused_net.md: five
            # clicks, held-out lesions 0.715 -> 0.757, structures 0.704 -> 0.724; a 3D box's object keeps the rules,
            # which keep its corrections to the box's slices: spine MR C7, a box then five clicks 0.588 -> 0.547)
            if not point.positive and obj.kind == "point" and self._net() is not None:
                return None, None
            volume, spacing = self._volume().data, self._volume().spacing
            grown = (walked_region(volume, masks, z, row, col, spacing) if point.positive else None) or grown_region(
                volume, masks, z, row, col, point.positive, spacing)
            if point.positive or sum(int(np.count_nonzero(r)) for r in grown.values()) <= MAX_REMOVE * sum(
                    int(np.count_nonzero(m)) for m in masks.values()):
                return Edit(point.positive, MappingProxyType(grown)), prior
            return Edit(False, MappingProxyType({z: disc_edit(current, col, row, False)})), prior

        def changes(zz: int, m: np.ndarray) -> np.ndarray:
            return m & ~masks.get(zz, empty) if point.positive else m & masks.get(zz, empty)

        width = None
        against = point.positive and current.any() and touches(region, current)  # a positive region beside the mask
        if prior is None and current.any() and (not point.positive or against):
            # the region edit keeps to a band along the border as deep as the click, measured in 3D (correct.band_3d;
            # measured on the box decoder's regions, not on a click model's own re-decode)
            width = BAND * click_depth(current, col, row, point.positive) + 1.0
        sx, sy, sz = self._volume().spacing
        z_step = sz / float(np.sqrt(sx * sy))

        kept: dict[int, np.ndarray] = {}  # slice -> its part within the band, computed once

        def in_band(part: np.ndarray, zz: int) -> np.ndarray:
            if zz not in kept:
                kept[zz] = band_3d(part, masks, zz, point.positive, width, z_step)
            return kept[zz]

        def acceptable(part: np.ndarray, zz: int) -> bool:
            if width is not None and not masks.get(zz, empty).any() and not in_band(part, zz).any():
                return False  # past the band's reach beyond the object's end: the follow stops there
            return within_limits(part, masks.get(zz, empty), point.positive, reference)

        # a 3D box says which slices the structure spans: its corrections follow within them, near the click (box_span)
        span = (0, self.shape[0] - 1)
        if obj.kind == "box3d":
            span = box_span(region, z, (obj.track.z_lo, obj.track.z_hi), self._volume().spacing)
        elif (obj.kind == "point" and point.positive and in_box(obj.track, col, row, z)
              and not against):
            # a region apart from the mask, clicked inside a click object's 3D box: a missed part of the structure on
            # the box's slices, followed only there (unlimited, PyRadiomics lung1's second click followed a vessel
            # through 12 slices past the box: 1,284 voxels, 14 true)
            span = (obj.track.z_lo, obj.track.z_hi)
        find = self._follows.finder(self._decode, self._crop)
        edit = follow(find, z, region, span, changes, acceptable)
        if width is not None:
            edit = MappingProxyType({zz: in_band(part, zz) for zz, part in edit.items()})
        return Edit(point.positive, edit), prior

    def _redecode(self, obj: ObjectState, point: Point) -> SliceResult:
        """Slice ``point.z`` of ``obj`` decoded with a click-trained model: the slice's box (its latest
        decode's, else the object's 3D box's xy extent), grown to take in every positive click of the slice
        (a click outside it says the structure reaches further), every click on the slice (``point`` last) and
        the low-res logits of the slice's latest decode as the mask prompt."""
        z = int(point.z)
        clicks = obj.clicks.get(z, ()) + (point,)
        pts, labels = prop.click_arrays(clicks)
        last = obj.slices.get(z)
        prior = obj.priors.get(z, None if last is None else last.logits)
        box = prop.with_clicks(last.box if last is not None and last.box is not None else obj.track.limits, clicks)
        pred = self._decode(z, box=box, points=pts, point_labels=labels, mask_input=prior, correction=True)
        return SliceResult(pred.masks[0], pred.low_res_logits[:1], float(pred.iou[0]), box)
