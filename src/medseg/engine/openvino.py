"""OpenVINO engine (CPU plugin, fp32) on the exported ONNX graphs; compiled blobs cached by OpenVINO."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medseg.engine.base import GraphEngine
from medseg.engine.export import onnx_files
from medseg.engine.graphs import Graphs
from medseg.modeling.sam import PromptableSAM


class OpenVINOGraphs(Graphs):
    """The exported encoder and decoder compiled by OpenVINO in fp32 (no bf16/int8: see ``medseg.cpu``)."""

    name = "openvino"

    def __init__(self, encoder: Path, decoder: Path, threads: int | None = None) -> None:
        import openvino as ov

        core = ov.Core()
        config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32",
                  "CACHE_DIR": str(encoder.parent / "openvino")}
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        self.encoder = core.compile_model(str(encoder), "CPU", config).create_infer_request()
        self.decoder_path = decoder
        self.decoder = core.compile_model(str(decoder), "CPU", config).create_infer_request()

    def _encode(self, images: np.ndarray) -> np.ndarray:
        return np.array(self.encoder.infer({"images": images}, share_inputs=True)[0])

    def _decode(self, feeds: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        out = self.decoder.infer(feeds, share_inputs=True)
        return np.array(out[0]), np.array(out[1])


class OpenVINOEngine(GraphEngine):
    """Runs the encoder and the decoder with OpenVINO in fp32."""

    name = "openvino"

    def __init__(self, model: PromptableSAM, threads: int | None = None) -> None:
        super().__init__(model, OpenVINOGraphs(*onnx_files(model), threads))
