"""SAM mask decoder: two-way transformer, upscaling and hypernetwork heads, IoU head."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from medseg.modeling.common import MLP, LayerNorm2d
from medseg.modeling.transformer import TwoWayTransformer


class MaskDecoder(nn.Module):
    """Predicts low-res mask logits and their IoU from image and prompt embeddings.

    Token 0 is the single-mask output; tokens 1-3 are the multi-mask outputs.
    """

    def __init__(self, dim: int = 256, num_multimask: int = 3, iou_hidden: int = 256) -> None:
        super().__init__()
        self.num_mask_tokens = num_multimask + 1
        self.transformer = TwoWayTransformer(depth=2, dim=dim, num_heads=8, mlp_dim=2048)
        self.iou_token = nn.Embedding(1, dim)
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, dim)
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(dim, dim // 4, 2, stride=2), LayerNorm2d(dim // 4), nn.GELU(),
            nn.ConvTranspose2d(dim // 4, dim // 8, 2, stride=2), nn.GELU(),
        )
        self.output_hypernetworks_mlps = nn.ModuleList(
            MLP(dim, dim, dim // 8, 3) for _ in range(self.num_mask_tokens))
        self.iou_prediction_head = MLP(dim, iou_hidden, self.num_mask_tokens, 3)

    def forward(self, image_embeddings: torch.Tensor, image_pe: torch.Tensor, sparse: torch.Tensor,
                dense: torch.Tensor, multimask: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode masks: ``forward_all`` then keep the single (K = 1) or the multi-mask outputs (K = 3)."""
        logits, iou = self.forward_all(image_embeddings, image_pe, sparse, dense)
        keep = slice(1, None) if multimask else slice(0, 1)
        return logits[:, keep], iou[:, keep]

    def forward_all(self, image_embeddings: torch.Tensor, image_pe: torch.Tensor, sparse: torch.Tensor,
                    dense: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode all mask tokens (what the exported engines run).

        Args:
            image_embeddings: (1 or B, 256, 64, 64); repeated to the prompt batch B if needed.
            image_pe: (1, 256, 64, 64) dense positional encoding.
            sparse: (B, T, 256) prompt tokens.
            dense: (B or 1, 256, 64, 64) dense prompt embeddings.

        Returns:
            logits (B, 4, 256, 256) and predicted IoU (B, 4): token 0 single-mask, tokens 1-3 multi-mask.
        """
        batch = sparse.shape[0]
        out_tokens = torch.cat([self.iou_token.weight, self.mask_tokens.weight], dim=0)
        tokens = torch.cat([out_tokens.unsqueeze(0).expand(batch, -1, -1), sparse], dim=1)
        src = image_embeddings.expand(batch, -1, -1, -1) if image_embeddings.shape[0] == 1 else image_embeddings
        src = src + dense
        pos = image_pe.expand(batch, -1, -1, -1)
        b, c, h, w = src.shape
        hs, image_tokens = self.transformer(src, pos, tokens)
        upscaled = self.output_upscaling(image_tokens.transpose(1, 2).reshape(b, c, h, w))
        mask_tokens = hs[:, 1:1 + self.num_mask_tokens]
        hyper = torch.stack([mlp(mask_tokens[:, i]) for i, mlp in enumerate(self.output_hypernetworks_mlps)], 1)
        b, c, h, w = upscaled.shape
        logits = (hyper @ upscaled.view(b, c, h * w)).view(b, -1, h, w)
        return logits, self.iou_prediction_head(hs[:, 0])


def upscale_logits(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of (B, K, h, w) logits to size (H, W)."""
    return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
