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
from medseg.engine.graphs import PE
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
    """Prompt encoder and mask decoder as exported: (embeddings, pe, coords, labels, mask, has_mask, mask_tokens,
    crop) -> (logits, iou).

    Inputs: embeddings (1, h, w, 256), channels last: the embedding cells decoded (all 64 x 64, the model as trained,
    or a window of them, ``medseg.engine.graphs.decode_window``); pe (1, h, w, 256): the positional encoding of the
    same cells (the graph holds the whole grid's as the default value of this input, ``PE``); coords (B, T, 2)
    model-space (X, Y); labels (B, T): 1 positive, 0 negative, -1 padding, 2 / 3 box corners
    (``medseg.engine.graphs.prompt_tokens``); mask (1 or B, 1, 4 h, 4 w) low-res logits of the same cells; has_mask
    (1,): 1 to use the mask, 0 for the no-mask embedding (then pass a (1, 1, 4, 4) mask: its (1, 1, 1, 256) product
    is multiplied by 0 and broadcast, so the unused branch costs nothing); mask_tokens (K,) int64: which of the four
    mask tokens to upscale, [0] for the single mask and [1, 2, 3] for the multimask output; crop (4,) int64: the cells
    of ``embeddings`` whose logits are wanted (all: (0, 0, h, w)): only they are upscaled, which is exact (the
    upscaling is local to each cell). Outputs logits (B, K, 4 ch, 4 cw) for a crop of ch x cw cells, IoU (B, K).
    The tokens equal ``PromptEncoder``'s exactly (the added label terms are exact zeros), so runs need no torch. The
    cross-attentions run in their few-token form and the upscaling as two matrix products (``fast_decoder``).

    The embedding and its positional encoding come in channels last and already cut to the window, so the graph
    neither slices nor transposes them: when the window was an operator of the graph (export v15) ONNX Runtime
    copied the whole grid for it (four Slices, 1.9 ms) and transposed both to tokens (0.75 ms) in every decode; a
    decode of a box's cells went 11.8 -> 8.9 ms, a whole-slice one 18.6 -> 15.5 ms (2-core Xeon, ONNX Runtime,
    logits within 3e-5 of v15's). ``medseg.engine.graphs.Graphs.decode`` cuts them (numpy views: no copy for the
    whole grid of an embedding kept channels last, ``channels_last``).
    """

    def __init__(self, model: PromptableSAM) -> None:
        super().__init__()
        prompt = model.prompt_encoder
        self.decoder = model.mask_decoder
        rewrite_cross_attention(self.decoder.transformer)
        self.upscaling = MatMulUpscaling(self.decoder.output_upscaling)
        self.pe_layer, self.mask_downscaling = prompt.pe_layer, prompt.mask_downscaling
        self.register_buffer("label_embeds", torch.cat([e.weight for e in prompt.point_embeddings]))  # (4, C)
        self.register_buffer("not_a_point", prompt.not_a_point_embed.weight.clone())  # (1, C)
        self.register_buffer("no_mask", prompt.no_mask_embed.weight.reshape(1, 1, 1, -1).clone())
        h, w = prompt.input_size
        self.register_buffer("size_xy", torch.tensor([float(w), float(h)]))

    def forward(self, embeddings: torch.Tensor, pe: torch.Tensor, coords: torch.Tensor, labels: torch.Tensor,
                mask: torch.Tensor, has_mask: torch.Tensor, mask_tokens: torch.Tensor,
                crop: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = self.pe_layer.encode((coords + 0.5) / self.size_xy)
        lab = labels[..., None]
        tokens = torch.where(lab == -1, self.not_a_point, tokens)
        for k in range(self.label_embeds.shape[0]):
            tokens = tokens + (lab == k) * self.label_embeds[k]
        dense = has_mask * self.mask_downscaling(mask).permute(0, 2, 3, 1) + (1 - has_mask) * self.no_mask
        return fast_forward_all(self.decoder, self.upscaling, embeddings + dense, pe, tokens, mask_tokens, crop)


def _write_atomically(target: Path, write) -> None:
    """``write(tmp)`` through ``medseg.files.write_file`` (temporary file, fsync, check, rename; 0666 & ~umask)."""
    from medseg.io.verify import verify_for

    write_file(target, lambda tmp: write(str(tmp)), verify_for(target))


def _export(module: nn.Module, args: tuple[torch.Tensor, ...], names: list[str], outputs: list[str],
            dynamic: dict[str, dict[int, str]], target: Path, defaults: dict[str, torch.Tensor] | None = None) -> None:
    """torch.onnx.export (the TorchScript exporter: the dynamo one needs onnxscript) to ``target`` atomically.
    ``defaults``: inputs given a default value (an initializer of the same name, which a feed overrides)."""

    def write(tmp: str) -> None:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, args, tmp, input_names=names, output_names=outputs, dynamic_axes=dynamic,
                              opset_version=OPSET, do_constant_folding=True, dynamo=False)
        if defaults:
            import onnx
            from onnx import numpy_helper

            graph = onnx.load(tmp)
            for name, value in defaults.items():
                graph.graph.initializer.append(numpy_helper.from_array(value.detach().numpy(), name))
            onnx.save(graph, tmp)

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
        with torch.no_grad():
            pe = net.prompt_encoder.dense_pe().permute(0, 2, 3, 1).contiguous()  # (1, 64, 64, 256)
        args = (torch.rand(1, 22, 24, 256), pe[:, 10:32, 8:32], torch.rand(2, 3, 2) * 256,
                torch.tensor([[1.0, 0, -1], [2, 3, 1]]), torch.rand(1, 1, 88, 96), torch.ones(1),
                torch.tensor([1, 2, 3]), torch.tensor([2, 1, 20, 19]))
        dynamic = {"embeddings": {1: "rows", 2: "cols"}, "pe": {1: "rows", 2: "cols"},
                   "coords": {0: "prompts", 1: "tokens"}, "labels": {0: "prompts", 1: "tokens"},
                   "mask": {0: "mask_batch", 2: "mask_h", 3: "mask_w"}, "mask_tokens": {0: "masks"},
                   "logits": {0: "prompts", 1: "masks", 2: "logits_h", 3: "logits_w"},
                   "iou": {0: "prompts", 1: "masks"}}
        _export(_DecoderGraph(net), args,
                ["embeddings", PE, "coords", "labels", "mask", "has_mask", "mask_tokens", "crop"],
                ["logits", "iou"], dynamic, decoder, defaults={PE: pe})
    return encoder, decoder
