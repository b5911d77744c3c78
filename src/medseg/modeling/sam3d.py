"""SAM3D's light 3D decoder (Bui et al., 2023) over stacked frozen slice embeddings.

The frozen 2D image encoder (LiteMedSAM's TinyViT) turns each slice of a window of D slices into a
(256, 64, 64) embedding; stacked along z they form a (B, 256, D, 64, 64) volume. The decoder is four
residual 3D conv blocks, as the authors' ``BasicBlock`` (conv-norm-LeakyReLU, conv-norm, 1x1x1 shortcut,
LeakyReLU), upsampling in-plane only (z keeps its D slices), and a segmentation head per stage:

    embeddings (256, D, 64, 64) --block1--> (C1, D, 64, 64) --block2--> (C1, D, 64, 64) -> head 1/4
                 up (1, 2, 2) --block3--> (C2, D, 128, 128) -> head 1/2
                 up (1, 2, 2) --block4--> (C3, D, 256, 256) -> head 1/1 (the prediction)

Skip connections: LiteMedSAM's input is 4x the embedding's side (256 vs 64) where SAM's is 16x, so the
decoder has to recover fine borders from 1/4 resolution. Each block after the first also receives the
slice intensities (the encoder's own 0..1 input, one grey channel) resized to its resolution,
concatenated to its input: the cheapest source of the detail the embedding lost, at every scale, and
free at inference (no extra encoder pass; the engines expose only the final embedding).

Deep supervision: logits at 1/1, 1/2 and 1/4 of the model grid, loss weights 1, 1/2, 1/4 normalised,
with the ground truth downsampled (nearest) to each stage (``medseg.train.sam3d_loss``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

from medseg.errors import MedsegError

EMBED_CHANNELS = 256  # LiteMedSAM's embedding channels
EMBED_SIDE = 64  # its embedding side; the model grid is 4x that
MAX_CLASSES = 256  # background + 255 classes: the uint8 label maps medseg writes


@dataclass(frozen=True)
class Sam3DConfig:
    """Architecture of the decoder.

    Attributes:
        num_classes: output channels including background (label values 0..num_classes-1).
        widths: channels of block1/block2 (1/4), block3 (1/2) and block4 (1/1).
        skips: concatenate the resized slice intensities to blocks 2-4 (see the module docstring).
        embed_channels: channels of the frozen embedding.
    """

    num_classes: int
    widths: tuple[int, int, int] = (64, 32, 16)
    skips: bool = True
    embed_channels: int = EMBED_CHANNELS

    def __post_init__(self) -> None:
        if not isinstance(self.num_classes, int) or not 2 <= self.num_classes <= MAX_CLASSES:
            raise MedsegError(f"SAM3D needs 2..{MAX_CLASSES} classes including background, got {self.num_classes}")
        if len(self.widths) != 3 or any(not isinstance(w, int) or w < 2 for w in self.widths):
            raise MedsegError(f"SAM3D widths {self.widths}: three whole numbers of at least 2")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["widths"] = list(self.widths)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Sam3DConfig:
        return cls(num_classes=int(d["num_classes"]), widths=tuple(int(w) for w in d["widths"]),
                   skips=bool(d["skips"]), embed_channels=int(d["embed_channels"]))


class ResidualBlock(nn.Module):
    """conv3-IN-LeakyReLU, conv3-IN, plus a 1x1x1-IN shortcut, LeakyReLU (as SAM3D's BasicBlock)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv3d(cin, cout, 3, padding=1), nn.InstanceNorm3d(cout, affine=True),
                                   nn.LeakyReLU(0.01, inplace=True))
        self.conv2 = nn.Sequential(nn.Conv3d(cout, cout, 3, padding=1), nn.InstanceNorm3d(cout, affine=True))
        self.shortcut = nn.Sequential(nn.Conv3d(cin, cout, 1), nn.InstanceNorm3d(cout, affine=True))
        self.act = nn.LeakyReLU(0.01, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv2(self.conv1(x)) + self.shortcut(x))


class Head(nn.Sequential):
    """conv3-IN-LeakyReLU to half the channels, then 1x1x1 to the classes (as SAM3D's SegmentationHead)."""

    def __init__(self, cin: int, classes: int) -> None:
        mid = max(cin // 2, 2)
        super().__init__(nn.Conv3d(cin, mid, 3, padding=1), nn.InstanceNorm3d(mid, affine=True),
                         nn.LeakyReLU(0.01, inplace=True), nn.Conv3d(mid, classes, 1))


def _up(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=(1, 2, 2), mode="nearest")


class Sam3DDecoder(nn.Module):
    """Embeddings (B, 256, D, h, w) [+ intensities (B, 1, D, 4h, 4w)] -> logits at 1/2 of the model grid.

    h = w = 64 for whole slices; training may pass in-plane crops (any h, w divisible by 2).
    ``forward`` returns [logits 1/2 (B, K, D, 2h, 2w), 1/4 (B, K, D, h, w), 1/8 (B, K, D, h/2, w/2)] when
    ``deep`` is set (training), else only the 1/2 logits (the prediction, upsampled by the caller).
    """

    def __init__(self, config: Sam3DConfig) -> None:
        super().__init__()
        self.config = config
        c1, c2, c3 = config.widths
        s = 1 if config.skips else 0
        self.project = nn.Conv3d(config.embed_channels, c1, 1)
        self.block1 = ResidualBlock(c1, c1)  # 1/4
        self.block2 = ResidualBlock(c1, c1)  # 1/8: in-plane context
        self.block3 = ResidualBlock(2 * c1 + s, c2)  # 1/4, skip from block1 (+ intensities)
        self.block4 = ResidualBlock(c2 + s, c3)  # 1/2 (+ intensities)
        self.head2 = Head(c3, config.num_classes)
        self.head4 = Head(c2, config.num_classes)
        self.head8 = Head(c1, config.num_classes)

    def _skip(self, x: torch.Tensor, intensity: torch.Tensor | None) -> torch.Tensor:
        if not self.config.skips:
            return x
        if intensity is None:
            raise MedsegError("this SAM3D decoder uses intensity skips: pass the slices' intensities")
        factor = intensity.shape[-1] // x.shape[-1]
        if factor > 1:
            intensity = F.avg_pool3d(intensity, (1, factor, factor))
        return torch.cat([x, intensity.to(x.dtype)], 1)

    def forward(self, embeddings: torch.Tensor, intensity: torch.Tensor | None = None,
                deep: bool = False) -> torch.Tensor | list[torch.Tensor]:
        """Args:
            embeddings: (B, 256, D, h, w) stacked slice embeddings (any float dtype; computed in float32).
            intensity: (B, 1, D, 4h, 4w) encoder inputs in 0..1 (grey), needed when ``config.skips``.
            deep: also return the 1/4 and 1/8 logits (deep supervision).
        """
        x1 = self.block1(self.project(embeddings.float()))
        x8 = self.block2(F.avg_pool3d(x1, (1, 2, 2)))
        x4 = self.block3(self._skip(torch.cat([x1, _up(x8)], 1), intensity))
        x2 = self.block4(self._skip(_up(x4), intensity))
        out = self.head2(x2)
        if not deep:
            return out
        return [out, self.head4(x4), self.head8(x8)]


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
