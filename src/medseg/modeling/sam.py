"""A promptable SAM-style model: image encoder + prompt encoder + mask decoder."""

from __future__ import annotations

import torch
from torch import nn

from medseg.modeling.mask_decoder import MaskDecoder
from medseg.modeling.prompt_encoder import PromptEncoder


class PromptableSAM(nn.Module):
    """Holds the three parts under the state_dict prefixes of the published checkpoints."""

    def __init__(self, image_encoder: nn.Module, prompt_encoder: PromptEncoder, mask_decoder: MaskDecoder) -> None:
        super().__init__()
        self.image_encoder = image_encoder
        self.prompt_encoder = prompt_encoder
        self.mask_decoder = mask_decoder

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, 256, 256) preprocessed images -> (B, 256, 64, 64) embeddings."""
        return self.image_encoder(images)

    def decode(self, embeddings: torch.Tensor, points: tuple[torch.Tensor, torch.Tensor] | None = None,
               boxes: torch.Tensor | None = None, masks: torch.Tensor | None = None,
               multimask: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode prompts against embeddings, all in model space.

        Args:
            embeddings: (1 or B, 256, 64, 64) image embeddings.
            points: coords (B, N, 2) as (X, Y) in 256-space and labels (B, N) (1 pos, 0 neg), or None.
            boxes: (B, 4) as (X0, Y0, X1, Y1) in 256-space, or None.
            masks: (B, 1, 256, 256) low-res logits from a previous prediction, or None.
            multimask: three candidate masks instead of one.

        Returns:
            low-res logits (B, K, 256, 256) and predicted IoU (B, K).
        """
        sparse, dense = self.prompt_encoder(points, boxes, masks)
        return self.mask_decoder(embeddings, self.prompt_encoder.dense_pe(), sparse, dense, multimask)
