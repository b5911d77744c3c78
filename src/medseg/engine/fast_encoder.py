"""The TinyViT encoder in the form it is exported in: same result, fewer data movements in the graph.

Two parts of ``medseg.modeling.tiny_vit`` are written differently for the exported graph only (eager
stays the reference; outputs agree to about 3e-6):

- Windowed attention: the padded qkv tokens go to (3, windows, heads, tokens, d) in one permutation,
  instead of a window partition followed by a head split (two transposes and a split per block); the
  query rows of the qkv projection are multiplied by d**-0.5 beforehand, and the relative-position
  bias of each block is gathered once into a constant, as is the qkv row of a padding token. The
  attention output goes back to the token grid in one permutation too.
- Token-grid sizes as constants: the encoder's input side is fixed (256), so the window and padding
  arithmetic is done at export instead of by shape operators in the graph (about 500 nodes fewer).
- The neck on channels-last tokens: its 1x1 convolution as a matrix product and its two channel
  LayerNorms as LayerNormalization over the last axis, instead of mean / variance reductions across the
  channel axis of (B, C, H, W) (ONNX Runtime: four ReduceMean nodes, about 9 ms of a one-thread encode).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from medseg.modeling.tiny_vit import TinyViT, TinyViTBlock, WindowAttention, padded_qkv


def scaled_qkv(attn: WindowAttention) -> nn.Linear:
    """A copy of ``attn.qkv`` whose query outputs are multiplied by head_dim**-0.5 (layout (heads, 3, d))."""
    heads, d = attn.num_heads, attn.head_dim
    scale = torch.ones(heads, 3, d)
    scale[:, 0] = d ** -0.5
    scale = scale.reshape(-1)
    out = nn.Linear(attn.qkv.in_features, attn.qkv.out_features)
    with torch.no_grad():
        out.weight.copy_(attn.qkv.weight * scale[:, None])
        out.bias.copy_(attn.qkv.bias * scale)
    return out


class ExportAttention(nn.Module):
    """``TinyViTBlock._windowed_attention`` with the same weights: (B, H, W, C) tokens -> (B, H, W, C)."""

    def __init__(self, block: TinyViTBlock) -> None:
        super().__init__()
        attn = block.attn
        self.window, self.heads, self.head_dim = block.window, attn.num_heads, attn.head_dim
        self.norm, self.proj = attn.norm, attn.proj
        self.qkv = scaled_qkv(attn)
        self.register_buffer("bias", attn.attention_biases[:, attn.bias_index].detach().clone())  # (heads, N, N)
        with torch.no_grad():
            zero = torch.zeros(1, 1, 1, attn.qkv.in_features)
            self.register_buffer("fill", self.qkv(self.norm(zero)))  # the qkv row of a padding token

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        h, w, c = (int(n) for n in x.shape[1:])  # constants in the exported graph (fixed input side)
        ws, heads, d = self.window, self.heads, self.head_dim
        qkv = padded_qkv(lambda t: self.qkv(self.norm(t)), x, ws, self.fill)
        nh, nw = int(qkv.shape[1]) // ws, int(qkv.shape[2]) // ws
        qkv = qkv.view(b, nh, ws, nw, ws, heads, 3, d).permute(6, 0, 1, 3, 5, 2, 4, 7)
        q, k, v = qkv.reshape(3, b * nh * nw, heads, ws * ws, d).unbind(0)
        weights = torch.softmax(torch.matmul(q, k.transpose(-1, -2)) + self.bias, dim=-1)
        out = torch.matmul(weights, v).view(b, nh, nw, heads, ws, ws, d)
        out = out.permute(0, 1, 4, 2, 5, 3, 6).reshape(b, nh * ws, nw * ws, c)
        return self.proj(out[:, :h, :w])


class ExportEncoder(nn.Module):
    """(B, 3, 256, 256) -> (B, 256, 64, 64), as ``encoder`` (a TinyViT with batch norms folded) computes it."""

    def __init__(self, encoder: TinyViT) -> None:
        super().__init__()
        self.encoder = encoder
        self.attentions = nn.ModuleList(ExportAttention(block) for layer in encoder.layers[1:]
                                        for block in layer.blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        enc = self.encoder
        x = enc.layers[0](enc.patch_embed(x))
        attentions = iter(self.attentions)
        for layer in enc.layers[1:]:
            x = x.permute(0, 2, 3, 1)  # channels-last tokens
            for block in layer.blocks:
                x = x + next(attentions)(x)
                x = block.local_conv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
                x = x + block.mlp(x)
            if layer.downsample is None:  # the last stage: the neck takes its tokens as they are
                return self.neck(x)
            x = layer.downsample(x.permute(0, 3, 1, 2))
        raise ValueError("the encoder's last stage has a downsample; ExportEncoder expects none")

    def neck(self, x: torch.Tensor) -> torch.Tensor:
        """``TinyViT.neck`` on (B, H, W, C) tokens -> (B, 256, H, W)."""
        conv1, norm1, conv3, norm3 = self.encoder.neck
        y = torch.matmul(x, conv1.weight[:, :, 0, 0].t())
        y = F.layer_norm(y, (norm1.weight.numel(),), norm1.weight, norm1.bias, norm1.eps)
        y = conv3(y.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        y = F.layer_norm(y, (norm3.weight.numel(),), norm3.weight, norm3.bias, norm3.eps)
        return y.permute(0, 3, 1, 2)


class ExportEncoderRest(ExportEncoder):
    """``ExportEncoder`` after the front (``medseg.engine.native_front``): (B, H, W, C) tokens of the first
    patch merging, channels-last -> (B, 256, 64, 64)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        enc = self.encoder
        attentions = iter(self.attentions)
        for layer in enc.layers[1:]:
            for block in layer.blocks:
                x = x + next(attentions)(x)
                x = block.local_conv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
                x = x + block.mlp(x)
            if layer.downsample is None:
                return self.neck(x)
            x = layer.downsample(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        raise ValueError("the encoder's last stage has a downsample; ExportEncoderRest expects none")


def front_arrays(encoder: TinyViT) -> dict[str, np.ndarray]:
    """The front's weights in the C kernel's order (``medseg/engine/front.c``), from a TinyViT whose batch
    norms are folded: ``params`` (float32) and ``dims`` (stem width, channels, hidden channels, MBConv
    blocks, output channels, input side)."""

    def dense(conv: nn.Conv2d) -> list[torch.Tensor]:  # 1x1: (cin, cout) row-major, then the bias
        return [conv.weight[:, :, 0, 0].t(), conv.bias]

    def depthwise(conv: nn.Conv2d) -> list[torch.Tensor]:  # 3x3 per channel: (9, C), tap dy * 3 + dx
        return [conv.weight[:, 0].reshape(conv.out_channels, 9).t(), conv.bias]

    stem1, _, stem2 = encoder.patch_embed.seq
    stage = encoder.layers[0]
    parts = dense(stem1) + dense(stem2)
    for block in [*stage.blocks, stage.downsample]:
        parts += dense(block.conv1) + depthwise(block.conv2) + dense(block.conv3)
    with torch.no_grad():
        params = torch.cat([p.detach().float().reshape(-1) for p in parts]).numpy()
    block = stage.blocks[0]
    dims = [stem1.out_channels, block.conv1.in_channels, block.conv1.out_channels, len(stage.blocks),
            stage.downsample.conv3.out_channels, 256]
    return {"params": params, "dims": np.array(dims, dtype=np.int64)}
