"""box3d and sammed3d through the runner on a tiny synthetic nnU-Net dataset, with the fake model of
tests/predict (no network runs; bright voxels inside the prompt are "segmented")."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from medseg.evaluate import protocols
from medseg.evaluate.compare import read_labels
from medseg.evaluate.datasets import open_dataset
from medseg.evaluate.metrics import score
from medseg.evaluate.protocols import ProtocolConfig
from medseg.evaluate.runner import RESULTS, all_rows, run_protocol
from medseg.io import Geometry, write_mask

sys.path.insert(0, str(Path(__file__).parents[1] / "predict"))
from fake_model import FakeEngine, fake_predictor  # noqa: E402

SHAPE = (20, 48, 48)  # (z, y, x)
SPACING = (1.0, 1.0, 1.5)  # (x, y, z) mm


def _sphere(center, radius) -> np.ndarray:
    z, y, x = np.ogrid[: SHAPE[0], : SHAPE[1], : SHAPE[2]]
    cz, cy, cx = center
    return ((z - cz) * SPACING[2]) ** 2 + (y - cy) ** 2 + (x - cx) ** 2 <= radius**2


def make_dataset(root: Path, cases=("a", "b")):
    """Label 1: a bright sphere beside a bright unlabelled blob (false positives for clicks).
    Label 2: a dim cube whose only bright part is a 2-voxel slab on one face, so the fake model's
    box prediction has DSC < 0.2 but a surface close to the cube's (raw NSD > 0)."""
    geom = Geometry(SPACING, (0.0, 0.0, 0.0), tuple(np.eye(3).ravel()))
    for k, name in enumerate(cases):
        labels = np.zeros(SHAPE, np.uint8)
        sphere = _sphere((9, 16, 16 + k), 7.0)
        labels[sphere] = 1
        labels[4:14, 30:42, 26:44] = 2
        image = np.full(SHAPE, 20, np.int16)
        image[sphere] = 200
        image[7:12, 14:19, 24 + k:28 + k] = 200  # unlabelled bright blob touching the sphere
        image[4:14, 30:42, 26:28] = 200  # the slab of label 2
        write_mask(image, geom, root / "imagesTr" / f"{name}_0000.nii.gz")
        write_mask(labels, geom, root / "labelsTr" / f"{name}.nii.gz")
    (root / "dataset.json").write_text(json.dumps({"labels": {"background": 0, "sphere": 1, "cube": 2},
                                                   "file_ending": ".nii.gz"}))
    return open_dataset(root)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data"))


class Factory:
    """Counts predictors built and slices encoded."""

    def __init__(self):
        self.engines: list[FakeEngine] = []

    def __call__(self):
        predictor = fake_predictor()
        self.engines.append(predictor.engine)
        return predictor

    @property
    def encodes(self) -> int:
        return sum(e.encode_calls for e in self.engines)


def _strip_seconds(value):
    if isinstance(value, dict):
        return {k: _strip_seconds(v) for k, v in value.items() if k != "seconds"}
    if isinstance(value, list):
        return [_strip_seconds(v) for v in value]
    return value


def test_box3d_rows_and_nsd_only_when_dice_above_0_2(dataset, tmp_path):
    factory = Factory()
    # the fake model's masks as they are (refine off): the cube's low Dice is what gates its NSD here
    records = run_protocol(dataset, factory, ProtocolConfig("box3d", refine=False), tmp_path / "run", progress=False)
    assert [r["case"] for r in records] == ["a", "b"]
    rows = all_rows(records)
    assert [(r["case"], r["label"], r["name"]) for r in rows] == [
        ("a", 1, "sphere"), ("a", 2, "cube"), ("b", 1, "sphere"), ("b", 2, "cube")]
    for row in rows:
        assert set(row) == {"case", "label", "name", "dice", "nsd", "hd95", "seconds", "encodes"}
        assert row["seconds"] > 0
    # one encode per slice of each box's z-range: the sphere's 5..13, then only slice 4 of the cube's 4..13
    assert [r["encodes"] for r in rows] == [9, 1, 9, 1]
    assert factory.encodes == 20

    gt = read_labels(dataset.cases[0].labels).labels
    pred = read_labels(tmp_path / "run" / "predictions" / "a.nii.gz").labels
    sphere, cube = rows[0], rows[1]
    raw_sphere = score(pred == 1, gt == 1, SPACING, 2.0)
    raw_cube = score(pred == 2, gt == 2, SPACING, 2.0)
    assert sphere["dice"] == pytest.approx(raw_sphere.dice) and sphere["dice"] > 0.5
    assert sphere["nsd"] == pytest.approx(raw_sphere.nsd) and sphere["nsd"] > 0
    assert cube["dice"] == pytest.approx(raw_cube.dice) and 0 < cube["dice"] < 0.2
    assert raw_cube.nsd > 0.2 and cube["nsd"] == 0.0  # gated: the raw NSD is not counted
    assert cube["hd95"] == pytest.approx(raw_cube.hd95)


def test_nsd_gate_is_strict_and_configurable():
    truth = np.zeros((6, 10, 10), bool)
    truth[1:5, 2:8, 2:7] = True  # 120 voxels
    mask = np.zeros_like(truth)
    mask[1:5, 2:8, 2:3] = True  # 24 voxels inside: DSC = 48 / 144 = 1/3
    gated = protocols._gated(mask, truth, (1.0, 1.0, 1.0), ProtocolConfig("box3d"))
    assert gated["dice"] == pytest.approx(1 / 3) and gated["nsd"] > 0
    strict = protocols._gated(mask, truth, (1.0, 1.0, 1.0), ProtocolConfig("box3d", nsd_min_dice=1 / 3))
    assert strict["nsd"] == 0.0  # "counted only when DSC > threshold": equal is not enough


def _checked_sammed3d_run(dataset, out: Path, seed: int, monkeypatch) -> set[bool]:
    """One sammed3d run (case a, the sphere, 4 clicks) checking every click; returns the click kinds."""
    calls = []
    original = protocols.sammed3d_click

    def spy(pred, gt, rng):
        click = original(pred, gt, rng)
        calls.append((None if pred is None else pred.copy(), gt, click))
        return click

    monkeypatch.setattr(protocols, "sammed3d_click", spy)
    cfg = ProtocolConfig("sammed3d", seed=seed, clicks=4)
    records = run_protocol(dataset, Factory(), cfg, out, labels=[1], limit=1, progress=False)
    (row,) = all_rows(records)
    assert set(row) == {"case", "label", "name", "dice", "nsd", "hd95", "dice_auc", "nsd_auc", "seconds",
                        "steps", "encodes"}
    steps = row["steps"]
    assert [s["step"] for s in steps] == ["click1", "click2", "click3", "click4"]
    assert len(calls) == 4
    assert row["dice"] == steps[-1]["dice"]
    assert row["dice_auc"] == pytest.approx(np.trapezoid([s["dice"] for s in steps]))
    assert row["seconds"] == pytest.approx(sum(s["seconds"] for s in steps))
    kinds = set()
    for i, ((pred, gt, click), step) in enumerate(zip(calls, steps, strict=True)):
        (x, y, z), positive = click
        assert step["point"] == [x, y, z] and step["positive"] == positive
        if i == 0:
            assert pred is None and gt[z, y, x] and positive  # uniform inside the structure
            continue
        assert pred[z, y, x] != gt[z, y, x]  # inside the error region of the previous prediction
        assert positive == bool(gt[z, y, x]) == (not pred[z, y, x])  # positive exactly on false negatives
        kinds.add(positive)
        # the prediction handed to the click sampler is the one scored at the previous step
        assert score(pred, gt, SPACING).dice == pytest.approx(steps[i - 1]["dice"])
    return kinds


def test_sammed3d_clicks_uniform_in_structure_then_in_error(dataset, tmp_path, monkeypatch):
    kinds: set[bool] = set()
    for seed in range(6):  # seed 0 gives both kinds of correction with the fake model; more if it changes
        kinds |= _checked_sammed3d_run(dataset, tmp_path / f"run{seed}", seed, monkeypatch)
        if kinds == {True, False}:
            break
    assert kinds == {True, False}


def test_sammed3d_is_seeded_and_resume_skips_finished_cases(dataset, tmp_path):
    cfg = ProtocolConfig("sammed3d", seed=1, clicks=3)
    full_factory = Factory()
    full = run_protocol(dataset, full_factory, cfg, tmp_path / "full", progress=False)
    again = run_protocol(dataset, Factory(), cfg, tmp_path / "again", progress=False)
    assert _strip_seconds(full) == _strip_seconds(again)
    other = run_protocol(dataset, Factory(), ProtocolConfig("sammed3d", seed=2, clicks=3), tmp_path / "other",
                         progress=False)
    points = [[s["point"] for s in r["steps"]] for r in all_rows(full)]
    assert points != [[s["point"] for s in r["steps"]] for r in all_rows(other)]

    # interrupted after case a (plus half a line of b): the rerun runs b only and matches the full run
    factory = Factory()
    run_protocol(dataset, factory, cfg, tmp_path / "resumed", limit=1, progress=False)
    with (tmp_path / "resumed" / RESULTS).open("a") as handle:
        handle.write('{"case": "b", "rows": [')
    first_encodes = factory.encodes
    factory2 = Factory()
    resumed = run_protocol(dataset, factory2, cfg, tmp_path / "resumed", progress=False)
    assert [r["case"] for r in resumed] == ["a", "b"]
    assert _strip_seconds(resumed) == _strip_seconds(full)
    assert 0 < factory2.encodes == full_factory.encodes - first_encodes  # only case b was encoded
    lines = (tmp_path / "resumed" / RESULTS).read_text().splitlines()
    assert [json.loads(line)["case"] for line in lines if line.endswith("}")] == ["a", "b"]
    # nothing left to do: no predictor is built
    factory3 = Factory()
    run_protocol(dataset, factory3, cfg, tmp_path / "resumed", progress=False)
    assert factory3.engines == []


def test_3d_protocols_refuse_2d_images(tmp_path):
    from medseg.errors import MedsegError

    root = tmp_path / "d2"
    geom = Geometry((1.0, 1.0), (0.0, 0.0), (1.0, 0.0, 0.0, 1.0))
    labels = np.zeros((16, 16), np.uint8)
    labels[4:9, 4:9] = 1
    write_mask((labels * 200).astype(np.uint8), geom, root / "imagesTr" / "x_0000.nii.gz")
    write_mask(labels, geom, root / "labelsTr" / "x.nii.gz")
    (root / "dataset.json").write_text(json.dumps({"labels": {"background": 0, "s": 1}, "file_ending": ".nii.gz"}))
    with pytest.raises(MedsegError, match="box3d needs 3D volumes"):
        run_protocol(open_dataset(root), Factory(), ProtocolConfig("box3d"), tmp_path / "run", progress=False)


def test_box3d_with_three_planes_is_a_setting_of_the_run(tmp_path, monkeypatch):
    """``planes = 3`` reaches the session (this dataset's 1 x 1 x 1.5 mm voxels are not near-isotropic, so each box
    keeps its z slices' answer) and is part of the run's settings."""
    from medseg.predict.volume import VolumeSession

    calls = []
    three_planes = VolumeSession._three_planes
    monkeypatch.setattr(VolumeSession, "_three_planes", lambda self, *a: calls.append(a) or three_planes(self, *a))
    data = make_dataset(tmp_path / "data", cases=("a",))
    one = run_protocol(data, Factory(), ProtocolConfig("box3d"), tmp_path / "one", progress=False)
    assert not calls and json.loads((tmp_path / "one" / "config.json").read_text())["planes"] == 1
    with pytest.raises(protocols.MedsegError, match="planes"):
        run_protocol(data, Factory(), ProtocolConfig("box3d", planes=3), tmp_path / "one", progress=False)
    three = run_protocol(data, Factory(), ProtocolConfig("box3d", planes=3), tmp_path / "three", progress=False)
    assert len(calls) == 2  # both structures
    assert [r["dice"] for r in all_rows(three)] == [r["dice"] for r in all_rows(one)]


def test_an_interactive_run_names_its_click_rule_and_an_earlier_rule_is_not_resumed(tmp_path):
    """The CVPR25 clicks follow the challenge's code since stop 62 (26-connected errors, ties seeded); a run folder
    of the earlier rule (its config.json without ``click_rule``) would mix two click rules, so it is refused."""
    data = make_dataset(tmp_path / "data", cases=("a",))
    cfg = ProtocolConfig("interactive", clicks=2, click_atlas=False, refine=False, correction_net=False)
    run_protocol(data, Factory(), cfg, tmp_path / "run", labels=[1], progress=False)
    config = tmp_path / "run" / "config.json"
    settings = json.loads(config.read_text())
    assert settings["click_rule"] == protocols.CVPR25_CLICK_RULE
    del settings["click_rule"]
    config.write_text(json.dumps(settings))
    with pytest.raises(protocols.MedsegError, match="click_rule"):
        run_protocol(data, Factory(), cfg, tmp_path / "run", labels=[1], progress=False)
    box = run_protocol(data, Factory(), ProtocolConfig("box3d", refine=False), tmp_path / "box", progress=False)
    assert box and "click_rule" not in json.loads((tmp_path / "box" / "config.json").read_text())
