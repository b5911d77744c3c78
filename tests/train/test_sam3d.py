"""SAM3D on synthetic volumes: decoder shapes, deep supervision, sliding windows, the model file, bad input."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from sam3d_helpers import fake_encoder, volume

from medseg.errors import MedsegError
from medseg.io.image import Geometry, Image
from medseg.modeling.sam3d import Sam3DConfig, Sam3DDecoder, parameter_count
from medseg.predict.automatic import (
    is_sam3d_file,
    load_automatic,
    segment_windowed,
    sliding_window,
    window_starts,
)
from medseg.train.sam3d_data import IGNORE, VolumeCase, check_cases, sample
from medseg.train.sam3d_loss import deep_supervision_loss, dice_ce, downsample_labels, stage_weights
from medseg.train.sam3d_trainer import Sam3DTrainConfig, train_sam3d

NAMES = {1: "a", 2: "b"}


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny run (2 steps, float32 model file) shared by the tests that only read it."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return train_tiny(tmp_path_factory.mktemp("sam3d"), half=False)
    finally:  # later tests (a server's engine takes torch's thread count) must not inherit one thread
        torch.set_num_threads(before)


def test_decoder_shapes_and_deep_outputs():
    dec = Sam3DDecoder(Sam3DConfig(4))
    emb, grey = torch.randn(2, 256, 3, 8, 16), torch.rand(2, 1, 3, 32, 64)
    outs = dec(emb, grey, deep=True)
    assert [tuple(o.shape) for o in outs] == [(2, 4, 3, 16, 32), (2, 4, 3, 8, 16), (2, 4, 3, 4, 8)]
    assert tuple(dec(emb, grey).shape) == (2, 4, 3, 16, 32)
    assert 500_000 < parameter_count(dec) < 2_000_000  # SAM3D's decoder is 1.88M; this one 0.7M
    assert tuple(Sam3DDecoder(Sam3DConfig(3, skips=False))(emb).shape) == (2, 3, 3, 16, 32)
    with pytest.raises(MedsegError, match="intensit"):
        dec(emb)


@pytest.mark.parametrize("bad", [{"num_classes": 1}, {"num_classes": 300}, {"num_classes": 3, "widths": (8, 8)}])
def test_config_refuses_bad_architecture(bad):
    with pytest.raises(MedsegError):
        Sam3DConfig(**bad)


def test_deep_supervision_weights_and_ground_truth_per_stage():
    assert stage_weights(3) == pytest.approx([4 / 7, 2 / 7, 1 / 7])
    labels = torch.arange(16).reshape(1, 1, 4, 4)
    assert downsample_labels(labels, 2).tolist() == [[[[5, 7], [13, 15]]]]
    gt = torch.zeros(1, 2, 8, 8, dtype=torch.long)
    gt[:, :, 2:6, 2:6] = 1

    def perfect(g):
        return (torch.nn.functional.one_hot(g, 2).permute(0, 4, 1, 2, 3).float() - 0.5) * 40

    outs = [perfect(downsample_labels(gt, f)) for f in (1, 2, 4)]
    assert deep_supervision_loss(outs, gt) < 0.01
    wrong = [o.clone() for o in outs]
    wrong[2] = -wrong[2]  # only the coarsest stage wrong: weighted by 1/7
    assert 0.1 < deep_supervision_loss(wrong, gt) < deep_supervision_loss([-o for o in outs], gt)


def test_dice_counts_only_the_classes_present_in_the_window():
    """A window holding one of several classes: predicting it perfectly (and nothing else) costs ~0.
    Averaging in the absent classes (Dice ~0 whatever the model does) kept 12-structure brain training at
    background only; their false positives are left to cross-entropy."""
    labels = torch.zeros(1, 2, 8, 8, dtype=torch.long)
    labels[:, :, 2:6, 2:6] = 3  # class 3 of 0..4; classes 1, 2, 4 absent
    perfect = (torch.nn.functional.one_hot(labels, 5).permute(0, 4, 1, 2, 3).float() - 0.5) * 40
    assert dice_ce(perfect, labels) < 0.01
    spill = perfect.clone()
    spill[:, 1, :, :2] = 40  # class 1 (absent) claimed on a strip of background
    assert dice_ce(spill, labels) > dice_ce(perfect, labels) + 0.1  # cross-entropy punishes it
    background_only = torch.zeros(1, 2, 8, 8, dtype=torch.long)
    assert torch.isfinite(dice_ce(perfect, background_only))


def test_ignored_voxels_do_not_count():
    logits = torch.randn(1, 3, 2, 4, 4)
    labels = torch.randint(0, 3, (1, 2, 4, 4))
    labels[:, 1] = IGNORE
    changed = logits.clone()
    changed[:, :, 1] = torch.randn(3, 4, 4)
    assert torch.allclose(dice_ce(logits, labels), dice_ce(changed, labels))


def test_window_starts_cover_with_half_overlap():
    assert window_starts(5, 8) == [0]
    assert window_starts(20, 8) == [0, 4, 8, 12]
    assert window_starts(21, 8) == [0, 4, 8, 12, 13]


class Constant(torch.nn.Module):
    """A decoder stand-in: class 2 wherever the intensity is above 0.5."""

    def forward(self, emb, grey):
        g = torch.nn.functional.avg_pool3d(grey, (1, 2, 2))
        return torch.cat([torch.zeros_like(g), torch.zeros_like(g), (g - 0.5) * 50], 1)


def test_sliding_window_holds_one_window_and_lands_on_the_scan_grid():
    z, h, w = 21, 30, 50
    windowed = np.zeros((z, h, w), np.float32)
    windowed[:, 5:15, 10:30] = 255
    windowed[:, 0, 0] = 1  # min-max per slice keeps the bright block at 1
    held_max = []
    seen = set()

    def counting(batch):
        held_max.append(len(batch))
        return fake_encoder(batch)

    labels = segment_windowed(Constant(), windowed, counting, depth=8)
    assert labels.shape == (z, h, w) and labels.dtype == np.uint16
    assert (labels[:, 6:14, 11:29] == 2).all() and (labels[:, 20:, 35:] == 0).all()
    assert max(held_max) <= 8  # never more than a window encoded at once
    assert sum(held_max) == z  # each slice encoded exactly once

    def fetch(zs):
        seen.update(zs)
        return np.zeros((len(zs), 256, 64, 64), np.float16), np.zeros((len(zs), 256, 256), np.float16)

    sliding_window(Constant(), z, (h, w), fetch, 8)
    assert seen == set(range(z))


def test_sample_windows_pad_short_volumes_with_ignore():
    from medseg.train.sam3d_data import PreparedCase

    rng = np.random.default_rng(0)
    labels = np.zeros((3, 128, 128), np.int16)
    labels[1, 40:50, 40:50] = 1
    case = PreparedCase("c", np.zeros((3, 256, 64, 64), np.float16), np.zeros((3, 256, 256), np.float16), labels)
    emb, grey, lab = sample(case, 8, 64, rng)
    assert emb.shape == (256, 8, 16, 16) and grey.shape == (1, 8, 64, 64) and lab.shape == (8, 32, 32)
    assert (lab == IGNORE).sum() == 5 * 32 * 32


def train_tiny(tmp_path, cases=None, **kw):
    cfg = Sam3DTrainConfig(out=str(tmp_path / "run"), max_steps=2, depth=4, crop=64, val_fraction=0,
                           progress=False, **kw)
    return train_sam3d(cases or [volume(0), volume(1)], NAMES, cfg, encoder=fake_encoder)


def test_model_file_round_trip(trained):
    result = trained
    run = result.model_path.parent
    for name in ("model.pt", "last.pt", "log.csv", "curves.png"):
        assert (run / name).is_file()
    assert is_sam3d_file(result.model_path) and not is_sam3d_file(run / "log.csv")
    model = load_automatic(result.model_path)
    assert model.class_names == NAMES
    assert model.inputs == {"modality": "MR", "channels": 1, "window": "mr", "spacing": [0.8, 0.9, 2.5]}
    assert model.encoder["model"] == "litemedsam" and len(model.encoder["sha256"]) == 64
    state = torch.load(result.model_path, weights_only=True)
    trained = Sam3DDecoder(Sam3DConfig(3))
    trained.load_state_dict(state["decoder"])
    emb, grey = torch.randn(1, 256, 4, 8, 8), torch.rand(1, 1, 4, 32, 32)
    assert torch.equal(trained.eval()(emb, grey), model.decoder(emb, grey))


def test_half_model_file_agrees_with_full(trained, tmp_path):
    from medseg.predict.automatic import model_state

    full = load_automatic(trained.model_path)
    state = torch.load(trained.model_path, weights_only=True)
    torch.save(model_state(full.decoder, full.class_names, full.encoder, full.inputs, full.depth, half=True),
               tmp_path / "half.pt")
    half = load_automatic(tmp_path / "half.pt")
    assert next(iter(torch.load(tmp_path / "half.pt", weights_only=True)["decoder"].values())).dtype == torch.float16
    assert state["decoder"]["project.weight"].dtype == torch.float32
    emb, grey = torch.randn(1, 256, 4, 16, 16), torch.rand(1, 1, 4, 64, 64)
    with torch.no_grad():
        a, b = full.decoder(emb, grey), half.decoder(emb, grey)
    assert (a.argmax(1) == b.argmax(1)).float().mean() > 0.99
    assert (tmp_path / "half.pt").stat().st_size < 0.6 * trained.model_path.stat().st_size


def test_resume_continues_the_step_count(tmp_path):
    train_tiny(tmp_path)
    with pytest.raises(MedsegError, match="previous run"):
        train_tiny(tmp_path)
    result = train_sam3d([volume(0), volume(1)], NAMES, Sam3DTrainConfig(
        out=str(tmp_path / "run"), max_steps=3, depth=4, crop=64, val_fraction=0, progress=False, resume=True),
        encoder=fake_encoder)
    assert result.steps == 3
    with open(tmp_path / "run" / "log.csv", newline="") as handle:
        assert [r["step"] for r in csv.DictReader(handle) if r["loss"]] == ["1", "2", "3"]
    with pytest.raises(MedsegError, match="other classes, depth or decoder widths"):
        train_sam3d([volume(0), volume(1)], NAMES, Sam3DTrainConfig(
            out=str(tmp_path / "run"), max_steps=8, depth=6, crop=64, val_fraction=0, progress=False, resume=True),
            encoder=fake_encoder)


def test_validation_by_case_writes_the_best_model(tmp_path):
    result = train_sam3d([volume(0), volume(1), volume(2)], NAMES, Sam3DTrainConfig(
        out=str(tmp_path / "run"), max_steps=1, depth=12, crop=64, val_fraction=0.34, progress=False),
        encoder=fake_encoder)
    assert result.best_val_dice is not None and set(result.val_dice) == {"a", "b"}
    assert load_automatic(result.model_path).info["val_dice"] == pytest.approx(result.best_val_dice)


def test_embeddings_are_cached_per_case(tmp_path):
    calls = []

    def counting(batch):
        calls.append(len(batch))
        return fake_encoder(batch)

    cfg = dict(max_steps=1, depth=4, crop=64, val_fraction=0, progress=False, cache=str(tmp_path / "cache"))
    train_sam3d([volume(0)], NAMES, Sam3DTrainConfig(out=str(tmp_path / "a"), **cfg), encoder=counting)
    first = sum(calls)
    train_sam3d([volume(0)], NAMES, Sam3DTrainConfig(out=str(tmp_path / "b"), **cfg), encoder=counting)
    assert first == 12 and sum(calls) == 12  # the second run read the cache
    cached = list((tmp_path / "cache").glob("*.npy"))
    assert len(cached) == 1 and np.load(cached[0]).dtype == np.float16


# ------------------------------------------------------------------------------------------ bad input


def test_inconsistent_datasets_are_refused(tmp_path):
    a, b = volume(0), volume(1)
    with pytest.raises(MedsegError, match="not on the image grid"):
        check_cases([a, VolumeCase("odd", b.image, b.labels[:, :-1])], NAMES)
    extra = b.labels.copy()
    extra[0, 0, 0] = 7
    with pytest.raises(MedsegError, match=r"odd: label values \[7\]"):
        check_cases([a, VolumeCase("odd", b.image, extra)], NAMES)
    with pytest.raises(MedsegError, match=r"class 3 \(c\) has no voxel"):
        check_cases([a, b], {**NAMES, 3: "c"})
    ct = volume(2, modality="CT")
    with pytest.raises(MedsegError, match="different modalities"):
        check_cases([a, ct], NAMES)
    plane = Geometry((1.0, 1.0), (0.0, 0.0), (1.0, 0, 0, 1.0))
    flat = VolumeCase("flat", Image(np.zeros((4, 5, 3), np.float32), plane), np.zeros((4, 5), np.uint16))
    with pytest.raises(MedsegError, match="3D grey volumes"):
        check_cases([flat], NAMES)
    skipped = VolumeCase("skip", b.image, np.where(b.labels == 2, 3, b.labels).astype(np.uint16))
    with pytest.raises(MedsegError, match="are not 1..2"):
        train_sam3d([skipped], {1: "a", 3: "b"}, Sam3DTrainConfig(out=str(tmp_path / "run"), progress=False),
                    encoder=fake_encoder)
    assert not (tmp_path / "run").exists()  # nothing half-written


def test_model_refuses_other_modality_and_channels(trained):
    model = load_automatic(trained.model_path)
    ct = volume(3, modality="CT")
    with pytest.raises(MedsegError, match="looks like CT.*trained on MR"):
        model.check(ct.image)
    rgb = Image(np.zeros((20, 30, 3), np.uint8), Geometry((1.0, 1.0), (0.0, 0.0), (1.0, 0, 0, 1.0)))
    with pytest.raises(MedsegError, match="2D image with 3 channel"):
        model.check(rgb)
    hu = volume(4, modality=None)
    hu.image.array[:] = -1000.0  # Hounsfield-like values (air, soft tissue), no modality in the file
    hu.image.array[:, 10:30, 10:30] = 400.0
    with pytest.raises(MedsegError, match="looks like CT"):
        model.check(hu.image)


def test_damaged_or_foreign_model_files(tmp_path):
    bad = tmp_path / "x.pt"
    torch.save({"format": "medseg-sam3d/1", "config": {"num_classes": 3}}, bad)
    with pytest.raises(MedsegError, match="damaged SAM3D model file"):
        load_automatic(bad)
    torch.save({"format": "something"}, bad)
    with pytest.raises(MedsegError, match="not a SAM3D model file"):
        load_automatic(bad)


def test_orientation_round_trip_and_mirrored_scans_agree(trained, monkeypatch):
    from dataclasses import replace

    from sam3d_helpers import FakeEngine

    from medseg.predict import automatic
    from medseg.predict.automatic import AutomaticModel
    from medseg.predict.orient import orientation

    a = np.arange(24).reshape(2, 3, 4)
    for d in [(1, 0, 0, 0, 1, 0, 0, 0, 1), (-1, 0, 0, 0, -1, 0, 0, 0, 1), (0, 1, 0, 1, 0, 0, 0, 0, -1)]:
        turn = orientation(d)
        assert np.array_equal(turn.restore(turn.canonical(a)), a)
    assert orientation((0, 1, 0, 1, 0, 0, 0, 0, -1)).canonical(a).shape == (2, 4, 3)

    monkeypatch.setattr(AutomaticModel, "engine", lambda self: FakeEngine())
    model = load_automatic(trained.model_path)
    case = volume(5)
    image = replace(case.image, array=case.image.array[:4])
    g = image.geometry
    mirrored = replace(image, array=image.array[:, :, ::-1].copy(),
                       geometry=replace(g, direction=(-1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0)))
    seen = []

    def spy(decoder, windowed, encode_batch, depth, progress=False):
        seen.append(windowed.copy())
        return (windowed > 128).astype(np.uint16)

    monkeypatch.setattr(automatic, "segment_windowed", spy)
    labels = model.segment(image)
    assert np.array_equal(model.segment(mirrored)[:, :, ::-1], labels)
    assert np.array_equal(seen[0], seen[1])  # the decoder saw the same canonical volume


# ------------------------------------------------------------------------------------------ augmented copies

def test_augmented_copies_keep_grid_labels_and_are_reproducible():
    from medseg.train.sam3d_augment import augmented_copies

    case = volume(0, shape=(16, 48, 48))
    first = augmented_copies(case, 3, seed=5)
    again = augmented_copies(case, 3, seed=5)
    assert [c.name for c in first] == ["case0~aug1", "case0~aug2", "case0~aug3"]
    for a, b in zip(first, again, strict=True):
        assert np.array_equal(a.image.array, b.image.array) and np.array_equal(a.labels, b.labels)
        assert a.image.array.shape == case.image.array.shape and a.labels.dtype == case.labels.dtype
        assert a.image.geometry == case.image.geometry
        assert set(np.unique(a.labels)) <= {0, 1, 2}
        # the labels moved with the image: labelled voxels stay the bright ones
        assert a.image.array[a.labels == 2].mean() > a.image.array[a.labels == 0].mean()
    assert not np.array_equal(first[0].image.array, first[1].image.array)
    assert not np.array_equal(first[0].image.array, augmented_copies(case, 1, seed=6)[0].image.array)


def test_training_encodes_the_copies_and_not_the_validation_cases(tmp_path):
    calls = []

    def counting(batch):
        calls.append(len(batch))
        return fake_encoder(batch)

    train_sam3d([volume(0), volume(1)], NAMES, Sam3DTrainConfig(
        out=str(tmp_path / "run"), max_steps=1, depth=4, crop=64, val_fraction=0.5, augment=2, progress=False),
        encoder=counting)
    assert sum(calls) == 12 * 4  # one training volume + 2 copies + the validation volume, 12 slices each
    with pytest.raises(MedsegError, match="--augment"):
        Sam3DTrainConfig(out=str(tmp_path / "x"), augment=17).validate()
