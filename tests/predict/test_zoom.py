"""medseg.predict.zoom: which decodes run on a magnified crop, the crop's geometry, the logits' frames, and a
session on a small object (fake model)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from medseg.predict import zoom
from medseg.predict.volume import VolumeSession

sys.path.insert(0, str(Path(__file__).parent))
from fake_model import fake_predictor  # noqa: E402


def test_crop_for_small_boxes_only():
    assert zoom.crop_for(None, (512, 512), 256) is None
    assert zoom.crop_for([100, 100, 180, 150], (512, 512), 256) is None  # 81 px = 40.5 model px: whole slice
    assert zoom.crop_for([100, 100, 110, 110], (40, 40), 256) is None  # a crop would not magnify twice
    r0, c0, r1, c1 = zoom.crop_for([100, 200, 110, 209], (512, 512), 256)  # 11 px: 4 x 11 = 44 -> 48
    assert (r1 - r0, c1 - c0) == (48, 48)
    assert r0 <= 200 and r1 > 209 and c0 <= 100 and c1 > 110  # the box lies inside
    assert r0 % 16 == 0 and c0 % 16 == 0  # snapped to 16 pixels


def test_crop_for_is_shared_and_kept_inside():
    # boxes of one object on one slice that differ by a pixel or two share the crop (one encode)
    assert zoom.crop_for([100, 100, 110, 110], (512, 512), 256) == zoom.crop_for([101, 99, 111, 110], (512, 512), 256)
    r0, c0, r1, c1 = zoom.crop_for([0, 500, 9, 511], (512, 512), 256)  # at the slice's corner: 12 px -> 48
    assert (r0, c0, r1, c1) == (512 - 48, 0, 512, 48)
    r0, c0, r1, c1 = zoom.crop_for([10, 10, 14, 14], (100, 300), 256)  # non-square slice, smallest crop
    assert (r1 - r0, c1 - c0) == (32, 32) and 0 <= r0 and r1 <= 100


def test_logits_frames_round_trip():
    shape, crop = (512, 384), (96, 160, 224, 288)
    yy, xx = np.mgrid[:256, :256]
    # a disc of positive logits in the slice's model frame (scale 0.5), inside the crop
    full = np.where((yy - 80) ** 2 + (xx - 110) ** 2 <= 12**2, 8.0, -8.0).astype(np.float32)[None]
    full[:, :, 192:] = zoom.OUTSIDE  # the frame's padding (384 x 0.5 = 192 columns)
    inner = zoom.to_crop(full, crop, shape, 256)
    # in the crop's frame (scale 2): the disc 4x larger, centred at ((80.5 / 0.5 - 96) * 2, (110.5 / 0.5 - 160) * 2)
    assert inner.shape == (1, 256, 256)
    assert inner[0, 130, 122] > 0 and inner[0, 130, 122 + 60] < 0 and inner[0, 5, 5] < 0
    assert abs(int((inner[0] > 0).sum()) - 16 * int((full[0] > 0).sum())) < 0.1 * 16 * int((full[0] > 0).sum())
    back = zoom.to_slice(inner, crop, shape, 256)
    agree = (back[0] > 0) == (full[0] > 0)
    assert agree.mean() > 0.998
    assert (back[0, :, 192:] == zoom.OUTSIDE).all()  # padding stays empty
    assert (back[0, :40] < 0).all()  # beyond the crop: nothing


def small_volume() -> tuple[np.ndarray, np.ndarray]:
    """A 6-slice 512 x 512 volume with a bright ring 13 pixels across (slices 1-4) on a dark textured background."""
    rng = np.random.default_rng(0)
    vol = rng.integers(10, 40, (6, 512, 512)).astype(np.uint8)
    yy, xx = np.mgrid[:512, :512]
    r2 = (yy - 200) ** 2 + (xx - 300) ** 2
    truth = np.zeros(vol.shape, bool)
    truth[1:5] = (r2 <= 6**2) & (r2 > 3**2)
    vol[truth] = 220
    vol[:, :120, :120] = 220  # bright tissue elsewhere: the window spans 10..220
    return vol, truth


BOX = (294, 194, 1, 306, 206, 4)  # x0, y0, z0, x1, y1, z1 of the ring


def dice(a, b) -> float:
    return float(2 * (a & b).sum() / (a.sum() + b.sum()))


def test_session_segments_a_small_object_from_crops():
    # the fake model reads 4 x 4 averages of its 256 x 256 input: on the whole 512 slice, cells of 8 pixels; on the
    # ring's 64-pixel crop (x 4 magnified), cells of one pixel
    vol, truth = small_volume()
    session = VolumeSession(fake_predictor(), progress=False)
    session.set_volume(vol)
    mask = session.object_mask(session.add_box3d(*BOX))
    assert dice(mask, truth) > 0.95  # 0.988 (the fake's box drops the ring's last column)
    assert not mask[:, 200, 300].any()  # the hole
    crops = [k for k in session.cache.encoded if isinstance(k, zoom.Zoomed)]
    assert crops and all(k.crop[2] - k.crop[0] == 64 for k in crops)
    assert len(set(crops)) == len(crops)  # each crop encoded once


def test_3d_objects_zoom_only_under_tiny():
    # a box of 40 px on a 512 slice (20 model px) is zoomed in 2D (under SMALL) but not in a VolumeSession: in 3D,
    # tumours of 16-32 model px lost as often as they gained from crops (benchmarks/results/interactive/zoom.md)
    box2d = [280, 180, 319, 219]
    assert zoom.crop_for(box2d, (512, 512), 256) is not None
    assert zoom.crop_for(box2d, (512, 512), 256, zoom.TINY) is None
    vol, _ = small_volume()
    session = VolumeSession(fake_predictor(), progress=False)
    session.set_volume(vol)
    session.add_box3d(280, 180, 1, 319, 219, 4)
    session.add_box(2, (280, 180, 319, 219))
    assert session.cache.encoded and not any(isinstance(k, zoom.Zoomed) for k in session.cache.encoded)


def test_correction_proposals_start_at_two_cells_in_the_decode_frame(monkeypatch):
    # a correction's first proposal is 4 model px in half-width: 8 px on a whole 512 slice, at most 1 px in the ring's
    # crop (magnified 4x or more)
    import medseg.predict.volume_corrections as corrections
    from medseg.predict.click import empty_result

    seen = []

    def region(decode, z, x, y, shape, *args, smallest=0.0, **kwargs):
        seen.append(smallest)
        return empty_result(shape)

    vol, _ = small_volume()
    session = VolumeSession(fake_predictor(), progress=False)
    session.set_volume(vol)
    monkeypatch.setattr(corrections, "segment_click", region)
    small = session.add_box3d(*BOX)
    crop = zoom.crop_for(session._xy_extent(session._object(small)), (512, 512), 256, zoom.TINY)
    session.add_point(300, 209, 2, positive=True, obj=small)  # beside the ring, in its crop
    big = session.add_box3d(0, 0, 1, 140, 140, 4)  # the bright 120-px square: on whole slices
    session.add_point(125, 60, 2, positive=True, obj=big)
    assert seen == [4.0 * (crop[2] - crop[0]) / 256, 8.0] and crop[2] - crop[0] <= 64


def test_session_without_zoom_is_coarser(monkeypatch):
    vol, truth = small_volume()
    monkeypatch.setattr(zoom, "ON", False)
    session = VolumeSession(fake_predictor(), progress=False)
    session.set_volume(vol)
    mask = session.object_mask(session.add_box3d(*BOX))
    assert not any(isinstance(k, zoom.Zoomed) for k in session.cache.encoded)
    assert dice(mask, truth) < 0.5  # 0.0: averaged over 8-pixel cells, the 3-pixel-thick ring is not bright


def test_clicks_and_undo_on_a_zoomed_object():
    vol, truth = small_volume()
    session = VolumeSession(fake_predictor(), progress=False)
    session.set_volume(vol)
    obj = session.add_box3d(*BOX)
    before = session.mask.copy()
    assert before[2, 200, 294]
    session.add_point(294, 200, 2, positive=False, obj=obj)
    assert not session.mask[2, 200, 294]
    session.undo()
    assert np.array_equal(session.mask, before)


@pytest.mark.parametrize("shape", [(512, 512), (300, 200)])
def test_decode_moves_prompts_into_the_crop(shape):
    """zoom.decode with a predictor that records what it gets: the box moves by the crop's corner, the mask
    comes back at the slice's place."""

    class Recorder:
        input_size = 256

        def set_embedding(self, emb, original):
            self.original = original

        def predict(self, box=None, **_):
            from medseg.predict.predictor import Prediction

            self.box = np.asarray(box)
            m = np.zeros((1, *self.original), bool)
            x0, y0, x1, y1 = (int(v) for v in box)
            m[0, y0:y1 + 1, x0:x1 + 1] = True
            return Prediction(m, np.array([0.9]), np.zeros((1, 256, 256), np.float32))

    rec = Recorder()
    box = np.array([50, 70, 57, 79], np.float32)
    pred = zoom.decode(rec, lambda key: key, 3, shape, box=box)
    crop = zoom.crop_for(box, shape, 256)
    assert crop is not None and rec.original == (crop[2] - crop[0], crop[3] - crop[1])
    assert np.array_equal(rec.box, box - [crop[1], crop[0], crop[1], crop[0]])
    expected = np.zeros(shape, bool)
    expected[70:80, 50:58] = True
    assert pred.masks.shape == (1, *shape) and np.array_equal(pred.masks[0], expected)
