"""Windowing and the resize/pad transform, and their inverse, on synthetic data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medseg.errors import MedsegError
from medseg.preprocess.resize import ResizeLongest
from medseg.preprocess.window import WindowedVolume, apply_window, check_finite, choose_window


def test_ct_soft_window_maps_level_and_width_to_0_255():
    hu = np.array([-1000, -160, 40, 240, 3000], np.int16)
    choice = choose_window(hu, "CT")
    assert (choice.name, choice.low, choice.high) == ("ct-soft", -160.0, 240.0)
    assert np.allclose(apply_window(hu, choice), [0, 0, 127.5, 255, 255])


def test_auto_recognises_hounsfield_units_without_modality():
    hu = np.linspace(-1024, 1500, 100).astype(np.int16)
    assert choose_window(hu, None).name == "ct-soft"


def test_mr_window_clips_percentiles_of_foreground_and_keeps_background():
    rng = np.random.default_rng(0)
    mr = np.concatenate([np.zeros(1000), rng.uniform(100, 200, 10000), [5000.0]])
    choice = choose_window(mr, "MR")
    assert choice.name == "mr" and 100 <= choice.low < 102 and 198 < choice.high <= 200
    out = apply_window(mr, choice)
    assert out[:1000].max() == 0 and out[-1] == 255 and out.max() == 255


def test_eight_bit_picture_is_used_as_it_is_but_eight_bit_volume_is_windowed():
    picture = np.arange(256, dtype=np.uint8).reshape(16, 16)
    assert choose_window(picture, None, picture=True).name == "none"
    assert choose_window(picture, None, picture=False).name == "mr"


@pytest.mark.parametrize("bad", [np.full((4, 4), np.nan), np.full((4, 4), 3.0), np.zeros((0, 4))])
def test_nan_constant_or_empty_images_are_refused(bad):
    with pytest.raises(MedsegError):
        check_finite(bad, "x.nii.gz")


@pytest.mark.parametrize("modality", ["CT", "MR"])
def test_a_volume_windowed_as_read_equals_the_whole_volume_windowed(modality):
    rng = np.random.default_rng(2)
    volume = rng.integers(-1000, 1500, (6, 20, 30)).astype(np.int16)
    volume[:, :3] = 0  # background, kept at 0 by the MR window
    choice = choose_window(volume, modality)
    whole, lazy = apply_window(volume, choice), WindowedVolume(volume, choice)
    assert lazy.shape == volume.shape and len(lazy) == 6
    for key in (3, (slice(None), 7, slice(None)), (slice(None), slice(None), 11), (slice(1, 4), 5, 6)):
        assert lazy[key].dtype == np.float32 and np.array_equal(lazy[key], whole[key])


def test_unknown_window_is_refused():
    with pytest.raises(MedsegError, match="unknown window"):
        choose_window(np.arange(4.0), None, "soft")


@pytest.mark.parametrize("shape", [(512, 384), (100, 300), (256, 256), (64, 64)])
def test_resize_keeps_aspect_and_pads_bottom_right(shape):
    tf = ResizeLongest(shape)
    h, w = tf.scaled
    assert max(h, w) == 256 and abs(h / w - shape[0] / shape[1]) < 0.02
    image = np.random.default_rng(1).uniform(0, 255, shape)
    x = tf.image(image)
    assert x.shape == (1, 3, 256, 256)
    assert torch.isclose(x[:, :, :h, :w].min(), torch.tensor(0.0)) and torch.isclose(x.max(), torch.tensor(1.0))
    assert (x[:, :, h:, :] == 0).all() and (x[:, :, :, w:] == 0).all()


def test_rgb_channels_are_kept():
    rgb = np.zeros((40, 80, 3))
    rgb[..., 0] = 255
    x = ResizeLongest((40, 80)).image(rgb)
    assert x[0, 0, :128, :].min() == 1 and x[0, 1].max() == 0


def test_coords_scale_with_the_longest_side():
    tf = ResizeLongest((100, 400))
    assert np.allclose(tf.coords([[400, 100]]), [[256, 64]])
    assert np.allclose(tf.coords([10, 20, 30, 40]), [6.4, 12.8, 19.2, 25.6])


def test_logits_return_to_the_original_grid():
    tf = ResizeLongest((100, 200))  # scaled (128, 256)
    logits = -torch.ones(1, 1, 256, 256)
    logits[..., 32:64, 64:128] = 1  # a block in model space
    logits[..., 128:, :] = 5  # padding: must be cropped away
    back = tf.logits(logits)[0, 0] > 0
    assert back.shape == (100, 200)
    ys, xs = np.nonzero(back.numpy())
    assert abs(ys.min() - 25) <= 1 and abs(ys.max() - 49) <= 1 and abs(xs.min() - 50) <= 1 and abs(xs.max() - 99) <= 1


@pytest.mark.parametrize("shape", [(512, 512), (512, 384), (100, 300), (256, 256), (64, 64), (37, 255), (1000, 700)])
def test_numpy_transforms_match_torch(shape):
    """image_array / logits_array (the torch-free path) equal image / logits to float rounding."""
    rng = np.random.default_rng(2)
    tf = ResizeLongest(shape)
    for image in (rng.uniform(0, 255, shape), rng.uniform(0, 255, (*shape, 3))):
        assert np.abs(tf.image_array(image) - tf.image(image).numpy()).max() < 1e-4
    logits = rng.normal(0, 4, (2, 3, 256, 256)).astype(np.float32)
    assert np.abs(tf.logits_array(logits) - tf.logits(torch.from_numpy(logits)).numpy()).max() < 1e-3
