"""Solving: the solver-agnostic runner, the Result, statuses and the CLI.

>>> from recopt.solve import solve
>>> result = solve("instances/villena_test_case_1.nc", "LP1")   # doctest: +SKIP
>>> result.attrs["status"], float(result["collective_bill"].sum())  # doctest: +SKIP
"""

from recopt.solve.result import headline_metrics, load_result, save_result, status_of, summary
from recopt.solve.runner import solve
from recopt.solve.solvers import SolveOutcome, solve_pyomo, solver_available
from recopt.solve.status import EXIT_CODES, Status

__all__ = [
    "EXIT_CODES",
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
]
