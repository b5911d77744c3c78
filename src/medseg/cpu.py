"""CPU description and the instruction-set features that matter for inference speed."""

from __future__ import annotations

import contextlib
import functools
import os
import platform
import threading
from pathlib import Path

FEATURES = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8", "avx_vnni")


def cpu_info() -> dict[str, object]:
    """Model name, logical cores and which of FEATURES the CPU reports (Linux /proc/cpuinfo)."""
    model, flags = platform.processor() or platform.machine(), set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() in ("flags", "Features") and not flags:
                flags = set(value.split())
    return {"model": model, "cores": os.cpu_count(), "features": [f for f in FEATURES if f in flags]}


def describe_machine() -> str:
    """One line for benchmark reports: CPU model, cores, its vector features, memory and the load average."""
    info = cpu_info()
    features = ", ".join(info["features"]) or "no AVX2"
    line = f"{info['cores']} cores {info['model']} ({features})"
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        line += f", {pages * size / 2**30:.0f} GiB"
    except (ValueError, OSError, AttributeError):
        pass
    if hasattr(os, "getloadavg"):
        line += f", load average {os.getloadavg()[0]:.1f}"
    return line


def physical_cores() -> int:
    """Cores this process may use, counting hyper-threads of one core once (Linux), else logical cores."""
    try:
        usable = os.sched_getaffinity(0)
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
    cores = set()
    for cpu in usable:
        siblings = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list")
        cores.add(siblings.read_text().strip() if siblings.exists() else str(cpu))
    return max(1, len(cores))


def default_threads() -> int:
    """Intra-op threads for a runtime started without torch: $OMP_NUM_THREADS, else the physical cores
    (what torch and ONNX Runtime choose by default)."""
    env = os.environ.get("OMP_NUM_THREADS", "")
    return int(env) if env.isdigit() and int(env) > 0 else physical_cores()


@functools.cache
def _blas_controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


_blas_lock = threading.Lock()
_blas_users = 0
_blas_limiter = None


@contextlib.contextmanager
def one_blas_thread():
    """Context manager: numpy's BLAS on one thread inside it (restored when the last user leaves).

    For the small products between two ONNX Runtime runs (resizing a decode's logits, a few ms):
    OpenBLAS's worker threads busy-wait after a product, and on 2 cores they took the cores from the
    decoder's threads that ran next. A click decode (predict with a box, 256x256 slice) went 110 -> 41 ms
    median on 2 AVX2 cores (``benchmarks/results/interactive/speed.md``).

    BLAS's thread count is global to the process, so the users are counted: a thread leaving must not give
    BLAS its threads back while another (a server session's decode) is still inside, or that one's product would run
    on a different thread count and round differently.
    """
    global _blas_users, _blas_limiter
    with _blas_lock:
        if _blas_users == 0:
            _blas_limiter = _blas_controller().limit(limits=1, user_api="blas")
        _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0 and _blas_limiter is not None:
                _blas_limiter.restore_original_limits()
                _blas_limiter = None
