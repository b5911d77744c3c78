"""Is a reduced-precision encoder worth it here? Its speed and its masks against eager fp32.

The check of ``medseg.engine.precision`` (which ``medseg benchmark`` runs for the precisions the CPU
has natively), for one precision, whether or not the CPU has it natively:

    .venv/bin/python benchmarks/low_precision_parity.py --precision int8|bf16 [--mlp-only] [--pairs 8]

Measured (benchmarks/results/engines/README.md): on 2 AVX2 cores int8 was 18% faster, Dice 0.94 mean /
0.69 min; on 2 AVX-512 cores with VNNI and bf16 (AMD EPYC, Zen 5) int8 263 vs 343 ms, Dice 0.958 / 0.0,
bf16 (OpenVINO) 182 vs 342 ms, Dice 0.960 / 0.0. The parity bar is 0.99 on every prompt.
"""

from __future__ import annotations

import argparse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precision", choices=["int8", "bf16"], default="int8", help="reduced precision to try")
    parser.add_argument("--mlp-only", action="store_true", help="int8: quantise only the MLP products")
    parser.add_argument("--pairs", type=int, default=8, help="interleaved timing pairs (default 8)")
    args = parser.parse_args()

    from medseg.build import build_model
    from medseg.cpu import cpu_info, default_threads
    from medseg.engine.precision import check, describe

    cpu = cpu_info()
    print(f"CPU: {cpu['model']}, features: {', '.join(cpu['features'])}")
    print(describe(check(build_model("litemedsam"), args.precision, default_threads(), args.pairs, args.mlp_only)))


if __name__ == "__main__":
    main()
