"""ONNX Runtime engine (CPU execution provider) on the exported graphs."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from medseg.engine.base import Engine
from medseg.engine.export import onnx_files
from medseg.modeling.sam import PromptableSAM


def _options(threads: int, level):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = level
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3  # no warning about saving a hardware-specific optimised model
    # No busy-waiting between operators: on cores shared with other work (the usual case on a laptop)
    # spinning costs more than it saves (measured: encoder -13% CPU time, decoder -34%).
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return opts


def _machine_tag() -> str:
    """ONNX Runtime version and CPU: its fully optimised graphs are specific to both."""
    import onnxruntime as ort

    from medseg.cpu import cpu_info

    info = cpu_info()
    cpu = hashlib.sha256(f"{info['model']}|{','.join(info['features'])}".encode()).hexdigest()[:10]
    return f"ort{ort.__version__}-{cpu}"


def _session(path: Path, threads: int):
    """A session on ``path``; the optimised graph is saved beside it on first use (load 0.45 -> 0.13 s)."""
    import onnxruntime as ort

    level = ort.GraphOptimizationLevel
    optimised = path.with_name(f"{path.stem}.{_machine_tag()}.onnx")
    if optimised.is_file():
        return ort.InferenceSession(str(optimised), _options(threads, level.ORT_DISABLE_ALL),
                                    providers=["CPUExecutionProvider"])
    opts = _options(threads, level.ORT_ENABLE_ALL)
    fd, tmp = tempfile.mkstemp(prefix=f".{optimised.stem}-", suffix=".onnx", dir=path.parent)
    os.close(fd)
    opts.optimized_model_filepath = tmp
    try:
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        os.chmod(tmp, 0o644)
        os.replace(tmp, optimised)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return session


def _np(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().numpy(), dtype=np.float32)


class OrtEngine(Engine):
    """Runs the encoder and the decoder in ONNX Runtime; built (exported) on first use, then cached."""

    name = "onnx"

    def __init__(self, model: PromptableSAM, threads: int | None = None) -> None:
        super().__init__(model)
        threads = threads or torch.get_num_threads()
        encoder, decoder = onnx_files(model)
        self.encoder = _session(encoder, threads)
        self.decoder = _session(decoder, threads)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.encoder.run(None, {"images": _np(images)})[0])

    def _decode_all(self, embeddings: torch.Tensor, sparse: torch.Tensor,
                    dense: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feeds = {"embeddings": _np(embeddings), "sparse": _np(sparse), "dense": _np(dense)}
        logits, iou = self.decoder.run(None, feeds)
        return torch.from_numpy(logits), torch.from_numpy(iou)
