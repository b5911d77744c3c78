"""Prompt parsing and validation (no model)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from medseg.cli import prompt_args
from medseg.errors import MedsegError
from medseg.prompts import Box, Point, box_from_mask, check_box, check_point


def test_box_from_mask_is_inclusive():
    mask = np.zeros((10, 12), bool)
    mask[2:5, 3:9] = True
    assert box_from_mask(mask) == Box(3, 2, 8, 4)
    assert box_from_mask(np.zeros((3, 3), bool)) is None


def test_box_on_the_last_pixel_is_inside_and_one_beyond_is_outside():
    check_box(Box(0, 0, 11, 9), (10, 12))
    with pytest.raises(MedsegError, match="outside"):
        check_box(Box(0, 0, 12, 9), (10, 12))
    with pytest.raises(MedsegError, match="inverted"):
        check_box(Box(5, 0, 4, 9), (10, 12))
    with pytest.raises(MedsegError, match="outside"):
        check_point(Point(-1, 3), (10, 12))


def test_flags_make_one_object_with_slice_from_flag_or_point():
    obj = prompt_args.from_flags("1,2,3,4", 7, ["5,6"], ["8,9,7"])
    assert obj.box == Box(1, 2, 3, 4, 7)
    assert obj.points == [Point(5, 6, 7, True), Point(8, 9, 7, False)]
    assert obj.slice_index() == 7


def test_points_on_different_slices_are_refused():
    obj = prompt_args.from_flags(None, None, ["5,6,1", "5,6,2"], [])
    with pytest.raises(MedsegError, match="different slices"):
        obj.slice_index()


def test_prompt_file_objects_in_order(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"objects": [
        {"interactions": [{"box": [1, 2, 3, 4], "slice": 5}, {"point": [2, 3], "label": 0}]},
        {"interactions": [{"point": [7, 8, 9]}]},
    ]}))
    first, second = prompt_args.from_file(str(path))
    assert first.box == Box(1, 2, 3, 4, 5) and first.points == [Point(2, 3, 5, False)]
    assert second.points == [Point(7, 8, 9, True)]


@pytest.mark.parametrize("text, words", [
    ("not json", "cannot read"),
    ('{"objects": []}', "non-empty 'objects'"),
    ('{"objects": [{"interactions": [{"circle": 1}]}]}', "expected 'box' or 'point'"),
    ('{"objects": [{"interactions": [{"point": [1, 2], "label": 3}]}]}', "label"),
    ('{"objects": [{"interactions": [{"box": [1, 2, 3]}]}]}', "4 numbers"),
])
def test_bad_prompt_files_give_one_line(tmp_path, text, words):
    path = tmp_path / "p.json"
    path.write_text(text)
    with pytest.raises(MedsegError, match=words) as info:
        prompt_args.from_file(str(path))
    assert "\n" not in str(info.value)
