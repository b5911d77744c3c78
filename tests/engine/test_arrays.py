"""The torch-free path (numpy preprocessing, exported graphs in ONNX Runtime, numpy postprocessing)
gives the torch path's masks, and `medseg segment` uses it without importing torch."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from medseg.engine import available
from medseg.engine.cache import cached_graphs, graph_paths
from medseg.engine.graphs import prompt_tokens
from medseg.predict.predictor import Predictor

needs_ort = pytest.mark.skipif(not available("onnx"), reason="onnxruntime not installed")


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else float(2 * (a & b).sum() / total)


def test_prompt_tokens_follow_the_prompt_encoders_order():
    coords, labels = prompt_tokens((np.array([[[5.0, 6], [7, 8]]]), np.array([[1, 0]])), None)
    assert coords.shape == (1, 3, 2) and labels.tolist() == [[1, 0, -1]]  # padding point without a box
    coords, labels = prompt_tokens((np.array([[[5.0, 6]]]), np.array([[1]])), np.array([[1.0, 2, 3, 4]]))
    assert labels.tolist() == [[1, 2, 3]] and coords[0, 1:].tolist() == [[1, 2], [3, 4]]
    coords, labels = prompt_tokens(None, np.array([[1.0, 2, 3, 4], [5, 6, 7, 8]]))
    assert coords.shape == (2, 2, 2) and labels.tolist() == [[2, 3], [2, 3]]


def test_cold_cache_is_not_used(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDSEG_ENGINE_CACHE", str(tmp_path))
    checkpoint = tmp_path / "weights.pt"
    checkpoint.write_bytes(b"not read, only hashed")
    assert cached_graphs(None, checkpoint) is None
    assert cached_graphs("no-such-model", checkpoint) is None  # left to build_model's error


def _image() -> np.ndarray:
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[:300, :420]
    blob = 200.0 * (((yy - 150) / 60.0) ** 2 + ((xx - 200) / 90.0) ** 2 < 1)
    return np.clip(blob + rng.normal(30, 10, blob.shape), 0, 255).astype(np.float32)


@needs_ort
def test_arrays_predictor_matches_the_torch_path(random_model):
    from medseg.engine.ort_graphs import OrtGraphs

    model, engines, cache = random_model
    graphs = OrtGraphs(*(cache / p.parent.name / p.name for p in graph_paths(model.checkpoint_sha256)), 2)
    torch_path, arrays = Predictor(model, engine=engines["eager"]), Predictor(None, engine=graphs)
    assert arrays.arrays and not torch_path.arrays and arrays.input_size == 256
    image = _image()
    torch_path.set_image(image)
    arrays.set_image(image)
    assert isinstance(arrays.embedding, np.ndarray)
    assert np.allclose(arrays.embedding, torch_path.embedding.numpy(), atol=1e-3)
    box, pts, lab = [120, 80, 300, 230], np.array([[200.0, 150], [30, 30]]), np.array([1, 0])
    first = torch_path.predict(box=box)
    for kwargs in ({"box": box}, {"points": pts, "point_labels": lab, "multimask": True},
                   {"box": box, "points": pts, "point_labels": lab, "mask_input": first.low_res_logits}):
        ref, out = torch_path.predict(**kwargs), arrays.predict(**kwargs)
        assert out.masks.shape == ref.masks.shape == (len(ref.iou), 300, 420)
        assert np.allclose(out.low_res_logits, ref.low_res_logits, atol=1e-3)
        assert np.allclose(out.iou, ref.iou, atol=1e-4)
        assert all(dice(a, b) >= 0.99 for a, b in zip(out.masks, ref.masks, strict=True))
    boxes = np.array([box, [10, 10, 100, 120]], np.float32)
    assert all(dice(a, b) >= 0.99 for a, b in zip(arrays.predict_boxes(boxes), torch_path.predict_boxes(boxes),
                                                   strict=True))


def test_side_by_side_lanes_encode_as_the_main_session(random_model):
    from concurrent.futures import ThreadPoolExecutor

    from medseg.engine.ort_graphs import OrtGraphs

    model, _, cache = random_model
    paths = tuple(cache / p.parent.name / p.name for p in graph_paths(model.checkpoint_sha256))
    graphs, single = OrtGraphs(*paths, 2), Predictor(None, engine=OrtGraphs(*paths, 1))
    arrays = Predictor(None, engine=graphs)
    assert single.open_lanes() == 1 and arrays.open_lanes() == 2
    images = [_image() * f for f in (1.0, 0.8, 0.6, 0.4)]
    with ThreadPoolExecutor(2) as pool:
        lanes = list(pool.map(lambda im: arrays.embed(im, lane=True), images))
    for image, lane in zip(images, lanes, strict=True):
        assert np.allclose(lane, arrays.embed(image), atol=1e-4)
    sessions = (graphs.encoder, graphs.decoder, graphs.lane_encoder, graphs.quiet_decoder)
    assert all(s.get_session_options().get_session_config_entry("session.use_env_allocators") == "1"
               for s in sessions)  # one arena for all of them
    with ThreadPoolExecutor(2) as pool:  # a lane run told to stop raises; the one beside it is unharmed
        stopped, kept = (pool.submit(arrays.embed, images[i], True, tag) for i, tag in ((0, "a"), (1, "b")))
        time.sleep(0.1)
        arrays.stop_lanes(["a"])
        with pytest.raises(Exception, match="terminate"):
            stopped.result()
        assert np.allclose(kept.result(), lanes[1], atol=1e-4)


def test_decodes_beside_lane_encodes_use_the_quiet_decoder_with_the_same_result(random_model):
    from medseg.engine.ort_graphs import OrtGraphs

    model, _, cache = random_model
    paths = tuple(cache / p.parent.name / p.name for p in graph_paths(model.checkpoint_sha256))
    graphs = OrtGraphs(*paths, 2)
    emb = np.random.default_rng(3).standard_normal((1, 256, 64, 64)).astype(np.float32)
    boxes = np.array([[20.0, 30, 200, 220]], np.float32)
    alone = graphs.decode(emb, boxes=boxes)
    graphs.open_lanes()
    used = []
    quiet_run = graphs.quiet_decoder.run
    graphs.quiet_decoder = type("Spy", (), {"run": lambda self, *a: used.append(1) or quiet_run(*a)})()
    graphs._lanes_running = 1  # as while a lane encodes
    beside = graphs.decode(emb, boxes=boxes)
    assert used == [1]
    assert np.allclose(beside[0], alone[0], atol=1e-4) and np.allclose(beside[1], alone[1], atol=1e-5)


_RUN = """
import json, sys
from medseg.cli.main import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "torch": "torch" in sys.modules}))
"""


@needs_ort
def test_segment_runs_without_torch_when_the_graphs_are_cached(random_model, tmp_path):
    """2D image and a 2D box on a volume: the torch-free run (auto) gives eager's masks, never imports torch."""
    import SimpleITK as sitk
    from PIL import Image

    from medseg.checkpoints import sha256_of

    model, _, cache = random_model
    checkpoint = tmp_path / "random.pt"
    torch.save(model.state_dict(), checkpoint)
    # the graphs exported for the fixture's made-up key hold these very weights: file them under the real key
    shutil.copytree(cache / model.checkpoint_sha256, tmp_path / "engines" / sha256_of(checkpoint))
    Image.fromarray(_image().astype(np.uint8)).save(tmp_path / "image.png")
    volume = np.stack([_image() * (1 - abs(z - 2) / 4) for z in range(5)]).astype(np.int16)
    sitk.WriteImage(sitk.GetImageFromArray(volume), str(tmp_path / "volume.nii.gz"))
    env = {**os.environ, "MEDSEG_ENGINE_CACHE": str(tmp_path / "engines")}
    cases = {"png": ("image.png", "120,80,300,230"), "nii.gz": ("volume.nii.gz", "120,80,300,230")}
    for ending, (name, box) in cases.items():
        masks = {}
        for engine in ("auto", "eager"):
            out = tmp_path / f"{engine}.{ending}"
            args = ["segment", str(tmp_path / name), "-o", str(out), "--box", box,
                    "--checkpoint", str(checkpoint), "--engine", engine, *(["--slice", "2"] if "nii" in name else [])]
            proc = subprocess.run([sys.executable, "-c", _RUN, *args], capture_output=True, text=True, env=env)
            assert proc.returncode == 0, proc.stderr
            result = json.loads(proc.stdout.strip().splitlines()[-1])
            assert result == {"code": 0, "torch": engine == "eager"}
            masks[engine] = sitk.GetArrayFromImage(sitk.ReadImage(str(out))) > 0
        assert dice(masks["auto"], masks["eager"]) >= 0.99


@pytest.mark.realdata
@needs_ort
def test_real_masks_of_the_arrays_path_match_eager():
    """Dice >= 0.99 against eager on slices of a real MRI (colin27), box and point prompts."""
    from medseg.build import build_model
    from medseg.data import sample
    from medseg.engine.export import onnx_files
    from medseg.engine.ort_graphs import OrtGraphs
    from medseg.io import read_image
    from medseg.predict.segment import windowed

    model = build_model("litemedsam")
    data, _ = windowed(read_image(sample.path("colin27", "ch2.nii.gz")), "auto")
    eager, fast = Predictor(model, engine="eager"), Predictor(None, engine=OrtGraphs(*onnx_files(model), 2))
    scores = []
    for z in (60, 90, 120):
        h, w = data[z].shape
        eager.set_image(data[z])
        fast.set_image(data[z])
        boxes = np.array([[w * 0.2, h * 0.2, w * 0.8, h * 0.8], [w * 0.3, h * 0.25, w * 0.55, h * 0.6]], np.float32)
        scores += [dice(a, b) for a, b in zip(eager.predict_boxes(boxes), fast.predict_boxes(boxes), strict=True)]
        point = np.array([[w * 0.5, h * 0.5]], np.float32)
        scores.append(dice(eager.predict(points=point).best(), fast.predict(points=point).best()))
    assert min(scores) >= 0.99, scores

