"""The Pyomo ``SolverFactory`` adapter: any solver Pyomo knows (gurobi, cbc, glpk, ...).

``gurobi`` means Pyomo's ``gurobi_direct`` (needs ``gurobipy``). Templated
constraints are materialised first (:func:`recopt.models.construction.materialize`):
writers other than the standard-form compiler need plain expressions.
"""

from __future__ import annotations

import io
import logging
import math
import time
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING

from recopt.errors import SolverError, SolverUnavailableError
from recopt.lazy import pyomo_module
from recopt.models.construction import materialize
from recopt.solvers.outcome import SolveOutcome, active_objective
from recopt.solvers.safety import check_solver, check_solver_options
from recopt.solvers.status import Status

if TYPE_CHECKING:
    import pyomo.environ as pyo
    from pyomo.common import tee
else:
    pyo = pyomo_module("pyomo.environ")
    tee = pyomo_module("pyomo.common.tee")

log = logging.getLogger("recopt.solver")

# --------------------------------------------------------------------------------------
# Any other Pyomo solver
# --------------------------------------------------------------------------------------
_OPTION_NAMES = {
    # solver: (time limit, relative MIP gap, threads)
    "gurobi_direct": ("TimeLimit", "MIPGap", "Threads"),
    "gurobi": ("TimeLimit", "MIPGap", "Threads"),
    "gurobi_persistent": ("TimeLimit", "MIPGap", "Threads"),
    "cplex": ("timelimit", "mipgap", "threads"),
    "cplex_direct": ("timelimit", "mipgap", "threads"),
    "cbc": ("seconds", "ratioGap", "threads"),
    "glpk": ("tmlim", "mipgap", None),
    "scip": ("limits/time", "limits/gap", None),
    "appsi_highs": ("time_limit", "mip_rel_gap", "threads"),
}

_PYOMO_STATUS = {
    "optimal": Status.OPTIMAL,
    "locallyOptimal": Status.OPTIMAL,
    "globallyOptimal": Status.OPTIMAL,
    "feasible": Status.FEASIBLE,
    "infeasible": Status.INFEASIBLE,
    "invalidProblem": Status.ERROR,
    "unbounded": Status.UNBOUNDED,
    "infeasibleOrUnbounded": Status.INFEASIBLE,
    "maxTimeLimit": Status.TIME_LIMIT,
    "maxIterations": Status.FEASIBLE,
    "maxEvaluations": Status.FEASIBLE,
    "minFunctionValue": Status.FEASIBLE,
    "minStepLength": Status.FEASIBLE,
    "userInterrupt": Status.FEASIBLE,
    "resourceInterrupt": Status.FEASIBLE,
}


@contextmanager
def _quiet_pyomo():
    """Pyomo logs a traceback when it cannot create a solver ("Failed to create solver
    with name ..."); recopt says so in one line (a status), so that log goes to debug."""
    logger = logging.getLogger("pyomo.opt")
    level, propagate = logger.level, logger.propagate
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)  # captured into the buffer only (propagate off)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate
        for line in buffer.getvalue().splitlines():
            log.debug("pyomo: %s", line)


def solve_factory(model, name, *, time_limit, mip_gap, threads, options,
                         warm_start=False) -> SolveOutcome:
    check_solver(name)  # never hand Pyomo a name that runs an arbitrary program
    options = check_solver_options(options)
    factory_name = "gurobi_direct" if name == "gurobi" else name
    try:
        with _quiet_pyomo():
            opt = pyo.SolverFactory(factory_name)
            available = opt is not None and opt.available(exception_flag=False)
    except Exception:  # some plugins raise on availability checks
        available = False
    if not available:
        hint = " (pip install gurobipy, and a licence for large models)" if "gurobi" in name \
            else ""
        raise SolverUnavailableError(
            f"solver {name!r} is not available on this machine{hint}; "
            "the embedded default is --solver highs"
        )
    materialize(model)  # writers / interfaces other than the standard-form compiler
    names = _OPTION_NAMES.get(factory_name, (None, None, None))
    solver_opts = dict(options or {})
    for value, opt_name, label in zip((time_limit, mip_gap, threads), names,
                                      ("time limit", "MIP gap", "threads"), strict=True):
        if value is None:
            continue
        if opt_name is None:
            log.warning("do not know how to pass the %s to %s; ignored", label, name)
            continue
        solver_opts[opt_name] = value
    t0 = time.perf_counter()
    debug = log.isEnabledFor(logging.DEBUG)
    buffer = io.StringIO()
    try:
        with tee.capture_output(buffer, capture_fd=True) if debug else nullcontext():
            kw = {}
            if warm_start and getattr(opt, "warm_start_capable", lambda: False)():
                kw["warmstart"] = True
            res = opt.solve(model, options=solver_opts, load_solutions=False, tee=debug, **kw)
    except Exception as exc:
        raise SolverError(f"{name} failed: {exc}") from exc
    finally:
        for line in buffer.getvalue().splitlines():  # the solver's log, into logging
            log.debug("%s: %s", name, line)
    t1 = time.perf_counter()
    tc = str(res.solver.termination_condition)
    status = _PYOMO_STATUS.get(tc, Status.ERROR)
    solver_status = str(getattr(res.solver, "status", "ok"))
    if solver_status in ("error", "aborted") and status != Status.TIME_LIMIT:
        status = Status.ERROR  # the solver says its run failed: never read past that
        tc = f"{tc} (solver status {solver_status})"
    version = ""
    try:
        version = ".".join(str(p) for p in opt.version() or ())
    except Exception:
        pass
    out = SolveOutcome(status=status, message=tc, solver=name, solver_version=version,
                       solve_seconds=t1 - t0)
    if len(res.solution) > 0:
        model.solutions.load_from(res)
        out.has_solution = True
        sense, obj = active_objective(model)
        out.objective = float(pyo.value(obj))
        lb = res.problem.lower_bound
        ub = res.problem.upper_bound
        b = lb if sense == pyo.minimize else ub
        try:
            b = float(b)
        except (TypeError, ValueError):
            b = math.nan
        out.bound = b if math.isfinite(b) else (out.objective if status == Status.OPTIMAL
                                               else math.nan)
    return out



def factory_available(name: str) -> bool:
    """Whether Pyomo's ``SolverFactory(name)`` can run here (never raises)."""
    factory_name = "gurobi_direct" if name == "gurobi" else name
    try:
        check_solver(name)
        with _quiet_pyomo():
            opt = pyo.SolverFactory(factory_name)
            return opt is not None and bool(opt.available(exception_flag=False))
    except Exception:
        return False
