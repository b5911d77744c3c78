"""How far the random walker's truncated solve (``medseg.predict.refine.walk``) is from the converged walker.

The CVPR25 protocol (five clicks, ``litemedsam``, atlas route off) on a few structures; every walk the session runs
(a new object's border, ``medseg.predict.refine``; a refused positive correction, ``medseg.predict.walked``) is taken
as it happens and its system solved twice: as shipped (Jacobi-preconditioned CG to a relative residual of 1e-4) and
to convergence (the same CG to 1e-10). Per walk: the free voxels, milliseconds of each, the voxels over 0.5 in the
converged answer and how many fall on the other side in the shipped one. PyRadiomics data: measurement only.

    PYTHONPATH=src .venv/bin/python benchmarks/walk_solver.py --encodes DIR
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from interactive_eval import load  # noqa: E402
from training_clicks import cvpr25_clicks, structures  # noqa: E402

from medseg.cpu import describe_machine  # noqa: E402
from medseg.predict import refine, walked  # noqa: E402

CASES = (("pyradiomics", "brain1", (1,)), ("pyradiomics", "brain2", (1,)), ("pyradiomics", "lung1", (1,)),
         ("pyradiomics", "lung2", (1,)), ("spine", "ct_vert", (21,)), ("colin27", "aal", (1, 57)))


def solved(image, fg, bg, z_weight, rtol: float, maxiter: int) -> tuple[np.ndarray, float]:
    """The walk's free voxels' probabilities solved to ``rtol``, and the seconds the solve took."""
    from scipy.sparse.linalg import LinearOperator, cg

    matrix, rhs, diag, _ = refine.laplacian_system(image, fg, bg, z_weight)
    start = time.perf_counter()
    jacobi = LinearOperator(matrix.shape, matvec=lambda v: v / diag)
    solution, _ = cg(matrix, rhs, x0=rhs / diag, rtol=rtol, maxiter=maxiter, M=jacobi)
    return solution, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--encodes", type=Path, default=None, help="folder keeping slice embeddings between runs")
    args = ap.parse_args()
    print(f"machine: {describe_machine()}")
    shipped = refine.walk
    rows: list[tuple[str, int, float, float, int, int]] = []
    current = [""]

    def compared(image, fg, bg, z_weight=1.0, beta=refine.BETA):
        if (~(fg | bg)).any():
            quick, quick_s = solved(image, fg, bg, z_weight, 1e-4, 1000)
            exact, exact_s = solved(image, fg, bg, z_weight, 1e-10, 100_000)
            over = exact > 0.5
            rows.append((current[0], exact.size, 1000 * quick_s, 1000 * exact_s, int(over.sum()),
                         int(((quick > 0.5) != over).sum())))
            print(f"  walk of {exact.size} voxels: shipped {rows[-1][2]:.0f} ms, converged {rows[-1][3]:.0f} ms, "
                  f"{rows[-1][4]} over 0.5, {rows[-1][5]} on the other side as shipped", flush=True)
        return shipped(image, fg, bg, z_weight, beta)

    refine.walk = compared
    walked.walk = compared
    p = load("litemedsam", None, {}, "auto", args.encodes)
    for key, session, truth in structures(p, CASES):
        print(key, flush=True)
        current[0] = key
        cvpr25_clicks(session, truth)
    if rows:
        share = [r[5] / max(r[4], 1) for r in rows]
        print(f"{len(rows)} walks: voxels on the other side, median {100 * statistics.median(share):.1f} % of those "
              f"over 0.5, max {100 * max(share):.1f} %; shipped median {statistics.median(r[2] for r in rows):.0f} ms, "
              f"converged median {statistics.median(r[3] for r in rows):.0f} ms")


if __name__ == "__main__":
    main()
