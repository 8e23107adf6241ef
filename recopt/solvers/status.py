"""Solve statuses and the CLI exit code of each.

The runner and the CLI share this table, so a script can branch on
``python -m recopt.solve``'s exit code without parsing its output.
"""

from __future__ import annotations

import enum


class Status(enum.StrEnum):
    """Outcome of a solve, independent of the solver used."""

    OPTIMAL = "optimal"
    """Proven optimal (within the solver's tolerances / the requested MIP gap)."""
    FEASIBLE = "feasible"
    """A solution exists but optimality is not proven (gap left, iteration limit, ...)."""
    INFEASIBLE = "infeasible"
    UNBOUNDED = "unbounded"
    TIME_LIMIT = "time_limit"
    """The time limit was hit; the Result says whether a solution was found."""
    SOLVER_UNAVAILABLE = "solver_unavailable"
    BAD_INPUT = "bad_input"
    """The instance or an option is invalid (nothing was solved)."""
    ERROR = "error"
    """The solver failed (crash, numerical trouble, no solution under another limit)."""

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self]


EXIT_CODES: dict[Status, int] = {
    Status.OPTIMAL: 0,
    Status.ERROR: 1,
    Status.BAD_INPUT: 2,  # same as argparse's usage errors
    Status.FEASIBLE: 3,
    Status.INFEASIBLE: 4,
    Status.UNBOUNDED: 5,
    Status.TIME_LIMIT: 6,
    Status.SOLVER_UNAVAILABLE: 7,
}

_SEVERITY = [
    Status.OPTIMAL,
    Status.FEASIBLE,
    Status.TIME_LIMIT,
    Status.UNBOUNDED,
    Status.INFEASIBLE,
    Status.ERROR,
    Status.SOLVER_UNAVAILABLE,
    Status.BAD_INPUT,
]


def worst(statuses) -> Status:
    """The most severe of several statuses (used when a model is solved in blocks)."""
    statuses = list(statuses)
    if not statuses:
        return Status.OPTIMAL
    return max(statuses, key=_SEVERITY.index)
