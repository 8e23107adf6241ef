"""Solver adapters: solve a declarative Pyomo model and report a typed outcome.

>>> from recopt.solvers import solve_pyomo
>>> outcome = solve_pyomo(model, "highs", time_limit=60)      # doctest: +SKIP
>>> outcome.status, outcome.objective                         # doctest: +SKIP

* :mod:`.status` — :class:`Status`, its exit codes, :func:`worst`;
* :mod:`.outcome` — :class:`SolveOutcome` (one solver call), :func:`relative_gap`;
* :mod:`.record` — :class:`RunRecord`, the typed metadata of a whole run;
* :mod:`.highs` — HiGHS direct (:func:`new_highs`, :class:`HighsParametricLP`,
  :class:`HighsColumnLP`);
* :mod:`.pyomo_factory` — any Pyomo ``SolverFactory`` solver;
* :mod:`.dispatch` — :func:`solve_pyomo`, :func:`solver_available`, :func:`tuned_options`;
* Pyomo is imported on first use (:mod:`recopt.lazy`), with its SciPy hook deferred.
"""

from recopt.solvers.dispatch import solve_pyomo, solver_available, tuned_options
from recopt.solvers.highs import (
    HighsArrayLP,
    HighsColumnLP,
    HighsParametricLP,
    highs_version,
    new_highs,
    reset_highs_pool,
)
from recopt.solvers.outcome import SolveOutcome, relative_gap
from recopt.solvers.record import RunRecord
from recopt.solvers.status import EXIT_CODES, Status, worst

__all__ = [
    "EXIT_CODES",
    "HighsArrayLP",
    "HighsColumnLP",
    "HighsParametricLP",
    "RunRecord",
    "SolveOutcome",
    "Status",
    "highs_version",
    "new_highs",
    "relative_gap",
    "reset_highs_pool",
    "solve_pyomo",
    "solver_available",
    "tuned_options",
    "worst",
]
