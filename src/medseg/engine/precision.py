"""Reduced-precision encoders where the CPU runs them natively, and whether they keep the masks.

medseg's engines run fp32. A bf16 or int8 encoder would be used only where the CPU has native
instructions for it, it is faster, and its masks keep parity with eager fp32 (Dice >= 0.99 on every
prompt of real MRI slices, as ``tests/engine`` requires of every engine). ``medseg benchmark`` runs
``check`` for each candidate this CPU has, so the decision is measured on the machine at hand:

- ``int8`` (VNNI or AMX-int8): the exported encoder quantised by ONNX Runtime's ``quantize_dynamic``
  (int8 weights per output channel, uint8 activations), run in ONNX Runtime;
- ``bf16`` (AVX512-BF16 or AMX-BF16, OpenVINO installed): the exported encoder compiled by OpenVINO
  with ``INFERENCE_PRECISION_HINT=bf16`` (oneDNN's bf16 kernels).

Both are compared with the fp32 ONNX Runtime encoder in interleaved pairs; masks come from the fp32
decoder. ``benchmarks/low_precision_parity.py`` runs the same check from the command line.
"""

from __future__ import annotations

import importlib.util
import logging
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

PARITY = 0.99
NATIVE = {"int8": ("avx512_vnni", "avx_vnni", "amx_int8"), "bf16": ("avx512_bf16", "amx_bf16")}


def candidates(features: list[str]) -> list[str]:
    """The reduced precisions this CPU runs natively (bf16 also needs OpenVINO installed)."""
    found = [p for p, flags in NATIVE.items() if any(f in features for f in flags)]
    if "bf16" in found and importlib.util.find_spec("openvino") is None:
        found.remove("bf16")
    return found


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else float(2 * (a & b).sum() / total)


def quantise_int8(encoder: Path, target: Path, mlp_only: bool = False) -> None:
    """ONNX Runtime dynamic int8 of every MatMul/Gemm of the encoder (or only the MLPs') into ``target``."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    nodes = None
    if mlp_only:
        nodes = [n.name for n in onnx.load(str(encoder)).graph.node if "/mlp/fc" in n.name]
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantiser logs an advice to pre-process the graph, on the root logger
    try:
        quantize_dynamic(str(encoder), str(target), op_types_to_quantize=["MatMul", "Gemm"],
                         nodes_to_quantize=nodes, per_channel=True, weight_type=QuantType.QInt8)
    finally:
        root.setLevel(level)


def low_precision_graphs(precision: str, encoder: Path, decoder: Path, threads: int, folder: Path,
                         mlp_only: bool = False):
    """``OrtGraphs`` whose encoder runs in ``precision`` and whose decoder stays fp32."""
    from medseg.engine.ort_graphs import OrtGraphs

    if precision == "int8":
        quantised = folder / "encoder-int8.onnx"
        quantise_int8(encoder, quantised, mlp_only)
        return OrtGraphs(quantised, decoder, threads)
    if precision != "bf16":
        raise ValueError(f"unknown precision {precision!r}")
    import openvino as ov

    graphs = OrtGraphs(encoder, decoder, threads)
    config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "bf16", "INFERENCE_NUM_THREADS": threads}
    request = ov.Core().compile_model(str(encoder), "CPU", config).create_infer_request()
    graphs._encode = lambda images: np.array(request.infer({"images": images})[0])
    return graphs


def paired_ms(fp32, low, pairs: int) -> tuple[float, float, float]:
    """Median encoder ms of each and the fraction of interleaved pairs in which ``low`` was faster."""
    x = np.random.default_rng(0).random((1, 3, 256, 256), dtype=np.float32)
    fp32.encode(x), low.encode(x)
    times: dict[int, list[float]] = {0: [], 1: []}
    for p in range(pairs):
        for k in ((0, 1) if p % 2 == 0 else (1, 0)):
            start = time.perf_counter()
            (fp32, low)[k].encode(x)
            times[k].append(time.perf_counter() - start)
    faster = float(np.mean(np.array(times[1]) < np.array(times[0])))
    return statistics.median(times[0]) * 1e3, statistics.median(times[1]) * 1e3, faster


def mask_dice(model, graphs) -> list[float]:
    """Dice of the masks of ``graphs`` against eager ``model`` on Colin27 slices 40-140: per slice three
    boxes (20-80%, 30-55% x 25-60%, 50-70% x 40-65% of the slice) and a centre click (best mask)."""
    from medseg.data import sample
    from medseg.io import read_image
    from medseg.predict.predictor import Predictor
    from medseg.predict.segment import windowed

    data, _ = windowed(read_image(sample.path("colin27", "ch2.nii.gz")), "auto")
    eager, fast = Predictor(model, engine="eager"), Predictor(None, engine=graphs)
    scores = []
    for z in range(40, 150, 10):
        h, w = data[z].shape
        eager.set_image(data[z])
        fast.set_image(data[z])
        boxes = np.array([[w * 0.2, h * 0.2, w * 0.8, h * 0.8], [w * 0.3, h * 0.25, w * 0.55, h * 0.6],
                          [w * 0.5, h * 0.4, w * 0.7, h * 0.65]], np.float32)
        scores += [dice(a, b) for a, b in zip(eager.predict_boxes(boxes), fast.predict_boxes(boxes), strict=True)]
        point = np.array([[w * 0.5, h * 0.5]], np.float32)
        scores.append(dice(eager.predict(points=point).best(), fast.predict(points=point).best()))
    return scores


def check(model, precision: str, threads: int, pairs: int = 8, mlp_only: bool = False) -> dict[str, object]:
    """Speed and mask parity of one reduced-precision encoder against fp32; ``used`` says whether it
    would qualify (faster in most pairs and Dice >= PARITY on every prompt)."""
    from medseg.engine.export import onnx_files
    from medseg.engine.ort_graphs import OrtGraphs

    encoder, decoder = onnx_files(model)
    with tempfile.TemporaryDirectory() as tmp:
        low = low_precision_graphs(precision, encoder, decoder, threads, Path(tmp), mlp_only)
        fp32_ms, low_ms, faster = paired_ms(OrtGraphs(encoder, decoder, threads), low, pairs)
        scores = mask_dice(model, low)
    return {"precision": precision + (" (MLPs only)" if mlp_only else ""), "fp32_ms": fp32_ms, "ms": low_ms,
            "faster_in": faster, "pairs": pairs, "dice_mean": float(np.mean(scores)), "dice_min": min(scores),
            "below_parity": sum(s < PARITY for s in scores), "prompts": len(scores),
            "used": faster > 0.5 and min(scores) >= PARITY}


def describe(result: dict[str, object]) -> str:
    """One line: speed against fp32, Dice against eager, verdict."""
    verdict = "qualifies" if result["used"] else "not used"
    return (f"{result['precision']}: encoder {result['ms']:.0f} vs fp32 {result['fp32_ms']:.0f} ms (faster in "
            f"{result['faster_in']:.0%} of {result['pairs']} pairs); masks against eager Dice mean "
            f"{result['dice_mean']:.3f}, min {result['dice_min']:.3f}, {result['below_parity']} of "
            f"{result['prompts']} prompts below {PARITY}: {verdict}")
