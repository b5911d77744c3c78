"""One nnInteractive object on a ``VolumeSession``: prompts in, the client's target buffer kept in step.

The nnInteractive protocol segments one object at a time into the client's target buffer (a (z, y, x)
array mirrored on both sides); ``reset_interactions`` starts the next object. Here the object is the
union of the VolumeSession objects its prompts made:

- a positive 3D box -> ``add_box3d``; a positive 2D box on an axial slice -> ``add_box`` (propagated);
- a point -> a correction click (``add_point``) on the object under it (else the latest one); a first
  positive point starts an object from the click;
- an initial segmentation -> an object holding that mask slice by slice, which clicks then correct;
- undo -> ``VolumeSession.undo``; reset -> no objects and no history (the embedding cache stays).

Protocol coordinates are array indices in (z, y, x) order; box intervals are half-open.
After each action the buffer is compared with the new mask and only the changed sub-block is sent.
"""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np

from medseg.errors import MedsegError
from medseg.io.image import Geometry, Image
from medseg.predict.volume import VolumeSession
from medseg.predict.zoom import Zoomed
from medseg.serve.cache import SharedCache, Store, digest
from medseg.serve.idle import COMPUTE

AHEAD = 2  # slices past each end of an object encoded while the server is idle (medseg.serve.idle)


class ServedSession(VolumeSession):
    """A VolumeSession whose embeddings live in the server's shared cache (``medseg.serve.cache``)."""

    def __init__(self, predictor: object, store: Store, ahead: int = AHEAD) -> None:
        super().__init__(predictor)
        self.store = store
        self.ahead = ahead

    def set_volume(self, image: Image | np.ndarray, window: str = "auto"):
        choice = super().set_volume(image, window)
        array = image.array if isinstance(image, Image) else image
        self.cache = SharedCache(self._encode, self.store, digest(array, (choice.low, choice.high)))
        return choice

    def slices_ahead(self, reach: int | None = None) -> list[tuple[Hashable, np.ndarray]]:
        """(cache key, image) of the slices not yet encoded that a next click likely needs, most likely first:
        ``reach`` past each end of every object (where a correction's follow goes beyond what was segmented), then
        those inside an object's range (an object from a mask or a text prompt has none encoded); none for an object
        a click on the atlas's structure made, whose corrections need no model. A small object's keys
        are its crops of those slices, as its corrections decode them (``medseg.predict.zoom``). ``reach`` defaults
        to the server's ``--ahead``; 0: none at all."""
        reach = self.ahead if reach is None else reach
        if reach <= 0:
            return []
        first: list[Hashable] = []  # past the ends
        then: list[Hashable] = []  # inside the ranges
        for obj in self.state.objects:
            zs = [z for z, m in obj.masks.items() if m.any()]
            if not zs or obj.atlas is not None:  # an atlas object's corrections need no model (medseg.text.pointed)
                continue
            lo, hi = min(zs), max(zs)
            with self._zoomed(self._xy_extent(obj)):
                crop = self._crop
            ends = [z for d in range(1, reach + 1) for z in (hi + d, lo - d) if 0 <= z < self.shape[0]]
            first += [z if crop is None else Zoomed(z, crop) for z in ends]
            then += [z if crop is None else Zoomed(z, crop) for z in range(lo, hi + 1)]
        keys = [key for key in dict.fromkeys(first + then) if key not in self.cache]
        return [(key, self._image(key)) for key in keys]


class Refused(MedsegError):
    """A prompt medseg cannot answer (the server answers 400 with the message)."""


def _ints(values: object, name: str, n: int) -> list[int]:
    if not isinstance(values, (list, tuple)) or len(values) != n:
        raise Refused(f"{name} must be a list of {n} numbers; got {values!r:.80}")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
            raise Refused(f"{name} {values!r:.80}: each value must be a finite number")
        out.append(int(round(v)))
    return out


class Target:
    """The state behind one lease: a volume, its VolumeSession and the mirrored target buffer.

    Args:
        session: a VolumeSession (its own Predictor; the engine and the cache may be shared).
    """

    def __init__(self, session: VolumeSession) -> None:
        self.session = session
        self.image_shape: tuple[int, int, int] | None = None
        self.buffer: np.ndarray | None = None
        self._filled: set[int] = set()  # slices of the buffer that may hold non-zero voxels
        self.pending = False

    # ----- image and buffer -------------------------------------------------------------------------
    def set_image(self, image: np.ndarray, properties: dict) -> list[int]:
        """``image`` is (c, z, y, x) with c = 1; ``properties['spacing']`` is (z, y, x) in mm."""
        if image.ndim != 4 or image.shape[0] != 1:
            raise Refused(f"image of shape {list(image.shape)}: medseg takes one channel, (1, z, y, x)")
        spacing = properties.get("spacing", [1.0, 1.0, 1.0]) if isinstance(properties, dict) else None
        if not isinstance(spacing, (list, tuple)) or len(spacing) != 3 or not all(
                isinstance(s, (int, float)) and not isinstance(s, bool) and np.isfinite(s) and s > 0 for s in spacing):
            raise Refused(f"image_properties spacing {spacing!r:.80} must be 3 positive numbers (z, y, x) in mm")
        volume = np.asarray(image[0])
        if not np.isfinite(volume).all() if volume.dtype.kind == "f" else False:
            raise Refused("image holds NaN or infinite values")
        geometry = Geometry(tuple(float(s) for s in reversed(spacing)), (0.0, 0.0, 0.0),
                            tuple(float(v) for v in np.eye(3).ravel()))
        with COMPUTE:
            self.session.set_volume(Image(volume, geometry))
            # the protocol carries no orientation, so the atlas could not tell left from right: clicks stay the
            # model's (medseg.text.pointed; the browser viewer reads the scan's file and keeps them)
            self.session.click_atlas = False
            COMPUTE.idle.want(self.session, [])  # what it wanted of the last volume is void
        self.image_shape = tuple(volume.shape)
        self.buffer = None
        self._filled = set()
        self.pending = False
        return [1, *self.image_shape]

    def set_buffer(self, shape: list[int], dtype: np.dtype) -> None:
        if self.image_shape is not None and tuple(shape) != self.image_shape:
            raise Refused(f"target buffer shape {list(shape)} differs from the image's {list(self.image_shape)}")
        self.buffer = np.zeros(shape, dtype)
        self._filled = set()
        self.pending = False

    def _ready(self) -> tuple[int, int, int]:
        if self.image_shape is None:
            raise Refused("no image yet; call set_image first")
        if self.buffer is None:
            raise Refused("no target buffer yet; call set_target_buffer first")
        return self.image_shape

    # ----- prompts ----------------------------------------------------------------------------------
    def add_box(self, bbox: object, positive: bool) -> None:
        """bbox [[z0, z1], [y0, y1], [x0, x1]], half-open; one interval of length 1 makes a 2D box."""
        shape = self._ready()
        if not isinstance(bbox, (list, tuple)) or len(bbox) != 3:
            raise Refused(f"bbox_coords must be [[z0, z1], [y0, y1], [x0, x1]]; got {bbox!r:.80}")
        (z0, z1), (y0, y1), (x0, x1) = (_ints(b, "bbox_coords interval", 2) for b in bbox)
        if z1 <= z0 or y1 <= y0 or x1 <= x0:
            raise Refused(f"bbox_coords {bbox!r:.80} is empty in at least one dimension")
        if not positive:
            raise Refused("negative boxes are not supported by medseg; correct with negative points instead")
        z0, y0, x0 = max(z0, 0), max(y0, 0), max(x0, 0)
        z1, y1, x1 = min(z1, shape[0]), min(y1, shape[1]), min(x1, shape[2])
        if z1 <= z0 or y1 <= y0 or x1 <= x0:
            raise Refused(f"bbox_coords {bbox!r:.80} lies outside the image {list(shape)}")
        with COMPUTE:
            if z1 - z0 == 1 and y1 - y0 > 1 and x1 - x0 > 1:
                self.session.add_box(z0, (x0, y0, x1 - 1, y1 - 1))
            elif (y1 - y0 == 1 or x1 - x0 == 1) and z1 - z0 > 1:
                raise Refused("2D boxes on coronal or sagittal slices are not supported; draw the box on an "
                              "axial slice, or draw a 3D box")
            else:
                self.session.add_box3d(x0, y0, z0, x1 - 1, y1 - 1, z1 - 1)
            self._ahead()
        self.pending = True

    def add_point(self, coordinates: object, positive: bool) -> None:
        """A click at (z, y, x)."""
        shape = self._ready()
        z, y, x = _ints(coordinates, "coordinates", 3)
        if not (0 <= z < shape[0] and 0 <= y < shape[1] and 0 <= x < shape[2]):
            raise Refused(f"point (z, y, x) = ({z}, {y}, {x}) lies outside the image {list(shape)}")
        objects = self.session.state.objects
        if not objects and not positive:
            raise Refused("a negative point needs an object to correct; start with a positive point or a box")
        under = [o.label for o in objects if (m := o.masks.get(z)) is not None and m[y, x]]
        with COMPUTE:
            self.session.add_point(x, y, z, positive=positive, obj=under[-1] if under else None)
            self._ahead()
        self.pending = True

    def add_initial_seg(self, seg: np.ndarray) -> None:
        """Start the object from a mask (non-zero = inside); later clicks correct it."""
        shape = self._ready()
        if tuple(seg.shape) != shape:
            raise Refused(f"initial segmentation of shape {list(seg.shape)} differs from the image's {list(shape)}")
        self.reset()
        inside = seg != 0
        zs = np.flatnonzero(inside.any(axis=(1, 2)))
        if len(zs):
            self.session.add_mask(inside)  # undo returns to empty
            with COMPUTE:
                self._ahead()
        self.buffer[...] = inside  # the client wrote initial_seg into its own buffer already
        self._filled = {int(z) for z in zs}
        self.pending = False

    def undo(self) -> bool:
        self._ready()
        if not self.session.undo():
            return False
        with COMPUTE:
            self._ahead()
        self.pending = True
        return True

    def reset(self) -> None:
        """No objects and no history; the embedding cache stays."""
        if self.image_shape is None:
            return
        self.session.clear()
        COMPUTE.idle.want(self.session, [])
        if self.buffer is not None:
            self.buffer.fill(0)
        self._filled = set()
        self.pending = False

    def _ahead(self) -> None:
        """Under COMPUTE: the slices the next click likely needs are encoded while the server is idle."""
        COMPUTE.idle.want(self.session, self.session.slices_ahead())

    # ----- results ----------------------------------------------------------------------------------
    def sync(self) -> tuple[list[list[int]], np.ndarray] | None:
        """Write the object's mask into the buffer; the changed bbox (half-open) and its sub-block.

        Only slices the object or the buffer hold anything on are compared (a click costs no full-volume
        pass).
        """
        self.pending = False
        new = self._union()
        zs = sorted(set(new) | self._filled)
        lo, hi = None, None  # (z, y, x) bounds of the changes
        for z in zs:
            slab = new.get(z)
            old = self.buffer[z] != 0
            changed = old if slab is None else slab != old
            if not changed.any():
                continue
            rows, cols = np.flatnonzero(changed.any(axis=1)), np.flatnonzero(changed.any(axis=0))
            here = np.array([z, rows[0], cols[0]]), np.array([z + 1, rows[-1] + 1, cols[-1] + 1])
            lo = here[0] if lo is None else np.minimum(lo, here[0])
            hi = here[1] if hi is None else np.maximum(hi, here[1])
        if lo is None:
            return None
        for z in range(lo[0], hi[0]):
            slab = new.get(z)
            self.buffer[z, lo[1]:hi[1], lo[2]:hi[2]] = 0 if slab is None else slab[lo[1]:hi[1], lo[2]:hi[2]]
        self._filled = set(new)
        bbox = [[int(a), int(b)] for a, b in zip(lo, hi, strict=True)]
        return bbox, np.ascontiguousarray(self.buffer[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]])

    def _union(self) -> dict[int, np.ndarray]:
        """z -> (y, x) bool mask of the object (the union of its VolumeSession objects)."""
        out: dict[int, np.ndarray] = {}
        for obj in self.session.state.objects:
            for z, m in obj.masks.items():
                out[z] = out[z] | m if z in out else m
        return out
