"""A 3D box segmented on three slice axes, and the voxels at least two of them hold (``VolumeSession.planes``).

``VolumeSession`` segments a box slice by slice along the volume's first array axis. On a volume with (near)
isotropic voxels the same box can be segmented along the other two axes too, by the same propagation on the
volume's transposes; the majority of the three masks is kept. A structure that the model outlines poorly on one
family of slices is often clearer on another (a vertebra is one ring on axial slices but a body and a separate
arch on sagittal ones), and the three answers' errors differ. Measured on held-out data:
``benchmarks/results/interactive/planes/README.md`` (Harvard-Oxford on MNI152 and the spine MR).

Only for near-isotropic voxels (spacings within ``ISOTROPIC`` of each other): slices across thick axial slices
would be blurred, stretched images, and that was not measured. Costs the encodes of the box's slices along the
other two axes (about three times the time of one axis).

A correction click on such an object is applied along all three axes too (each axis's own object corrected as its
session corrects any object), and the majority taken again. A tight box then five clicks, against correcting the
majority's mask on z slices only: training structures (10 Colin27 AAL, spine CT L2-L4) mean Dice 0.483 -> 0.514;
held out, Harvard-Oxford 0.634 -> 0.664, spine MR 0.497 -> 0.502.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from medseg.io.image import Geometry, Image
from medseg.prompts import Box3D

ISOTROPIC = 1.25  # largest / smallest voxel spacing for which the three axes are segmented
AXES = (1, 2)  # the array axes (y, x) the side segmentations slice along; axis 0 is the session's own


def near_isotropic(spacing: Sequence[float]) -> bool:
    """Whether voxel spacings (any order) lie within ``ISOTROPIC`` of each other."""
    return max(spacing) / min(spacing) <= ISOTROPIC


def transposed(image: Image, axis: int) -> tuple[Image, tuple[int, int, int]]:
    """The (z, y, x) volume with array ``axis`` moved first (the other two keep their order), and that order.

    The geometry keeps only the permuted spacing: the side segmentations need voxel sizes, not positions.
    """
    order = (axis, *(a for a in range(3) if a != axis))
    spacing_zyx = tuple(reversed(image.geometry.spacing))
    spacing = tuple(reversed([spacing_zyx[a] for a in order]))
    array = np.ascontiguousarray(image.array.transpose(order))
    return Image(array, Geometry.identity(3, spacing), modality=image.modality), order


def side_box(box: Box3D, order: tuple[int, int, int]) -> Box3D:
    """``box`` (inclusive voxel corners) in the frame of the volume transposed to ``order``."""
    lo = (box.z0, box.y0, box.x0)
    hi = (box.z1, box.y1, box.x1)
    z, y, x = order
    return Box3D(lo[x], lo[y], int(np.floor(lo[z])), hi[x], hi[y], int(np.ceil(hi[z])))


def side_objects(side: Callable[[int], tuple[Any, tuple[int, int, int]]], box: Box3D,
                 propagation: Any, kind: str) -> list[Any]:
    """The box segmented on the volume sliced along y and along x: each side session's object, in the frame of its
    transpose (``on_volume`` brings its mask back), of the object's ``kind`` (a click object's sides follow the
    correction rules of click objects). The side sessions are left without objects.

    Args:
        side: array axis -> (a ``VolumeSession`` on the volume transposed to bring that axis first, the order of
            that transpose); its embeddings serve every object of the volume.
        box: the 3D box in the volume's frame.
        propagation: the object's propagation rule.
    """
    out = []
    for axis in AXES:
        session, order = side(axis)
        b = side_box(box, order)
        label = session.add_box3d(b.x0, b.y0, b.z0, b.x1, b.y1, b.z1, propagation=propagation)
        out.append(replace(next(o for o in session.state.objects if o.label == label), kind=kind))
        session.clear()  # the side session keeps its embeddings, not its objects
    return out


def side_corrected(side: Callable[[int], tuple[Any, tuple[int, int, int]]], objects: Sequence[Any],
                   x: float, y: float, z: int, positive: bool) -> list[Any]:
    """The side objects of ``side_objects`` each corrected by the click at voxel (x, y, z) of the volume, as their
    own sessions correct an object (``VolumeSession.add_point``), in their transposes' frames."""
    out = []
    for axis, obj in zip(AXES, objects, strict=True):
        session, order = side(axis)
        session.clear()
        session.state = replace(session.state, objects=(obj,), next_label=obj.label + 1)
        sx, sy, sz = side_point(x, y, z, order)
        session.add_point(sx, sy, sz, positive=positive, obj=obj.label)
        out.append(session.state.objects[0])
        session.clear()
    return out


def side_point(x: float, y: float, z: int, order: tuple[int, int, int]) -> tuple[float, float, int]:
    """Voxel (x, y, z) of the volume as (x, y, slice) of its transpose to ``order``."""
    zyx = (z, y, x)
    return zyx[order[2]], zyx[order[1]], int(round(zyx[order[0]]))


def on_volume(mask: np.ndarray, order: tuple[int, int, int]) -> np.ndarray:
    """A mask on the transpose to ``order`` back on the volume's (z, y, x) grid."""
    return mask.transpose(np.argsort(order))


def majority(masks: Sequence[np.ndarray]) -> np.ndarray:
    """Voxels inside at least two of three masks."""
    votes = np.zeros(masks[0].shape, np.uint8)
    for m in masks:
        votes += m.astype(bool)
    return votes >= 2
