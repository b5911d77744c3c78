"""The decoder's cross-attentions rewritten for few prompt tokens: same result, 40% fewer FLOPs.

In SAM's two-way transformer, the cross-attentions pair T prompt tokens (about 7) with N = 4096 image
tokens, and project all N image tokens to the attention width (128) and back. With T * heads < 128,
the projections can be moved to the token side by associativity:

- tokens -> image: logits = (Q_h W_k_h) X^T (the key bias adds a per-query constant, which softmax
  ignores) and P_h (X W_v_h^T + b_v) = (P_h X) W_v_h^T + b_v (rows of P sum to one).
- image -> tokens: logits = X (W_q_h^T K_h^T) + b_q_h K_h^T, and the output projection is applied to
  the T values of each head before the attention weights: sum_h P_h (V_h W_o_h^T) + b_o.

Per layer this replaces two (4096 x 256 x 128) products by two (4096 x 256 x 8T) ones: the decoder
drops from 3.55 to about 2.1 GFLOP per prompt. The modules take their weights from the model's own
``Attention`` modules; only the exported graphs use them (eager stays the reference).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from medseg.modeling.mask_decoder import MaskDecoder
from medseg.modeling.transformer import Attention, TwoWayTransformer


def _head_weights(linear: nn.Linear, heads: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(inner, C) weight and (inner,) bias of a projection, as (heads, d, C) and (heads, d)."""
    w, b = linear.weight, linear.bias
    return w.reshape(heads, -1, w.shape[1]), b.reshape(heads, -1)


class TokenToImageAttention(nn.Module):
    """Attention of T query tokens over N image tokens; forward(q (B,T,C), k (B,N,C), v (B,N,C))."""

    def __init__(self, attn: Attention) -> None:
        super().__init__()
        self.heads = attn.num_heads
        self.q_proj, self.out_proj = attn.q_proj, attn.out_proj
        self.wk, _ = _head_weights(attn.k_proj, self.heads)  # the key bias cancels in softmax
        self.wv, self.bv = _head_weights(attn.v_proj, self.heads)
        self.scale = 1.0 / math.sqrt(self.wk.shape[1])

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        b, t, _ = q.shape
        qh = self.q_proj(q).reshape(b, t, self.heads, -1).transpose(1, 2)  # (B, h, T, d)
        qk = torch.matmul(qh, self.wk) * self.scale  # (B, h, T, C)
        logits = torch.matmul(qk.reshape(b, -1, qk.shape[-1]), k.transpose(1, 2))  # (B, h*T, N)
        p = torch.softmax(logits, dim=-1)
        pv = torch.matmul(p, v).reshape(b, self.heads, t, -1)  # (B, h, T, C)
        out = torch.matmul(pv, self.wv.transpose(1, 2)) + self.bv[:, None, :]  # (B, h, T, d)
        return self.out_proj(out.transpose(1, 2).reshape(b, t, -1))


class ImageToTokenAttention(nn.Module):
    """Attention of N image queries over T tokens; forward(q (B,N,C), k (B,T,C), v (B,T,C))."""

    def __init__(self, attn: Attention) -> None:
        super().__init__()
        self.heads = attn.num_heads
        self.k_proj, self.v_proj = attn.k_proj, attn.v_proj
        self.wq, self.bq = _head_weights(attn.q_proj, self.heads)
        wo = attn.out_proj.weight  # (C, inner)
        self.wo = wo.reshape(wo.shape[0], self.heads, -1).permute(1, 2, 0)  # (h, d, C)
        self.bo = attn.out_proj.bias
        self.scale = 1.0 / math.sqrt(self.wq.shape[1])

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        b, t, _ = k.shape
        n = q.shape[1]
        kh = self.k_proj(k).reshape(b, t, self.heads, -1).transpose(1, 2)  # (B, h, T, d)
        vh = self.v_proj(v).reshape(b, t, self.heads, -1).transpose(1, 2)  # (B, h, T, d)
        a = torch.matmul(self.wq.transpose(1, 2), kh.transpose(2, 3)) * self.scale  # (B, h, C, T)
        a = a.permute(0, 2, 1, 3).reshape(b, a.shape[2], -1)  # (B, C, h*T)
        bias = (torch.matmul(kh, self.bq[:, :, None]) * self.scale).reshape(b, 1, -1)  # (B, 1, h*T)
        logits = (torch.matmul(q, a) + bias).reshape(b, n, self.heads, t)
        p = torch.softmax(logits, dim=-1).reshape(b, n, -1)  # (B, N, h*T)
        m = torch.matmul(vh, self.wo).reshape(b, -1, self.wo.shape[-1])  # (B, h*T, C)
        return torch.matmul(p, m) + self.bo


def rewrite_cross_attention(transformer: TwoWayTransformer) -> TwoWayTransformer:
    """Swap the cross-attentions of ``transformer`` (in place) for their few-token forms."""
    for layer in transformer.layers:
        layer.cross_attn_token_to_image = TokenToImageAttention(layer.cross_attn_token_to_image)
        layer.cross_attn_image_to_token = ImageToTokenAttention(layer.cross_attn_image_to_token)
    transformer.final_attn_token_to_image = TokenToImageAttention(transformer.final_attn_token_to_image)
    return transformer


class MatMulUpscaling(nn.Module):
    """The decoder's upscaling and hypernetwork product as two matrix products, channels last.

    A ConvTranspose2d with kernel 2 and stride 2 maps each input pixel (i, j) to the 2x2 output block
    (2i + a, 2j + b) without overlap, so it is one product (N, Cin) @ (Cin, 4 Cout); the rows are kept
    in the blocked order (i, j, a, b) so that LayerNorm2d becomes a LayerNorm over the last axis, the
    second transposed convolution another product, and the pixels are put in image order only once,
    on the (B, 4, 256, 256) logits. Same result as ``MaskDecoder.output_upscaling`` up to float
    rounding, with no transposed convolution and no image-sized transpose.

    Args:
        upscaling: ``MaskDecoder.output_upscaling`` (ConvT, LayerNorm2d, GELU, ConvT, GELU).
    """

    def __init__(self, upscaling: nn.Sequential) -> None:
        super().__init__()
        first, norm, _, second, _ = upscaling
        self.w1, self.b1 = self._as_matrix(first)
        self.w2, self.b2 = self._as_matrix(second)
        self.norm_weight, self.norm_bias, self.eps = norm.weight, norm.bias, norm.eps

    @staticmethod
    def _as_matrix(conv: nn.ConvTranspose2d) -> tuple[torch.Tensor, torch.Tensor]:
        """(Cin, Cout, 2, 2) weight -> (Cin, 4 Cout) with columns ordered (a, b, Cout); bias likewise."""
        w = conv.weight.detach()
        return w.permute(0, 2, 3, 1).reshape(w.shape[0], -1), conv.bias.detach().repeat(4)

    def forward(self, image_tokens: torch.Tensor, hyper: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """image_tokens (B, h*w, C) in row-major pixel order, hyper (B, K, C/8) -> logits (B, K, 4h, 4w)."""
        b, k = hyper.shape[:2]
        mid = self.norm_weight.shape[0]
        y = (image_tokens @ self.w1 + self.b1).reshape(b, -1, mid)  # rows (i, j, a, b)
        y = F.gelu(F.layer_norm(y, (mid,), self.norm_weight, self.norm_bias, self.eps))
        y = F.gelu(y @ self.w2 + self.b2).reshape(b, -1, hyper.shape[-1])  # rows (i, j, a, b, c, d)
        logits = hyper @ y.transpose(1, 2)  # (B, K, h*w*16)
        logits = logits.reshape(b, k, h, w, 2, 2, 2, 2).permute(0, 1, 2, 4, 6, 3, 5, 7)
        return logits.reshape(b, k, 4 * h, 4 * w)


def fast_forward_all(decoder: MaskDecoder, upscaling: MatMulUpscaling, image: torch.Tensor, image_pe: torch.Tensor,
                     sparse: torch.Tensor, mask_tokens: torch.Tensor | None = None,
                     crop: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``MaskDecoder.forward_all`` channels last, with ``upscaling`` in place of its output upscaling.

    ``image``: (1, h, w, C) image embedding with the dense prompt embedding added (the prompt batch is reached by
    broadcasting in the first image update, without copies); ``image_pe`` (1, h, w, C); ``sparse`` (B, T, C). Only the
    mask tokens listed in ``mask_tokens`` (indices into the four) are upscaled and returned: the unused masks cost no
    upscaling product and no image-sized copies. ``crop`` (4,) (row0, col0, row1, col1), ends exclusive, in cells of
    ``image``: only these cells are upscaled (the upscaling is local to each cell, so their logits are those of the
    whole grid), and the logits are (B, K, 4 rows, 4 cols) of the crop."""
    batch = sparse.shape[0]
    out_tokens = torch.cat([decoder.iou_token.weight, decoder.mask_tokens.weight], dim=0)
    tokens = torch.cat([out_tokens.unsqueeze(0).expand(batch, -1, -1), sparse], dim=1)
    h, w, channels = image.shape[1], image.shape[2], image.shape[3]
    hs, image_tokens = decoder.transformer.forward_tokens(image.reshape(1, h * w, channels),
                                                          image_pe.reshape(1, h * w, channels), tokens)
    tokens_out = hs[:, 1:1 + decoder.num_mask_tokens]
    hyper = torch.stack([mlp(tokens_out[:, i]) for i, mlp in enumerate(decoder.output_hypernetworks_mlps)], 1)
    iou = decoder.iou_prediction_head(hs[:, 0])
    if mask_tokens is not None:
        hyper, iou = hyper.index_select(1, mask_tokens), iou.index_select(1, mask_tokens)
    if crop is not None:
        grid = image_tokens.reshape(image_tokens.shape[0], h, w, image_tokens.shape[-1])
        grid = grid[:, crop[0]:crop[2], crop[1]:crop[3]]
        h, w = grid.shape[1], grid.shape[2]
        image_tokens = grid.reshape(grid.shape[0], -1, grid.shape[-1])
    return upscaling(image_tokens, hyper, h, w), iou
