"""Export medseg's own network to ONNX once per checkpoint and keep the files in an on-disk cache.

The cache layout is ``medseg.engine.cache``. Files are written to a temporary name in the same folder
and renamed into place, so concurrent or interrupted builds never leave a half-written model behind.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import torch
from torch import nn

from medseg.engine.cache import CACHE_ENV, EXPORT_VERSION, cache_root, graph_paths, native_weights
from medseg.engine.eager import inference_copy
from medseg.engine.fast_decoder import MatMulUpscaling, fast_forward_all, rewrite_cross_attention
from medseg.engine.fast_encoder import ExportEncoder, native_arrays
from medseg.errors import MedsegError
from medseg.files import write_file
from medseg.modeling.sam import PromptableSAM

OPSET = 17
__all__ = ["CACHE_ENV", "EXPORT_VERSION", "cache_root", "checkpoint_key", "onnx_files"]


def checkpoint_key(model: PromptableSAM) -> str:
    """The sha256 of the checkpoint the model was loaded from (set by ``build_model``)."""
    key = getattr(model, "checkpoint_sha256", None)
    if not key:
        raise MedsegError("this model was not loaded from a checkpoint by build_model(); "
                          "use engine='eager' or load it with medseg.build.build_model")
    return key


class _DecoderGraph(nn.Module):
    """Prompt encoder and mask decoder as exported: (emb, coords, labels, mask, has_mask, mask_tokens) ->
    (logits, iou).

    Inputs: embeddings (1, 256, 64, 64); coords (B, T, 2) model-space (X, Y); labels (B, T): 1 positive,
    0 negative, -1 padding, 2 / 3 box corners (``medseg.engine.graphs.prompt_tokens``); mask (1 or B, 1,
    256, 256) low-res logits; has_mask (1,): 1 to use the mask, 0 for the no-mask embedding (then pass a
    (1, 1, 4, 4) mask: its (1, 256, 1, 1) product is multiplied by 0 and broadcast, so the unused branch
    costs nothing); mask_tokens (K,) int64: which of the four mask tokens to upscale, [0] for the single
    mask and [1, 2, 3] for the multimask output; window (4,) int64: the embedding cells decoded, rows
    window[0]:window[2] and columns window[1]:window[3] ([0, 0, 64, 64]: all, the model as trained; a part:
    ``medseg.engine.graphs.decode_window``, the mask then given cropped to it); crop (4,) int64: the cells, inside
    the window, whose logits are wanted (the window itself for all): only they are upscaled, which is exact (the
    upscaling is local to each cell). Outputs logits (B, K, 4 h, 4 w) for a crop of h x w cells, IoU (B, K). The
    tokens equal
    ``PromptEncoder``'s exactly (the added label terms are exact zeros), so runs need no torch. The
    positional encoding of the embedding grid is a constant of the graph; the cross-attentions run in
    their few-token form and the upscaling as two matrix products (``fast_decoder``).
    """

    def __init__(self, model: PromptableSAM) -> None:
        super().__init__()
        prompt = model.prompt_encoder
        self.decoder = model.mask_decoder
        rewrite_cross_attention(self.decoder.transformer)
        self.upscaling = MatMulUpscaling(self.decoder.output_upscaling)
        self.pe_layer, self.mask_downscaling = prompt.pe_layer, prompt.mask_downscaling
        self.register_buffer("image_pe", prompt.dense_pe().contiguous())
        self.register_buffer("label_embeds", torch.cat([e.weight for e in prompt.point_embeddings]))  # (4, C)
        self.register_buffer("not_a_point", prompt.not_a_point_embed.weight.clone())  # (1, C)
        self.register_buffer("no_mask", prompt.no_mask_embed.weight.reshape(1, -1, 1, 1).clone())
        h, w = prompt.input_size
        self.register_buffer("size_xy", torch.tensor([float(w), float(h)]))

    def forward(self, embeddings: torch.Tensor, coords: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor,
                has_mask: torch.Tensor, mask_tokens: torch.Tensor,
                window: torch.Tensor, crop: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = self.pe_layer.encode((coords + 0.5) / self.size_xy)
        lab = labels[..., None]
        tokens = torch.where(lab == -1, self.not_a_point, tokens)
        for k in range(self.label_embeds.shape[0]):
            tokens = tokens + (lab == k) * self.label_embeds[k]
        dense = has_mask * self.mask_downscaling(mask) + (1 - has_mask) * self.no_mask
        # slices with tensor bounds: traced as ONNX Slice with the window as its inputs (a copy of the window's
        # cells; index_select's Gather took 9 of a decode's 41 ms on the full grid). ONNX Runtime copies the full grid
        # too: these four Slices took 1.9 of a 13-18 ms whole-grid decode (ORT profiler, 2-core Xeon, 2026-12-05);
        # windowing in the caller (numpy views, no copy for the full grid) with the PE fed as an input would save it
        emb = embeddings[:, :, window[0]:window[2], window[1]:window[3]]
        pe = self.image_pe[:, :, window[0]:window[2], window[1]:window[3]]
        inside = crop - torch.stack([window[0], window[1], window[0], window[1]])
        return fast_forward_all(self.decoder, self.upscaling, emb, pe, tokens, dense, mask_tokens, inside)


def _write_atomically(target: Path, write) -> None:
    """``write(tmp)`` through ``medseg.files.write_file`` (temporary file, fsync, check, rename; 0666 & ~umask)."""
    from medseg.io.verify import verify_for

    write_file(target, lambda tmp: write(str(tmp)), verify_for(target))


def _export(module: nn.Module, args: tuple[torch.Tensor, ...], names: list[str], outputs: list[str],
            dynamic: dict[str, dict[int, str]], target: Path) -> None:
    """torch.onnx.export (the TorchScript exporter: the dynamo one needs onnxscript) to ``target`` atomically."""

    def write(tmp: str) -> None:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, args, tmp, input_names=names, output_names=outputs, dynamic_axes=dynamic,
                              opset_version=OPSET, do_constant_folding=True, dynamo=False)

    _write_atomically(target, write)


def _remove_stale(folder: Path) -> None:
    """Drop graphs of earlier export versions and the runtime caches compiled from them."""
    if not folder.is_dir():
        return
    current = {f"encoder-v{EXPORT_VERSION}.onnx", f"decoder-v{EXPORT_VERSION}.onnx",
               f"native-v{EXPORT_VERSION}.npz"}
    shipped_decoders = [p for p in folder.glob("decoder-*-v*.onnx") if not p.name.endswith(f"-v{EXPORT_VERSION}.onnx")]
    stale = [*folder.glob("*coder-v*.onnx"), *shipped_decoders, *folder.glob("*-v*.npz"),
             *folder.glob("encoder-rest-v*.onnx"), *folder.glob("openvino/*")]
    for path in stale:
        if path.name not in current and path.is_file():
            path.unlink(missing_ok=True)


def onnx_files(model: PromptableSAM) -> tuple[Path, Path]:
    """Paths of the encoder and decoder ONNX files of this model's checkpoint, exported if missing.

    Beside the encoder, its weights for the C encoder of the ``native`` engine are saved too
    (``cache.native_weights``).
    """
    encoder, decoder = graph_paths(checkpoint_key(model), getattr(model, "decoder_sha256", None))
    weights = native_weights(encoder)
    folder = encoder.parent
    if all(p.is_file() for p in (encoder, decoder, weights)):
        return encoder, decoder
    _remove_stale(folder)
    print(f"medseg: exporting the network to ONNX into {folder} (once per checkpoint, a few seconds to a minute)",
          file=sys.stderr)
    net = inference_copy(model)
    if not encoder.is_file():
        _export(ExportEncoder(net.image_encoder), (torch.rand(1, 3, 256, 256),), ["images"], ["embeddings"],
                {"images": {0: "batch"}, "embeddings": {0: "batch"}}, encoder)
    if not weights.is_file():
        import numpy as np

        arrays = native_arrays(net.image_encoder)
        _write_atomically(weights, lambda tmp: np.savez(tmp, **arrays))
    if not decoder.is_file():
        args = (torch.rand(1, 256, 64, 64), torch.rand(2, 3, 2) * 256, torch.tensor([[1.0, 0, -1], [2, 3, 1]]),
                torch.rand(1, 1, 88, 96), torch.ones(1), torch.tensor([1, 2, 3]), torch.tensor([10, 8, 32, 32]),
                torch.tensor([12, 9, 30, 27]))
        dynamic = {"coords": {0: "prompts", 1: "tokens"}, "labels": {0: "prompts", 1: "tokens"},
                   "mask": {0: "mask_batch", 2: "mask_h", 3: "mask_w"}, "mask_tokens": {0: "masks"},
                   "logits": {0: "prompts", 1: "masks", 2: "logits_h", 3: "logits_w"},
                   "iou": {0: "prompts", 1: "masks"}}
        _export(_DecoderGraph(net), args,
                ["embeddings", "coords", "labels", "mask", "has_mask", "mask_tokens", "window", "crop"],
                ["logits", "iou"], dynamic, decoder)
    return encoder, decoder
