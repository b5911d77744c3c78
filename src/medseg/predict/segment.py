"""From an Image and 2D prompts to a label map on the image's own grid."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medseg.errors import MedsegError
from medseg.io.image import Image
from medseg.predict.predictor import Predictor
from medseg.preprocess.window import WindowChoice, apply_window, check_finite, choose_window
from medseg.prompts import ObjectPrompts, check_box, check_point, check_slice


@dataclass
class SegmentResult:
    labels: np.ndarray  # image.grid_shape, uint8, label k for the k-th object
    window: WindowChoice
    slices: dict[int, int]  # object label -> slice index (0 for 2D images)
    iou: dict[int, float]


def window_for(image: Image, window: str) -> WindowChoice:
    """Check the image's values and choose its window (for the whole volume, so slices agree)."""
    name = str(image.path) if image.path else "image"
    check_finite(image.array, name)
    return choose_window(image.array, image.modality, window, picture=not image.is_volume)


def windowed(image: Image, window: str) -> tuple[np.ndarray, WindowChoice]:
    """Check the image and window it to 0..255 (whole volume at once, so slices agree)."""
    choice = window_for(image, window)
    return apply_window(image.array, choice), choice


def _slice_of(image: Image, windowed_array: np.ndarray, z: int | None) -> tuple[np.ndarray, int]:
    if not image.is_volume:
        if z not in (None, 0):
            raise MedsegError(f"slice {z} given for a 2D image; omit --slice")
        return windowed_array, 0
    if z is None:
        raise MedsegError("a 2D prompt on a 3D volume needs its slice: add --slice Z (or x,y,z for points)")
    check_slice(z, image.array.shape[0])
    return windowed_array[z], z


def validate_2d(image: Image, objects: list[ObjectPrompts]) -> None:
    """Check image values and every prompt against the grid, before any model work.

    Raises:
        MedsegError: no prompt, NaN/constant image, slice out of range, box or point outside,
            inverted box.
    """
    if not objects:
        raise MedsegError("no prompt given: use --box, --point or --prompts")
    if len(objects) > 255:
        raise MedsegError(f"{len(objects)} objects exceed the 255 labels of a uint8 mask")
    check_finite(image.array, str(image.path) if image.path else "image")
    for obj in objects:
        slice_2d, _ = _slice_of(image, image.array, obj.slice_index())
        if obj.box:
            check_box(obj.box, slice_2d.shape[:2])
        for p in obj.points:
            check_point(p, slice_2d.shape[:2])


def one_way(previous: np.ndarray, new: np.ndarray, positive: bool) -> np.ndarray:
    """A 2D correction click's mask: a positive click only adds to the previous mask, a negative one only takes away.

    The decoder re-decodes the whole slice; what it changes against the click's sense is dropped. Training slices
    (2D protocol, six sources equally weighted; benchmarks/results/interactive/one_way.md): five points after a
    lone click 0.604 -> 0.636, a box then four clicks 0.641 -> 0.661."""
    return previous | new if positive else previous & new


def _run_object(predictor: Predictor, obj: ObjectPrompts, image: np.ndarray) -> tuple[np.ndarray, float]:
    from medseg.predict.zoom import on_slice

    shape = image.shape[:2]
    box = obj.box.as_array() if obj.box else None
    decode = on_slice(predictor, image)  # a small box: decoded from a magnified crop (medseg.predict.zoom)
    if not obj.points:
        pred = decode(box=box)
        return pred.best(), float(pred.iou.max())
    pred, prior, clicks, mask = None, None, [], None
    points = list(obj.points)
    if box is None and points[0].positive:
        # a lone click: decoded as it is by a click-trained model, else box proposals around it
        # (medseg.predict.click); later clicks refine that result
        from medseg.predict.click import segment_click  # scipy: only when needed (cold start)

        first = points.pop(0)
        # its proposals on the whole slice: the choice's score was fitted there (and crops of the small proposals
        # lowered RIDER's one-click Dice 0.84 -> 0.75 in 3D)
        seed = segment_click(lambda _z, **kw: predictor.predict(**kw), 0, first.x, first.y, shape,
                             direct=predictor.direct_clicks, image=image)
        if not points:
            return seed.mask, seed.iou
        clicks, prior, mask = [first], seed.logits, seed.mask
        # later clicks keep the seed's tight box: the chosen proposal's own box is often much larger
        # (held-out 2D, 5 points, mean of five sets: 0.687 with the proposal's box, 0.741 with the tight one)
        from medseg.predict.propagate import widened_box

        box = widened_box(seed.mask, 0)
    elif box is not None:
        pred = decode(box=box)
        prior, mask = pred.low_res_logits, pred.best()
    for p in points:
        clicks.append(p)
        xy = np.array([[c.x, c.y] for c in clicks], np.float32)
        lab = np.array([int(c.positive) for c in clicks])
        pred = decode(box=box, points=xy, point_labels=lab, mask_input=prior, correction=prior is not None)
        best = int(np.argmax(pred.iou))
        prior = pred.low_res_logits[best:best + 1]
        # a correction of an earlier mask goes one way; the first decode of clicks that start negative stands
        mask = pred.masks[best] if mask is None else one_way(mask, pred.masks[best], p.positive)
    return mask, float(pred.iou.max())


def segment_2d(predictor: Predictor, image: Image, objects: list[ObjectPrompts],
               window: str = "auto") -> SegmentResult:
    """Segment each object on its slice; every other slice stays 0.

    Args:
        predictor: A Predictor around a loaded model.
        image: 2D (grey or RGB) or 3D image.
        objects: One ObjectPrompts per object; object k gets label k (1-based). Where objects
            overlap, the later object wins.
        window: A name from medseg.preprocess.window.WINDOW_NAMES.
    """
    validate_2d(image, objects)
    data, choice = windowed(image, window)
    labels = np.zeros(image.grid_shape, np.uint8)
    encoded: int | None = None
    slices, ious, kept = {}, {}, {}
    order = [_slice_of(image, data, obj.slice_index())[1] for obj in objects]
    # Prompts on several slices: the slices are encoded ahead, side by side (medseg.predict.read_ahead).
    ahead = predictor.read_ahead(order, data.__getitem__) if len(set(order)) > 1 else None
    try:
        for label, obj in enumerate(objects, start=1):
            slice_2d, z = _slice_of(image, data, obj.slice_index())
            if encoded != z:  # each slice is encoded once, however the objects are ordered
                if z in kept:
                    predictor.set_embedding(kept[z], slice_2d.shape[:2])
                elif ahead is not None:
                    predictor.set_embedding(ahead.take(z), slice_2d.shape[:2])
                else:
                    predictor.set_image(slice_2d)
                kept[z], encoded = predictor.embedding, z
            mask, iou = _run_object(predictor, obj, np.asarray(slice_2d))
            target = labels[z] if image.is_volume else labels
            target[mask] = label
            slices[label], ious[label] = z, iou
    finally:
        if ahead is not None:
            ahead.close()
    return SegmentResult(labels, choice, slices, ious)
