"""Engines give the same masks as eager PyTorch; exported graphs are cached per checkpoint hash."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medseg.build import build_architecture, get_card
from medseg.engine import available, get_engine, resolve_name
from medseg.engine.cache import EXPORT_VERSION

OPTIMISED = [n for n in ("native", "onnx", "openvino") if available(n)]


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else float(2 * (a & b).sum() / total)


def test_auto_is_eager_without_checkpoint():
    model = build_architecture(get_card("litemedsam"))
    assert resolve_name("auto", model) == "eager"


def test_unknown_engine_is_a_user_error():
    from medseg.errors import MedsegError

    with pytest.raises(MedsegError, match="unknown engine"):
        resolve_name("tensorrt", build_architecture(get_card("litemedsam")))


@pytest.mark.skipif(not OPTIMISED, reason="no optimised runtime installed")
def test_export_is_cached_and_atomic(random_model, monkeypatch):
    model, _, cache = random_model
    folder = cache / model.checkpoint_sha256
    names = {p.name for p in folder.iterdir() if p.is_file()}
    assert {f"decoder-v{EXPORT_VERSION}.onnx", f"encoder-v{EXPORT_VERSION}.onnx"} <= names
    assert not [n for n in names if n.startswith(".")]  # no temporaries left behind
    stamps = {p: p.stat().st_mtime_ns for p in folder.glob("*.onnx")}
    monkeypatch.setenv("MEDSEG_ENGINE_CACHE", str(cache))
    get_engine(model, OPTIMISED[0])
    assert {p: p.stat().st_mtime_ns for p in folder.glob("*.onnx")} == stamps


@pytest.mark.parametrize("name", OPTIMISED)
def test_random_weights_match_eager(random_model, name):
    model, engines, _ = random_model
    x = torch.rand(2, 3, 256, 256)
    ref_emb, emb = engines["eager"].encode(x), engines[name].encode(x)
    assert emb.shape == (2, 256, 64, 64)
    assert torch.allclose(emb, ref_emb, atol=1e-3)
    boxes = torch.tensor([[20.0, 30, 200, 220], [60, 60, 120, 140], [0, 0, 255, 255]])
    pts = (torch.tensor([[[100.0, 90], [30, 40]]]), torch.tensor([[1, 0]]))
    prior = torch.randn(1, 1, 256, 256)
    for kwargs in ({"boxes": boxes}, {"points": pts, "multimask": True},
                   {"points": pts, "boxes": boxes[:1], "masks": prior}):
        ref_logits, ref_iou = engines["eager"].decode(ref_emb[:1], **kwargs)
        logits, iou = engines[name].decode(ref_emb[:1], **kwargs)
        assert logits.shape == ref_logits.shape and iou.shape == ref_iou.shape
        assert torch.allclose(logits, ref_logits, atol=1e-3)
        assert torch.allclose(iou, ref_iou, atol=1e-4)


@pytest.mark.realdata
@pytest.mark.parametrize("name", OPTIMISED)
def test_real_masks_match_eager(name):
    """Dice >= 0.99 against eager on slices of a real MRI (colin27), box and point prompts."""
    from medseg.build import build_model
    from medseg.data import sample
    from medseg.io import read_image
    from medseg.predict.predictor import Predictor
    from medseg.predict.segment import windowed

    path = sample.path("colin27", "ch2.nii.gz")  # real data: fails (not skips) when not fetched
    model = build_model("litemedsam")
    data, _ = windowed(read_image(path), "auto")
    eager, fast = Predictor(model, engine="eager"), Predictor(model, engine=name)
    scores = []
    for z in (60, 90, 120):
        slice_ = data[z]
        h, w = slice_.shape
        eager.set_image(slice_)
        fast.set_image(slice_)
        boxes = np.array([[w * 0.2, h * 0.2, w * 0.8, h * 0.8], [w * 0.3, h * 0.25, w * 0.55, h * 0.6]], np.float32)
        scores += [dice(a, b) for a, b in zip(eager.predict_boxes(boxes), fast.predict_boxes(boxes), strict=True)]
        point = np.array([[w * 0.5, h * 0.5]], np.float32)
        scores.append(dice(eager.predict(points=point).best(), fast.predict(points=point).best()))
    assert min(scores) >= 0.99, scores


def test_few_token_cross_attention_is_exact():
    """The rewritten cross-attentions give the decoder's result (random weights, 1-11 prompt tokens)."""
    import copy

    from medseg.engine.fast_decoder import rewrite_cross_attention

    torch.manual_seed(1)
    model = build_architecture(get_card("litemedsam")).eval()
    fast = copy.deepcopy(model)
    rewrite_cross_attention(fast.mask_decoder.transformer)
    emb = torch.randn(1, 256, 64, 64)
    pts = (torch.rand(2, 6, 2) * 255, torch.tensor([[1, 0, 1, 1, 0, 1], [1, 1, 1, 1, 1, 1]]))
    with torch.no_grad():
        for kwargs in ({"boxes": torch.tensor([[10.0, 20, 200, 240]])}, {"points": pts, "multimask": True},
                       {"points": pts, "boxes": torch.rand(2, 4) * 255, "masks": torch.randn(2, 1, 256, 256)}):
            ref, out = model.decode(emb, **kwargs), fast.decode(emb, **kwargs)
            assert torch.allclose(out[0], ref[0], atol=1e-4, rtol=1e-4)
            assert torch.allclose(out[1], ref[1], atol=1e-5)


def test_export_form_of_the_encoder_is_exact():
    """ExportEncoder (one permutation per attention, pre-scaled queries, channels-last neck) computes the
    encoder's result; biases and norms randomised so that every rewritten term counts."""
    from medseg.engine.eager import inference_copy
    from medseg.engine.fast_encoder import ExportEncoder

    torch.manual_seed(2)
    encoder = inference_copy(build_architecture(get_card("litemedsam"))).image_encoder
    with torch.no_grad():
        for name, p in encoder.named_parameters():
            if "attention_biases" in name or "norm" in name or name.startswith("neck.1") or name.startswith("neck.3"):
                p.normal_(0.5 if name.endswith("weight") else 0.0, 0.5)
        x = torch.rand(2, 3, 256, 256)
        ref, out = encoder(x), ExportEncoder(encoder)(x)
    assert out.shape == ref.shape == (2, 256, 64, 64)
    assert torch.allclose(out, ref, atol=1e-4), (out - ref).abs().max()


@pytest.mark.skipif(not available("onnx"), reason="ONNX Runtime not installed")
def test_decoder_takes_embeddings_channels_last_with_the_grids_positional_encoding(random_model):
    """Export v16: the graph's default positional encoding is the prompt encoder's (channels last), and a decode gives
    the same logits from an embedding laid out either way, for the whole grid and for a window."""
    from medseg.engine.graphs import channels_last

    model, engines, _ = random_model
    graphs = engines["onnx"].graphs
    with torch.no_grad():
        pe = model.prompt_encoder.dense_pe().permute(0, 2, 3, 1).numpy()
    assert np.array_equal(graphs.positional_encoding(), pe)
    emb = np.random.default_rng(3).standard_normal((1, 256, 64, 64)).astype(np.float32)
    last = channels_last(emb)
    assert np.array_equal(last, emb) and last.transpose(0, 2, 3, 1).flags.c_contiguous
    boxes = np.array([[40.0, 50, 120, 140]], np.float32)
    for window in (None, (8, 6, 40, 44)):
        a = graphs.decode(emb, boxes=boxes, window=window, crop=(12, 10, 30, 31))
        b = graphs.decode(last, boxes=boxes, window=window, crop=(12, 10, 30, 31))
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
