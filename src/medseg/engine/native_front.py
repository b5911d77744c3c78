"""The encoder's full-resolution front as a C kernel compiled for this CPU on first use (``front.c``).

LiteMedSAM's TinyViT runs its 1x1 stem, the two MBConv blocks of stage 0 and the first patch merging
at 256x256, where each block's 256-channel hidden tensor is 64 MiB. ONNX Runtime runs them as separate
convolutions and GELUs, each a pass through memory (about 150 ms of a 580 ms one-thread encode); the
kernel runs each block row by row with the hidden rows in cache and every GELU applied in registers
(93 ms on one Zen 5 core). ONNX Runtime then runs the rest of the encoder from the front's tokens
(``encoder-rest`` graph). Outputs agree with the ONNX graph to about 2e-6 of their scale.

The kernel is built with the system C compiler (``$CC``, else ``cc``) and ``-march=native`` into the
engine cache, keyed by the source, the compiler and the CPU. Without a compiler, without AVX2 + FMA,
or with ``MEDSEG_NATIVE=0``, the whole encoder runs in ONNX Runtime as before: same masks, slower.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import numpy as np

SOURCE = Path(__file__).with_name("front.c")
NATIVE_ENV = "MEDSEG_NATIVE"
_FLOATS = ctypes.POINTER(ctypes.c_float)


def _compiler() -> str | None:
    cc = os.environ.get("CC") or "cc"
    return shutil.which(cc)


def library(folder: Path) -> Path | None:
    """The compiled kernel in ``folder`` (built on first use, about 0.5 s), or None if it cannot be."""
    from medseg.cpu import cpu_info

    if os.environ.get(NATIVE_ENV, "1") == "0":
        return None
    info = cpu_info()
    compiler = _compiler()
    if compiler is None or not {"avx2", "fma"} <= set(info["features"]):
        return None
    tag = f"{SOURCE.read_bytes().hex()}|{compiler}|{info['model']}|{','.join(info['features'])}"
    target = folder / f"front-{hashlib.sha256(tag.encode()).hexdigest()[:16]}.so"
    if target.is_file():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".front-", suffix=".so", dir=folder)
    os.close(fd)
    try:
        done = subprocess.run([compiler, "-O3", "-march=native", "-shared", "-fPIC", "-pthread", "-o", tmp,
                               str(SOURCE)], capture_output=True, timeout=120)
        if done.returncode != 0:
            return None
        os.chmod(tmp, 0o755)
        os.replace(tmp, target)
    except (OSError, subprocess.SubprocessError):
        return None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


class NativeFront:
    """(B, 3, S, S) float32 images -> (B, S/2, S/2, C) channels-last tokens, on ``threads`` threads.

    Args:
        lib: the compiled kernel (``library``).
        params: the ``.npz`` written by ``medseg.engine.fast_encoder.save_front``: ``params`` (the folded
            weights in the kernel's order) and ``dims`` (stem width, channels, hidden channels, MBConv
            blocks, output channels, input side).
    """

    def __init__(self, lib: Path, params: Path) -> None:
        with np.load(params) as saved:
            self.params = np.ascontiguousarray(saved["params"], dtype=np.float32)
            self.mid, self.channels, self.hidden, self.blocks, self.out_channels, self.side = (
                int(v) for v in saved["dims"])
        fn = ctypes.CDLL(str(lib)).medseg_front
        fn.argtypes = [_FLOATS, ctypes.c_int, ctypes.c_int, _FLOATS, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                       ctypes.c_int, ctypes.c_int, _FLOATS, _FLOATS, ctypes.c_int]
        fn.restype = ctypes.c_int
        self._fn = fn
        self._local = threading.local()  # work buffers of each calling thread (two (S, S, C) tensors)

    def __call__(self, images: np.ndarray, threads: int) -> np.ndarray:
        """The tokens of ``images``; for one image a buffer of this thread, overwritten by its next call."""
        s, half = self.side, self.side // 2
        if images.shape[1:] != (3, s, s):
            raise ValueError(f"the encoder front takes (B, 3, {s}, {s}) images, got {images.shape}")
        images = np.ascontiguousarray(images, dtype=np.float32)
        work = getattr(self._local, "work", None)
        if work is None:
            work = self._local.work = np.empty(2 * s * s * self.channels, np.float32)
            self._local.tokens = np.empty((1, half, half, self.out_channels), np.float32)
        # One image (every encode medseg runs) reuses the thread's token buffer: the caller hands it to
        # the rest of the encoder before this thread calls again.
        tokens = self._local.tokens if images.shape[0] == 1 else np.empty(
            (images.shape[0], half, half, self.out_channels), np.float32)
        for image, out in zip(images, tokens, strict=True):
            failed = self._fn(image.ctypes.data_as(_FLOATS), s, s, self.params.ctypes.data_as(_FLOATS), self.mid,
                              self.channels, self.hidden, self.blocks, self.out_channels,
                              work.ctypes.data_as(_FLOATS), out.ctypes.data_as(_FLOATS), threads)
            if failed:
                raise MemoryError("the encoder front could not allocate its row buffers or threads")
        return tokens


def load_front(rest: Path, params: Path) -> NativeFront | None:
    """The front kernel for these exported files, or None where it cannot run (see the module doc)."""
    if not (rest.is_file() and params.is_file()):
        return None
    lib = library(rest.parent.parent / "native")
    return NativeFront(lib, params) if lib is not None else None
