"""The encoder front's C kernel: same numbers as the layers it replaces, and ONNX Runtime without it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medseg.build import build_architecture, get_card
from medseg.engine import available
from medseg.engine.cache import front_files
from medseg.engine.eager import inference_copy
from medseg.engine.fast_encoder import front_arrays
from medseg.engine.native_front import NATIVE_ENV, NativeFront, library

pytestmark = pytest.mark.skipif(not available("onnx"), reason="onnxruntime not installed")


@pytest.fixture(scope="module")
def encoder():
    """A folded TinyViT with random weights, its batch norms' statistics randomised so the folding counts."""
    torch.manual_seed(3)
    model = build_architecture(get_card("litemedsam"))
    with torch.no_grad():
        for name, buf in model.image_encoder.named_buffers():
            if name.endswith("running_mean"):
                buf.normal_(0.0, 0.2)
            elif name.endswith("running_var"):
                buf.uniform_(0.5, 2.0)
    return inference_copy(model.eval()).image_encoder


@pytest.fixture(scope="module")
def front(encoder, tmp_path_factory):
    folder = tmp_path_factory.mktemp("front")
    lib = library(folder / "native")
    assert lib is not None, "no C compiler or no AVX2 + FMA: the kernel could not be built"
    np.savez(folder / "front.npz", **front_arrays(encoder))
    return NativeFront(lib, folder / "front.npz")


def test_kernel_computes_the_front_layers(encoder, front):
    """Stem, both MBConv blocks and the first patch merging, against PyTorch (exact erf GELU)."""
    x = torch.rand(2, 3, 256, 256)
    with torch.no_grad():
        ref = encoder.layers[0](encoder.patch_embed(x)).permute(0, 2, 3, 1).numpy()
    out = front(x.numpy(), 1)
    assert out.shape == ref.shape == (2, 128, 128, 128)
    # measured: max difference 6e-7 of the largest magnitude here, 2e-6 with the real weights
    assert np.abs(out - ref).max() <= 2e-5 * np.abs(ref).max()


def test_threads_split_rows_without_changing_a_value(front):
    x = np.random.default_rng(0).random((1, 3, 256, 256), dtype=np.float32)
    one = front(x, 1).copy()
    assert np.array_equal(front(x, 2), one)
    assert np.array_equal(front(x, 3), one)


def test_wrong_image_shape_is_refused(front):
    with pytest.raises(ValueError, match=r"\(B, 3, 256, 256\)"):
        front(np.zeros((1, 1, 256, 256), np.float32), 1)


def test_no_compiler_or_switched_off_means_no_kernel(tmp_path, monkeypatch):
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    assert library(tmp_path) is None
    monkeypatch.delenv("CC")
    monkeypatch.setenv(NATIVE_ENV, "0")
    assert library(tmp_path) is None
    assert not list(tmp_path.iterdir())  # nothing half-built left behind


def test_encoder_with_and_without_the_kernel(random_model, monkeypatch):
    """The exported encoder runs its front in the kernel when it can, and in ONNX Runtime otherwise."""
    from medseg.engine.ort_graphs import OrtGraphs

    model, engines, cache = random_model
    graphs = engines["onnx"].graphs
    encoder, decoder = graphs.encoder_path.with_name(graphs.encoder_path.name.replace("-rest", "")), graphs.decoder_path
    assert graphs.front is not None and graphs.encoder_path == front_files(encoder)[0]
    monkeypatch.setenv(NATIVE_ENV, "0")
    plain = OrtGraphs(encoder, decoder, 2)
    assert plain.front is None and plain.encoder_path == encoder
    x = np.random.default_rng(1).random((1, 3, 256, 256), dtype=np.float32)
    fast, slow = graphs._encode(x), plain._encode(x)
    assert fast.shape == slow.shape == (1, 256, 64, 64)
    assert np.abs(fast - slow).max() <= 1e-4 * np.abs(slow).max()
    assert front_files(encoder.with_name("encoder-int8.onnx")) is None  # a quantised copy runs whole
