"""A new object's click on a deep grey structure of an atlas route takes the structure (medseg.text.pointed), with a
stand-in route (no registration) and the fake model; everything else keeps the model's answer."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from medseg.errors import MedsegError
from medseg.io.image import Geometry, Image
from medseg.predict.volume import VolumeSession
from medseg.text.pointed import structure_at
from medseg.text.routes import Router
from medseg.text.vocabulary import Vocabulary

sys.path.insert(0, str(Path(__file__).parents[1] / "predict"))
from fake_model import fake_predictor  # noqa: E402

SHAPE = (16, 40, 40)
CAUDATE = (8, 14, 9)  # (z, y, x) inside the left caudate block
CORTEX = (8, 30, 30)  # inside the precentral block


class WarpedRoute:
    """Labels on the scan grid as a registration would give them: 1 left caudate, 2 left precentral gyrus."""

    kind = "atlas"

    def __init__(self, fail: bool = False) -> None:
        self.labels = np.zeros(SHAPE, np.uint16)
        self.labels[4:12, 10:19, 5:14] = 1
        self.labels[5:12, 26:35, 26:35] = 2
        self.vocabulary = Vocabulary([{1: "Left_Caudate", 2: "Left_Precentral_Gyrus"}], scope="test structures")
        self.fail, self.registrations = fail, 0

    def describe(self) -> str:
        return "test atlas"

    def accepts(self, image):
        return None

    def warped(self, image):
        self.registrations += 1
        if self.fail:
            raise MedsegError("the scan does not look like a brain MR to the atlas route")
        return SimpleNamespace(labels=self.labels)

    def prior(self, image, resolved):
        values = [v for k, s in resolved.parts for v in self.vocabulary.entry(k, s).values]
        return np.isin(self.labels, values)


def scan(route: WarpedRoute) -> np.ndarray:
    rng = np.random.default_rng(0)
    vol = rng.integers(10, 30, SHAPE).astype(np.float32)
    vol[route.labels == 1] = 200 + rng.normal(0, 5, int((route.labels == 1).sum()))
    vol[route.labels == 2] = 120 + rng.normal(0, 5, int((route.labels == 2).sum()))
    return vol


def image_of(vol: np.ndarray) -> Image:
    return Image(vol, Geometry.identity(3))


def test_the_structure_under_the_click():
    route = WarpedRoute()
    found = structure_at(Router([route]), image_of(scan(route)), CAUDATE[2], CAUDATE[1], CAUDATE[0])
    assert found is not None and found.resolved.name == "left caudate" and found.route is route
    assert np.array_equal(found.mask, route.labels == 1)  # moved to the scan's edges: here they coincide


@pytest.mark.parametrize("where", ["cortex", "background", "lesion", "edge"])
def test_no_structure_outside_the_deep_grey(where):
    route = WarpedRoute()
    vol = scan(route)
    z, y, x = CAUDATE
    if where == "cortex":
        z, y, x = CORTEX  # a cortical parcel: a convention of the atlas, not an edge of the image
    elif where == "background":
        z, y, x = 2, 2, 2
    elif where == "lesion":
        vol[6:11, 11:17, 6:12] = 150  # darker than the caudate, as a lesion in over a quarter of it
    else:  # the atlas's first row of the structure is background on this scan: not the structure here
        vol[:, 10, :] = scan(route)[2, 2, 2]
        y = 10
    assert structure_at(Router([route]), image_of(vol), x, y, z) is None


def test_a_failed_or_refused_route_is_skipped():
    failing = WarpedRoute(fail=True)
    assert structure_at(Router([failing]), image_of(scan(failing)), CAUDATE[2], CAUDATE[1], CAUDATE[0]) is None
    other = SimpleNamespace(kind="automatic")  # not an atlas: never asked
    assert structure_at(Router([other]), image_of(scan(failing)), CAUDATE[2], CAUDATE[1], CAUDATE[0]) is None


def session_with(route: WarpedRoute) -> VolumeSession:
    s = VolumeSession(fake_predictor())
    s.set_volume(scan(route))
    s.text_router = Router([route])
    return s


def test_a_click_on_the_caudate_makes_a_named_atlas_object_undone_exactly():
    route = WarpedRoute()
    s = session_with(route)
    label = s.add_point(CAUDATE[2], CAUDATE[1], CAUDATE[0])
    obj = s.state.objects[0]
    assert label == 1 and obj.kind == "atlas" and obj.name == "left caudate"
    assert np.array_equal(s.mask == 1, route.labels == 1)
    assert "left caudate via test atlas" in s.messages[-1]
    before = s.mask.copy()
    s.add_point(6, 12, 8, positive=False, obj=label)  # corrections edit it as any object
    assert s.mask[8, 12, 6] == 0
    assert s.undo()
    np.testing.assert_array_equal(s.mask, before)
    assert s.undo() and s.mask.sum() == 0


def test_the_model_answers_elsewhere_and_when_switched_off():
    route = WarpedRoute()
    s = session_with(route)
    s.add_point(CORTEX[2], CORTEX[1], CORTEX[0])
    assert s.state.objects[0].kind == "point"
    s.reset()
    s.click_atlas = False
    s.add_point(CAUDATE[2], CAUDATE[1], CAUDATE[0])
    assert s.state.objects[0].kind == "point"


def test_a_ct_volume_never_asks_the_atlas():
    route = WarpedRoute()
    s = VolumeSession(fake_predictor())
    vol = scan(route)
    vol[0] = -1000  # air in HU: a CT
    s.set_volume(vol)
    s.text_router = Router([route])
    s.add_point(CAUDATE[2], CAUDATE[1], CAUDATE[0])
    assert route.registrations == 0 and s.state.objects[0].kind == "point"


def test_corrections_move_the_prior_and_the_intensities_keep_the_border():
    """medseg.text.pointed.corrected: the atlas's label is shifted 3 voxels off the bright structure; a positive
    click in the missed part adds mostly bright voxels around it, a negative click in the wrong part removes
    what is around it; the clicked voxel lands on its side."""
    from medseg.text.intensity import refine_by_intensity
    from medseg.text.pointed import Prior, corrected

    rng = np.random.default_rng(1)
    vol = rng.normal(20, 3, SHAPE).astype(np.float32)
    truth = np.zeros(SHAPE, bool)
    truth[4:12, 10:20, 8:18] = True
    vol[truth] = rng.normal(200, 5, int(truth.sum()))
    label = np.roll(truth, 3, axis=2)  # misregistered by 3 voxels in x
    prior = Prior(label)
    mask = refine_by_intensity(label, vol)
    spacing = (1.0, 1.0, 1.0)
    missed = (8, 15, 8)  # bright, left out
    assert truth[missed] and not mask[missed]
    prior2, mask2 = corrected(prior, mask, vol, spacing, missed, True)
    assert mask2[missed] and len(prior2.clicks) == 1 and prior.clicks == ()
    added = mask2 & ~mask
    assert (added & truth).sum() > 2 * (added & ~truth).sum()  # mostly bright voxels join
    wrong = tuple(int(v[len(v) // 2]) for v in np.nonzero(mask2 & ~truth))  # a wrongly kept voxel
    prior3, mask3 = corrected(prior2, mask2, vol, spacing, wrong, False)
    assert not mask3[wrong] and len(prior3.clicks) == 2
    dice = [2 * (m & truth).sum() / (m.sum() + truth.sum()) for m in (mask, mask2, mask3)]
    assert dice[0] < dice[1] < dice[2]


def test_atlas_object_corrections_are_undone_exactly():
    route = WarpedRoute()
    s = session_with(route)
    label = s.add_point(CAUDATE[2], CAUDATE[1], CAUDATE[0])
    states = [s.mask.copy()]
    for x, y, z, positive in ((13, 18, 11, False), (6, 11, 5, False), (9, 14, 12, True)):
        s.add_point(x, y, z, positive=positive, obj=label)
        assert bool(s.mask[z, y, x]) == positive
        states.append(s.mask.copy())
    assert s.state.objects[0].kind == "atlas" and len(s.state.objects[0].atlas.clicks) == 3
    for before in reversed(states[:-1]):
        assert s.undo()
        np.testing.assert_array_equal(s.mask, before)
