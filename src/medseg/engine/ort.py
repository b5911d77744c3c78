"""ONNX Runtime engine (CPU execution provider) on the exported graphs, behind the torch Engine interface."""

from __future__ import annotations

import torch

from medseg.engine.base import GraphEngine
from medseg.engine.export import onnx_files
from medseg.engine.ort_graphs import OrtGraphs
from medseg.modeling.sam import PromptableSAM


class OrtEngine(GraphEngine):
    """Runs the encoder and the decoder in ONNX Runtime; built (exported) on first use, then cached."""

    name = "onnx"

    def __init__(self, model: PromptableSAM, threads: int | None = None) -> None:
        super().__init__(model, OrtGraphs(*onnx_files(model), threads or torch.get_num_threads()))
