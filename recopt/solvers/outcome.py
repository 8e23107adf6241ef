"""What one solver call said: :class:`SolveOutcome`, and the relative gap rule.

Every adapter (:mod:`recopt.solvers.highs`, :mod:`recopt.solvers.pyomo_factory`)
returns a :class:`SolveOutcome`; the runner and the algorithms combine them into a
:class:`~recopt.solvers.record.RunRecord`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from recopt.errors import SolverError
from recopt.lazy import pyomo_module
from recopt.solvers.status import Status

if TYPE_CHECKING:
    import pyomo.environ as pyo
else:
    pyo = pyomo_module("pyomo.environ")


def relative_gap(objective: float, bound: float) -> float:
    """``|objective - bound| / max(1, |objective|)``; NaN unless both are finite."""
    if not (math.isfinite(objective) and math.isfinite(bound)):
        return math.nan
    return abs(objective - bound) / max(1.0, abs(objective))


@dataclass
class SolveOutcome:
    """What a solver said about one Pyomo model.

    Attributes
    ----------
    status : Status
    message : str
        The solver's own termination wording, for humans.
    objective : float
        Objective value of the solution loaded (NaN without a solution), in the
        model's units (EUR for the bill models).
    bound : float
        Best proven bound (equals ``objective`` for a solved LP; NaN if unknown).
    has_solution : bool
    solver : str
    solver_version : str
    compile_seconds : float
        Time spent turning the Pyomo model into the solver's input.
    solve_seconds : float
        Time spent inside the solver.
    n_variables, n_constraints, n_integer : int
        Size of the problem the solver saw.
    """

    status: Status
    message: str = ""
    objective: float = math.nan
    bound: float = math.nan
    has_solution: bool = False
    solver: str = ""
    solver_version: str = ""
    compile_seconds: float = 0.0
    solve_seconds: float = 0.0
    n_variables: int = 0
    n_constraints: int = 0
    n_integer: int = 0

    @property
    def gap(self) -> float:
        """Relative gap |objective - bound| / max(1, |objective|) (0 for a solved LP)."""
        return relative_gap(self.objective, self.bound)



def active_objective(model) -> tuple[int, object]:
    """``(sense, objective)`` of the model's one active objective (else a SolverError)."""
    objs = list(model.component_data_objects(pyo.Objective, active=True))
    if len(objs) != 1:
        raise SolverError(
            f"the model has {len(objs)} active objectives; exactly one is needed "
            "(deactivate the others with .deactivate())"
        )
    return objs[0].sense, objs[0]
