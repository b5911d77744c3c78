"""From an Image and per-object interactions to a 3D label map, through a VolumeSession.

Used by ``medseg segment`` when any object is 3D (a 3D box, or ``propagate``). Each object's
interactions are replayed in order: its first prompt (3D box, 2D box on a slice, a positive point, or a
structure's name: ``medseg.text``) creates it, later points correct it. 2D objects in the same run stay on their slice.
"""

from __future__ import annotations

from medseg.errors import MedsegError
from medseg.io.image import Image
from medseg.predict.segment import SegmentResult
from medseg.predict.volume import VolumeSession
from medseg.preprocess.window import check_finite
from medseg.prompts import ObjectPrompts, check_box, check_point, check_slice, clip_box3d


def validate_volume(image: Image, objects: list[ObjectPrompts]) -> list[str]:
    """Check every prompt against the volume before any model work.

    Returns:
        One note per 3D box that had to be clipped to the volume.

    Raises:
        MedsegError: not a volume, no prompt, too many objects, NaN/constant image, slice out of range,
            point outside, box outside / inverted / of zero extent.
    """
    if not image.is_volume:
        raise MedsegError("3D prompts (a 3D box, --propagate or --text) need a 3D volume")
    if not objects:
        raise MedsegError("no prompt given: use --box, --point or --prompts")
    if len(objects) > 255:
        raise MedsegError(f"{len(objects)} objects exceed the 255 labels of a uint8 mask")
    check_finite(image.array, str(image.path) if image.path else "image")
    depth, h, w = image.array.shape[:3]
    notes = []
    for obj in objects:
        if obj.text is not None and not obj.text.strip():
            raise MedsegError("empty text prompt: name a structure, e.g. --text 'left hippocampus'")
        if obj.box3d is not None:
            _, note = clip_box3d(obj.box3d, (depth, h, w))
            notes += [note] if note else []
        if obj.box is not None:
            if obj.box.z is None:
                raise MedsegError("a 2D box on a volume needs its slice: add --slice Z")
            check_slice(obj.box.z, depth)
            check_box(obj.box, (h, w))
        for p in obj.points:
            if p.z is None:
                raise MedsegError(f"point {p.x:g},{p.y:g} on a volume needs its slice: give X,Y,Z")
            check_slice(p.z, depth)
            check_point(p, (h, w))
        if obj.box3d is None and obj.box is None and obj.text is None and not (obj.points and obj.points[0].positive):
            raise MedsegError("an object without a box must start with a positive point")
    return notes


def _add_object(session: VolumeSession, obj: ObjectPrompts) -> tuple[int, int]:
    """Create one object and replay its clicks; returns (label, seed slice)."""
    clicks = list(obj.points)
    if obj.text is not None:
        label = session.add_text(obj.text)
    elif obj.box3d is not None:
        b = obj.box3d
        label = session.add_box3d(b.x0, b.y0, b.z0, b.x1, b.y1, b.z1)
    elif obj.box is not None:
        label = session.add_box(obj.box.z, (obj.box.x0, obj.box.y0, obj.box.x1, obj.box.y1), obj.propagate)
    else:
        first = clicks.pop(0)
        label = session.add_point(first.x, first.y, first.z, new_object=True, propagate=obj.propagate)
    for p in clicks:
        session.add_point(p.x, p.y, p.z, p.positive, obj=label)
    state = session.state.objects[-1]
    return label, state.seed_z


def segment_volume(session: VolumeSession, image: Image, objects: list[ObjectPrompts],
                   window: str = "auto") -> SegmentResult:
    """Segment every object through the volume (object k gets label k; later objects win overlaps).

    Clipping notes land in ``session.messages``.
    """
    validate_volume(image, objects)
    choice = session.set_volume(image, window)
    texts = [obj.text for obj in objects if obj.text is not None]
    if texts:  # every name is understood before any registration or model work
        from medseg.text.session import check_texts

        check_texts(session, texts)
    slices, ious = {}, {}
    for obj in objects:
        label, z = _add_object(session, obj)
        seed = session.state.objects[-1].slices.get(z)
        slices[label], ious[label] = z, (seed.iou if seed is not None else 0.0)
    return SegmentResult(session.mask, choice, slices, ious)
