"""Export medseg's own network to ONNX once per checkpoint and keep the files in an on-disk cache.

Layout: ``$MEDSEG_ENGINE_CACHE`` if set, else ``~/.cache/medseg/engines``; one folder per checkpoint
sha256, holding ``encoder-v<N>.onnx`` and ``decoder-v<N>.onnx`` (N = EXPORT_VERSION, raised whenever
the exported graphs change). Files are written to a temporary name in the same folder and renamed
into place, so concurrent or interrupted builds never leave a half-written model behind.
"""

from __future__ import annotations

import os
import sys
import tempfile
import warnings
from pathlib import Path

import torch
from torch import nn

from medseg.engine.eager import inference_copy
from medseg.engine.fast_decoder import rewrite_cross_attention
from medseg.errors import MedsegError
from medseg.modeling.sam import PromptableSAM

EXPORT_VERSION = 3
CACHE_ENV = "MEDSEG_ENGINE_CACHE"
OPSET = 17


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "medseg" / "engines").expanduser()


def checkpoint_key(model: PromptableSAM) -> str:
    """The sha256 of the checkpoint the model was loaded from (set by ``build_model``)."""
    key = getattr(model, "checkpoint_sha256", None)
    if not key:
        raise MedsegError("this model was not loaded from a checkpoint by build_model(); "
                          "use engine='eager' or load it with medseg.build.build_model")
    return key


class _DecoderGraph(nn.Module):
    """The mask decoder with all four outputs, as exported: (emb, sparse, dense) -> (logits, iou).

    The positional encoding of the embedding grid is a constant of the graph, so the runtimes fold
    its reshapes and transposes at load time instead of repeating them for every prompt; the
    cross-attentions run in their few-token form (``fast_decoder``: 2.05 instead of 3.55 GFLOP).
    """

    def __init__(self, model: PromptableSAM) -> None:
        super().__init__()
        self.decoder = model.mask_decoder
        rewrite_cross_attention(self.decoder.transformer)
        self.register_buffer("image_pe", model.prompt_encoder.dense_pe().contiguous())

    def forward(self, embeddings: torch.Tensor, sparse: torch.Tensor,
                dense: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.decoder.forward_all(embeddings, self.image_pe, sparse, dense)


def _export(module: nn.Module, args: tuple[torch.Tensor, ...], names: list[str], outputs: list[str],
            dynamic: dict[str, dict[int, str]], target: Path) -> None:
    """torch.onnx.export (the TorchScript exporter: the dynamo one needs onnxscript) to ``target`` atomically."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}-", suffix=".onnx", dir=target.parent)
    os.close(fd)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, args, tmp, input_names=names, output_names=outputs, dynamic_axes=dynamic,
                              opset_version=OPSET, do_constant_folding=True, dynamo=False)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o644 & ~umask)  # mkstemp creates 0600
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _remove_stale(folder: Path) -> None:
    """Drop graphs of earlier export versions and the runtime caches compiled from them."""
    if not folder.is_dir():
        return
    current = {f"encoder-v{EXPORT_VERSION}.onnx", f"decoder-v{EXPORT_VERSION}.onnx"}
    for path in [*folder.glob("*coder-v*.onnx"), *folder.glob("openvino/*")]:
        if path.name not in current and path.is_file():
            path.unlink(missing_ok=True)


def onnx_files(model: PromptableSAM) -> tuple[Path, Path]:
    """Paths of the encoder and decoder ONNX files of this model's checkpoint, exported if missing."""
    folder = cache_root() / checkpoint_key(model)
    encoder = folder / f"encoder-v{EXPORT_VERSION}.onnx"
    decoder = folder / f"decoder-v{EXPORT_VERSION}.onnx"
    if encoder.is_file() and decoder.is_file():
        return encoder, decoder
    _remove_stale(folder)
    print(f"medseg: exporting the network to ONNX into {folder} (once per checkpoint, about 20-60 s)",
          file=sys.stderr)
    net = inference_copy(model)
    if not encoder.is_file():
        _export(net.image_encoder, (torch.rand(1, 3, 256, 256),), ["images"], ["embeddings"],
                {"images": {0: "batch"}, "embeddings": {0: "batch"}}, encoder)
    if not decoder.is_file():
        args = (torch.rand(1, 256, 64, 64), torch.rand(2, 3, 256), torch.rand(1, 256, 64, 64))
        _export(_DecoderGraph(net), args, ["embeddings", "sparse", "dense"], ["logits", "iou"],
                {"sparse": {0: "prompts", 1: "tokens"}, "dense": {0: "dense_batch"},
                 "logits": {0: "prompts"}, "iou": {0: "prompts"}}, decoder)
    return encoder, decoder
