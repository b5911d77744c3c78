"""The native engine: the C encoder computes the encoder, runs on any thread count with the same result,
stops when its lane is stopped, and is not offered where it cannot be built."""

from __future__ import annotations

import ctypes
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from medseg.build import build_architecture, get_card
from medseg.engine import available, resolve_name
from medseg.engine.cache import graph_paths, native_weights
from medseg.engine.eager import inference_copy
from medseg.engine.fast_encoder import native_arrays
from medseg.engine.native_graphs import NATIVE_ENV, NativeEncoder, NativeGraphs, compile_encoder, library
from medseg.errors import MedsegError

pytestmark = pytest.mark.skipif(not available("onnx"), reason="onnxruntime not installed")


@pytest.fixture(scope="module")
def encoder():
    """A folded TinyViT with random weights; norms, biases and batch-norm statistics randomised so that
    every term of the C encoder counts."""
    torch.manual_seed(4)
    model = build_architecture(get_card("litemedsam")).eval()
    with torch.no_grad():
        for name, buf in model.image_encoder.named_buffers():
            if name.endswith("running_mean"):
                buf.normal_(0.0, 0.2)
            elif name.endswith("running_var"):
                buf.uniform_(0.5, 2.0)
        for name, p in model.image_encoder.named_parameters():
            if "attention_biases" in name or "norm" in name or name.startswith(("neck.1", "neck.3")):
                p.normal_(0.5 if name.endswith("weight") else 0.0, 0.5)
    return inference_copy(model).image_encoder


@pytest.fixture(scope="module")
def native(encoder, tmp_path_factory):
    lib = library()
    assert lib is not None, "the C encoder could not be built here (no cc, or no AVX2 + FMA)"
    path = tmp_path_factory.mktemp("native") / "weights.npz"
    np.savez(path, **native_arrays(encoder))
    return NativeEncoder(lib, path)


def test_c_encoder_computes_the_encoder(encoder, native):
    x = torch.rand(2, 3, 256, 256)
    with torch.no_grad():
        ref = encoder(x).numpy()
    out = native(x.numpy(), 1)
    assert out.shape == ref.shape == (2, 256, 64, 64) and native.out_shape == (256, 64, 64)
    # measured: 2.5e-6 of the largest magnitude here, 5.8e-6 with the real weights (fp32 sums, erf, exp)
    assert np.abs(out - ref).max() <= 1e-4 * np.abs(ref).max()


def test_threads_split_the_work_without_changing_a_value(native):
    x = np.random.default_rng(0).random((1, 3, 256, 256), dtype=np.float32)
    one = native(x, 1)
    assert np.array_equal(native(x, 2), one) and np.array_equal(native(x, 3), one)


def test_stoppable_run_splits_layers_without_changing_a_value(native):
    # with a stop flag each layer's rows run in pieces, checking the flag between them (a server's idle encodes stop
    # within a few ms); the pieces must not change a value
    x = np.random.default_rng(1).random((1, 3, 256, 256), dtype=np.float32)
    for threads in (1, 2):
        assert np.array_equal(native(x, threads, ctypes.c_int(0)), native(x, threads))


def test_stopped_run_raises_and_bad_shapes_are_refused(native):
    x = np.zeros((1, 3, 256, 256), np.float32)
    with pytest.raises(RuntimeError, match="terminate"):
        native(x, 1, ctypes.c_int(1))
    with pytest.raises(ValueError, match=r"\(B, 3, 256, 256\)"):
        native(x[:, :1], 1)


def test_lanes_and_stopping_a_lane(random_model):
    from medseg.predict.predictor import Predictor

    model, engines, cache = random_model
    encoder, decoder = (cache / p.parent.name / p.name for p in graph_paths(model.checkpoint_sha256))
    graphs = NativeGraphs(native_weights(encoder), decoder, 2)
    arrays = Predictor(None, engine=graphs)
    assert arrays.open_lanes() == 2 and graphs.encoder is None and graphs.lane_encoder is None
    rng = np.random.default_rng(5)
    images = [rng.uniform(0, 255, (200, 260)).astype(np.float32) for _ in range(2)]
    with ThreadPoolExecutor(2) as pool:
        lanes = list(pool.map(lambda im: arrays.embed(im, lane=True), images))
    for image, lane in zip(images, lanes, strict=True):
        assert np.array_equal(lane, arrays.embed(image))
    with ThreadPoolExecutor(2) as pool:
        stopped, kept = (pool.submit(arrays.embed, images[i], True, tag) for i, tag in ((0, "a"), (1, "b")))
        while "a" not in graphs._lane_runs and not stopped.done():
            pass
        arrays.stop_lanes(["a"])
        with pytest.raises(RuntimeError, match="terminate"):
            stopped.result()
        assert np.array_equal(kept.result(), lanes[1])


def test_not_offered_where_it_cannot_be_built(tmp_path, monkeypatch):
    model = build_architecture(get_card("litemedsam"))
    model.checkpoint_sha256 = "1" * 64
    monkeypatch.setenv("MEDSEG_ENGINE_CACHE", str(tmp_path))
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    assert library() is None and not available("native")
    assert resolve_name("auto", model) == "onnx"
    with pytest.raises(MedsegError, match="C compiler"):
        resolve_name("native", model)
    monkeypatch.delenv("CC")
    monkeypatch.setenv(NATIVE_ENV, "0")
    assert not available("native")
    assert not list(tmp_path.iterdir())  # nothing half-built left behind


def test_a_failed_build_is_remembered(tmp_path, monkeypatch):
    broken = tmp_path / "cc"
    broken.write_text("#!/bin/sh\necho 'no compiler here' >&2\nexit 1\n")
    broken.chmod(0o755)
    monkeypatch.setenv("MEDSEG_ENGINE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CC", str(broken))
    assert library() is None
    built = list((tmp_path / "cache" / "native").iterdir())
    assert [p.suffix for p in built] == [".failed"]  # no half-written library, a marker instead
    broken.write_text("#!/bin/sh\necho called >> " + str(tmp_path / "calls") + "\nexit 1\n")
    assert library() is None and not (tmp_path / "calls").exists()  # not compiled again


def test_avx2_build_computes_the_same(encoder, native, tmp_path):
    """The AVX2 + FMA code path (8-wide vectors, narrower register tiles), built and run here too where
    the CPU also has AVX-512, which the machine's own build uses."""
    lib = tmp_path / "tinyvit-avx2.so"
    assert compile_encoder(lib, ("-mavx2", "-mfma"))
    avx2 = NativeEncoder(lib, native.weights)
    x = np.random.default_rng(6).random((1, 3, 256, 256), dtype=np.float32)
    ref = native(x, 1)
    assert np.abs(avx2(x, 2) - ref).max() <= 1e-4 * np.abs(ref).max()


def test_auto_takes_native_only_where_it_was_measured_faster(monkeypatch):
    """AVX-512: measured faster than ONNX Runtime; an AVX2-only CPU: not measured, so auto stays onnx."""
    import medseg.cpu
    from medseg.engine import auto_order

    model = build_architecture(get_card("litemedsam"))
    model.checkpoint_sha256 = "2" * 64
    info = medseg.cpu.cpu_info()
    monkeypatch.setattr(medseg.cpu, "cpu_info", lambda: {**info, "features": ["avx2", "fma", "avx512f"]})
    assert auto_order()[0] == "native" and resolve_name("auto", model) == "native"
    monkeypatch.setattr(medseg.cpu, "cpu_info", lambda: {**info, "features": ["avx2", "fma"]})
    assert "native" not in auto_order() and resolve_name("auto", model) == "onnx"
    assert resolve_name("native", model) == "native"  # still there when asked for


def test_a_cache_that_cannot_be_written_means_no_native_engine(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("MEDSEG_ENGINE_CACHE", str(blocker / "cache"))  # below a file: mkdir fails
    assert library() is None and not available("native")
