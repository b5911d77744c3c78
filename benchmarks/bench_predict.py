"""Engine benchmark as a script: the same code as `medseg benchmark`.

Usage: python benchmarks/bench_predict.py [--json] [--repeats N] [--engines eager,onnx,openvino]
"""

from __future__ import annotations

import sys

from medseg.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["benchmark", *sys.argv[1:]]))
