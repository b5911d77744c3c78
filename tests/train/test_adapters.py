"""Modes: what is trainable, adapters and LoRA leave the inference keys alone, exports load strictly."""

from __future__ import annotations

import torch

from medseg.build import build_architecture, build_model, get_card
from medseg.modeling.tiny_vit import TinyViTBlock
from medseg.train.adapters import LoRALinear, merge_lora, prepare
from medseg.train.checkpoint import export_model
from medseg.train.config import TrainConfig


def fresh():
    torch.manual_seed(0)
    return build_architecture(get_card("litemedsam"))


def trainable_prefixes(model) -> set[str]:
    return {n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad}


def test_trainable_parts_per_mode():
    m = fresh()
    prepare(m, "decoder")
    assert trainable_prefixes(m) == {"mask_decoder"}
    m = fresh()
    prepare(m, "full")
    assert trainable_prefixes(m) == {"mask_decoder", "image_encoder"}
    m = fresh()
    params = prepare(m, "lora", lora_rank=2)
    names = {n for n, p in m.named_parameters() if p.requires_grad and n.startswith("image_encoder")}
    assert names and all("lora_" in n for n in names) and len(params) > len(names)


def test_adapters_keep_keys_and_start_as_identity():
    m = fresh()
    before = m.state_dict()
    block = next(b for b in m.image_encoder.modules() if isinstance(b, TinyViTBlock))
    x = torch.randn(1, 14, 14, block.attn.qkv.in_features)
    y0 = block(x)
    prepare(m, "adapter", adapter_dim=8)
    after = m.state_dict()
    assert set(before) <= set(after)
    extra = set(after) - set(before)
    assert extra and all(".adapter." in k for k in extra)
    assert torch.allclose(block(x), y0)
    torch.nn.init.normal_(block.adapter.up.weight)
    assert not torch.allclose(block(x), y0)


def test_lora_merge_matches_unmerged():
    base = torch.nn.Linear(6, 9)
    lora = LoRALinear(base, rank=2)
    torch.nn.init.normal_(lora.lora_b)
    x = torch.randn(4, 6)
    assert torch.allclose(lora(x), lora.merged()(x), atol=1e-5)


def test_exported_models_load_through_build_model(tmp_path):
    for mode in ("adapter", "lora"):
        m = fresh()
        prepare(m, mode, adapter_dim=8, lora_rank=2)
        for p in m.parameters():
            if p.requires_grad:
                torch.nn.init.normal_(p, std=0.01)
        cfg = TrainConfig(data="-", out=str(tmp_path), mode=mode, adapter_dim=8, lora_rank=2)
        export_model(m, cfg, tmp_path / f"{mode}.pt")
        loaded = build_model(str(tmp_path / f"{mode}.pt"))
        trained = (merge_lora(m) if mode == "lora" else m).eval()
        assert set(loaded.state_dict()) == set(trained.state_dict())
        if mode == "lora":
            assert set(loaded.state_dict()) == set(fresh().state_dict())
        pairs = zip(*(list(n.image_encoder.modules()) for n in (loaded, m)), strict=True)
        a, b = next((a, b) for a, b in pairs if isinstance(a, TinyViTBlock))
        x = torch.randn(1, 14, 14, a.attn.qkv.in_features)
        with torch.no_grad():
            assert torch.allclose(a(x), b(x), atol=1e-4)
