"""Root bounds of a MILP: the LP relaxation and the solver's bound after the root node.

They measure how tight a formulation is (Chasseray et al., Fig. 4, root-node gap):
``gap = (objective - bound) / |objective|`` for a minimisation. Used by the benchmark
suites (:mod:`recopt.bench`) and ``benchmarks/bench_loops.py``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from recopt.lazy import pyomo_module
from recopt.models import registry
from recopt.solvers.dispatch import solve_pyomo

if TYPE_CHECKING:
    import pyomo.environ as pyo
else:
    pyo = pyomo_module("pyomo.environ")

#: Solver options that stop a MILP after its root node (root LP + root cuts/heuristics).
ROOT_NODE_OPTIONS = {"highs": {"mip_max_nodes": 1}, "gurobi": {"NodeLimit": 1}}


def root_bounds(instance, model: str, *, solver: str = "highs", time_limit: float | None = None,
                threads: int | None = None, solver_options: dict | None = None,
                **model_options) -> dict:
    """LP-relaxation bound and (HiGHS, Gurobi) dual bound after the root node.

    Returns ``lp_status``, ``lp_bound``, ``lp_seconds`` and, for a solver of
    :data:`ROOT_NODE_OPTIONS`, ``root_status``, ``root_bound``, ``root_seconds``
    (bounds in the model's objective unit, EUR for the loop models; seconds wall).
    """
    kw: dict[str, Any] = dict(solver=solver, time_limit=time_limit, threads=threads)
    t0 = time.perf_counter()
    m = registry.build(model, instance, **model_options)
    pyo.TransformationFactory("core.relax_integer_vars").apply_to(m)
    lp = solve_pyomo(m, **kw)
    out = {"lp_status": lp.status.value, "lp_bound": lp.objective,
           "lp_seconds": time.perf_counter() - t0}
    node = ROOT_NODE_OPTIONS.get(solver.lower())
    if node is not None:
        t1 = time.perf_counter()
        m = registry.build(model, instance, **model_options)
        root = solve_pyomo(m, options={**(solver_options or {}), **node}, **kw)
        out.update(root_status=root.status.value, root_bound=root.bound,
                   root_seconds=time.perf_counter() - t1)
    return out
