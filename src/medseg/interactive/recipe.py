"""SAM-Med2D's interactive training of the prompt encoder and mask decoder, on cached embeddings.

One step takes a batch of objects and runs ``rounds`` prompting rounds, with an optimiser update after
each (as SAM-Med2D's train.py does):

1. the first prompt: a jittered box (BOX_SHARE of the steps) or 1-5 positive clicks (the others; a lone
   click sits at the object's deepest pixel half the time, where a user and the CVPR25 protocol click);
2. every later round adds one click from the error of the previous round, positive in a missed part,
   negative in a false positive (half the time at the deepest pixel of the largest error component, as
   the CVPR25 protocol clicks, else uniform over the errors, as SAM-Med2D samples), and feeds the
   previous round's low-res logits back as the mask prompt.

Loss per round: 20 x focal + 1 x Dice + MSE between the predicted and the actual IoU (SAM-Med2D's
FocalDiceloss_IoULoss). The single-mask output is trained (medseg decodes clicks and boxes with it).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from medseg.train.losses import dice_loss, focal_loss, hard_dice, hard_iou
from medseg.train.prompts import Prompts, central_pixel, error_clicks, jittered_box, random_pixel

FOCAL, DICE, IOU = 20.0, 1.0, 1.0
POINT_COUNTS = (1, 1, 1, 2, 3, 5)  # first-round clicks, drawn uniformly
BOX_SHARE = 0.4  # clicks are what this decoder is for; boxes keep LiteMedSAM's skill with less practice


def loss_terms(logits: torch.Tensor, iou_pred: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """SAM-Med2D's loss on (B, 1, 256, 256) logits, (B, 1) predicted IoU and 0/1 targets."""
    focal, dice = focal_loss(logits, target), dice_loss(logits, target)
    iou = F.mse_loss(iou_pred[:, 0], hard_iou(logits.detach(), target))
    return {"total": FOCAL * focal + DICE * dice + IOU * iou, "focal": focal, "dice": dice, "iou": iou}


def first_prompts(masks: torch.Tensor, rng: np.random.Generator) -> tuple[str, Prompts]:
    """("box" | "points", prompts) of a (B, H, W) bool batch."""
    if rng.random() < BOX_SHARE:
        return "box", Prompts(boxes=torch.stack([jittered_box(m, rng, 0.1) for m in masks]))
    n = int(rng.choice(POINT_COUNTS))
    coords = []
    for m in masks:
        pts = [central_pixel(m) if n == 1 and rng.random() < 0.5 else random_pixel(m, rng) for _ in range(n)]
        coords.append(torch.stack(pts))
    coords = torch.stack(coords)
    return "points", Prompts(coords=coords, labels=torch.ones(coords.shape[:2], dtype=torch.long))


def deepest_error_click(pred: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, int]:
    """(X, Y) and label of the CVPR25 click: the deepest pixel of the largest connected error component."""
    from scipy import ndimage

    error = ((pred != gt) & valid).numpy()
    if not error.any():
        return random_pixel(gt, np.random.default_rng(0)), 1
    comps, _ = ndimage.label(error)
    largest = comps == int(np.argmax(np.bincount(comps.ravel())[1:]) + 1)
    depth = ndimage.distance_transform_edt(np.pad(largest, 1))[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return torch.tensor([float(x), float(y)]), int(gt[y, x])


def correction_clicks(pred: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor, rng: np.random.Generator
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """One click per object from its error region: CVPR25's deepest-error click or a uniform error pixel."""
    if rng.random() < 0.5:
        return error_clicks(pred, gt, rng, valid)
    picks = [deepest_error_click(p, g, v) for p, g, v in zip(pred, gt, valid, strict=True)]
    return torch.stack([c for c, _ in picks]), torch.tensor([lab for _, lab in picks])


def train_step(model, optimizer, scheduler, emb: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor,
               rounds: int, rng: np.random.Generator) -> dict[str, float]:
    """Rounds of prompting on one batch, an optimiser update after each; returns the logged values."""
    kind, prompts = first_prompts(gt, rng)
    target = gt[:, None].float()
    previous = None
    log: dict[str, float] = {"kind": kind}
    total = 0.0
    for r in range(rounds):
        logits, iou = model.decode(emb, points=prompts.points, boxes=prompts.boxes, masks=previous)
        terms = loss_terms(logits, iou, target)
        optimizer.zero_grad(set_to_none=True)
        terms["total"].backward()
        optimizer.step()
        scheduler.step()
        total += float(terms["total"].detach()) / rounds
        log[f"dice{r}"] = float(hard_dice(logits.detach(), target).mean())
        if r + 1 < rounds:
            pred = logits.detach()[:, 0] > 0
            prompts = prompts.add_clicks(*correction_clicks(pred, gt, valid, rng))
            previous = logits.detach()
    log["loss"] = total
    return log


@torch.no_grad()
def click_dice(model, emb: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor, clicks: int) -> np.ndarray:
    """(B, clicks) Dice after 1..clicks clicks: the first at the deepest pixel, then CVPR25 corrections with
    the previous logits as mask prompt (deterministic)."""
    coords = torch.stack([central_pixel(m) for m in gt])
    prompts = Prompts().add_clicks(coords, torch.ones(len(gt)))
    previous, out = None, []
    target = gt[:, None].float()
    for c in range(clicks):
        logits, _ = model.decode(emb, points=prompts.points, masks=previous)
        out.append(hard_dice(logits, target).numpy())
        if c + 1 < clicks:
            pred = logits[:, 0] > 0
            picks = [deepest_error_click(p, g, v) for p, g, v in zip(pred, gt, valid, strict=True)]
            prompts = prompts.add_clicks(torch.stack([p for p, _ in picks]), torch.tensor([lab for _, lab in picks]))
            previous = logits
    return np.stack(out, 1)
