"""One real server for the real-data serve tests: the server's default model (``medseg.registry.CLICK_MODEL``:
LiteMedSAM with the click decoder for corrections), Colin27 (AAL labels) as the viewer's scan.

Colin27 is used with every other axial slice (1 x 1 x 2 mm): the left amygdala then spans 9 slices, which
keeps the encodes of all serve tests to about 15 on this 2-core machine.

Every lease and the viewer share the server's embedding cache, so the slices one test encodes are
free for the next (the client conformance test, the Slicer call sequence and the browser test).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy import ndimage


@pytest.fixture(scope="session")
def colin27():
    from medseg.data.loaders import load_labelled
    from medseg.io.image import Geometry, Image

    full = load_labelled("colin27")[0]
    g = full.image.geometry
    image = Image(np.ascontiguousarray(full.image.array[::2]), Geometry((g.spacing[0], g.spacing[1], 2 * g.spacing[2]),
                  g.origin, g.direction), full.image.modality, full.image.path)
    case = replace(full, image=image, labels=np.ascontiguousarray(full.labels[::2]))
    ids = {name: value for value, name in case.names.items()}
    return case, {name: case.labels == ids[name] for name in ("Amygdala_L", "Thalamus_L")}


@pytest.fixture(scope="session")
def live(colin27):
    import torch

    from medseg.cpu import default_threads
    from medseg.serve.limits import Limits
    from medseg.serve.run import Background, build

    case, _ = colin27
    before = torch.get_num_threads()
    torch.set_num_threads(default_threads())  # the engine takes torch's count: as `medseg serve` starts, whatever
    try:                                      # an earlier test left
        app, server = build(Limits(max_sessions=4, cache_mib=1024), viewer_scan=case.image)
    finally:
        torch.set_num_threads(before)
    assert server.predictor.open_lanes() == min(2, default_threads())
    bg = Background(app).start()
    yield bg, server
    bg.stop()


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / (a.sum() + b.sum()))


def deepest_voxel(gt: np.ndarray) -> tuple[int, int, int]:
    """(z, y, x) of the voxel farthest inside the structure."""
    depth = ndimage.distance_transform_edt(np.pad(gt, 1))[1:-1, 1:-1, 1:-1]
    z, y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return int(z), int(y), int(x)
