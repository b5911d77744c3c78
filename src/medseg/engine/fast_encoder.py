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


def native_arrays(encoder: TinyViT) -> dict[str, np.ndarray]:
    """The encoder's weights in the order the C encoder reads them (``medseg/engine/tinyvit.c``), from a
    TinyViT whose batch norms are folded: ``params`` (float32) and ``dims`` (int32, described there).

    The attention takes ``ExportAttention``'s form: queries pre-scaled, a padding token's qkv row, and
    each head's bias gathered to (N, N), padded with zero columns to a multiple of 16.
    """
    parts: list = []

    def dense(weight: torch.Tensor, bias: torch.Tensor | None) -> None:  # (cout, cin) -> (cin, cout) row-major
        parts.extend([weight.t(), bias if bias is not None else torch.zeros(weight.shape[0])])

    def conv1x1(conv: nn.Conv2d) -> None:
        dense(conv.weight[:, :, 0, 0], conv.bias)

    def depthwise(conv: nn.Conv2d) -> None:  # (9, C), tap dy * 3 + dx
        parts.extend([conv.weight[:, 0].reshape(conv.out_channels, 9).t(), conv.bias])

    def norm(weight: torch.Tensor, bias: torch.Tensor, eps: float) -> None:
        parts.extend([torch.tensor([eps]), weight, bias])

    def block(b: nn.Module) -> None:  # MBConv or PatchMerging
        conv1x1(b.conv1)
        depthwise(b.conv2)
        conv1x1(b.conv3)

    stem1, _, stem2 = encoder.patch_embed.seq
    conv1x1(stem1)
    conv1x1(stem2)
    stage0 = encoder.layers[0]
    for b in [*stage0.blocks, stage0.downsample]:
        block(b)
    first = stage0.blocks[0]
    dims = [256, stem1.out_channels, first.conv1.in_channels, first.conv1.out_channels, len(stage0.blocks),
            stage0.downsample.conv3.out_channels, len(encoder.layers) - 1]
    attentions = iter(ExportEncoder(encoder).attentions)
    for layer in encoder.layers[1:]:
        head = layer.blocks[0]
        merge = layer.downsample
        stride = merge.conv2.stride[0] if merge is not None else 1
        dims += [head.attn.num_heads, head.window, len(layer.blocks), head.mlp.fc1.out_features,
                 merge.conv3.out_channels if merge is not None else 0, stride]
        for b in layer.blocks:
            attn = next(attentions)
            n = attn.bias.shape[-1]
            norm(attn.norm.weight, attn.norm.bias, attn.norm.eps)
            dense(attn.qkv.weight, attn.qkv.bias)
            parts.extend([attn.fill.reshape(-1), F.pad(attn.bias, (0, (n + 15) // 16 * 16 - n))])
            dense(attn.proj.weight, attn.proj.bias)
            depthwise(b.local_conv)
            norm(b.mlp.norm.weight, b.mlp.norm.bias, b.mlp.norm.eps)
            dense(b.mlp.fc1.weight, b.mlp.fc1.bias)
            dense(b.mlp.fc2.weight, b.mlp.fc2.bias)
        if merge is not None:
            block(merge)
    conv1, norm1, conv3, norm3 = encoder.neck
    dims.append(conv1.out_channels)
    dense(conv1.weight[:, :, 0, 0], None)
    norm(norm1.weight, norm1.bias, norm1.eps)
    dense(conv3.weight.permute(0, 2, 3, 1).reshape(conv3.out_channels, -1), None)  # (cout, dy, dx, cin)
    norm(norm3.weight, norm3.bias, norm3.eps)
    with torch.no_grad():
        params = torch.cat([p.detach().float().reshape(-1) for p in parts]).numpy()
    return {"params": params, "dims": np.array(dims, dtype=np.int32)}
