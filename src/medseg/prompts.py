"""Prompt types and their validation against an image grid.

All coordinates are 0-based voxel indices in ITK index order: x = column, y = row, z = slice, i.e.
``array[z, y, x]`` of SimpleITK's GetArrayFromImage. Box corners are inclusive.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from medseg.errors import MedsegError
from medseg.validate import INT_MAX, number, parse_number


@dataclass(frozen=True)
class Box:
    """2D box (x0, y0, x1, y1), inclusive corners, on slice ``z`` (None for a 2D image)."""

    x0: float
    y0: float
    x1: float
    y1: float
    z: int | None = None

    def __post_init__(self) -> None:
        _check_fields(self, ("x0", "y0", "x1", "y1"), z="z")

    def as_array(self) -> np.ndarray:
        return np.array([self.x0, self.y0, self.x1, self.y1], dtype=np.float32)


@dataclass(frozen=True)
class Point:
    """A click at (x, y[, z]); positive marks the structure, negative marks background."""

    x: float
    y: float
    z: int | None = None
    positive: bool = True

    def __post_init__(self) -> None:
        _check_fields(self, ("x", "y"), z="z")
        if not isinstance(self.positive, (bool, np.bool_)):
            raise MedsegError(f"Point.positive {self.positive!r}: must be True (positive) or False (negative)")


@dataclass
class ObjectPrompts:
    """The ordered interactions for one object: an optional box, then clicks.

    The first interaction gives a mask; each later click re-predicts with all clicks so far and the
    previous low-res logits as a mask prompt (SAM's interactive convention), and in 2D goes one way: a
    positive click only adds to the mask, a negative one only takes away (``medseg.predict.segment.one_way``).
    """

    box: Box | None = None
    points: list[Point] = field(default_factory=list)
    box3d: Box3D | None = None
    propagate: bool = False
    text: str | None = None  # a structure's name (medseg.text); the object's first interaction
    name: str = ""

    @property
    def is_3d(self) -> bool:
        """Segmented through the volume: a 3D box, a text prompt, or a 2D box / point with propagation."""
        return self.box3d is not None or self.propagate or self.text is not None

    def slice_index(self) -> int | None:
        zs = {p.z for p in self.points} | ({self.box.z} if self.box else set())
        if len(zs) > 1:
            raise MedsegError(f"the prompts of one object lie on different slices: {sorted(map(str, zs))}")
        return zs.pop() if zs else None



def _check_fields(prompt: object, names: tuple[str, ...], z: str | None = None) -> None:
    """Coordinates must be finite numbers (no bools, no NaN); a slice index a whole number or None.

    Whether they lie inside an image is checked against it later (check_box, check_slice, clip_box3d).
    """
    kind = type(prompt).__name__
    for name in names:
        number(getattr(prompt, name), f"{kind}.{name}")
    if z is not None and getattr(prompt, z) is not None:
        number(getattr(prompt, z), f"{kind}.{z}", integer=True, minimum=-INT_MAX)


def parse_numbers(text: str, count: tuple[int, ...], what: str) -> list[float]:
    """Parse 'a,b,c' into finite floats (ASCII decimals, no NaN or infinities), requiring one of the allowed counts."""
    parts = text.split(",")
    for part in parts:
        try:
            parse_number(part, what)
        except MedsegError:
            example = {2: "10,20", 3: "10,20,5", 4: "10,20,60,80", 6: "10,20,5,60,80,9"}.get(max(count), "10,20,60,80")
            raise MedsegError(f"{what} {text!r}: {part.strip()!r} is not a finite number; write numbers separated "
                              f"by commas, e.g. {example}") from None
    if len(parts) not in count:
        want = " or ".join(str(c) for c in count)
        raise MedsegError(f"{what} {text!r} needs {want} numbers, got {len(parts)}")
    return [float(part) for part in parts]


def check_box(box: Box, shape_yx: tuple[int, int]) -> None:
    """Reject inverted, empty or outside boxes with a one-line error. shape_yx = (rows, cols)."""
    h, w = shape_yx
    text = f"box {box.x0:g},{box.y0:g},{box.x1:g},{box.y1:g}"
    if box.x1 < box.x0 or box.y1 < box.y0:
        raise MedsegError(f"{text} is inverted: need x0 <= x1 and y0 <= y1")
    if box.x0 < 0 or box.y0 < 0 or box.x1 > w - 1 or box.y1 > h - 1:
        raise MedsegError(f"{text} lies outside the image (x 0..{w - 1}, y 0..{h - 1})")


def check_point(point: Point, shape_yx: tuple[int, int]) -> None:
    h, w = shape_yx
    if not (0 <= point.x <= w - 1 and 0 <= point.y <= h - 1):
        raise MedsegError(f"point {point.x:g},{point.y:g} lies outside the image (x 0..{w - 1}, y 0..{h - 1})")


def check_slice(z: int, depth: int) -> None:
    if not 0 <= z < depth:
        raise MedsegError(f"slice {z} is out of range (0..{depth - 1})")


def box_from_mask(mask: np.ndarray) -> Box | None:
    """Tight inclusive box around the nonzero pixels of a (H, W) mask, or None when empty."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return Box(float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max()))


@dataclass(frozen=True)
class Box3D:
    """3D box (x0, y0, z0, x1, y1, z1), inclusive voxel corners in ITK index order."""

    x0: float
    y0: float
    z0: int
    x1: float
    y1: float
    z1: int

    def __post_init__(self) -> None:
        _check_fields(self, ("x0", "y0", "x1", "y1"))
        for name in ("z0", "z1"):  # required, unlike a 2D box's slice
            number(getattr(self, name), f"Box3D.{name}", integer=True, minimum=-INT_MAX)

    def box2d(self, z: int | None = None) -> Box:
        """The box's (x, y) extent as a 2D Box on slice z."""
        return Box(self.x0, self.y0, self.x1, self.y1, z)

    def text(self) -> str:
        return ",".join(f"{v:g}" for v in (self.x0, self.y0, self.z0, self.x1, self.y1, self.z1))


def clip_box3d(box: Box3D, shape_zyx: tuple[int, int, int]) -> tuple[Box3D, str | None]:
    """Clip a 3D box to the volume; reject inverted, zero-extent or fully outside boxes.

    Args:
        box: the user's box, voxel indices (x, y, z), inclusive corners.
        shape_zyx: (depth, rows, cols) of the volume.

    Returns:
        The clipped box and a one-line note saying what was clipped (None when nothing was).
    """
    d, h, w = shape_zyx
    text = f"box {box.text()}"
    if box.x1 < box.x0 or box.y1 < box.y0 or box.z1 < box.z0:
        raise MedsegError(f"{text} is inverted: need x0 <= x1, y0 <= y1 and z0 <= z1")
    if box.x1 == box.x0 or box.y1 == box.y0:
        raise MedsegError(f"{text} has zero extent in x or y; a box needs x0 < x1 and y0 < y1")
    if box.x1 < 0 or box.y1 < 0 or box.z1 < 0 or box.x0 > w - 1 or box.y0 > h - 1 or box.z0 > d - 1:
        raise MedsegError(f"{text} lies entirely outside the volume (x 0..{w - 1}, y 0..{h - 1}, z 0..{d - 1})")
    clipped = Box3D(max(box.x0, 0.0), max(box.y0, 0.0), max(box.z0, 0), min(box.x1, w - 1.0), min(box.y1, h - 1.0),
                    min(box.z1, d - 1))
    if clipped.x1 == clipped.x0 or clipped.y1 == clipped.y0:
        raise MedsegError(f"{text} has zero extent in x or y after clipping to the volume")
    if clipped == box:
        return box, None
    return clipped, f"{text} reaches outside the volume; clipped to {clipped.text()}"
