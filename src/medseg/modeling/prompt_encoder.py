"""SAM prompt encoder: points, boxes and low-res mask prompts -> sparse and dense embeddings.

All coordinates here are in model input space: (X, Y) pixels of the padded 256x256 image.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from medseg.modeling.common import LayerNorm2d

NOT_A_POINT = -1


def _batch_size(points: tuple[torch.Tensor, torch.Tensor] | None, boxes: torch.Tensor | None,
                masks: torch.Tensor | None) -> int:
    for t in (points[0] if points is not None else None, boxes, masks):
        if t is not None:
            return t.shape[0]
    return 1


class RandomFourierPE(nn.Module):
    """Positional encoding of (X, Y) in [0, 1] with a fixed random Gaussian frequency matrix."""

    def __init__(self, num_feats: int) -> None:
        super().__init__()
        self.register_buffer("positional_encoding_gaussian_matrix", torch.randn(2, num_feats))

    def encode(self, xy: torch.Tensor) -> torch.Tensor:
        """(..., 2) normalised coordinates -> (..., 2*num_feats) features."""
        proj = (2 * xy - 1) @ self.positional_encoding_gaussian_matrix * (2 * math.pi)
        return torch.cat([proj.sin(), proj.cos()], dim=-1)

    def grid(self, h: int, w: int) -> torch.Tensor:
        """Encoding of every cell centre of an (h, w) grid -> (C, h, w)."""
        dev = self.positional_encoding_gaussian_matrix.device
        ys = (torch.arange(h, device=dev, dtype=torch.float32) + 0.5) / h
        xs = (torch.arange(w, device=dev, dtype=torch.float32) + 0.5) / w
        yy, xx = torch.meshgrid(ys, xs, indexing="ij")
        return self.encode(torch.stack([xx, yy], dim=-1)).permute(2, 0, 1)


class PromptEncoder(nn.Module):
    """Encodes prompts for the mask decoder.

    Args:
        embed_dim: Token width (256).
        embedding_size: (H, W) of the image embedding (64, 64).
        input_size: (H, W) of the padded model input (256, 256).
        mask_in_chans: Hidden channels of the mask-prompt downscaler (16).
    """

    def __init__(self, embed_dim: int = 256, embedding_size: tuple[int, int] = (64, 64),
                 input_size: tuple[int, int] = (256, 256), mask_in_chans: int = 16) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.embedding_size = embedding_size
        self.input_size = input_size
        self.pe_layer = RandomFourierPE(embed_dim // 2)
        # 0: negative point, 1: positive point, 2: box top-left, 3: box bottom-right
        self.point_embeddings = nn.ModuleList(nn.Embedding(1, embed_dim) for _ in range(4))
        self.not_a_point_embed = nn.Embedding(1, embed_dim)
        quarter = mask_in_chans // 4
        self.mask_downscaling = nn.Sequential(
            nn.Conv2d(1, quarter, 2, stride=2), LayerNorm2d(quarter), nn.GELU(),
            nn.Conv2d(quarter, mask_in_chans, 2, stride=2), LayerNorm2d(mask_in_chans), nn.GELU(),
            nn.Conv2d(mask_in_chans, embed_dim, 1),
        )
        self.no_mask_embed = nn.Embedding(1, embed_dim)

    def dense_pe(self) -> torch.Tensor:
        """Positional encoding of the embedding grid, (1, C, 64, 64)."""
        return self.pe_layer.grid(*self.embedding_size).unsqueeze(0)

    def _encode_xy(self, xy: torch.Tensor) -> torch.Tensor:
        h, w = self.input_size
        norm = (xy + 0.5) / torch.tensor([w, h], dtype=xy.dtype, device=xy.device)
        return self.pe_layer.encode(norm)

    def _embed_points(self, coords: torch.Tensor, labels: torch.Tensor, pad: bool) -> torch.Tensor:
        """coords (B, N, 2) as (X, Y); labels (B, N): 1 positive, 0 negative, -1 padding."""
        if pad:
            coords = F.pad(coords, (0, 0, 0, 1))
            labels = F.pad(labels, (0, 1), value=NOT_A_POINT)
        emb = self._encode_xy(coords.float())
        lab = labels[..., None]
        emb = torch.where(lab == NOT_A_POINT, self.not_a_point_embed.weight, emb)
        emb = emb + (lab == 0) * self.point_embeddings[0].weight + (lab == 1) * self.point_embeddings[1].weight
        return emb

    def _embed_boxes(self, boxes: torch.Tensor) -> torch.Tensor:
        """boxes (B, 4) as (X0, Y0, X1, Y1) -> (B, 2, C) corner tokens."""
        emb = self._encode_xy(boxes.reshape(-1, 2, 2).float())
        corners = torch.cat([self.point_embeddings[2].weight, self.point_embeddings[3].weight], dim=0)
        return emb + corners

    def forward(self, points: tuple[torch.Tensor, torch.Tensor] | None, boxes: torch.Tensor | None,
                masks: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Embed prompts.

        Args:
            points: (coords (B, N, 2) as (X, Y), labels (B, N)) or None.
            boxes: (B, 4) as (X0, Y0, X1, Y1) or None.
            masks: (B, 1, 256, 256) low-res mask logits or None.

        Returns:
            sparse (B, T, C) tokens and dense (B, C, 64, 64) embeddings.
        """
        batch = _batch_size(points, boxes, masks)
        tokens = [torch.empty(batch, 0, self.embed_dim, device=self.no_mask_embed.weight.device)]
        if points is not None:
            tokens.append(self._embed_points(points[0], points[1], pad=boxes is None))
        if boxes is not None:
            tokens.append(self._embed_boxes(boxes))
        sparse = torch.cat(tokens, dim=1)
        if masks is not None:
            dense = self.mask_downscaling(masks)
        else:
            dense = self.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(batch, -1, *self.embedding_size)
        return sparse, dense
