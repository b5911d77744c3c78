"""Reduced-precision encoders: which the CPU runs natively, and the speed and parity check."""

from __future__ import annotations

import importlib.util

import pytest

from medseg.engine import available
from medseg.engine import precision as prec
from medseg.engine.benchmark import format_report


def test_candidates_follow_the_native_instructions(monkeypatch):
    assert prec.candidates(["avx2", "fma"]) == []
    assert prec.candidates(["avx2", "avx_vnni"]) == ["int8"]
    real_find = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object() if name == "openvino" else real_find(name))
    assert prec.candidates(["avx512f", "avx512_vnni", "avx512_bf16"]) == ["int8", "bf16"]
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "openvino" else real_find(name))
    assert prec.candidates(["avx512_bf16", "amx_bf16"]) == []  # bf16 runs through OpenVINO


def test_the_report_gives_each_check_and_its_verdict():
    result = {"precision": "int8", "fp32_ms": 343.0, "ms": 263.0, "faster_in": 1.0, "pairs": 8, "dice_mean": 0.958,
              "dice_min": 0.0, "below_parity": 31, "prompts": 44, "used": False}
    row = {"engine": "onnx", "load_s": 0.1, "encoder_ms": 320.0, "encoder_gflops": 226.0,
           "encoder_peak_fraction": 0.9, "decoder_ms": 9.9, "end_to_end_2d_ms": 361.0, "box3d_s": 3.7}
    report = {"cpu": {"model": "x", "cores": 2, "features": ["avx512_vnni"]}, "torch": "2", "threads": 2,
              "repeats": 1, "box3d_slices": 11, "matmul_peak_gflops": 250.0,
              "matmul_peak_samples": {"numpy": [250.0], "torch": [220.0]}, "matmul_peak_after_gflops": 240.0,
              "encoder_gflop": 72.3, "decoder_gflop": 3.55, "exported_decoder_gflop": 2.05, "engines": [row],
              "low_precision": [result, {"precision": "bf16", "error": "no sample data"}],
              "targets": {"engine": "onnx", "checks": []}}
    text = format_report(report)
    assert ("reduced precision, int8: encoder 263 vs fp32 343 ms (faster in 100% of 8 pairs); masks against "
            "eager Dice mean 0.958, min 0.000, 31 of 44 prompts below 0.99: not used") in text
    assert "reduced precision, bf16: not measured (no sample data)" in text
    assert "AVX-512" not in text  # the CPU above reports no avx512f
    report["cpu"]["features"].append("avx512f")
    assert "measured on a CPU with AVX-512" in format_report(report)


@pytest.mark.realdata
@pytest.mark.skipif(not available("onnx"), reason="onnxruntime is not installed")
def test_int8_check_times_it_and_compares_its_masks_with_eager():
    from medseg.build import build_model

    result = prec.check(build_model("litemedsam"), "int8", threads=2, pairs=2)
    assert result["ms"] > 0 and result["fp32_ms"] > 0 and result["prompts"] == 44
    # measured on 2 AVX-512 cores: Dice mean 0.958, min 0.0 (31 of 44 below 0.99): int8 is not used
    assert 0.8 < result["dice_mean"] < 1.0 and result["below_parity"] > 0
    assert result["used"] == (result["faster_in"] > 0.5 and result["dice_min"] >= prec.PARITY)
