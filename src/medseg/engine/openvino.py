"""OpenVINO engine (CPU plugin, fp32) on the exported ONNX graphs; compiled blobs cached by OpenVINO."""

from __future__ import annotations

import numpy as np
import torch

from medseg.engine.base import Engine
from medseg.engine.export import onnx_files
from medseg.modeling.sam import PromptableSAM


def _np(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().numpy(), dtype=np.float32)


class OpenVINOEngine(Engine):
    """Runs the encoder and the decoder with OpenVINO in fp32 (no bf16/int8: see ``medseg.cpu``)."""

    name = "openvino"

    def __init__(self, model: PromptableSAM, threads: int | None = None) -> None:
        import openvino as ov

        super().__init__(model)
        encoder, decoder = onnx_files(model)
        core = ov.Core()
        config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32",
                  "CACHE_DIR": str(encoder.parent / "openvino")}
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        self.encoder = core.compile_model(str(encoder), "CPU", config).create_infer_request()
        self.decoder = core.compile_model(str(decoder), "CPU", config).create_infer_request()

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        out = self.encoder.infer({"images": _np(images)}, share_inputs=True)
        return torch.from_numpy(np.array(out[0]))

    def _decode_all(self, embeddings: torch.Tensor, sparse: torch.Tensor,
                    dense: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.decoder.infer({"embeddings": _np(embeddings), "sparse": _np(sparse),
                                  "dense": _np(dense)}, share_inputs=True)
        return torch.from_numpy(np.array(out[0])), torch.from_numpy(np.array(out[1]))
