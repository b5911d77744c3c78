"""`medseg benchmark` runs end to end and reports what the speed issue asks for."""

from __future__ import annotations

import pytest

from medseg.engine import available
from medseg.engine.benchmark import BenchConfig, format_report, low_precision_note, run_benchmark


def test_low_precision_note_follows_the_cpu_features():
    assert low_precision_note(["avx2", "fma"]).startswith("fp32 only")
    assert "avx512_vnni" in low_precision_note(["avx2", "avx512_vnni"])


@pytest.mark.realdata
@pytest.mark.skipif(not available("onnx"), reason="onnxruntime is not installed")
def test_benchmark_reports_every_case():
    """One round on the real weights, in-process cases only (the subprocesses are the slow part)."""
    report = run_benchmark(BenchConfig(engines=["onnx"], repeats=1, slices=2, subprocesses=False))
    (row,) = report["engines"]
    assert row["engine"] == "onnx"
    for key in ("encoder_ms", "decoder_ms", "end_to_end_2d_ms", "box3d_s", "encoder_gflops"):
        assert row[key] > 0, key
    assert set(report["matmul_peak_by_library"]) == {"torch", "numpy"}
    assert report["matmul_peak_gflops"] == max(report["matmul_peak_by_library"].values())
    assert 0 < row["encoder_peak_fraction"] < 1.5
    assert 60 < report["encoder_gflop"] < 90  # LiteMedSAM's full-resolution TinyViT: 72.3 GFLOP per slice
    text = format_report(report)
    for label in ("matrix-multiply peak", "encoder (ms/slice)", "decoder (ms/prompt)", "3D box, 2 slices"):
        assert label in text
