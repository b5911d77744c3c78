"""Where the exported graphs live, and finding them without importing torch.

Layout: ``$MEDSEG_ENGINE_CACHE`` if set, else ``~/.cache/medseg/engines``; one folder per checkpoint
sha256, holding ``encoder-v<N>.onnx`` and ``decoder-v<N>.onnx`` (N = EXPORT_VERSION, raised whenever
the exported graphs change), and ``native-v<N>.npz``, the encoder's weights for the C encoder of the
``native`` engine; ``native/`` holds that encoder compiled for this CPU. ``cached_graphs`` lets a
command start on an exported engine with numpy and the runtime only; ``medseg.engine.export`` writes
the files.
"""

from __future__ import annotations

import os
from pathlib import Path

from medseg.checkpoints import CHECKPOINT_ENV, packaged_decoder, resolve_checkpoint, sha256_of
from medseg.registry import DEFAULT_MODEL, MODELS

EXPORT_VERSION = 16
CACHE_ENV = "MEDSEG_ENGINE_CACHE"


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "medseg" / "engines").expanduser()


def graph_paths(key: str, decoder_key: str | None = None) -> tuple[Path, Path]:
    """Encoder and decoder ONNX paths of the checkpoint with sha256 ``key`` (they may not exist yet).

    A model whose card ships its own decoder (``ModelCard.decoder``, sha256 ``decoder_key``) shares the
    checkpoint's encoder and keeps its decoder beside it as ``decoder-<first 16 hex>-v<N>.onnx``.
    """
    folder = cache_root() / key
    name = f"decoder-{decoder_key[:16]}-v{EXPORT_VERSION}.onnx" if decoder_key else f"decoder-v{EXPORT_VERSION}.onnx"
    return folder / f"encoder-v{EXPORT_VERSION}.onnx", folder / name


def native_weights(encoder: Path) -> Path:
    """The C encoder's weights exported beside the encoder graph ``encoder`` (it may not exist yet)."""
    return encoder.with_name(f"native-v{EXPORT_VERSION}.npz")


def checkpoint_sha256(model: str | None, checkpoint: str | os.PathLike | None) -> str | None:
    """The cache key ``medseg.build.build_model(model, checkpoint)`` would give, without loading anything.

    None for what only build_model can judge (a fine-tuned model.pt, an unknown model name); errors
    about a missing or corrupt packaged checkpoint are raised as build_model would raise them.
    """
    card = MODELS.get(model or DEFAULT_MODEL)
    if card is None:
        return None
    path = resolve_checkpoint(card, checkpoint)  # verifies the packaged file's size and sha256
    packaged = card.checkpoint is not None and not (checkpoint or os.environ.get(CHECKPOINT_ENV))
    return card.checkpoint.sha256 if packaged else sha256_of(path)


def cached_graphs(model: str | None, checkpoint: str | os.PathLike | None,
                  native: bool = False) -> tuple[Path, Path] | None:
    """The exported encoder (with ``native``: the C encoder's weights) and decoder of this model if both
    are in the cache, else None."""
    key = checkpoint_sha256(model, checkpoint)
    if key is None:
        return None
    card = MODELS[model or DEFAULT_MODEL]
    encoder, decoder = graph_paths(key, card.decoder.sha256 if packaged_decoder(card) else None)
    if native:
        encoder = native_weights(encoder)
    return (encoder, decoder) if encoder.is_file() and decoder.is_file() else None
