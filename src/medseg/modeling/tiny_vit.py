"""TinyViT image encoder as distilled for LiteMedSAM (256x256 input -> 256x64x64 embedding).

Layout (LiteMedSAM variant): a 1x1 convolutional stem keeps full resolution, stage 0 is MBConv at
256x256, stages 1-3 are windowed-attention blocks at 128, 64 and 64; a neck maps to 256 channels.
Parameter names follow the published state_dict (``patch_embed.seq``, ``layers.N.blocks.M``,
``layers.N.downsample``, ``neck``) so that the checkpoint loads strictly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from medseg.modeling.common import ConvBN, LayerNorm2d


@dataclass(frozen=True)
class TinyViTConfig:
    img_size: int = 256
    embed_dims: tuple[int, ...] = (64, 128, 160, 320)
    depths: tuple[int, ...] = (2, 2, 6, 2)
    num_heads: tuple[int, ...] = (2, 4, 5, 10)
    window_sizes: tuple[int, ...] = (7, 7, 14, 7)
    mlp_ratio: float = 4.0
    mbconv_expand_ratio: float = 4.0
    out_chans: int = 256


class MBConv(nn.Module):
    """Inverted residual block on (B, C, H, W): 1x1 expand, 3x3 depthwise, 1x1 project."""

    def __init__(self, dim: int, expand_ratio: float) -> None:
        super().__init__()
        hidden = int(dim * expand_ratio)
        self.conv1 = ConvBN(dim, hidden, 1)
        self.conv2 = ConvBN(hidden, hidden, 3, groups=hidden)
        self.conv3 = ConvBN(hidden, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.gelu(self.conv1(x))
        y = F.gelu(self.conv2(y))
        return F.gelu(self.conv3(y) + x)


class PatchMerging(nn.Module):
    """(B, C, H, W) -> (B, C', H/s, W/s) with s = 2, or 1 for the last merge (LiteMedSAM)."""

    def __init__(self, dim: int, out_dim: int, stride: int) -> None:
        super().__init__()
        self.conv1 = ConvBN(dim, out_dim, 1)
        self.conv2 = ConvBN(out_dim, out_dim, 3, stride=stride, groups=out_dim)
        self.conv3 = ConvBN(out_dim, out_dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.gelu(self.conv1(x))
        x = F.gelu(self.conv2(x))
        return self.conv3(x)


def relative_bias_index(window: int) -> torch.Tensor:
    """(w*w, w*w) index into a table of |dy|*w + |dx| offsets between positions of a window."""
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij"))
    coords = coords.reshape(2, -1)
    delta = (coords[:, :, None] - coords[:, None, :]).abs()
    return delta[0] * window + delta[1]


class WindowAttention(nn.Module):
    """Multi-head self-attention with a learned bias per head and relative offset.

    Input and output are (B', N, C) with N = window*window tokens.
    """

    def __init__(self, dim: int, num_heads: int, window: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.attention_biases = nn.Parameter(torch.zeros(num_heads, window * window))
        self.register_buffer("bias_index", relative_bias_index(window), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.attend(self.qkv(self.norm(x))))

    def attend(self, qkv: torch.Tensor) -> torch.Tensor:
        """(B', N, 3C) projected tokens -> (B', N, C) attention output before ``proj``."""
        b, n, c3 = qkv.shape
        q, k, v = qkv.view(b, n, self.num_heads, 3, self.head_dim).permute(3, 0, 2, 1, 4).unbind(0)
        bias = self.attention_biases[:, self.bias_index]  # (heads, N, N)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)  # each of q, k, v (B', heads, N, d)
        return out.transpose(1, 2).reshape(b, n, c3 // 3)


class PreNormMLP(nn.Module):
    """LayerNorm -> Linear -> GELU -> Linear on (..., C)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(self.norm(x))))


class PatchEmbed(nn.Module):
    """Full-resolution 1x1 stem: (B, 3, H, W) -> (B, C, H, W) (key ``seq``)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.seq = nn.Sequential(ConvBN(3, dim // 2, 1), nn.GELU(), ConvBN(dim // 2, dim, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.seq(x)


def padded_qkv(project, x: torch.Tensor, window: int, fill: torch.Tensor | None = None) -> torch.Tensor:
    """``project`` (norm + qkv) of (B, H, W, C) tokens, padded at the bottom/right to whole windows.

    A zero padding token always projects to the same row (the qkv of the norm's bias), so the real
    tokens are projected alone and that one row is filled in: ``fill``, (1, 1, 1, 3C), if given.
    """
    b, c = x.shape[0], x.shape[3]
    h, w = int(x.shape[1]), int(x.shape[2])  # constants when traced for export (the input side is fixed)
    pad_h, pad_w = (window - h % window) % window, (window - w % window) % window
    qkv = project(x)
    if pad_h or pad_w:
        if fill is None:
            fill = project(x.new_zeros(1, 1, 1, c))
        if pad_w:
            qkv = torch.cat([qkv, fill.expand(b, h, pad_w, fill.shape[-1])], dim=2)
        if pad_h:
            qkv = torch.cat([qkv, fill.expand(b, pad_h, w + pad_w, fill.shape[-1])], dim=1)
    return qkv


class TinyViTBlock(nn.Module):
    """Windowed attention, 3x3 depthwise conv and MLP on channels-last tokens (B, H, W, C)."""

    def __init__(self, dim: int, num_heads: int, window: int, mlp_ratio: float) -> None:
        super().__init__()
        self.window = window
        self.attn = WindowAttention(dim, num_heads, window)
        self.local_conv = ConvBN(dim, dim, 3, groups=dim)
        self.mlp = PreNormMLP(dim, int(dim * mlp_ratio))

    def _windowed_attention(self, x: torch.Tensor) -> torch.Tensor:
        """Attention within ws x ws windows of (B, H, W, C) tokens, zero-padded to whole windows.

        Norm and qkv run on the real tokens only: a zero padding token always projects to the same
        row (the qkv of the norm's bias), which is filled in; ``proj`` runs after the padding is cut
        away. Same result as normalising and projecting the padded tokens (stages at 64x64 pad to
        70x70 for 7 and 14 wide windows: 20% fewer rows through qkv and proj there).
        """
        b, h, w, c = x.shape
        ws, attn = self.window, self.attn
        qkv = padded_qkv(lambda t: attn.qkv(attn.norm(t)), x, ws)  # (B, H', W', 3C)
        ph, pw = qkv.shape[1], qkv.shape[2]
        qkv = qkv.view(b, ph // ws, ws, pw // ws, ws, 3 * c).transpose(2, 3).reshape(-1, ws * ws, 3 * c)
        out = attn.attend(qkv)
        out = out.view(b, ph // ws, pw // ws, ws, ws, c).transpose(2, 3).reshape(b, ph, pw, c)
        return attn.proj(out[:, :h, :w])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self._windowed_attention(x)
        x = self.local_conv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return x + self.mlp(x)


class Stage(nn.Module):
    """A list of blocks followed by an optional PatchMerging (keys ``blocks``, ``downsample``)."""

    def __init__(self, blocks: list[nn.Module], downsample: nn.Module | None, channels_last: bool) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.downsample = downsample
        self.channels_last = channels_last

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) in, (B, C', H', W') out."""
        if self.channels_last:
            x = x.permute(0, 2, 3, 1)
        for block in self.blocks:
            x = block(x)
        if self.channels_last:
            x = x.permute(0, 3, 1, 2)
        return self.downsample(x) if self.downsample is not None else x


class TinyViT(nn.Module):
    """Image encoder: (B, 3, 256, 256) normalised image -> (B, 256, 64, 64) embedding."""

    def __init__(self, cfg: TinyViTConfig = TinyViTConfig()) -> None:
        super().__init__()
        dims = cfg.embed_dims
        self.patch_embed = PatchEmbed(dims[0])
        self.layers = nn.ModuleList()
        for i, depth in enumerate(cfg.depths):
            last = i == len(cfg.depths) - 1
            downsample = None
            if not last:
                stride = 1 if i == len(cfg.depths) - 2 else 2
                downsample = PatchMerging(dims[i], dims[i + 1], stride)
            if i == 0:
                blocks = [MBConv(dims[0], cfg.mbconv_expand_ratio) for _ in range(depth)]
            else:
                blocks = [TinyViTBlock(dims[i], cfg.num_heads[i], cfg.window_sizes[i], cfg.mlp_ratio)
                          for _ in range(depth)]
            self.layers.append(Stage(blocks, downsample, channels_last=i > 0))
        self.neck = nn.Sequential(
            nn.Conv2d(dims[-1], cfg.out_chans, 1, bias=False),
            LayerNorm2d(cfg.out_chans),
            nn.Conv2d(cfg.out_chans, cfg.out_chans, 3, padding=1, bias=False),
            LayerNorm2d(cfg.out_chans),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        for layer in self.layers:
            x = layer(x)
        return self.neck(x)
