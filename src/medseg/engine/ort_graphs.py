"""ONNX Runtime sessions (CPU execution provider) on the exported graphs, numpy in and out, no torch."""

from __future__ import annotations

import functools
import hashlib
import threading
from pathlib import Path

import numpy as np

from medseg.engine.graphs import Graphs
from medseg.errors import MedsegError
from medseg.files import write_file


def _options(threads: int, level, spin: bool, planned: bool):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.enable_mem_pattern = planned
    opts.graph_optimization_level = level
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3  # no warning about saving a hardware-specific optimised model
    # Busy-waiting between operators pays off only for the decoder's many short operators: decoder
    # 33.0 -> 29.0 ms median with the same CPU time; the 3D box process was faster in 3 of 3 paired
    # runs with spinning in the decoder only, and not consistently with spinning in both sessions
    # (benchmarks/results/engines/README.md).
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    _share_one_arena()
    opts.add_session_config_entry("session.use_env_allocators", "1")
    return opts


@functools.cache
def _share_one_arena() -> None:
    """Register one CPU arena with ONNX Runtime's environment, for every session of the process.

    Each session otherwise grows an arena of its own: a 3D walk's two-thread encode, its lanes and its
    decoders held four, and the memory the first encode had used was not reused by the lanes. With one shared
    arena the CT 3D box process went 4.71 -> 4.63 s (faster in 6 of 6 interleaved pairs) and its
    peak 960 -> 829 MiB, with 2D encodes unchanged (benchmarks/results/engines/README.md). The arena is
    thread-safe; runs side by side take separate blocks from it.
    """
    import onnxruntime as ort

    info = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
    try:
        ort.create_and_register_allocator(info, ort.OrtArenaCfg(0, -1, -1, -1))  # ONNX Runtime's defaults
    except Exception:  # the host program registered one already: the sessions share that one
        pass


def _machine_tag() -> str:
    """ONNX Runtime version and CPU: its fully optimised graphs are specific to both."""
    import onnxruntime as ort

    from medseg.cpu import cpu_info

    info = cpu_info()
    cpu = hashlib.sha256(f"{info['model']}|{','.join(info['features'])}".encode()).hexdigest()[:10]
    return f"ort{ort.__version__}-{cpu}"


def session(path: Path, threads: int, spin: bool = False, planned: bool = True):
    """A session on ``path``; the optimised graph is saved beside it on first use (load 0.45 -> 0.13 s).

    ``spin``: worker threads busy-wait between operators instead of sleeping. ``planned``: each run
    allocates one block sized by a memory plan; without it, runs side by side share the arena's
    buffers (two concurrent one-thread encodes: 717 -> 541 MiB resident, same speed).
    """
    import onnxruntime as ort

    level = ort.GraphOptimizationLevel
    optimised = path.with_name(f"{path.stem}.{_machine_tag()}.onnx")
    if optimised.is_file():
        return ort.InferenceSession(str(optimised), _options(threads, level.ORT_DISABLE_ALL, spin, planned),
                                    providers=["CPUExecutionProvider"])
    opts = _options(threads, level.ORT_ENABLE_ALL, spin, planned)
    made = []

    def optimise(tmp: Path) -> None:  # the session writes its optimised graph to ``tmp`` as it loads
        opts.optimized_model_filepath = str(tmp)
        made.append(ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"]))

    try:
        write_file(optimised, optimise)
    except MedsegError:  # a cache folder that cannot be written: optimise again next time
        if not made:
            opts.optimized_model_filepath = ""
            made.append(ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"]))
    return made[0]


class OrtGraphs(Graphs):
    """The exported encoder and decoder in ONNX Runtime.

    Args:
        encoder, decoder: paths of the exported graphs (``medseg.engine.cache.graph_paths``).
        threads: intra-op threads of each session.
    """

    name = "onnx"

    def __init__(self, encoder: Path, decoder: Path, threads: int) -> None:
        self.encoder_path, self.threads = encoder, threads
        self.decoder_path = decoder
        self.lane_encoder = None  # the session of side-by-side encodes, made on first use
        self.quiet_decoder = None  # the decoder while lanes encode (one thread, no spinning), made with them
        self._lanes_running = 0
        self._lock = threading.Lock()
        self._lane_runs: dict[object, object] = {}  # tag -> stop handle of a running lane encode
        self._open_encoder()
        self.decoder = session(decoder, threads, spin=True)

    def _open_encoder(self) -> None:
        self.encoder = session(self.encoder_path, self.threads)
        self.input_size = int(self.encoder.get_inputs()[0].shape[-1])  # side of the square model input

    def _encode(self, images: np.ndarray) -> np.ndarray:
        return self.encoder.run(None, {"images": images})[0]

    def open_lanes(self) -> int:
        """Two lanes, each a run of one shared session with half the threads (runs are thread-safe).

        On 2 AVX2 cores two one-thread encodes side by side took 0.82-0.86 s per slice, one two-thread
        encode 0.91-1.02 s; on 2 AVX-512 cores 0.30-0.31 against 0.31-0.34 s, and a walk through a CT
        read ahead on one two-thread encoder instead was slower (5.26 vs 4.85 s). Two lanes, not one
        per thread, keep the memory of runs side by side bounded on machines with many cores (where the
        split is not measured).
        """
        if self.threads < 2:
            return 1
        if self.quiet_decoder is None:
            self._open_lane_encoder()
            self.quiet_decoder = session(self.decoder_path, 1)
        return 2

    def _open_lane_encoder(self) -> None:
        self.lane_encoder = session(self.encoder_path, self.threads // 2, planned=False)

    def _encode_lane(self, images: np.ndarray, tag: object) -> np.ndarray:
        handle = self._stop_handle()
        if tag is not None:
            self._lane_runs[tag] = handle
        with self._lock:
            self._lanes_running += 1
        try:
            return self._run_lane(images, handle)
        finally:
            with self._lock:
                self._lanes_running -= 1
            if tag is not None:
                self._lane_runs.pop(tag, None)

    def _stop_handle(self):
        import onnxruntime as ort

        return ort.RunOptions()

    def _run_lane(self, images: np.ndarray, options) -> np.ndarray:
        return self.lane_encoder.run(None, {"images": images}, options)[0]

    def stop_lanes(self, tags: list) -> None:
        """Stop those runs: ONNX Runtime ends them between operators (about 10 ms)."""
        for tag in tags:
            handle = self._lane_runs.get(tag)
            if handle is not None:
                self._stop(handle)

    def _stop(self, options) -> None:
        options.terminate = True

    def _decode(self, feeds: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """On the spinning two-thread decoder (11.9 vs 14.6 ms without spinning, 2 AVX-512 cores), or on
        the quiet one while lanes encode: there, spinning threads took the cores from the encoders (CT 3D
        box process 4.67 -> 4.46 s, faster in 6 of 7 pairs; benchmarks/results/engines/README.md)."""
        decoder = self.quiet_decoder if self._lanes_running else self.decoder
        logits, iou = decoder.run(None, feeds)
        return logits, iou
