"""The registration cache: keyed by the scan's content and geometry, written whole, a damaged file is made again."""

from __future__ import annotations

import numpy as np

from medseg.io.image import Geometry, Image
from medseg.text.atlas_route import Warped, _read_cache, _write_cache, image_hash


def test_hash_follows_voxels_and_geometry():
    array = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    base = image_hash(Image(array, Geometry.identity(3)))
    assert image_hash(Image(array.copy(), Geometry.identity(3))) == base
    assert image_hash(Image(array + 1, Geometry.identity(3))) != base
    assert image_hash(Image(array.astype(np.int32), Geometry.identity(3))) != base
    assert image_hash(Image(array, Geometry.identity(3, (1.0, 1.0, 2.0)))) != base


def test_cache_round_trip_and_damage(tmp_path):
    labels = np.zeros((3, 4, 5), np.uint16)
    labels[1, 2, 3] = 104
    path = tmp_path / "sub" / "k.npz"
    _write_cache(path, Warped(labels, labels > 0, -0.42, 12.5, False))
    found = _read_cache(path)
    assert found.cached and found.metric == -0.42 and found.seconds == 12.5
    assert np.array_equal(found.labels, labels) and found.brain.sum() == 1
    assert not [p for p in path.parent.iterdir() if p.name != "k.npz"]  # no temporary left
    path.write_bytes(b"not an npz")
    assert _read_cache(path) is None
    assert _read_cache(tmp_path / "missing.npz") is None


def test_truncated_cache_is_made_again(tmp_path):
    labels = np.ones((3, 4, 5), np.uint16)
    path = tmp_path / "k.npz"
    _write_cache(path, Warped(labels, labels > 0, -0.5, 1.0, False))
    path.write_bytes(path.read_bytes()[:-40])
    assert _read_cache(path) is None


def test_refinement_measured_best_per_structure():
    from medseg.text.atlas_route import BRAIN_VALUE, AtlasPack, AtlasRoute

    pack = AtlasPack("t", Image(np.zeros((2, 2, 2), np.uint8), Geometry.identity(3)), np.zeros((2, 2, 2), np.uint16),
                     {1: "Left_Caudate", 2: "Right_Caudate"}, "test")
    route = AtlasRoute(pack, use_cache=False)
    assert route.refine_for(route.vocabulary.resolve("brain")) == "box+mask"
    assert route.refine_for(route.vocabulary.resolve("left caudate")) == "intensity"
    assert BRAIN_VALUE not in pack.names


def small_route(tmp_path, monkeypatch, fail: bool = False):
    """An AtlasRoute on a tiny stand-in pack whose registration is a slow fake that counts its calls."""
    import threading
    import time

    from medseg.errors import MedsegError
    from medseg.text.atlas_route import AtlasPack, AtlasRoute

    monkeypatch.setenv("MEDSEG_TEXT_CACHE", str(tmp_path))
    labels = np.zeros((16, 16, 16), np.uint16)
    labels[6:10, 6:10, 6:10] = 1
    pack = AtlasPack("test", Image(labels.astype(np.float32), Geometry.identity(3)), labels, {1: "Left_Caudate"}, "")
    route = AtlasRoute(pack)
    calls = []
    lock = threading.Lock()

    def register(image, what):
        with lock:
            calls.append(what)
        time.sleep(0.2)
        if fail:
            raise MedsegError(f"{what} does not look like a brain MR to the atlas route")
        return Warped(labels, labels > 0, -0.5, 0.2, False)

    monkeypatch.setattr(route, "_register", register)
    return route, Image(np.ones((16, 16, 16), np.float32), Geometry.identity(3)), calls


def test_concurrent_callers_share_one_registration(tmp_path, monkeypatch):
    """A prompt that needs the atlas while the viewer's warm-up registers it waits for that one (no second)."""
    from concurrent.futures import ThreadPoolExecutor

    route, image, calls = small_route(tmp_path, monkeypatch)
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda _: route.warped(image), range(3)))
    assert len(calls) == 1 and all(r is results[0] for r in results)


def test_a_failed_registration_is_not_tried_again(tmp_path, monkeypatch):
    import pytest

    from medseg.errors import MedsegError
    from medseg.text.pointed import warm
    from medseg.text.routes import Router

    route, image, calls = small_route(tmp_path, monkeypatch, fail=True)
    warm(Router([route]), image)  # the viewer's warm-up: the failure is kept, not raised
    with pytest.raises(MedsegError, match="does not look like a brain MR"):
        route.warped(image)
    assert len(calls) == 1
