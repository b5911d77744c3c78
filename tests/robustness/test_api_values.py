"""The public API refuses the same bad values the command line does: one-line MedsegError naming the field."""

from __future__ import annotations

import math

import numpy as np
import pytest
from tests.predict.fake_model import fake_predictor

from medseg.errors import MedsegError
from medseg.predict.embedding_cache import EmbeddingCache
from medseg.predict.volume import VolumeSession
from medseg.prompts import Box, Box3D, Point
from medseg.train.config import TrainConfig
from medseg.validate import number, parse_number

NOT_NUMBERS = [True, False, np.bool_(True), "3", [1], math.nan, math.inf, -math.inf, np.float32("nan")]


@pytest.mark.parametrize("value", NOT_NUMBERS, ids=repr)
@pytest.mark.parametrize("make", [lambda v: Box(v, 1, 5, 5), lambda v: Box(1, 1, 5, 5, z=v), lambda v: Point(1, v),
                                  lambda v: Box3D(1, 1, v, 5, 5, 3), lambda v: Box3D(1, v, 0, 5, 5, 3)],
                         ids=["Box.x0", "Box.z", "Point.y", "Box3D.z0", "Box3D.y0"])
def test_prompt_dataclasses_refuse(make, value):
    with pytest.raises(MedsegError) as info:
        make(value)
    assert "\n" not in str(info.value)


def test_prompt_dataclasses_refuse_none_where_a_number_is_required():
    for make in (lambda: Box(None, 1, 5, 5), lambda: Point(1, None), lambda: Box3D(1, 1, None, 5, 5, 3)):
        with pytest.raises(MedsegError, match="None"):
            make()
    assert Box(1, 1, 5, 5, z=None).z is None and Point(1, 2).z is None


def test_prompt_dataclasses_take_numbers_of_any_kind():
    assert Box(np.float32(1), np.int64(2), 5.5, 6, z=np.int64(3)).z == 3
    assert Point(1, 2, 3, positive=np.bool_(False)).positive == np.bool_(False)
    with pytest.raises(MedsegError, match="2.5"):
        Box(1, 1, 5, 5, z=2.5)
    with pytest.raises(MedsegError, match="positive"):
        Point(1, 2, 3, positive=1)


TRAIN_BAD = {"lr": [0, -1e-4, math.nan, math.inf, True, 2.0], "epochs": [0, -1, 1.5, True, math.nan],
             "max_steps": [0, 2**40], "batch_size": [0, "4"], "rounds": [0, False],
             "val_fraction": [1.0, -0.1, math.nan],
             "val_every": [-1, 0.5], "save_every": [0], "seed": [-1, 2**32, 1.0e20], "slices_per_case": [0],
             "adapter_dim": [0], "lora_rank": [0], "focal_weight": [-1, math.inf], "iou_weight": [math.nan],
             "box_jitter": [-0.1, 2], "weight_decay": [math.nan], "resume": ["yes"], "augment": [1]}
TRAIN_CASES = [(k, v) for k, values in TRAIN_BAD.items() for v in values]


@pytest.mark.parametrize(("field", "value"), TRAIN_CASES, ids=[f"{k}={v!r}" for k, v in TRAIN_CASES])
def test_train_config_refuses(field, value):
    with pytest.raises(MedsegError) as info:
        TrainConfig(data="d", out="o", **{field: value}).validate()
    message = str(info.value)
    assert "\n" not in message and (field.replace("_", "-") in message or field in message), message


def test_train_config_defaults_pass():
    assert TrainConfig(data="d", out="o", max_steps=None, val_fraction=0.0).validate()


@pytest.mark.parametrize("budget", [0, -1, math.nan, math.inf, True, "1024", 2.0**40])
def test_embedding_budget_refused(budget):
    with pytest.raises(MedsegError, match="budget"):
        VolumeSession(fake_predictor(), budget_mib=budget)
    with pytest.raises(MedsegError, match="budget"):
        EmbeddingCache(lambda z: None, budget)


@pytest.fixture()
def predictor():
    p = fake_predictor()
    p.set_image(np.random.default_rng(0).integers(0, 255, (40, 50)).astype(np.float32))
    return p


@pytest.mark.parametrize(("kwargs", "word"), [
    ({"box": [1, 2, math.nan, 4]}, "finite"), ({"box": [1, 2, 3]}, "box"), ({"box": [True, 1, 5, 5]}, "box"),
    ({"box": "1,2,3,4"}, "box"), ({"box": [[1, 2], [3]]}, "box"), ({"box": [1e300, 1, 5, 5]}, "finite"),
    ({"points": np.array([[1.0, math.inf]])}, "finite"), ({"points": [[1, 2, 3]]}, "points"),
    ({"points": [[1, 2]], "point_labels": [2]}, "point_labels"),
    ({"points": [[1, 2]], "point_labels": [1, 0]}, "point_labels")])
def test_predictor_refuses_bad_prompts(predictor, kwargs, word):
    with pytest.raises(MedsegError, match=word):
        predictor.predict(**kwargs)


def test_predictor_still_takes_good_prompts(predictor):
    assert predictor.predict(box=[5, 5, 20, 20]).masks.shape == (1, 40, 50)
    assert predictor.predict(points=np.array([[10, 10]]), point_labels=[1]).masks.shape == (1, 40, 50)


@pytest.mark.parametrize(("call", "word"), [
    (lambda s: s.add_box3d(1, 1, math.nan, 10, 10, 3), "z0"), (lambda s: s.add_box3d(1, 1, 0, math.inf, 10, 3), "x1"),
    (lambda s: s.add_box(True, (1, 1, 10, 10)), "z"), (lambda s: s.add_box(1, (1, 1, 10)), "box"),
    (lambda s: s.add_point(math.nan, 2, 1), "x"), (lambda s: s.add_point(1, 2, 1.5), "z")])
def test_volume_session_refuses_bad_prompts(call, word):
    session = VolumeSession(fake_predictor())
    session.set_volume(np.random.default_rng(0).integers(0, 255, (4, 30, 30)).astype(np.int16))
    with pytest.raises(MedsegError, match=word):
        call(session)


@pytest.mark.parametrize(("text", "rules"), [("1e-4", {"positive": True}), ("  7 ", {"integer": True}),
                                             ("-0.5", {}), ("0", {"minimum": 0, "below": 1})])
def test_parse_number_accepts_plain_numbers(text, rules):
    assert parse_number(text, "--x", **rules) == float(text)


def test_number_messages_say_what_would_work():
    with pytest.raises(MedsegError, match=r"^--lr nan: must be a positive finite number <= 1, e.g. 1e-4$"):
        parse_number("nan", "--lr", positive=True, maximum=1, example="1e-4")
    with pytest.raises(MedsegError, match=r"^--epochs true: not a number; must be a whole number from 1"):
        number(True, "--epochs", integer=True, minimum=1)
