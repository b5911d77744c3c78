"""The shipped-decoder loader: a file must hold exactly the prompt encoder + mask decoder weights."""

from __future__ import annotations

import pytest
import torch

from medseg.build import build_architecture, load_decoder
from medseg.errors import MedsegError
from medseg.registry import LITEMEDSAM


@pytest.fixture(scope="module")
def model():
    return build_architecture(LITEMEDSAM)


def decoder_state(model, half=True):
    return {k: (v.half() if half else v).clone() for k, v in model.state_dict().items()
            if k.startswith(("prompt_encoder.", "mask_decoder."))}


def test_fp16_file_loads_into_fp32_weights(model, tmp_path):
    state = decoder_state(model)
    state["mask_decoder.iou_token.weight"] = torch.full_like(state["mask_decoder.iou_token.weight"], 0.5)
    torch.save(state, tmp_path / "d.pt")
    load_decoder(model, tmp_path / "d.pt")
    w = model.mask_decoder.iou_token.weight
    assert w.dtype == torch.float32 and torch.all(w == 0.5)


@pytest.mark.parametrize("change, words", [
    (lambda s: s.pop("mask_decoder.iou_token.weight"), "missing"),
    (lambda s: s.update({"image_encoder.x": torch.zeros(1)}), "unexpected"),
    (lambda s: s.update({"mask_decoder.iou_token.weight": torch.zeros(2, 2)}), "wrong shape"),
])
def test_misfit_files_are_one_line_errors(model, tmp_path, change, words):
    state = decoder_state(model)
    change(state)
    torch.save(state, tmp_path / "d.pt")
    with pytest.raises(MedsegError, match=words):
        load_decoder(model, tmp_path / "d.pt")


def test_a_file_holding_code_is_refused(model, tmp_path):
    torch.save({"mask_decoder.iou_token.weight": torch.nn.Linear(1, 1)}, tmp_path / "d.pt")
    with pytest.raises(MedsegError, match="safely|state_dict"):
        load_decoder(model, tmp_path / "d.pt")


def test_average_of_decoder_files_is_their_weighted_mean(model, tmp_path):
    from medseg.interactive.average import main

    a, b = decoder_state(model), decoder_state(model)
    key = "mask_decoder.iou_token.weight"
    a[key], b[key] = torch.zeros_like(a[key]), torch.ones_like(b[key])
    torch.save(a, tmp_path / "a.pt")
    torch.save(b, tmp_path / "b.pt")
    main([str(tmp_path / "soup.pt"), str(tmp_path / "a.pt"), str(tmp_path / "b.pt"), "--weights", "3,1"])
    soup = torch.load(tmp_path / "soup.pt", weights_only=True)
    assert soup[key].dtype == torch.float16 and torch.all(soup[key] == 0.25)
    load_decoder(model, tmp_path / "soup.pt")  # it still fits the model strictly
    b.pop(key)
    torch.save(b, tmp_path / "b.pt")
    with pytest.raises(MedsegError, match="same weights"):
        main([str(tmp_path / "x.pt"), str(tmp_path / "a.pt"), str(tmp_path / "b.pt")])
