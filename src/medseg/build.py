"""Build a model from its card and load its checkpoint strictly, after checking size and sha256."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import torch

from medseg.checkpoints import (
    CHECKPOINT_ENV,
    load_torch_file,
    packaged_decoder,
    packaged_file,
    resolve_checkpoint,
    sha256_of,
)
from medseg.errors import MedsegError
from medseg.modeling.mask_decoder import MaskDecoder
from medseg.modeling.prompt_encoder import PromptEncoder
from medseg.modeling.sam import PromptableSAM
from medseg.modeling.tiny_vit import TinyViT, TinyViTConfig
from medseg.registry import CORRECTION_NET, DEFAULT_MODEL, MODELS, ModelCard


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
    state = load_torch_file(path, "checkpoint")
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise MedsegError(f"checkpoint {path} does not hold a state_dict (names mapped to tensors)")
    return state


def load_strictly(model: torch.nn.Module, state: object, what: str) -> None:
    """``model.load_state_dict(state, strict=True)``; a misfit is one short line: ``what``, then which keys."""
    expected = model.state_dict()
    if not isinstance(state, dict):
        raise MedsegError(f"{what}: it holds no state_dict")
    missing = [k for k in expected if k not in state]
    extra = [k for k in state if k not in expected]
    shapes = [k for k in expected if k in state and getattr(state[k], "shape", None) != expected[k].shape]
    for keys, kind in ((missing, "missing"), (extra, "unexpected"), (shapes, "wrong shape")):
        if keys:
            more = f" and {len(keys) - 2} more" if len(keys) > 2 else ""
            raise MedsegError(f"{what}: {len(keys)} {kind} weight(s), e.g. {', '.join(keys[:2])}{more}")
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise MedsegError(f"{what}: {str(exc).splitlines()[0][:200]}") from None


def build_finetuned(path: Path) -> PromptableSAM:
    """A ``medseg train`` model.pt: the card named in its config, its adapters re-attached, loaded strictly."""
    blob = load_torch_file(path, "model")
    if not isinstance(blob, dict) or not isinstance(blob.get("config"), dict) or "model" not in blob:
        raise MedsegError(f"{path} is not a model.pt written by `medseg train`")
    name, adapter_dim = blob["config"].get("model"), blob["config"].get("adapter_dim")
    if not isinstance(name, str) or not (adapter_dim is None or (isinstance(adapter_dim, int) and 0 < adapter_dim
                                                                  and not isinstance(adapter_dim, bool))):
        raise MedsegError(f"{path} is not a model.pt written by `medseg train` (its config is damaged)")
    model = build_architecture(get_card(name))
    if adapter_dim:
        from medseg.train.adapters import add_adapters

        add_adapters(model, adapter_dim)
    load_strictly(model, blob["model"], f"{path} does not fit its model '{name}'")
    model.checkpoint_sha256 = sha256_of(path)
    return model.eval()


def build_model(name: str | None = None, checkpoint: str | os.PathLike | None = None) -> PromptableSAM:
    """Build a model by name (or from a fine-tuned model.pt file) and load its weights strictly.

    Returns it in eval mode on the CPU.
    """
    if name and name.endswith((".pt", ".pth")):
        if not Path(name).expanduser().is_file():
            raise MedsegError(f"model file not found: {name} (a model.pt written by `medseg train`)")
        return build_finetuned(Path(name).expanduser())
    card = get_card(name)
    model = build_architecture(card)
    path = resolve_checkpoint(card, checkpoint)
    state = load_state_dict(path)
    load_strictly(model, state, f"checkpoint {path} does not fit model '{card.name}'")
    decoder = packaged_decoder(card)
    if decoder is not None:
        load_decoder(model, decoder)
    # The engines cache their compiled forms under this key (the packaged file was verified above).
    packaged = card.checkpoint is not None and not (checkpoint or os.environ.get(CHECKPOINT_ENV))
    model.checkpoint_sha256 = card.checkpoint.sha256 if packaged else sha256_of(path)
    if decoder is not None:  # the engines export the decoder under this key, the encoder under the one above
        model.decoder_sha256 = card.decoder.sha256
    return model.eval()


def load_decoder(model: PromptableSAM, path: Path) -> None:
    """Load a prompt encoder + mask decoder file (fp16 or fp32) into ``model`` strictly: it must hold exactly
    their weights (``prompt_encoder.*``, ``mask_decoder.*``), else a one-line MedsegError."""
    parts = torch.nn.ModuleDict({"prompt_encoder": model.prompt_encoder, "mask_decoder": model.mask_decoder})
    load_strictly(parts, load_state_dict(path), f"decoder weights {path} do not fit model")


def load_correction_net(path: str | os.PathLike | None = None):
    """The 3D correction network (``medseg.modeling.correction3d``) from ``path`` (a file written by
    ``scripts/train_correction3d.py``: config + state_dict, fp16 or fp32), or the packaged one (size and sha256
    verified, loaded once), strictly, in fp32 and eval mode."""
    if path is None:
        return _packaged_correction_net()
    return _correction_net(Path(path).expanduser())


@lru_cache(maxsize=1)
def _packaged_correction_net():
    return _correction_net(packaged_file(CORRECTION_NET, "the 3D correction network's weights"))


def _correction_net(path: Path):
    from medseg.modeling.correction3d import Correction3D, Correction3DConfig

    blob = load_torch_file(path, "correction network")
    config = blob.get("config") if isinstance(blob, dict) else None
    if not isinstance(config, dict) or not isinstance(blob.get("state_dict"), dict):
        raise MedsegError(f"{path} is not a correction network file (config + state_dict)")
    try:
        net = Correction3D(Correction3DConfig(tuple(config["grid"]), int(config["channels"])))
    except (KeyError, TypeError, ValueError):
        raise MedsegError(f"{path} is not a correction network file (its config is damaged)") from None
    state = {k: v.float() if isinstance(v, torch.Tensor) and v.is_floating_point() else v
             for k, v in blob["state_dict"].items()}
    load_strictly(net, state, f"correction network {path} does not fit its config")
    return net.eval().requires_grad_(False)
