"""Trainable extras and freezing per mode.

- Adapters (SAM-Med2D): a bottleneck MLP added after every TinyViT transformer block, attached with a
  forward hook, so the inference modules keep their code and their state_dict keys; the adapter
  weights appear as extra keys ``...blocks.M.adapter.*`` that ``medseg.build`` re-creates when loading.
- LoRA: the encoder attention ``qkv`` and ``proj`` Linear layers get a low-rank update
  W + (alpha / r) B A; ``merge_lora`` folds it back into plain Linear layers for export.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from medseg.errors import MedsegError
from medseg.modeling.sam import PromptableSAM
from medseg.modeling.tiny_vit import TinyViTBlock, WindowAttention


class Adapter(nn.Module):
    """x -> up(gelu(down(x))) on channels-last tokens (..., C); ``up`` starts at zero (identity block)."""

    def __init__(self, dim: int, bottleneck: int) -> None:
        super().__init__()
        self.down = nn.Linear(dim, bottleneck)
        self.up = nn.Linear(bottleneck, dim)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(nn.functional.gelu(self.down(x)))


def _adapter_hook(block: nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor:
    return output + block.adapter(output)


def add_adapters(model: PromptableSAM, bottleneck: int) -> list[nn.Parameter]:
    """Attach an Adapter to every TinyViTBlock of the image encoder; returns the new parameters."""
    params: list[nn.Parameter] = []
    for block in model.image_encoder.modules():
        if isinstance(block, TinyViTBlock) and not hasattr(block, "adapter"):
            block.adapter = Adapter(block.attn.qkv.in_features, bottleneck)
            block.register_forward_hook(_adapter_hook)
            params.extend(block.adapter.parameters())
    if not params:
        raise MedsegError("adapter mode needs an image encoder with TinyViT transformer blocks")
    return params


class LoRALinear(nn.Module):
    """A frozen Linear plus a trainable low-rank update; (..., in) -> (..., out)."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float | None = None) -> None:
        super().__init__()
        self.base = base
        self.scale = (alpha or rank) / rank
        self.lora_a = nn.Parameter(torch.empty(rank, base.in_features))
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (x @ self.lora_a.t() @ self.lora_b.t()) * self.scale

    def merged(self) -> nn.Linear:
        out = nn.Linear(self.base.in_features, self.base.out_features, bias=self.base.bias is not None)
        with torch.no_grad():
            out.weight.copy_(self.base.weight + self.scale * self.lora_b @ self.lora_a)
            if self.base.bias is not None:
                out.bias.copy_(self.base.bias)
        return out


def add_lora(model: PromptableSAM, rank: int) -> list[nn.Parameter]:
    """Wrap qkv and proj of every encoder WindowAttention in LoRALinear; returns the LoRA parameters."""
    params: list[nn.Parameter] = []
    for attn in model.image_encoder.modules():
        if isinstance(attn, WindowAttention):
            for name in ("qkv", "proj"):
                layer = getattr(attn, name)
                if isinstance(layer, nn.Linear):
                    wrapped = LoRALinear(layer, rank)
                    setattr(attn, name, wrapped)
                    params += [wrapped.lora_a, wrapped.lora_b]
    if not params:
        raise MedsegError("lora mode needs an image encoder with attention layers")
    return params


def merge_lora(model: nn.Module) -> nn.Module:
    """Replace every LoRALinear by its merged Linear, in place; returns the model."""
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, LoRALinear):
                setattr(module, name, child.merged())
    return model


def prepare(model: PromptableSAM, mode: str, adapter_dim: int = 32, lora_rank: int = 4) -> list[nn.Parameter]:
    """Freeze what the mode keeps fixed, add its extras; returns the trainable parameters.

    full: image encoder + mask decoder (prompt encoder frozen, as MedSAM); decoder: mask decoder;
    adapter: adapters + mask decoder; lora: LoRA updates + mask decoder.
    """
    for p in model.parameters():
        p.requires_grad_(False)
    extras: list[nn.Parameter] = []
    if mode == "adapter":
        extras = add_adapters(model, adapter_dim)
    elif mode == "lora":
        extras = add_lora(model, lora_rank)
    elif mode == "full":
        extras = list(model.image_encoder.parameters())
    elif mode != "decoder":
        raise MedsegError(f"unknown mode '{mode}'")
    trainable = extras + list(model.mask_decoder.parameters())
    for p in trainable:
        p.requires_grad_(True)
    return trainable
