"""Native engine: LiteMedSAM's image encoder in C compiled for this CPU, the decoder in ONNX Runtime
(``medseg.engine.native_graphs``); exported and built on first use, then cached."""

from __future__ import annotations

import torch

from medseg.engine.base import GraphEngine
from medseg.engine.cache import native_weights
from medseg.engine.export import onnx_files
from medseg.engine.native_graphs import NativeGraphs
from medseg.modeling.sam import PromptableSAM


class NativeEngine(GraphEngine):
    """Runs the encoder in C and the decoder in ONNX Runtime."""

    name = "native"

    def __init__(self, model: PromptableSAM, threads: int | None = None) -> None:
        encoder, decoder = onnx_files(model)
        super().__init__(model, NativeGraphs(native_weights(encoder), decoder, threads or torch.get_num_threads()))
