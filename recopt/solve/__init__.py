"""Solving: the solver-agnostic runner and the Result.

>>> from recopt.solve import solve
>>> result = solve("instances/villena_test_case_1.nc", "LP1")   # doctest: +SKIP
>>> result.attrs["status"], float(result["collective_bill"].sum())  # doctest: +SKIP

The solver adapters live in :mod:`recopt.solvers` (``Status``, ``SolveOutcome``,
``solve_pyomo`` and ``solver_available`` are re-exported here for convenience);
the shell entry point is :mod:`recopt.cli.solve`.
"""

from recopt.solve.result import (
    headline_metrics,
    load_result,
    save_result,
    status_of,
    summary,
    write_result,
)
from recopt.solve.runner import solve
from recopt.solvers import (
    EXIT_CODES,
    RunRecord,
    SolveOutcome,
    Status,
    solve_pyomo,
    solver_available,
)

__all__ = [
    "EXIT_CODES",
    "RunRecord",
    "SolveOutcome",
    "Status",
    "headline_metrics",
    "load_result",
    "save_result",
    "solve",
    "solve_pyomo",
    "solver_available",
    "status_of",
    "summary",
    "write_result",
]
