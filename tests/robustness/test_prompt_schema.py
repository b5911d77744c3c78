"""Property-based tests of the prompt parser and the prompt-file schema.

Whatever the text or JSON document, the result is either valid prompts (finite coordinates, labels 0/1,
whole slice indices) or a one-line MedsegError, never another exception; valid files round-trip.
"""

from __future__ import annotations

import json
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medseg.cli import prompt_args, prompt_file
from medseg.errors import MedsegError
from medseg.prompts import ObjectPrompts, parse_numbers

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
COUNTS = st.sampled_from([(2,), (2, 3), (4,), (4, 6), (1, 2, 3, 4, 5, 6, 7, 8)])
NUMBER_TEXT = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr), st.integers().map(str),
                        st.sampled_from(["nan", "-inf", "Infinity", "1e309", "true", "", " ", "１２", "0x1", "1_0",
                                         "-5", "+3", ".5", "5.", "1e-3", "--1", "٣"]))


def assert_one_line(exc: MedsegError) -> None:
    assert "\n" not in str(exc) and str(exc)


@SETTINGS
@given(st.text(max_size=60), COUNTS)
def test_parse_numbers_on_any_text(text, counts):
    try:
        values = parse_numbers(text, counts, "--box")
    except MedsegError as exc:
        assert_one_line(exc)
        return
    assert len(values) in counts and all(isinstance(v, float) and math.isfinite(v) for v in values)


@SETTINGS
@given(st.lists(NUMBER_TEXT, min_size=1, max_size=8), COUNTS)
def test_parse_numbers_on_number_like_text(parts, counts):
    text = ",".join(parts)
    try:
        values = parse_numbers(text, counts, "--point")
    except MedsegError as exc:
        assert_one_line(exc)
        return
    assert len(values) in counts and all(math.isfinite(v) for v in values)


@SETTINGS
@given(st.lists(st.text(alphabet="0123456789-.,einfatru ", max_size=15), max_size=3),
       st.lists(st.text(alphabet="0123456789-.,einfatru ", max_size=12), max_size=2),
       st.lists(st.text(alphabet="0123456789-.,e ", max_size=12), max_size=2),
       st.one_of(st.none(), st.integers(-5, 5)), st.booleans())
def test_flags_give_valid_prompts_or_one_line(boxes, points, negatives, slice_z, propagate):
    try:
        objects = prompt_args.objects_from_flags(boxes, slice_z, points, negatives, propagate)
    except MedsegError as exc:
        assert_one_line(exc)
        return
    for obj in objects:
        assert_valid(obj)


def assert_valid(obj: ObjectPrompts) -> None:
    """Finite coordinates, whole (int) slices, bool polarity, and never a negative point alone."""
    coords = [obj.box.x0, obj.box.y0, obj.box.x1, obj.box.y1] if obj.box else []
    coords += [obj.box3d.x0, obj.box3d.y0, obj.box3d.x1, obj.box3d.y1] if obj.box3d else []
    coords += [v for p in obj.points for v in (p.x, p.y)]
    assert all(isinstance(v, float) and math.isfinite(v) for v in coords)
    slices = [obj.box.z] if obj.box else []
    slices += [obj.box3d.z0, obj.box3d.z1] if obj.box3d else []
    slices += [p.z for p in obj.points]
    assert all(z is None or (isinstance(z, int) and not isinstance(z, bool)) for z in slices)
    assert all(isinstance(p.positive, bool) for p in obj.points)
    assert obj.box or obj.box3d or any(p.positive for p in obj.points)
    assert isinstance(obj.propagate, bool)


SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.integers(), st.text(max_size=5),
                    st.floats(allow_nan=True, allow_infinity=True))
KEYS = st.sampled_from(["objects", "interactions", "box", "box3d", "point", "label", "slice", "propagate", "x"])
JSON = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=6),
                                                    st.dictionaries(KEYS, inner, max_size=4)), max_leaves=30)


def parse(document: object) -> list[ObjectPrompts]:
    return prompt_file.objects_from(document, "p.json")


@SETTINGS
@given(JSON)
def test_any_json_document_gives_valid_prompts_or_one_line(document):
    try:
        objects = parse(document)
    except MedsegError as exc:
        assert_one_line(exc)
        return
    assert 1 <= len(objects) <= prompt_file.MAX_OBJECTS
    for obj in objects:
        assert_valid(obj)


@SETTINGS
@given(st.text(max_size=80))
def test_any_file_text_gives_prompts_or_one_line(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("p") / "p.json"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))  # lone surrogates make invalid UTF-8
    try:
        objects = prompt_args.from_file(str(path))
    except MedsegError as exc:
        assert_one_line(exc)
        return
    for obj in objects:
        assert_valid(obj)


COORD = st.floats(-1e6, 1e6, allow_nan=False).map(lambda v: round(v, 3))
SLICE = st.integers(0, 500)
BOX = st.builds(lambda x, y, w, h, z: {"box": [x, y, x + w, y + h], "slice": z}, COORD, COORD, COORD, COORD, SLICE)
POINT = st.builds(lambda x, y, z, label: {"point": [x, y, z], "label": label}, COORD, COORD, SLICE,
                  st.sampled_from([0, 1]))
POSITIVE = st.builds(lambda x, y, z: {"point": [x, y, z], "label": 1}, COORD, COORD, SLICE)
BOX3D = st.builds(lambda x, y, z, d: {"box3d": [x, y, z, x + 5, y + 5, z + d]}, COORD, COORD, SLICE, st.integers(0, 9))
OBJECT = st.one_of(
    st.builds(lambda b, ps: [b, *ps], BOX, st.lists(POINT, max_size=3)),
    st.builds(lambda b, ps: [b, *ps], BOX3D, st.lists(POINT, max_size=3)),
    st.builds(lambda p, ps: [p, *ps], POSITIVE, st.lists(POINT, max_size=3)),
).flatmap(lambda steps: st.builds(lambda prop: {"interactions": steps, "propagate": prop}, st.booleans()))


@SETTINGS
@given(st.lists(OBJECT, min_size=1, max_size=5))
def test_valid_files_round_trip(objects):
    document = json.loads(json.dumps({"objects": objects}))
    parsed = parse(document)
    assert len(parsed) == len(objects)
    for obj, spec in zip(parsed, objects, strict=True):
        assert_valid(obj)
        assert obj.propagate is spec["propagate"]
        first = spec["interactions"][0]
        if "box" in first:
            assert [obj.box.x0, obj.box.y0, obj.box.x1, obj.box.y1] == first["box"] and obj.box.z == first["slice"]
        if "box3d" in first:
            b = obj.box3d
            assert [b.x0, b.y0, b.z0, b.x1, b.y1, b.z1] == first["box3d"]
        points = [s for s in spec["interactions"] if "point" in s]
        assert [[p.x, p.y, p.z] for p in obj.points] == [s["point"] for s in points]
        assert [p.positive for p in obj.points] == [s["label"] == 1 for s in points]
