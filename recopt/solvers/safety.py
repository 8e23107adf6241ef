"""What a solver name and solver options may do: the safety rules of every solve.

A solver name and solver options come from users, suite files and job records, so
they are input, and hostile input can do harm: Pyomo's ``SolverFactory`` runs any
program named ``asl:/path/to/program``, and solver options such as HiGHS's
``solution_file`` or Gurobi's ``LogFile`` write (overwrite) any file. Two rules,
checked before anything is built (:func:`check_solver`, :func:`check_solver_options`)
and again by the adapters (so no path around them):

1. **Solver names are limited to known solvers** (:data:`KNOWN_SOLVERS`: HiGHS, and the
   Pyomo interfaces of Gurobi, CPLEX, CBC, GLPK, SCIP, Xpress, MOSEK). Another name
   runs only when it is listed, exactly, in the environment variable
   ``RECOPT_ALLOW_SOLVERS`` (comma-separated; ``recopt solve --allow-solver NAME``
   sets it). The opt-in is the runner's environment, never the suite file.
2. **Solver options that read or write files are refused** (an option whose name
   contains ``file``, ``write``, ``dir``, ``path``, ``export`` or ``save``, e.g.
   ``solution_file``, ``write_model_to_file``, ``LogFile``, ``NodefileDir``) unless
   ``RECOPT_ALLOW_FILE_OPTIONS=1`` (``recopt solve --allow-file-options``).

Both refusals are :class:`~recopt.errors.SolverOptionError` (bad input, exit code 2)
naming the culprit and the opt-in.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from recopt.errors import SolverOptionError

#: Solver names that run without an opt-in (case-insensitive).
KNOWN_SOLVERS = frozenset({
    "highs", "appsi_highs",
    "gurobi", "gurobi_direct", "gurobi_persistent", "appsi_gurobi",
    "cplex", "cplex_direct", "cplex_persistent", "appsi_cplex",
    "cbc", "appsi_cbc", "glpk", "scip",
    "xpress", "xpress_direct", "xpress_persistent",
    "mosek", "mosek_direct", "mosek_persistent",
})

#: Environment variable listing other solver names allowed (comma-separated, exact).
ALLOW_SOLVERS_ENV = "RECOPT_ALLOW_SOLVERS"
#: Environment variable that allows solver options reading or writing files ("1").
ALLOW_FILE_OPTIONS_ENV = "RECOPT_ALLOW_FILE_OPTIONS"

_FILE_OPTION = re.compile(r"file|write|dir|path|export|save", re.IGNORECASE)


def allowed_extra_solvers() -> set[str]:
    """The solver names allowed by ``RECOPT_ALLOW_SOLVERS`` (exact, as listed)."""
    return {s.strip() for s in os.environ.get(ALLOW_SOLVERS_ENV, "").split(",") if s.strip()}


def check_solver(name) -> str:
    """``name`` if it may run here, else :class:`SolverOptionError` (see the module doc)."""
    if not isinstance(name, str) or not name.strip():
        raise SolverOptionError(f"solver name must be a non-empty string, got {name!r}")
    if name.lower() in KNOWN_SOLVERS or name in allowed_extra_solvers():
        return name
    raise SolverOptionError(
        f"solver {name!r} is not a known solver ({', '.join(sorted(KNOWN_SOLVERS))}); to "
        f"run another Pyomo solver, allow it explicitly: {ALLOW_SOLVERS_ENV}={name} "
        "(recopt solve --allow-solver NAME)")


def file_options_allowed() -> bool:
    return os.environ.get(ALLOW_FILE_OPTIONS_ENV, "").strip().lower() in ("1", "true", "yes")


def check_solver_options(options: Mapping | None) -> dict:
    """The options as a dict, or :class:`SolverOptionError` for a name that is not a
    string or an option that reads or writes files (unless allowed)."""
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise SolverOptionError(
            f"solver options must be a table name = value, got {type(options).__name__}")
    out = dict(options)
    for key, value in out.items():
        if not isinstance(key, str):
            raise SolverOptionError(f"solver option name {key!r} is not a string")
        if isinstance(value, Mapping | list | tuple | set):
            raise SolverOptionError(
                f"solver option {key} must be a number, a string or a bool, got "
                f"{type(value).__name__}")
        if _FILE_OPTION.search(key) and not file_options_allowed():
            raise SolverOptionError(
                f"solver option {key!r} reads or writes files and is refused; to allow "
                f"it, set {ALLOW_FILE_OPTIONS_ENV}=1 (recopt solve --allow-file-options)")
    return out
