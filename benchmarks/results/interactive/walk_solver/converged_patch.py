"""Prototype of stop 53 (not shipped): the random walker's system solved to convergence.

Executed before a benchmark script (``PATCH=amg:1e-8``): scipy's ``cg``, as ``medseg.predict.refine.walk`` imports
it, is replaced by CG with a Ruge-Stuben algebraic multigrid preconditioner (pyamg, installed by hand) to the given
relative residual. walk_solver.md has the results.
"""

import os

P = os.environ.get("PATCH", "")
if P.startswith("amg"):
    import scipy.sparse.linalg as _sl

    _cg = _sl.cg
    _tol = float(P.split(":")[1])

    def _amg_cg(A, b, x0=None, rtol=1e-5, maxiter=None, M=None, **kw):
        import pyamg

        ml = pyamg.ruge_stuben_solver(A.tocsr())
        return _cg(A, b, x0=x0, rtol=_tol, maxiter=5000, M=ml.aspreconditioner(cycle="V"))

    _sl.cg = _amg_cg
    print("PATCH", P, flush=True)
