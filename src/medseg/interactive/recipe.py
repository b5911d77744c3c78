"""SAM-Med2D's interactive training of the prompt encoder and mask decoder, on cached embeddings.

One step takes a batch of objects and runs ``rounds`` prompting rounds, with an optimiser update after
each (as SAM-Med2D's train.py does):

1. the first prompt: a jittered box (BOX_SHARE of the steps) or 1-5 positive clicks (the others; a lone
   click sits at the object's deepest pixel half the time, where a user and the CVPR25 protocol click);
2. every later round adds one click from the error of the previous round, positive in a missed part,
   negative in a false positive (half the time at the deepest pixel of the largest error component, as
   the CVPR25 protocol clicks, else uniform over the errors, as SAM-Med2D samples), and feeds the
   previous round's low-res logits back as the mask prompt.

With ``deployed`` > 0 that share of the steps starts as medseg deploys the model
(``medseg.predict.segment``): LiteMedSAM's own decoder (frozen, untrained) answers the first prompt, a
jittered box, or a square box around the first click as a lone click's proposals are (``deployed_first``);
a click's later rounds keep the tight box of that first mask; the trained rounds are the corrections after it.

Loss per round: 20 x focal + 1 x Dice + MSE between the predicted and the actual IoU (SAM-Med2D's
FocalDiceloss_IoULoss). The single-mask output is trained (medseg decodes clicks and boxes with it).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from medseg.train.losses import dice_loss, focal_loss, hard_dice, hard_iou
from medseg.train.prompts import Prompts, central_pixel, error_clicks, jittered_box, random_pixel, tight_box

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


@torch.no_grad()
def deployed_first(frozen, emb: torch.Tensor, masks: torch.Tensor, rng: np.random.Generator
                   ) -> tuple[str, Prompts, torch.Tensor]:
    """(kind, prompts of the later rounds, first low-res logits) with LiteMedSAM's decoder (``frozen``) answering
    the first prompt, as medseg deploys the click model: a jittered box (kept for the corrections), or a square
    box around a click at the deepest pixel (half the time, else uniform) with a half-width of 0.5-1.5 x the
    object's radius (a lone click's chosen proposal); the click is kept and the box becomes the first mask's tight
    box (the square box when that mask is empty)."""
    if rng.random() < BOX_SHARE:
        boxes = torch.stack([jittered_box(m, rng, 0.1) for m in masks])
        logits, _ = frozen.decode(emb, boxes=boxes)
        return "deployed box", Prompts(boxes=boxes), logits
    clicks, squares = [], []
    for m in masks:
        click = central_pixel(m) if rng.random() < 0.5 else random_pixel(m, rng)
        half = max(4.0, float(np.sqrt(m.sum().item() / np.pi)) * rng.uniform(0.5, 1.5))
        hi = m.shape[-1] - 1
        squares.append(torch.tensor([max(0.0, click[0] - half), max(0.0, click[1] - half),
                                     min(hi, click[0] + half), min(hi, click[1] + half)]))
        clicks.append(click)
    squares = torch.stack(squares)
    logits, _ = frozen.decode(emb, boxes=squares)
    seeds = logits[:, 0] > 0
    boxes = torch.stack([tight_box(s) if s.any() else q for s, q in zip(seeds, squares, strict=True)])
    return "deployed click", Prompts(boxes=boxes).add_clicks(torch.stack(clicks), torch.ones(len(masks))), logits


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
               rounds: int, rng: np.random.Generator, frozen=None, deployed: float = 0.0) -> dict[str, float]:
    """Rounds of prompting on one batch, an optimiser update after each; returns the logged values.

    With ``frozen`` (LiteMedSAM's model) a ``deployed`` share of the steps has its first round answered by it
    (``deployed_first``, not trained, logged as dice0); the other rounds are trained as usual."""
    target = gt[:, None].float()
    log: dict[str, float] = {}
    total, start, previous = 0.0, 0, None
    if frozen is not None and rng.random() < deployed:
        kind, prompts, previous = deployed_first(frozen, emb, gt, rng)
        log["dice0"] = float(hard_dice(previous, target).mean())
        start = 1
        prompts = prompts.add_clicks(*correction_clicks(previous[:, 0] > 0, gt, valid, rng))
    else:
        kind, prompts = first_prompts(gt, rng)
    log["kind"] = kind
    for r in range(start, rounds):
        logits, iou = model.decode(emb, points=prompts.points, boxes=prompts.boxes, masks=previous)
        terms = loss_terms(logits, iou, target)
        optimizer.zero_grad(set_to_none=True)
        terms["total"].backward()
        optimizer.step()
        scheduler.step()
        total += float(terms["total"].detach()) / (rounds - start)
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
