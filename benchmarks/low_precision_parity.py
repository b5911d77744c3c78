"""Is a reduced-precision encoder worth it here? Its speed and its masks against eager fp32.

``--precision int8``: the cached ONNX encoder quantised with ONNX Runtime's ``quantize_dynamic`` (int8
weights per output channel, uint8 activations; all matrix products, or only the MLPs with
``--mlp-only``), run in ONNX Runtime. ``--precision bf16``: the same ONNX encoder compiled by OpenVINO
with ``INFERENCE_PRECISION_HINT=bf16`` (oneDNN's bf16 kernels; needs ``pip install openvino``). Either
is timed against the fp32 ONNX Runtime encoder in interleaved pairs; its masks (fp32 decoder) are
compared with the eager engine's on real MRI slices (Colin27, 3 boxes and a centre point per slice).

medseg runs fp32 because neither keeps the masks: the parity bar is Dice >= 0.99 on every prompt.
Measured (benchmarks/results/engines/README.md): on 2 AVX2 cores int8 was 18% faster, Dice 0.94 mean /
0.69 min; on 2 AVX-512 cores with VNNI and bf16 (AMD EPYC, Zen 5) int8 245 vs 315 ms, Dice 0.958 / 0.0,
bf16 176 vs 312 ms, Dice 0.960 / 0.0.

    .venv/bin/python benchmarks/low_precision_parity.py --precision int8|bf16 [--mlp-only] [--pairs 8]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else float(2 * (a & b).sum() / total)


def quantise(encoder: Path, target: Path, mlp_only: bool) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    nodes = None
    if mlp_only:
        nodes = [n.name for n in onnx.load(str(encoder)).graph.node if "/mlp/fc" in n.name]
    quantize_dynamic(str(encoder), str(target), op_types_to_quantize=["MatMul", "Gemm"], nodes_to_quantize=nodes,
                     per_channel=True, weight_type=QuantType.QInt8)


class Bf16Encoder:
    """The fp32 ONNX Runtime graphs with the encoder swapped for OpenVINO's bf16 compilation of it."""

    def __init__(self, graphs, encoder: Path, threads: int) -> None:
        import openvino as ov

        self.graphs = graphs
        config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "bf16",
                  "INFERENCE_NUM_THREADS": threads}
        self.request = ov.Core().compile_model(str(encoder), "CPU", config).create_infer_request()
        graphs._encode = lambda images: np.array(self.request.infer({"images": images})[0])


def paired_ms(fp32, low, pairs: int) -> tuple[float, float, float]:
    """Median ms of each encoder and the fraction of pairs in which the low-precision one was faster."""
    x = np.random.default_rng(0).random((1, 3, 256, 256), dtype=np.float32)
    fp32.encode(x), low.encode(x)
    times: dict[int, list[float]] = {0: [], 1: []}
    for p in range(pairs):
        for k in ((0, 1) if p % 2 == 0 else (1, 0)):
            start = time.perf_counter()
            (fp32, low)[k].encode(x)
            times[k].append(time.perf_counter() - start)
    faster = np.mean(np.array(times[1]) < np.array(times[0]))
    return statistics.median(times[0]) * 1e3, statistics.median(times[1]) * 1e3, float(faster)


def mask_dice(graphs) -> list[float]:
    """Dice of the masks from ``graphs`` against eager on Colin27 slices 40-140."""
    from medseg.build import build_model
    from medseg.data import sample
    from medseg.io import read_image
    from medseg.predict.predictor import Predictor
    from medseg.predict.segment import windowed

    data, _ = windowed(read_image(sample.path("colin27", "ch2.nii.gz")), "auto")
    eager, fast = Predictor(build_model("litemedsam"), engine="eager"), Predictor(None, engine=graphs)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precision", choices=["int8", "bf16"], default="int8", help="reduced precision to try")
    parser.add_argument("--mlp-only", action="store_true", help="int8: quantise only the MLP products")
    parser.add_argument("--pairs", type=int, default=8, help="interleaved timing pairs (default 8)")
    args = parser.parse_args()

    from medseg.build import build_model
    from medseg.cpu import cpu_info, default_threads
    from medseg.engine.export import onnx_files
    from medseg.engine.ort_graphs import OrtGraphs

    encoder, decoder = onnx_files(build_model("litemedsam"))
    threads = default_threads()
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = OrtGraphs(encoder, decoder, threads)
        if args.precision == "int8":
            quantised = Path(tmp) / "encoder-int8.onnx"
            quantise(encoder, quantised, args.mlp_only)
            low = OrtGraphs(quantised, decoder, threads)
        else:
            low = OrtGraphs(encoder, decoder, threads)
            Bf16Encoder(low, encoder, threads)
        ms_fp32, ms_low, faster = paired_ms(fp32, low, args.pairs)
        scores = mask_dice(low)
    name = args.precision + (" (MLPs only)" if args.mlp_only else "")
    print(f"CPU: {cpu_info()['model']}, features: {', '.join(cpu_info()['features'])}")
    print(f"encoder fp32 {ms_fp32:.0f} ms, {name} {ms_low:.0f} ms (faster in {faster:.0%} of {args.pairs} pairs)")
    print(f"{name} masks against eager: Dice mean {np.mean(scores):.3f}, min {min(scores):.3f}, "
          f"{sum(s < 0.99 for s in scores)} of {len(scores)} prompts below 0.99; parity needs >= 0.99 on each")


if __name__ == "__main__":
    main()
