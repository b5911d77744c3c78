"""Turn --box/--slice/--point/--negative-point and --prompts FILE.json into ObjectPrompts.

Prompt file (JSON): ``{"objects": [{"interactions": [...]}, ...]}``; object k gets label k.
Interactions, in order: ``{"box": [x0, y0, x1, y1], "slice": z}`` and
``{"point": [x, y] or [x, y, z], "label": 1 (positive) or 0 (negative)}``; a point without z takes
the object's box slice. Coordinates are 0-based voxel indices (x = column, y = row, z = slice).
"""

from __future__ import annotations

import json
from pathlib import Path

from medseg.errors import MedsegError
from medseg.prompts import Box, ObjectPrompts, Point, parse_numbers


def _int_z(value: float | None, what: str) -> int | None:
    if value is None:
        return None
    if value != int(value):
        raise MedsegError(f"{what}: slice index {value:g} is not a whole number")
    return int(value)


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


def _object_from_json(spec: dict, where: str) -> ObjectPrompts:
    steps = spec.get("interactions") if isinstance(spec, dict) else None
    if not isinstance(steps, list) or not steps:
        raise MedsegError(f"{where}: needs a non-empty 'interactions' list")
    obj = ObjectPrompts()
    for i, step in enumerate(steps):
        at = f"{where} interaction {i}"
        if not isinstance(step, dict):
            raise MedsegError(f"{at}: expected an object with 'box' or 'point'")
        if "box" in step:
            if obj.box is not None:
                raise MedsegError(f"{at}: only one 2D box per object")
            values = _numbers(step["box"], (4,), at)
            obj.box = Box(*values, z=_int_z(step.get("slice"), at))
        elif "point" in step:
            values = _numbers(step["point"], (2, 3), at)
            label = step.get("label", 1)
            if label not in (0, 1):
                raise MedsegError(f"{at}: point label must be 1 (positive) or 0 (negative), got {label!r}")
            obj.points.append(point_from(values, bool(label), obj.box.z if obj.box else None, at))
        else:
            raise MedsegError(f"{at}: expected 'box' or 'point', got keys {sorted(step)}")
    return obj


def _numbers(value: object, counts: tuple[int, ...], where: str) -> list[float]:
    ok = isinstance(value, list) and len(value) in counts and all(isinstance(v, (int, float)) for v in value)
    if not ok:
        raise MedsegError(f"{where}: expected a list of {' or '.join(map(str, counts))} numbers, got {value!r}")
    return [float(v) for v in value]


def from_file(path: str) -> list[ObjectPrompts]:
    file = Path(path)
    try:
        spec = json.loads(file.read_text())
    except FileNotFoundError:
        raise MedsegError(f"prompt file not found: {file}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MedsegError(f"cannot read prompt file {file}: {str(exc).splitlines()[0]}") from None
    objects = spec.get("objects") if isinstance(spec, dict) else None
    if not isinstance(objects, list) or not objects:
        raise MedsegError(f"{file}: needs a non-empty 'objects' list")
    return [_object_from_json(o, f"{file} object {k}") for k, o in enumerate(objects, start=1)]
