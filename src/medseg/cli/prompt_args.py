"""Turn --box/--slice/--point/--negative-point and --prompts FILE.json into ObjectPrompts.

Prompt file (JSON): ``{"objects": [{"interactions": [...]}, ...]}``; object k gets label k.
Interactions, in order: ``{"box3d": [x0, y0, z0, x1, y1, z1]}`` (3D: propagated through the volume),
``{"box": [x0, y0, x1, y1], "slice": z}`` and
``{"point": [x, y] or [x, y, z], "label": 1 (positive) or 0 (negative)}``; a point without z takes
the object's box slice. ``"propagate": true`` on an object propagates its 2D box or first point through
the volume; points after a 3D prompt correct the slice they lie on. Coordinates are 0-based voxel indices
(x = column, y = row, z = slice).
"""

from __future__ import annotations

from medseg.cli import prompt_file
from medseg.errors import MedsegError
from medseg.prompts import Box, Box3D, ObjectPrompts, Point, parse_numbers
from medseg.validate import number


def _int_z(value: float | None, what: str) -> int | None:
    return None if value is None else number(value, f"{what} slice index", integer=True, example=40)


def point_from(values: list[float], positive: bool, slice_z: int | None, what: str) -> Point:
    z = _int_z(values[2], what) if len(values) == 3 else slice_z
    return Point(values[0], values[1], z, positive)


def from_flags(box: str | None, slice_z: int | None, points: list[str], negatives: list[str]) -> ObjectPrompts | None:
    """One object from the command-line flags, or None if no flag was given."""
    if box is None and not points and not negatives:
        if slice_z is not None:
            raise MedsegError("--slice needs a --box or --point on that slice")
        return None
    obj = ObjectPrompts()
    if box is not None:
        x0, y0, x1, y1 = parse_numbers(box, (4,), "--box")
        obj.box = Box(x0, y0, x1, y1, slice_z)
    for text in points:
        obj.points.append(point_from(parse_numbers(text, (2, 3), "--point"), True, slice_z, "--point"))
    for text in negatives:
        obj.points.append(point_from(parse_numbers(text, (2, 3), "--negative-point"), False, slice_z,
                                     "--negative-point"))
    return obj


def box3d_from(values: list[float], what: str) -> Box3D:
    x0, y0, z0, x1, y1, z1 = values
    return Box3D(x0, y0, _int_z(z0, what), x1, y1, _int_z(z1, what))


def objects_from_flags(boxes: list[str], slice_z: int | None, points: list[str], negatives: list[str],
                       propagate: bool = False) -> list[ObjectPrompts]:
    """Objects from repeatable --box (4 numbers with --slice, or 6 for a 3D box) and the point flags.

    Each 3D box is one object. A 2D box and the points form one more object; points given with 3D
    boxes only correct the last 3D box. A single positive ``--point X,Y,Z`` alone is segmented in 3D.
    """
    parsed = [parse_numbers(text, (1, 2, 3, 4, 5, 6, 7, 8), "--box") for text in boxes]
    for text, values in zip(boxes, parsed, strict=True):
        if len(values) not in (4, 6):
            raise MedsegError(f"--box {text!r} needs 4 numbers (X0,Y0,X1,Y1 with --slice) or 6 "
                              f"(X0,Y0,Z0,X1,Y1,Z1), got {len(values)}")
    flat = [",".join(f"{v:g}" for v in b) for b in parsed if len(b) == 4]
    if len(flat) > 1:
        raise MedsegError(f"{len(flat)} 2D boxes given; use one --box X0,Y0,X1,Y1 per run or --prompts FILE.json")
    objects = [ObjectPrompts(box3d=box3d_from(b, "--box")) for b in parsed if len(b) == 6]
    if objects and slice_z is not None and not flat and not points and not negatives:
        raise MedsegError("--slice goes with a 2D box; a 3D box X0,Y0,Z0,X1,Y1,Z1 carries its own slices")
    flag = from_flags(flat[0] if flat else None, slice_z, points, negatives)
    if flag is not None and objects and flag.box is None:
        objects[-1].points.extend(flag.points)
    elif flag is not None:
        if flag.box is None and not points:
            raise MedsegError("a --negative-point alone marks nothing; start with a --box or a positive --point")
        lone_point = (flag.box is None and len(flag.points) == 1 and flag.points[0].positive
                      and slice_z is None and flag.points[0].z is not None)
        flag.propagate = propagate or lone_point
        objects.append(flag)
    elif propagate:
        raise MedsegError("--propagate needs a 2D --box with --slice, or a --point")
    return objects


def from_file(path: str) -> list[ObjectPrompts]:
    """The objects of a prompt file (schema: medseg.cli.prompt_file); one-line MedsegError if it breaks it."""
    return prompt_file.objects_from(prompt_file.read_json(path), str(path))
