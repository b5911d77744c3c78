"""How the network runs: eager PyTorch or an optimised CPU runtime, behind one interface.

>>> engine = get_engine(build_model(), "auto")
>>> emb = engine.encode(images)                 # (B, 3, 256, 256) -> (B, 256, 64, 64)
>>> logits, iou = engine.decode(emb, boxes=b)   # as PromptableSAM.decode

Engines: ``eager`` (PyTorch), ``native`` (the image encoder in C compiled for this CPU, the decoder in
ONNX Runtime), ``onnx`` (ONNX Runtime) and ``openvino``. ``auto`` picks the first available engine of
AUTO_ORDER, which is ordered by the measurements of ``medseg benchmark``; it falls back to eager when no
runtime is installed or the model was not loaded from a checkpoint file. ``native`` is available where
ONNX Runtime is installed and a C compiler builds the encoder for an x86-64 CPU with AVX2 and FMA
(``medseg.engine.native_graphs``). ``auto`` takes it only on CPUs with AVX-512, where it was measured: on 2
Zen 5 cores it encodes a slice in 0.63x the time of ONNX Runtime (240 vs 381-396 ms) and runs the CT 3D
box command in 0.70x. Its AVX2 build, run on the same CPU, was slower than ONNX Runtime's AVX-512 kernels
(484 vs 400 ms); on an AVX2-only machine it is not measured, so ``auto`` stays with ONNX Runtime there
(``--engine native`` and ``medseg benchmark --engines native,onnx`` to compare).
Measured on 2 shared AVX2 cores, interleaved rounds: ONNX Runtime encodes a slice in 0.82x the time of
OpenVINO and decodes a prompt in 0.82x, and it is the lighter install (OpenVINO is the extra
``medseg[openvino]``); both are about 3x faster than eager on the encoder and 7x on the decoder.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING

from medseg.errors import MedsegError

if TYPE_CHECKING:  # torch is imported only when an engine is built: see ``medseg.engine.cache``
    from medseg.engine.base import Engine
    from medseg.modeling.sam import PromptableSAM

ENGINE_NAMES = ("auto", "eager", "native", "onnx", "openvino")
AUTO_ORDER = ("native", "onnx", "openvino", "eager")
AUTO_NATIVE_FEATURES = ("avx512f",)  # CPU features where auto takes the native engine (measured faster)
_MODULES = {"native": "onnxruntime", "onnx": "onnxruntime", "openvino": "openvino"}


def available(name: str) -> bool:
    """Whether engine ``name`` can run here (its runtime and onnx, for the export, are installed; for
    ``native``, also its encoder compiled, which happens here on first use)."""
    if name == "eager":
        return True
    if not all(importlib.util.find_spec(m) is not None for m in (_MODULES[name], "onnx")):
        return False
    if name == "native":
        from medseg.engine.native_graphs import library

        return library() is not None
    return True


def resolve_name(name: str, model: PromptableSAM) -> str:
    """The concrete engine ``name`` stands for ('auto' resolved)."""
    if name not in ENGINE_NAMES:
        raise MedsegError(f"unknown engine '{name}'; use one of {', '.join(ENGINE_NAMES)}")
    if name != "auto":
        if not available(name):
            if name == "native":
                raise MedsegError("engine 'native' needs onnxruntime, onnx, a C compiler (cc or $CC) and an "
                                  "x86-64 CPU with AVX2 and FMA (and MEDSEG_NATIVE not set to 0); "
                                  "use --engine onnx")
            raise MedsegError(f"engine '{name}' needs the {_MODULES[name]} and onnx packages: "
                              f"pip install {_MODULES[name]} onnx")
        return name
    if not getattr(model, "checkpoint_sha256", None):
        return "eager"
    return auto_order()[0]


def auto_order() -> list[str]:
    """The engines ``auto`` would take, best first: AUTO_ORDER's available ones, native only on CPUs with
    AUTO_NATIVE_FEATURES (eager is always last)."""
    from medseg.cpu import cpu_info

    features = set(cpu_info()["features"])
    native_measured = set(AUTO_NATIVE_FEATURES) <= features
    return [n for n in AUTO_ORDER if (n != "native" or native_measured) and available(n)]


def get_engine(model: PromptableSAM, name: str = "auto", threads: int | None = None) -> Engine:
    """An engine running ``model``; optimised engines are exported on first use and cached on disk.

    Args:
        model: a PromptableSAM, normally from ``medseg.build.build_model`` (its checkpoint sha256 keys the cache).
        name: one of ENGINE_NAMES.
        threads: intra-op threads of the optimised runtimes (default: torch's thread count).
    """
    chosen = resolve_name(name, model)
    if chosen == "eager":
        from medseg.engine.eager import EagerEngine

        return EagerEngine(model)
    if chosen == "native":
        from medseg.engine.native import NativeEngine

        return NativeEngine(model, threads)
    if chosen == "onnx":
        from medseg.engine.ort import OrtEngine

        return OrtEngine(model, threads)
    from medseg.engine.openvino import OpenVINOEngine

    return OpenVINOEngine(model, threads)


def __getattr__(name: str):
    if name == "Engine":  # lazily: importing medseg.engine must not import torch
        from medseg.engine.base import Engine

        return Engine
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ENGINE_NAMES", "Engine", "auto_order", "available", "get_engine", "resolve_name"]
