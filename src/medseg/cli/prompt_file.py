"""Read a prompt file (JSON) into ObjectPrompts, refusing anything its schema does not name.

Schema: ``{"objects": [{"interactions": [...], "propagate": false, "name": "liver"}, ...]}``; object k gets
label k; ``name`` (optional, at most 64 characters) names its segment in a DICOM SEG output.
Each interaction holds exactly one of ``{"box3d": [x0, y0, z0, x1, y1, z1]}``,
``{"box": [x0, y0, x1, y1], "slice": z}``, ``{"point": [x, y] or [x, y, z], "label": 1 or 0}`` or
``{"text": "left hippocampus"}`` (a structure's name, ``medseg.text``; only as the object's first interaction,
points after it correct it; the resolved name names the object unless ``name`` is given).
Coordinates are finite numbers (no true/false, NaN or Infinity); slices and labels whole numbers.
Unknown keys are refused at every level (a misspelt "lable" would otherwise silently mean "positive").
"""

from __future__ import annotations

import json
from pathlib import Path

from medseg.errors import MedsegError
from medseg.prompts import Box, Box3D, ObjectPrompts, Point
from medseg.validate import coordinates, number

MAX_BYTES = 1 << 20  # 1 MiB: thousands of objects' worth of prompts
MAX_OBJECTS = 255  # labels 1..255 of a uint8 mask
KEYS = {"file": ("objects",), "object": ("interactions", "propagate", "name"), "box3d": ("box3d",),
        "box": ("box", "slice"), "point": ("label", "point"), "text": ("text",)}


def read_json(path: str | Path) -> object:
    """The parsed document, or a one-line MedsegError (missing, too big, not JSON, NaN/Infinity, too deep)."""
    file = Path(path)
    try:
        with open(file, "rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise MedsegError(f"prompt file not found: {file}") from None
    except IsADirectoryError:
        raise MedsegError(f"prompt file {file} is a folder; give the JSON file") from None
    except OSError as exc:
        raise MedsegError(f"cannot read prompt file {file}: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        size = file.stat().st_size if file.is_file() else None
        shown = f"{size / 2**20:.0f} MiB" if size and size >= 2**20 else "larger than 1 MiB"
        raise MedsegError(f"prompt file {file} is {shown}; a prompt file holds at most 1 MiB")
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_refuse_constant, parse_int=_int)
    except UnicodeDecodeError:
        raise MedsegError(f"prompt file {file} is not UTF-8 text; write it as JSON") from None
    except RecursionError:
        raise MedsegError(f"prompt file {file} is nested too deeply to be a prompt file") from None
    except MedsegError as exc:
        raise MedsegError(f"prompt file {file}: {exc}") from None
    except ValueError as exc:  # JSONDecodeError
        raise MedsegError(f"cannot read prompt file {file}: {str(exc).splitlines()[0]}") from None


def _int(text: str) -> int:
    if len(text.lstrip("-")) > 30:
        raise MedsegError(f"the number {text[:20]}... has {len(text)} digits; no coordinate needs more than 30")
    return int(text)


def _refuse_constant(name: str) -> None:
    raise MedsegError(f"{name} is not a number a prompt can use; write finite numbers")


def objects_from(spec: object, where: str) -> list[ObjectPrompts]:
    """A parsed prompt file's objects (``where`` names the file in messages)."""
    _known_keys(spec, "file", where, "a JSON object with an 'objects' list")
    objects = spec.get("objects")
    if not isinstance(objects, list) or not objects:
        raise MedsegError(f"{where}: needs a non-empty 'objects' list")
    if len(objects) > MAX_OBJECTS:
        raise MedsegError(f"{where}: {len(objects)} objects; at most {MAX_OBJECTS} (one mask label each)")
    return [_object(o, f"{where} object {k}") for k, o in enumerate(objects, start=1)]


def _known_keys(spec: object, kind: str, where: str, expected: str) -> None:
    if not isinstance(spec, dict):
        raise MedsegError(f"{where}: expected {expected}, got {_shown(spec)}")
    unknown = sorted(set(spec) - set(KEYS[kind]))
    if unknown:
        raise MedsegError(f"{where}: unknown key {unknown[0]!r}; known keys here: {', '.join(KEYS[kind])}")


def _object(spec: object, where: str) -> ObjectPrompts:
    _known_keys(spec, "object", where, "an object with an 'interactions' list")
    steps = spec.get("interactions")
    if not isinstance(steps, list) or not steps:
        raise MedsegError(f"{where}: needs a non-empty 'interactions' list")
    propagate = spec.get("propagate", False)
    if not isinstance(propagate, bool):
        raise MedsegError(f"{where}: 'propagate' must be true or false, got {_shown(propagate)}")
    name = spec.get("name", "")
    if not isinstance(name, str) or len(name) > 64 or any(c in name for c in "\\\n\r"):
        raise MedsegError(f"{where}: 'name' must be text of at most 64 characters on one line, got {_shown(name)}")
    obj = ObjectPrompts(propagate=propagate, name=name.strip())
    for i, step in enumerate(steps):
        _interaction(obj, step, f"{where} interaction {i}")
    if obj.box is None and obj.box3d is None and obj.text is None and not any(p.positive for p in obj.points):
        raise MedsegError(f"{where}: a negative point alone marks nothing; start with a box or a positive point")
    return obj


def _interaction(obj: ObjectPrompts, step: object, at: str) -> None:
    kinds = [k for k in ("box3d", "box", "point", "text") if isinstance(step, dict) and k in step]
    if len(kinds) != 1:
        got = "" if not isinstance(step, dict) else f", got keys {', '.join(map(repr, sorted(step))) or 'none'}"
        raise MedsegError(f"{at}: expected 'box' or 'point' (or 'box3d', 'text'), exactly one per interaction{got}")
    kind = kinds[0]
    _known_keys(step, kind, at, "")
    if kind != "text" and obj.text is not None and kind != "point":
        raise MedsegError(f"{at}: an object named by 'text' takes only correcting points after it")
    if kind == "text":
        text = step["text"]
        if obj.box3d is not None or obj.box is not None or obj.points or obj.text is not None:
            raise MedsegError(f"{at}: 'text' must be the object's first and only prompt (points may follow)")
        if not isinstance(text, str) or not text.strip() or len(text) > 200 or "\n" in text:
            raise MedsegError(f"{at}: 'text' must name a structure in at most 200 characters, got {_shown(text)}")
        obj.text = text.strip()
    elif kind == "box3d":
        if obj.box3d is not None or obj.box is not None or obj.points:
            raise MedsegError(f"{at}: a 3D box must be the object's first and only box")
        x0, y0, z0, x1, y1, z1 = coordinates(step["box3d"], f"{at} box3d", 6)
        obj.box3d = Box3D(x0, y0, _slice(z0, at), x1, y1, _slice(z1, at))
    elif kind == "box":
        if obj.box3d is not None:
            raise MedsegError(f"{at}: an object with a 3D box takes no 2D box")
        if obj.box is not None:
            raise MedsegError(f"{at}: only one 2D box per object")
        z = step.get("slice")
        obj.box = Box(*coordinates(step["box"], f"{at} box", 4), z=None if z is None else _slice(z, at))
    else:
        values = coordinates(step["point"], f"{at} point", (2, 3))
        label = step.get("label", 1)
        if isinstance(label, bool) or label not in (0, 1):
            raise MedsegError(f"{at}: point label must be 1 (positive) or 0 (negative), got {_shown(label)}")
        z = _slice(values[2], at) if len(values) == 3 else (obj.box.z if obj.box else None)
        obj.points.append(Point(values[0], values[1], z, label == 1))


def _slice(value: object, at: str) -> int:
    return number(value, f"{at} slice", integer=True, example=40)


def _shown(value: object) -> str:
    """A JSON value as the file spells it, shortened."""
    text = json.dumps(value) if not isinstance(value, float) or value == value else "NaN"
    return text if len(text) <= 40 else text[:37] + "..."
