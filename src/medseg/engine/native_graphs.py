"""The ``native`` engine's runtime, without torch: the image encoder in C (``tinyvit.c``) compiled for
this CPU, the decoder in ONNX Runtime.

ONNX Runtime runs LiteMedSAM's TinyViT as about 500 separate operators, each a pass through memory: the
full-resolution stage's 64 MiB GELU tensors, the transposes and concatenations around windowed
attention, the adds and norms around every matrix product. The C encoder runs each layer on rows or
windows that stay in cache and applies bias, residual, GELU and LayerNorm to each product's tile before
it is stored. On 2 Zen 5 cores (one thread, same process, medians of 5): 443 ms per slice against 577 ms
for ONNX Runtime; two one-thread encodes side by side 224-238 ms per slice against 305 ms; embeddings
within 6e-6 of the eager encoder's scale (benchmarks/results/engines/README.md).

The kernel is compiled with the system C compiler (``$CC``, else ``cc``) and ``-march=native`` into the
engine cache on first use (about 1 s), keyed by its source, the compiler and the CPU. The engine is
available where that works on an x86-64 CPU with AVX2 and FMA; ``MEDSEG_NATIVE=0`` turns it off.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import threading
from pathlib import Path

import numpy as np

from medseg.engine.ort_graphs import OrtGraphs
from medseg.errors import MedsegError
from medseg.files import write_file

SOURCE = Path(__file__).with_name("tinyvit.c")
SOURCES = (SOURCE, SOURCE.with_name("tinyvit_ops.h"))  # what the build depends on
NATIVE_ENV = "MEDSEG_NATIVE"
_FLOATS = ctypes.POINTER(ctypes.c_float)
_INTS = ctypes.POINTER(ctypes.c_int)


def compile_encoder(target: Path, flags: tuple[str, ...] = ("-march=native",)) -> bool:
    """Compile ``tinyvit.c`` into the shared library ``target`` (written whole or not at all)."""
    compiler = shutil.which(os.environ.get("CC") or "cc")
    if compiler is None:
        return False

    def build(tmp: Path) -> None:
        done = subprocess.run([compiler, "-O3", *flags, "-shared", "-fPIC", "-pthread", "-o", str(tmp), str(SOURCE)],
                              capture_output=True, timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"{compiler} failed")
        os.chmod(tmp, 0o755)

    try:  # a cache folder that cannot be written means no build, not an error
        target.parent.mkdir(parents=True, exist_ok=True)  # kept: the failure marker goes there too
        write_file(target, build)
        return True
    except (OSError, MedsegError, subprocess.SubprocessError):
        return False


def library() -> Path | None:
    """The encoder compiled for this CPU (built on first use), or None where it cannot be built or is off."""
    from medseg.cpu import cpu_info
    from medseg.engine.cache import cache_root

    if os.environ.get(NATIVE_ENV, "1") == "0":
        return None
    info = cpu_info()
    compiler = shutil.which(os.environ.get("CC") or "cc")
    if compiler is None or not {"avx2", "fma"} <= set(info["features"]):
        return None
    code = hashlib.sha256(b"".join(p.read_bytes() for p in SOURCES)).hexdigest()
    tag = f"{code}|{compiler}|{info['model']}|{info['features']}"
    target = cache_root() / "native" / f"tinyvit-{hashlib.sha256(tag.encode()).hexdigest()[:16]}.so"
    failed = target.with_suffix(".failed")  # a build that failed is not tried again by every process
    if target.is_file():
        return target
    if failed.is_file():
        return None
    if compile_encoder(target):
        return target
    try:
        failed.touch()
    except OSError:
        pass
    return None


class NativeEncoder:
    """(B, 3, S, S) float32 images -> (B, 256, S/4, S/4) embeddings on ``threads`` threads.

    Args:
        lib: the compiled encoder (``library()``).
        weights: the ``.npz`` of ``medseg.engine.fast_encoder.native_arrays``: ``params`` and ``dims``.
    """

    def __init__(self, lib: Path, weights: Path) -> None:
        self.weights = weights
        with np.load(weights) as saved:
            self.params = np.ascontiguousarray(saved["params"], dtype=np.float32)
            self.dims = np.ascontiguousarray(saved["dims"], dtype=np.int32)
        dll = ctypes.CDLL(str(lib))
        dll.medseg_encoder_work.argtypes = [_INTS]
        dll.medseg_encoder_work.restype = ctypes.c_long
        self._fn = dll.medseg_encoder
        self._fn.argtypes = [_FLOATS, _FLOATS, _INTS, _FLOATS, _FLOATS, ctypes.c_int, _INTS]
        self._fn.restype = ctypes.c_int
        self.work_floats = int(dll.medseg_encoder_work(self.dims.ctypes.data_as(_INTS)))
        self.side = int(self.dims[0])
        stages = int(self.dims[6])
        strides = [int(self.dims[7 + 6 * s + 5]) for s in range(stages) if self.dims[7 + 6 * s + 4]]
        grid = self.side // 2 // int(np.prod(strides))
        self.out_shape = (int(self.dims[7 + 6 * stages]), grid, grid)
        self._local = threading.local()  # each calling thread's work buffer (about 48 MiB)

    def __call__(self, images: np.ndarray, threads: int, stop: ctypes.c_int | None = None) -> np.ndarray:
        """Embeddings of ``images``; a nonzero ``stop`` ends the run within a few ms (RuntimeError)."""
        s = self.side
        if images.ndim != 4 or images.shape[1:] != (3, s, s):
            raise ValueError(f"the encoder takes (B, 3, {s}, {s}) images, got {images.shape}")
        images = np.ascontiguousarray(images, dtype=np.float32)
        work = getattr(self._local, "work", None)
        if work is None:
            work = self._local.work = np.empty(self.work_floats, np.float32)
        out = np.empty((images.shape[0], *self.out_shape), np.float32)
        flag = ctypes.byref(stop) if stop is not None else None
        for image, emb in zip(images, out, strict=True):
            code = self._fn(image.ctypes.data_as(_FLOATS), self.params.ctypes.data_as(_FLOATS),
                            self.dims.ctypes.data_as(_INTS), work.ctypes.data_as(_FLOATS),
                            emb.ctypes.data_as(_FLOATS), threads, flag)
            if code == 2:
                raise RuntimeError("encode terminated: its lane was stopped")
            if code:
                raise MemoryError("the native encoder could not allocate its buffers or start its threads")
        return out


class NativeGraphs(OrtGraphs):
    """The C encoder and the exported decoder in ONNX Runtime (``OrtGraphs`` for everything else).

    Args:
        weights: the encoder's weights (``medseg.engine.cache.native_weights``).
        decoder: the exported decoder graph.
        threads: threads of an encode and of the decoder's session; lanes take half each.
        lib: the compiled encoder (default: ``library()``, which must not be None).
    """

    name = "native"

    def __init__(self, weights: Path, decoder: Path, threads: int, lib: Path | None = None) -> None:
        self.native = NativeEncoder(lib or library(), weights)
        super().__init__(weights, decoder, threads)

    def _open_encoder(self) -> None:
        self.encoder = None
        self.input_size = self.native.side

    def _encode(self, images: np.ndarray) -> np.ndarray:
        return self.native(images, self.threads)

    def _open_lane_encoder(self) -> None:
        self.lane_encoder = None  # lanes call the same compiled encoder with one thread each

    def _stop_handle(self) -> ctypes.c_int:
        return ctypes.c_int(0)

    def _run_lane(self, images: np.ndarray, stop: ctypes.c_int) -> np.ndarray:
        return self.native(images, max(1, self.threads // 2), stop)

    def _stop(self, stop: ctypes.c_int) -> None:
        stop.value = 1
