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
