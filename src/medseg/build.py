"""Build a model from its card and load its checkpoint strictly, after checking size and sha256."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from medseg.checkpoints import CHECKPOINT_ENV, resolve_checkpoint, sha256_of
from medseg.errors import MedsegError
from medseg.modeling.mask_decoder import MaskDecoder
from medseg.modeling.prompt_encoder import PromptEncoder
from medseg.modeling.sam import PromptableSAM
from medseg.modeling.tiny_vit import TinyViT, TinyViTConfig
from medseg.registry import DEFAULT_MODEL, MODELS, ModelCard


def get_card(name: str | None) -> ModelCard:
    name = name or DEFAULT_MODEL
    if name not in MODELS:
        raise MedsegError(f"unknown model '{name}'; available: {', '.join(MODELS)}")
    return MODELS[name]


def build_architecture(card: ModelCard) -> PromptableSAM:
    """An untrained network with the card's architecture."""
    arch = card.architecture
    encoder = TinyViT(TinyViTConfig(
        img_size=card.input_size, embed_dims=tuple(arch["embed_dims"]), depths=tuple(arch["depths"]),
        num_heads=tuple(arch["num_heads"]), window_sizes=tuple(arch["window_sizes"]),
        out_chans=arch["prompt_embed_dim"]))
    size = (card.input_size, card.input_size)
    grid = (card.embedding_size, card.embedding_size)
    prompt = PromptEncoder(arch["prompt_embed_dim"], grid, size, arch["mask_in_chans"])
    decoder = MaskDecoder(arch["prompt_embed_dim"], arch["num_multimask"])
    return PromptableSAM(encoder, prompt, decoder)


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt or foreign files
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "weights only load failed" in reason.lower():
            reason = "not a PyTorch weights file that loads safely (torch.load with weights_only=True)"
        raise MedsegError(f"cannot load checkpoint {path}: {reason}") from None
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict):
        raise MedsegError(f"checkpoint {path} does not hold a state_dict")
    return state


def build_finetuned(path: Path) -> PromptableSAM:
    """A ``medseg train`` model.pt: the card named in its config, its adapters re-attached, loaded strictly."""
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt or foreign files
        raise MedsegError(f"cannot load model {path}: {str(exc).splitlines()[0]}") from None
    if not isinstance(blob, dict) or not isinstance(blob.get("config"), dict) or "model" not in blob:
        raise MedsegError(f"{path} is not a model.pt written by `medseg train`")
    model = build_architecture(get_card(blob["config"].get("model")))
    if blob["config"].get("adapter_dim"):
        from medseg.train.adapters import add_adapters

        add_adapters(model, int(blob["config"]["adapter_dim"]))
    try:
        model.load_state_dict(blob["model"], strict=True)
    except RuntimeError as exc:
        raise MedsegError(f"{path} does not fit its model '{blob['config'].get('model')}': "
                          f"{str(exc).splitlines()[0]}") from None
    model.checkpoint_sha256 = sha256_of(path)
    return model.eval()


def build_model(name: str | None = None, checkpoint: str | os.PathLike | None = None) -> PromptableSAM:
    """Build a model by name (or from a fine-tuned model.pt file) and load its weights strictly.

    Returns it in eval mode on the CPU.
    """
    if name and name.endswith(".pt") and Path(name).expanduser().is_file():
        return build_finetuned(Path(name).expanduser())
    card = get_card(name)
    model = build_architecture(card)
    path = resolve_checkpoint(card, checkpoint)
    state = load_state_dict(path)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise MedsegError(f"checkpoint {path} does not fit model '{card.name}': "
                          f"{str(exc).splitlines()[1].strip() if len(str(exc).splitlines()) > 1 else exc}") from None
    # The engines cache their compiled forms under this key (the packaged file was verified above).
    packaged = card.checkpoint is not None and not (checkpoint or os.environ.get(CHECKPOINT_ENV))
    model.checkpoint_sha256 = card.checkpoint.sha256 if packaged else sha256_of(path)
    return model.eval()
