"""CPU description and the instruction-set features that matter for inference speed."""

from __future__ import annotations

import os
import platform
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
