"""Prompt files: ``{"text": ...}`` as an object's first interaction, points after it correct it."""

from __future__ import annotations

import json

import pytest

from medseg.cli import prompt_args
from medseg.errors import MedsegError
from medseg.prompts import Point


def _objects(tmp_path, objects):
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"objects": objects}))
    return prompt_args.from_file(str(path))


def test_text_then_correcting_points(tmp_path):
    first, second = _objects(tmp_path, [
        {"interactions": [{"text": " left hippocampus "}, {"point": [60, 90, 70], "label": 0}]},
        {"interactions": [{"text": "right putamen"}], "name": "Putamen R"},
    ])
    assert first.text == "left hippocampus" and first.points == [Point(60, 90, 70, False)] and first.is_3d
    assert second.text == "right putamen" and second.name == "Putamen R" and not second.points


@pytest.mark.parametrize(("interactions", "words"), [
    ([{"text": ""}], "'text' must name a structure"),
    ([{"text": 3}], "'text' must name a structure"),
    ([{"text": "x" * 201}], "'text' must name a structure"),
    ([{"text": "a\nb"}], "'text' must name a structure"),
    ([{"point": [1, 2, 3]}, {"text": "left caudate"}], "first and only prompt"),
    ([{"text": "left caudate"}, {"text": "right caudate"}], "first and only prompt"),
    ([{"text": "left caudate"}, {"box3d": [1, 2, 3, 4, 5, 6]}], "only correcting points"),
    ([{"text": "left caudate", "slice": 3}], "unknown key 'slice'"),
])  # fmt: skip
def test_bad_text_interactions(tmp_path, interactions, words):
    with pytest.raises(MedsegError, match=words) as info:
        _objects(tmp_path, [{"interactions": interactions}])
    assert "\n" not in str(info.value)
