"""Route choice with a second kind of route: a trained automatic model's class names (a fake model here)."""

from __future__ import annotations

import numpy as np
import pytest

from medseg.errors import MedsegError
from medseg.io.image import Geometry, Image
from medseg.text.automatic_route import AutomaticRoute, class_table
from medseg.text.routes import Router


class FakeAutomatic:
    """Stands in for a trained automatic model: two boxes labelled 1 and 2."""

    class_names = ["background", "Liver", "Kidney_L"]

    def __init__(self) -> None:
        self.calls = 0

    def segment(self, image: Image) -> np.ndarray:
        self.calls += 1
        out = np.zeros(image.array.shape, np.uint8)
        out[2:5, 2:6, 2:6] = 1
        out[6:8, 1:3, 5:7] = 2
        return out


class RefusesAll:
    kind = "atlas"
    vocabulary = None

    def accepts(self, image):
        return "the atlas route serves brain MR; this scan looks like CT (values down to -1000)"


def _ct() -> Image:
    return Image(np.zeros((10, 8, 8), np.int16), Geometry.identity(3), modality="CT")


def test_class_table_numbering():
    assert class_table(["background", "a", "b"]) == {1: "a", 2: "b"}
    assert class_table(["a", "b"]) == {1: "a", 2: "b"}


def test_second_route_serves_what_the_first_cannot():
    model = FakeAutomatic()
    router = Router([RefusesAll(), AutomaticRoute(model, "run1", modality="CT")])
    image = _ct()
    route, resolved = router.resolve(image, "livr")
    assert route.kind == "automatic" and resolved.name == "liver"
    assert route.prior(image, resolved).sum() == 3 * 4 * 4
    route, resolved = router.resolve(image, "left kidney")
    assert route.prior(image, resolved).sum() == 2 * 2 * 2
    assert model.calls == 1  # one run per scan
    [(description, names, _)] = router.structures(image)
    assert description == "trained automatic model run1 (2 classes)" and names == ["left kidney", "liver"]


def test_no_route_for_the_scan_says_why():
    router = Router([RefusesAll(), AutomaticRoute(FakeAutomatic(), "run1", modality="MR")])
    with pytest.raises(MedsegError, match="no text route serves this scan: the atlas route serves brain MR.*"
                                          "run1 was trained on MR; this scan is CT"):
        router.resolve(_ct(), "liver")
    with pytest.raises(MedsegError, match="empty text prompt"):
        router.resolve(_ct(), " ")
