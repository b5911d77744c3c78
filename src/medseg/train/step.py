"""One training step as a module: prompts are simulated and refined over rounds, losses averaged.

Wrapping this module (not the bare network) in DistributedDataParallel gives one forward per backward,
however many prompting rounds a step has.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from medseg.modeling.sam import PromptableSAM
from medseg.train.losses import LossWeights, hard_dice, segmentation_loss
from medseg.train.prompts import Prompts, error_clicks, first_prompts


class PromptedStep(nn.Module):
    """Forward: inputs + target masks -> loss terms over ``rounds`` prompting rounds.

    Args:
        model: the network being trained.
        cached: inputs are (B, 256, 64, 64) image embeddings (decoder mode), else (B, 3, 256, 256) images.
        rounds: round 1 uses the first prompt; each later round adds a click from the previous round's
            error region (and, with ``mask_prompt``, the previous logits as a mask prompt).
        mask_prompt: feed each later round the previous round's low-res logits.
        weights: loss weights.
        jitter: box jitter, as a fraction of the box size.
        rng: the generator all prompt randomness comes from (saved in checkpoints).
    """

    def __init__(self, model: PromptableSAM, cached: bool, rounds: int, mask_prompt: bool,
                 weights: LossWeights, jitter: float, rng: np.random.Generator) -> None:
        super().__init__()
        self.model = model
        self.cached, self.rounds, self.mask_prompt = cached, rounds, mask_prompt
        self.weights, self.jitter, self.rng = weights, jitter, rng

    def forward(self, inputs: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None,
                kind: str) -> dict[str, torch.Tensor]:
        """inputs (B, ...) as above; target (B, 256, 256) bool; valid (B, 256, 256) bool or None; kind box|point."""
        emb = inputs if self.cached else self.model.image_encoder(inputs)
        prompts: Prompts = first_prompts(target, kind, self.rng, self.jitter)
        t = target[:, None].float()
        previous = None
        sums: dict[str, torch.Tensor] = {}
        for r in range(self.rounds):
            logits, iou = self.model.decode(emb, points=prompts.points, boxes=prompts.boxes,
                                            masks=previous if self.mask_prompt else None)
            terms = segmentation_loss(logits, iou, t, self.weights)
            for key, value in terms.items():
                sums[key] = sums.get(key, 0.0) + value / self.rounds
            if r == 0:
                sums["dice_first"] = hard_dice(logits.detach(), t).mean()
            if r + 1 < self.rounds:
                pred = logits.detach()[:, 0] > 0
                prompts = prompts.add_clicks(*error_clicks(pred, target, self.rng, valid))
                previous = logits.detach()
        sums["dice_last"] = hard_dice(logits.detach(), t).mean()
        return sums
