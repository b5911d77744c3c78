"""The deployed first round of the interactive recipe (``recipe.deployed_first``): LiteMedSAM's decoder answers the
first prompt as medseg deploys the click model, and only the corrections after it are trained."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medseg.interactive.recipe import deployed_first, train_step


class FixedDecoder:
    """Stands in for LiteMedSAM: every prompt gets the same mask (rows 20-29, columns 30-49), or none."""

    def __init__(self, empty: bool = False) -> None:
        self.empty, self.boxes = empty, []

    def decode(self, emb, points=None, boxes=None, masks=None, multimask=False):
        self.boxes.append(boxes)
        logits = torch.full((len(boxes), 1, 64, 64), -5.0)
        if not self.empty:
            logits[:, :, 20:30, 30:50] = 5.0
        return logits, torch.zeros(len(boxes), 1)


def objects(n: int = 4) -> torch.Tensor:
    gt = torch.zeros(n, 64, 64, dtype=torch.bool)
    gt[:, 10:40, 20:50] = True
    return gt


def draws(kind: str, empty: bool = False) -> list:
    """deployed_first's answers over seeds until ``kind`` comes up 3 times."""
    out = []
    for seed in range(40):
        frozen = FixedDecoder(empty)
        got = deployed_first(frozen, torch.zeros(1, 256, 64, 64), objects(), np.random.default_rng(seed))
        if got[0] == kind:
            out.append((frozen, *got[1:]))
        if len(out) == 3:
            return out
    raise AssertionError(f"no {kind} in 40 seeds")


def test_a_box_is_answered_by_litemedsam_and_kept_for_the_corrections():
    for frozen, prompts, logits in draws("deployed box"):
        assert torch.equal(prompts.boxes, frozen.boxes[0]) and prompts.coords is None
        assert logits.shape == (4, 1, 64, 64)
        for x0, y0, x1, y1 in prompts.boxes.tolist():  # jittered around the object (x 20-49, y 10-39)
            assert 0 <= x0 <= x1 <= 63 and 0 <= y0 <= y1 <= 63 and x0 < 30 and x1 > 40


def test_a_click_gets_a_square_proposal_then_the_tight_box_of_its_mask():
    for frozen, prompts, _ in draws("deployed click"):
        squares = frozen.boxes[0]
        clicks = prompts.coords[:, 0]
        assert prompts.coords.shape == (4, 1, 2) and prompts.labels.tolist() == [[1]] * 4
        assert ((clicks >= squares[:, :2]) & (clicks <= squares[:, 2:])).all()  # the click in its square
        half = (squares[:, 2:] - squares[:, :2]) / 2
        assert (half >= 4 - 1e-4).all() and (half <= 1.5 * np.sqrt(900 / np.pi) + 1e-3).all()
        assert prompts.boxes.tolist() == [[30.0, 20.0, 49.0, 29.0]] * 4  # the mask's tight box


def test_an_empty_first_mask_keeps_the_square():
    for frozen, prompts, _ in draws("deployed click", empty=True):
        assert torch.equal(prompts.boxes, frozen.boxes[0])


@pytest.mark.realdata
def test_a_deployed_step_trains_the_corrections_only():
    from medseg.build import build_model

    torch.manual_seed(0)
    model, frozen = build_model("litemedsam"), build_model("litemedsam").eval()
    frozen.requires_grad_(False)
    before = {k: v.clone() for k, v in frozen.state_dict().items() if k.startswith("mask_decoder.")}
    trained = [p for n, p in model.named_parameters() if n.startswith("mask_decoder.")]
    start = [p.detach().clone() for p in trained]
    optimizer = torch.optim.AdamW(trained, lr=1e-3)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _s: 1.0)
    gt = torch.zeros(2, 256, 256, dtype=torch.bool)
    gt[:, 80:160, 90:170] = True
    log = train_step(model, optimizer, scheduler, torch.randn(2, 256, 64, 64), gt, torch.ones_like(gt), 3,
                     np.random.default_rng(1), frozen, deployed=1.0)
    assert log["kind"].startswith("deployed") and {"dice0", "dice1", "dice2"} <= set(log)
    assert np.isfinite(log["loss"])
    assert all(torch.equal(v, frozen.state_dict()[k]) for k, v in before.items())  # LiteMedSAM untouched
    assert any(not torch.equal(p, q) for p, q in zip(trained, start, strict=True))  # the corrections trained


@pytest.mark.realdata
def test_the_command_fine_tunes_a_decoder_file_with_deployed_steps(tmp_path):
    """``--init`` starts from the shipped decoder: two small deployed steps move it a little, far less than it
    differs from LiteMedSAM's own decoder."""
    from pathlib import Path

    import medseg
    from medseg.build import build_model, load_decoder
    from medseg.interactive.train import main

    shipped = Path(medseg.__file__).parent / "weights" / "litemedsam_interactive.pt"
    before = torch.get_num_threads()
    try:
        summary = main(["--out", str(tmp_path), "--steps", "2", "--batch-size", "2", "--rounds", "2", "--deployed",
                        "1", "--init", str(shipped), "--only", "nuclei/train_half", "--no-val", "--quiet"])
    finally:
        torch.set_num_threads(before)
    assert summary["settings"]["init"] == str(shipped) and summary["steps_done"] == 2
    tuned, start, lite = build_model("litemedsam"), build_model("litemedsam"), build_model("litemedsam")
    load_decoder(tuned, tmp_path / "decoder_fp32.pt")
    load_decoder(start, shipped)
    key = "mask_decoder.output_hypernetworks_mlps.0.layers.0.weight"
    moved = (tuned.state_dict()[key] - start.state_dict()[key]).abs().max()
    apart = (lite.state_dict()[key] - start.state_dict()[key]).abs().max()
    assert 0 < moved < apart / 5, (moved, apart)
