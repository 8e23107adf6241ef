"""The HiGHS adapter: ``highspy`` fed with the matrices of Pyomo's standard-form compiler.

This is an order of magnitude faster than Pyomo's own HiGHS interfaces on the
large LPs of this project (measured on LP1 2880 steps x 100 members: 3 s compile
vs 39 s for ``appsi_highs``), and it keeps the model solver-agnostic: the Pyomo
model is the source of truth. :class:`HighsParametricLP` keeps one HiGHS object
for LPs re-solved with new right-hand sides (the Benders sub-problems).
"""

from __future__ import annotations

import ctypes
import logging
import math
import os
import sys
import time
from typing import TYPE_CHECKING, Any

import highspy
import numpy as np

from recopt.errors import SolverError, SolverOptionError
from recopt.lazy import pyomo_module
from recopt.solvers.deadline import current_deadline
from recopt.solvers.outcome import SolveOutcome, active_objective
from recopt.solvers.safety import check_solver_options
from recopt.solvers.status import Status

if TYPE_CHECKING:
    import pyomo.environ as pyo
    from pyomo.repn.plugins import standard_form
else:
    pyo = pyomo_module("pyomo.environ")
    standard_form = pyomo_module("pyomo.repn.plugins.standard_form")

log = logging.getLogger("recopt.solver")


def compile_standard_form(model):
    """Pyomo's ``LinearStandardFormCompiler`` on ``model``, mixed form (rows keep their
    senses), the objective's sense as written: the one compile every HiGHS path and
    the Benders sub-problems read (``.A``, ``.rhs``, ``.c``, ``.rows``, ``.columns``)."""
    return standard_form.LinearStandardFormCompiler().write(model, mixed_form=True,
                                                            set_sense=None)

# --------------------------------------------------------------------------------------
# HiGHS through highspy, fed by Pyomo's standard-form compiler
# --------------------------------------------------------------------------------------
_highs_banner_shown: list = [False]


def new_highs():
    """A ``highspy.Highs`` object, without the banner HiGHS prints on stdout.

    HiGHS >= 1.12 writes "Running HiGHS ..." to the C-level stdout when the first
    Highs object of a process is made, before any option can switch output off; it
    would corrupt the stdout of our CLIs (JSON summaries, tables). The first
    construction therefore runs with file descriptor 1 pointed at /dev/null.
    """
    if _highs_banner_shown[0]:
        return highspy.Highs()
    _highs_banner_shown[0] = True
    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (OSError, ValueError, AttributeError):  # no usable stdout: nothing to protect
        return highspy.Highs()
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.close(null)
        h = highspy.Highs()
        _flush_c_stdout()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    return h


def _flush_c_stdout() -> None:
    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):  # pragma: no cover - exotic libc
        pass


def highs_version() -> str:
    h = new_highs()
    return f"{h.versionMajor()}.{h.versionMinor()}.{h.versionPatch()}"


_HIGHS_STATUS = {
    "kOptimal": Status.OPTIMAL,
    "kInfeasible": Status.INFEASIBLE,
    "kUnbounded": Status.UNBOUNDED,
    "kTimeLimit": Status.TIME_LIMIT,
    "kIterationLimit": Status.FEASIBLE,
    "kSolutionLimit": Status.FEASIBLE,
    "kInterrupt": Status.FEASIBLE,
    "kHighsInterrupt": Status.FEASIBLE,
    "kObjectiveBound": Status.FEASIBLE,
    "kObjectiveTarget": Status.FEASIBLE,
    "kModelEmpty": Status.OPTIMAL,
}


def _infeasibilities_beyond_tolerance(h, info) -> bool:
    """Whether the run's primal or dual residuals exceed 10x HiGHS's tolerances."""
    p_tol = h.getOptionValue("primal_feasibility_tolerance")
    d_tol = h.getOptionValue("dual_feasibility_tolerance")
    p_tol = p_tol[1] if isinstance(p_tol, tuple) else p_tol
    d_tol = d_tol[1] if isinstance(d_tol, tuple) else d_tol
    return bool(info.max_primal_infeasibility > 10 * float(p_tol)
                or info.max_dual_infeasibility > 10 * float(d_tol))


def _checked(status, call: str, what: str) -> None:
    """A HiGHS return status: ``kError`` is a :class:`SolverError` (never read past)."""
    if status == highspy.HighsStatus.kError:
        raise SolverError(f"{what} (HiGHS {call} returned an error)")


_highs_pool_threads: list = ["unset"]  # thread count HiGHS's process-wide pool was made for


def _highs_pool(threads) -> None:
    """Make HiGHS's process-wide thread pool match ``threads`` (None: its default).

    HiGHS creates one scheduler per process at its first run; a later run asking for
    another thread count fails ("Not Set") unless the scheduler is reset first.
    """
    if _highs_pool_threads[0] != "unset" and _highs_pool_threads[0] != threads:
        new_highs().resetGlobalScheduler(True)
    _highs_pool_threads[0] = threads


def use_highs_threads(threads) -> None:
    """Before running a ``highspy.Highs`` object made outside this module with option
    ``threads`` set: make the process-wide pool match it (see :func:`_highs_pool`)."""
    _highs_pool(threads)


def reset_highs_pool() -> None:
    """Start HiGHS's process-wide scheduler afresh (a forked worker must, before its
    first solve: it inherits the pool's state without its threads)."""
    new_highs().resetGlobalScheduler(True)
    _highs_pool_threads[0] = "unset"


def row_bounds(bound_type: np.ndarray, rhs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """HiGHS row bounds of the standard-form compiler's rows: ``bound_type`` +1 is
    ``<= rhs``, -1 ``>= rhs``, 0 ``== rhs``."""
    inf = highspy.kHighsInf
    return (np.where(bound_type <= 0, rhs, -inf), np.where(bound_type >= 0, rhs, inf))


def highs_lp(A, cost, col_lower, col_upper, row_lower, row_upper, offset=0.0):
    """A ``highspy.HighsLp`` from a scipy sparse ``A`` (converted to columns) and arrays."""
    A = A.tocsc()
    lp = highspy.HighsLp()
    lp.num_row_, lp.num_col_ = A.shape
    lp.col_cost_ = np.asarray(cost, dtype=float)
    lp.col_lower_ = col_lower
    lp.col_upper_ = col_upper
    lp.row_lower_ = row_lower
    lp.row_upper_ = row_upper
    lp.offset_ = float(offset)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = A.indptr.astype(np.int32)
    lp.a_matrix_.index_ = A.indices.astype(np.int32)
    lp.a_matrix_.value_ = A.data.astype(float)
    return lp


def _typical_exponent(values) -> int:
    """The power of two nearest the geometric mean of the finite non-zero |values| (0
    when there are none)."""
    v = np.abs(np.asarray(values, dtype=float))
    v = v[np.isfinite(v) & (v > 0) & (v < highspy.kHighsInf)]
    return int(np.round(np.mean(np.log2(v)))) if v.size else 0


class LPScaling:
    """Exact power-of-two scaling of a (MI)LP's magnitudes, undone on the solution.

    Energies of 1e-9 kWh per step (or 1e12) put a model's values, right-hand sides and
    objective far from HiGHS's absolute tolerances (1e-7 primal and dual feasibility,
    1e-6 integrality): it then reports wrong "optimal" objectives (issue "hardening",
    class 4). This is a change of units per column and row, not an approximation:

    * each continuous column ``x_j = c_j x'_j`` with ``c_j`` its typical magnitude: its
      largest finite non-zero bound, else the geometric mean of ``|b_i / a_ij|`` over
      its rows with a non-zero right-hand side (the value meeting a row alone); integer
      columns keep ``c_j = 1``. Energies, keys and binaries each get their own unit.
    * each row is multiplied by ``r_i`` = 1 / max(|b_i|, max_j |a_ij c_j|), so that its
      right-hand side and largest coefficient are at most of order one;
    * the objective by ``γ`` = 1 / (geometric mean of the non-zero |cost_j c_j|).

    All factors are powers of two, so the scaling and its inverse are exact in floating
    point; HiGHS applies its own equilibration on top. Factors within
    ``2^±DEAD_BAND`` are 1: ordinary data are solved exactly as without scaling. :meth:`values`,
    :meth:`objective` and :meth:`row_duals` give the unscaled solution (row duals:
    ``y_i = y'_i r_i / γ``).
    """

    _CLIP = 200  # exponents beyond 2^±200 are not data of this world
    #: Magnitudes within 2^±DEAD_BAND (about 1e-3 ... 1e3) are left as they are: HiGHS's
    #: absolute tolerances suit them, and algorithms that certify with absolute
    #: tolerances (games, Benders) see the same solutions as without scaling.
    DEAD_BAND = 10

    @classmethod
    def _exponent(cls, e: np.ndarray) -> np.ndarray:
        e = np.round(np.asarray(e, float))
        return np.where(np.abs(e) <= cls.DEAD_BAND, 0.0, np.clip(e, -cls._CLIP, cls._CLIP))

    def __init__(self, A, cost, col_lower, col_upper, row_lower, row_upper, integrality):
        inf = highspy.kHighsInf
        self.A = A.tocsc()
        n_row, n_col = self.A.shape
        cont = np.asarray(integrality) == 0

        def finite(v):
            v = np.abs(np.asarray(v, float))
            return np.where(np.isfinite(v) & (v < inf), v, 0.0)

        b = np.maximum(finite(row_lower), finite(row_upper))
        bound = np.maximum(finite(col_lower), finite(col_upper))
        # the typical value of a column without a bound: geometric mean of |b_i / a_ij|
        coo = self.A.tocoo()
        a = np.abs(coo.data)
        use = (b[coo.row] > 0) & (a > 0)
        logs = np.zeros(n_col)
        counts = np.zeros(n_col)
        np.add.at(logs, coo.col[use], np.log2(b[coo.row[use]] / a[use]))
        np.add.at(counts, coo.col[use], 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            from_rows = np.where(counts > 0, logs / np.maximum(counts, 1), 0.0)
            from_bound = np.where(bound > 0, np.log2(np.where(bound > 0, bound, 1.0)), 0.0)
        e_col = np.where(bound > 0, from_bound, from_rows)
        e_col = np.where(cont, self._exponent(e_col), 0.0)
        self.col = np.exp2(e_col)
        scaled_a = np.abs(coo.data) * self.col[coo.col]
        row_max = np.zeros(n_row)
        np.maximum.at(row_max, coo.row, scaled_a)
        size = np.maximum(b, row_max)
        with np.errstate(divide="ignore"):
            e_row = np.where(size > 0, -np.log2(np.where(size > 0, size, 1.0)), 0.0)
        self.row = np.exp2(self._exponent(e_row))
        c1 = np.abs(np.asarray(cost, float)) * self.col
        c1 = c1[c1 > 0]
        k = float(np.mean(np.log2(c1))) if c1.size else 0.0
        self.gamma = float(np.exp2(self._exponent(np.array([-k]))[0]))
        self.scaled = bool((self.col != 1).any() or (self.row != 1).any() or self.gamma != 1)

    def lp(self, cost, col_lower, col_upper, row_lower, row_upper, offset):
        """The scaled data: ``(A', c', l', u', rl', ru', offset')``."""
        if not self.scaled:
            return self.A, cost, col_lower, col_upper, row_lower, row_upper, offset
        # diag(row) A diag(col), entry by entry
        A = self.A.multiply(self.row[:, None]).multiply(self.col[None, :])
        inf = highspy.kHighsInf

        def div(v, d):  # infinite bounds stay infinite
            v = np.asarray(v, float)
            return np.where(np.abs(v) >= inf, v, v / d)

        return (A.tocsc(), np.asarray(cost, float) * self.col * self.gamma,
                div(col_lower, self.col), div(col_upper, self.col),
                div(row_lower, 1.0 / self.row), div(row_upper, 1.0 / self.row),
                float(offset) * self.gamma)

    def values(self, x) -> np.ndarray:
        return np.asarray(x, float) * self.col

    def start(self, x) -> np.ndarray:
        return np.asarray(x, float) / self.col

    def objective(self, value: float) -> float:
        return float(value) / self.gamma

    def row_duals(self, y) -> np.ndarray:
        return np.asarray(y, float) * self.row / self.gamma


def set_highs_options(h, threads, options) -> None:
    """Threads and the user's HiGHS options; a rejected option, or one that writes files
    (:func:`recopt.solvers.safety.check_solver_options`), is a SolverOptionError."""
    if threads is not None:
        h.setOptionValue("threads", int(threads))
    for key, val in check_solver_options(options).items():
        if h.setOptionValue(key, val) != highspy.HighsStatus.kOk:
            raise SolverOptionError(
                f"HiGHS rejected option {key}={val!r} (see the HiGHS options list)"
            )


def tuning_options(tuning) -> dict:
    """HiGHS options realising a model's :class:`~recopt.models.options.Tuning`.

    Read by attribute (``presolve``: bool or None -> ``presolve="off"`` when False;
    ``lp_method``: ``"ipm"`` / ``"simplex"`` or None -> HiGHS's ``solver`` option).
    """
    out: dict = {}
    if getattr(tuning, "presolve", None) is False:
        out["presolve"] = "off"
    method = getattr(tuning, "lp_method", None)
    if method is not None:
        out["solver"] = method
    return out


def solve_highs(model, *, time_limit, mip_gap, threads, options,
                warm_start=False) -> SolveOutcome:
    """Solve ``model`` with HiGHS (see :func:`recopt.solvers.solve_pyomo`)."""
    t0 = time.perf_counter()
    sense, _ = active_objective(model)
    try:
        sf = compile_standard_form(model)
    except Exception as exc:  # nonlinear or trivially infeasible constraints
        if "infeasible" in str(exc).lower():
            return SolveOutcome(Status.INFEASIBLE, message=str(exc), solver="highs",
                                solver_version=highs_version())
        raise SolverError(f"cannot pass the model to HiGHS: {exc}") from exc
    columns = sf.columns
    n_col = len(columns)
    n_row = len(sf.rows)
    lower = np.empty(n_col)
    upper = np.empty(n_col)
    integrality = np.zeros(n_col, dtype=np.int8)
    for j, v in enumerate(columns):
        lb, ub = v.bounds
        lower[j] = -highspy.kHighsInf if lb is None else lb
        upper[j] = highspy.kHighsInf if ub is None else ub
        if v.is_integer():  # binary is integer
            integrality[j] = 1
    mult = np.fromiter((r.bound_type for r in sf.rows), dtype=np.int8, count=n_row)
    row_lower, row_upper = row_bounds(mult, np.asarray(sf.rhs, dtype=float))
    cost = sf.c.toarray().ravel() if sf.c.shape[0] else np.zeros(n_col)
    scaling = LPScaling(sf.A, cost, lower, upper, row_lower, row_upper, integrality)
    A_s, cost_s, lower_s, upper_s, rl_s, ru_s, offset_s = scaling.lp(
        cost, lower, upper, row_lower, row_upper,
        float(sf.c_offset[0]) if len(sf.c_offset) else 0.0)
    lp = highs_lp(A_s, cost_s, lower_s, upper_s, rl_s, ru_s, offset=offset_s)
    n_int = int(integrality.sum())
    if n_int:
        lp.integrality_ = [highspy.HighsVarType.kInteger if f else highspy.HighsVarType.kContinuous
                           for f in integrality]
    if sense == pyo.maximize:
        lp.sense_ = highspy.ObjSense.kMaximize

    h = new_highs()
    h.setOptionValue("output_flag", log.isEnabledFor(logging.DEBUG))
    h.setOptionValue("log_to_console", False)
    if log.isEnabledFor(logging.DEBUG):
        h.cbLogging.subscribe(lambda e: log.debug("highs: %s", str(e.message).rstrip()))
    if mip_gap is not None:
        h.setOptionValue("mip_rel_gap", float(mip_gap))
    set_highs_options(h, threads, options)
    _checked(h.passModel(lp), "passModel", "HiGHS refused the model")
    if warm_start and n_int:  # a MIP start from the variables' current values
        start = np.array([0.0 if v.value is None else float(v.value) for v in columns])
        h.setSolution(n_col, np.arange(n_col, dtype=np.int32), scaling.start(start))
    t1 = time.perf_counter()
    if time_limit is not None:  # the limit covers this call: compiling counted
        left = float(time_limit) - (t1 - t0)
        if left <= 0:
            return SolveOutcome(Status.TIME_LIMIT, message="the time limit was reached while "
                                "compiling the model", solver="highs",
                                solver_version=highs_version(), compile_seconds=t1 - t0,
                                n_variables=n_col, n_constraints=n_row, n_integer=n_int)
        h.setOptionValue("time_limit", left)
    _highs_pool(threads)
    run_status = h.run()
    model_status = h.getModelStatus()
    name = model_status.name
    if name == "kUnboundedOrInfeasible":  # disambiguate: presolve could not tell
        h.setOptionValue("presolve", "off")
        run_status = h.run()
        model_status = h.getModelStatus()
        name = model_status.name
    t2 = time.perf_counter()
    info = h.getInfo()
    status = _HIGHS_STATUS.get(name, Status.ERROR)
    if run_status == highspy.HighsStatus.kError and status != Status.TIME_LIMIT:
        status = Status.ERROR  # HiGHS says its run failed: no status read past that
    elif run_status == highspy.HighsStatus.kWarning and status == Status.OPTIMAL \
            and not n_int and _infeasibilities_beyond_tolerance(h, info):
        # "optimal" with a warning and residuals beyond HiGHS's own tolerances (after
        # unscaling): a point, not a proven optimum
        status = Status.FEASIBLE if info.primal_solution_status == 2 else Status.ERROR
    # a feasible point of an unbounded model is not a solution to report
    has_solution = info.primal_solution_status == 2 and status in (  # kSolutionStatusFeasible
        Status.OPTIMAL, Status.FEASIBLE, Status.TIME_LIMIT)
    if status == Status.FEASIBLE and not has_solution:
        status = Status.ERROR
    if status == Status.OPTIMAL and not has_solution and n_col > 0:
        status = Status.ERROR  # "optimal" without a primal solution is no optimum
    out = SolveOutcome(
        status=status,
        message=h.modelStatusToString(model_status),
        has_solution=bool(has_solution),
        solver="highs",
        solver_version=highs_version(),
        compile_seconds=t1 - t0,
        solve_seconds=t2 - t1,
        n_variables=n_col,
        n_constraints=n_row,
        n_integer=n_int,
    )
    if status == Status.ERROR and run_status == highspy.HighsStatus.kError:
        out.message = f"HiGHS run failed ({out.message})"
    if n_int and math.isfinite(float(info.mip_dual_bound)) \
            and abs(float(info.mip_dual_bound)) < highspy.kHighsInf:
        out.bound = scaling.objective(info.mip_dual_bound)  # kept without an incumbent
    if has_solution:
        out.objective = scaling.objective(info.objective_function_value)
        if not n_int and status == Status.OPTIMAL:
            out.bound = out.objective
        sol = h.getSolution()
        x = scaling.values(sol.col_value)
        for v, val in zip(columns, x.tolist(), strict=True):
            v.set_value(val, skip_validation=True)
        _set_unused_vars(model, columns)
        if not n_int and sol.dual_valid:
            _load_duals(model, sf.rows, scaling.row_duals(sol.row_dual))
    elif status == Status.OPTIMAL and n_col == 0:
        out.objective = out.bound = float(sf.c_offset[0]) if len(sf.c_offset) else 0.0
        out.has_solution = True
        _set_unused_vars(model, columns)
    return out


class HighsParametricLP:
    """``min c·y  s.t.  A y (sense_r) rhs_r,  y >= 0``, re-solved for new right-hand sides.

    The HiGHS object is kept between solves, so each solve starts from the previous
    optimal basis (dual simplex warm start) and nothing is recompiled. Used by the
    Benders sub-problems (:mod:`recopt.decomp.benders`), whose first stage only
    changes right-hand sides; the Pyomo model stays the source of ``A``, ``c`` and
    the rows (compiled once by Pyomo's standard-form compiler). ``sense`` per row is
    the compiler's ``bound_type``: +1 ``<= rhs``, -1 ``>= rhs``, 0 ``== rhs``.
    """

    def __init__(self, A, cost, sense, *, threads=None, options=None):
        self._inf = highspy.kHighsInf
        n_row, n_col = A.shape
        self.sense = np.asarray(sense, dtype=np.int8)
        lp = highs_lp(A, cost, np.zeros(n_col), np.full(n_col, self._inf),
                       np.zeros(n_row), np.zeros(n_row))
        h = new_highs()
        h.setOptionValue("output_flag", False)
        set_highs_options(h, threads, options)
        _checked(h.passModel(lp), "passModel", "HiGHS refused the sub-problem")
        self._h = h
        self._threads = threads
        self._rows = np.arange(n_row, dtype=np.int32)
        self.version = highs_version()

    def solve(self, rhs, time_limit=None):
        """``(status, message, y, row_dual, objective)``; y, row_dual None without a solution."""
        rhs = np.asarray(rhs, dtype=float)
        lower, upper = row_bounds(self.sense, rhs)
        h = self._h
        h.changeRowsBounds(len(rhs), self._rows, lower, upper)
        run_status, model_status, _ = _run_kept_lp(h, time_limit, self._threads)
        status = _HIGHS_STATUS.get(model_status.name, Status.ERROR)
        if run_status == highspy.HighsStatus.kError and status != Status.TIME_LIMIT:
            status = Status.ERROR
        message = h.modelStatusToString(model_status)
        if status != Status.OPTIMAL:
            return status, message, None, None, math.nan
        sol = h.getSolution()
        return (status, message, np.asarray(sol.col_value), np.asarray(sol.row_dual),
                float(h.getInfo().objective_function_value))


def _run_kept_lp(h, time_limit, threads) -> tuple[Any, Any, float]:
    """One run of an LP kept in the HiGHS object ``h`` under the run's wall-clock limit
    (``time_limit`` clipped by the current deadline, seconds). HiGHS 1.16 compares an
    LP's ``time_limit`` with the object's run time summed over all its runs, so the
    option is set that far past the run time so far. Returns ``(run_status,
    model_status, seconds)``."""
    time_limit = current_deadline().clip(time_limit)
    h.setOptionValue("time_limit", h.getRunTime() + float(time_limit)
                     if time_limit is not None else highspy.kHighsInf)
    _highs_pool(threads)
    t0 = time.perf_counter()
    run_status = h.run()
    model_status = h.getModelStatus()
    return run_status, model_status, time.perf_counter() - t0


def _lp_run_status(h, run_status, model_status, info) -> tuple[Status, bool, str]:
    """``(status, has_solution, message)`` of one LP run on a kept HiGHS object, read as
    :func:`solve_highs` reads it: a failed run is an error (unless the time limit
    stopped it), "optimal" with a warning and residuals beyond HiGHS's tolerances is
    only feasible, and "optimal" or "feasible" without a primal solution is an error."""
    status = _HIGHS_STATUS.get(model_status.name, Status.ERROR)
    if run_status == highspy.HighsStatus.kError and status != Status.TIME_LIMIT:
        status = Status.ERROR
    elif (run_status == highspy.HighsStatus.kWarning and status == Status.OPTIMAL
          and _infeasibilities_beyond_tolerance(h, info)):
        status = Status.FEASIBLE
    has_solution = info.primal_solution_status == 2 and status in (
        Status.OPTIMAL, Status.FEASIBLE, Status.TIME_LIMIT)
    if status in (Status.OPTIMAL, Status.FEASIBLE) and not has_solution:
        status = Status.ERROR  # "optimal" without a primal solution is no optimum
    message = h.modelStatusToString(model_status)
    if status == Status.ERROR and run_status == highspy.HighsStatus.kError:
        message = f"HiGHS run failed ({message})"
    return status, bool(has_solution), message


class HighsStepLP:
    """One block of a :class:`~recopt.models.step_lp.StepLP` compiled once into HiGHS and
    re-parameterised per block (the runner's fast path for time-separable models).

    The block-diagonal matrix of ``steps`` copies of the step's matrix is passed to
    HiGHS once; :meth:`solve` changes only costs, column bounds and row bounds
    (``changeColsCost``, ``changeColsBounds``, ``changeRowsBounds``) and re-runs, so each
    block starts from the previous block's basis (simplex warm start) and nothing is
    recompiled; a StepLP whose matrix values change per step (LP3's ``G k``) passes each
    block's LP on the kept sparsity pattern instead. ``options`` are the run's HiGHS
    options (the model's tuning included: presolve off for the per-step LPs).
    """

    def __init__(self, step_lp, steps: int, *, threads=None, options=None,
                 mip_gap=None):
        t0 = time.perf_counter()
        start, index, value = step_lp.block_matrix(steps)
        self.n_col = step_lp.n_col * steps
        self.n_row = step_lp.n_row * steps
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = self.n_col, self.n_row
        lp.col_cost_ = np.zeros(self.n_col)
        lp.col_lower_ = np.zeros(self.n_col)
        lp.col_upper_ = np.zeros(self.n_col)
        lp.row_lower_ = np.zeros(self.n_row)
        lp.row_upper_ = np.zeros(self.n_row)
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = start
        lp.a_matrix_.index_ = index
        lp.a_matrix_.value_ = value
        h = new_highs()
        debug = log.isEnabledFor(logging.DEBUG)
        h.setOptionValue("output_flag", debug)
        h.setOptionValue("log_to_console", False)
        if debug:
            h.cbLogging.subscribe(lambda e: log.debug("highs: %s", str(e.message).rstrip()))
        if mip_gap is not None:
            h.setOptionValue("mip_rel_gap", float(mip_gap))
        set_highs_options(h, threads, options)
        _checked(h.passModel(lp), "passModel", "the step LP's block was refused")
        self._lp = lp
        self._h = h
        self._threads = threads
        self._cols = np.arange(self.n_col, dtype=np.int32)
        self._rows = np.arange(self.n_row, dtype=np.int32)
        self.version = highs_version()
        self.compile_seconds = time.perf_counter() - t0

    def solve(self, numbers: dict, time_limit=None) -> tuple[SolveOutcome, np.ndarray | None]:
        """Solve the block whose ``numbers`` (:meth:`StepLP.block`) are given.

        Returns the block's :class:`SolveOutcome` (objective without the StepLP's
        offset) and the column values (None without a solution)."""
        t0 = time.perf_counter()
        h = self._h
        if "a_value" in numbers:  # the matrix values change too: pass the block's LP
            lp = self._lp
            lp.col_cost_ = numbers["cost"]
            lp.col_lower_, lp.col_upper_ = numbers["col_lower"], numbers["col_upper"]
            lp.row_lower_, lp.row_upper_ = numbers["row_lower"], numbers["row_upper"]
            lp.a_matrix_.value_ = numbers["a_value"]
            _checked(h.passModel(lp), "passModel", "the block's LP was refused")
        else:
            h.changeColsCost(self.n_col, self._cols, numbers["cost"])
            h.changeColsBounds(self.n_col, self._cols, numbers["col_lower"],
                               numbers["col_upper"])
            h.changeRowsBounds(self.n_row, self._rows, numbers["row_lower"],
                               numbers["row_upper"])
        t1 = time.perf_counter()
        run_status, model_status, seconds = _run_kept_lp(h, time_limit, self._threads)
        info = h.getInfo()
        status, has_solution, message = _lp_run_status(h, run_status, model_status, info)
        out = SolveOutcome(status=status, message=message,
                           has_solution=bool(has_solution), solver="highs",
                           solver_version=self.version, compile_seconds=t1 - t0,
                           solve_seconds=seconds, n_variables=self.n_col,
                           n_constraints=self.n_row)
        if not has_solution:
            return out, None
        out.objective = float(info.objective_function_value)
        out.bound = out.objective if status == Status.OPTIMAL else math.nan
        return out, np.asarray(h.getSolution().col_value)


def _set_unused_vars(model, columns) -> None:
    """Give a value to variables the compiler dropped (in no constraint nor objective)."""
    n_vars = sum(len(c) for c in model.component_objects(pyo.Var, active=True,
                                                         descend_into=True))
    if n_vars == len(columns):  # the usual case: nothing was dropped
        return
    seen = {id(v) for v in columns}
    for v in model.component_data_objects(pyo.Var, active=True, descend_into=True):
        if id(v) in seen or v.fixed:
            continue
        if v.value is None:
            lb, ub = v.bounds
            v.set_value(lb if lb is not None and lb > 0 else (ub if ub is not None and ub < 0
                                                               else 0.0),
                        skip_validation=True)


def _load_duals(model, rows, row_dual) -> None:
    dual = getattr(model, "dual", None)
    if not isinstance(dual, pyo.Suffix) or not dual.import_enabled():
        return
    dual.clear()
    for row, d in zip(rows, row_dual.tolist(), strict=True):
        con = row.constraint
        dual[con] = dual.get(con, 0.0) + d


class HighsColumnLP:
    """A Pyomo LP kept in HiGHS, to which columns are added without a rebuild.

    The restricted master of column generation (:mod:`recopt.decomp.column_generation`):
    the Pyomo model gives the rows and the fixed columns (compiled once by Pyomo's
    standard-form compiler); new columns go straight into the kept ``highspy.Highs``
    object (``addCols``), so each re-solve starts from the previous basis (HiGHS's
    default simplex strategy). Columns may be fixed (``set_bounds``, for branching) and made
    integer (``solve(integer=...)``, the price-and-branch master).

    Attributes
    ----------
    columns : list of VarData
        The Pyomo variables of the first ``n_fixed`` HiGHS columns.
    row_of : dict
        ``id(ConstraintData) -> HiGHS row``.
    row_lower, row_upper : ndarray
        Row bounds (for the dual objective ``b·π``).
    """

    def __init__(self, model, *, threads=None, options=None):
        self._hs = highspy
        t0 = time.perf_counter()
        sense, _ = active_objective(model)
        if sense != pyo.minimize:
            raise SolverError("HighsColumnLP needs a minimisation")
        sf = compile_standard_form(model)
        self.columns = list(sf.columns)
        n_col = len(self.columns)
        self.n_fixed = n_col
        lower = np.array([-highspy.kHighsInf if v.lb is None else v.lb for v in self.columns],
                         float)
        upper = np.array([highspy.kHighsInf if v.ub is None else v.ub for v in self.columns],
                         float)
        mult = np.fromiter((r.bound_type for r in sf.rows), dtype=np.int8, count=len(sf.rows))
        self.row_lower, self.row_upper = row_bounds(mult, np.asarray(sf.rhs, dtype=float))
        cost = sf.c.toarray().ravel() if sf.c.shape[0] else np.zeros(n_col)
        self.offset = float(sf.c_offset[0]) if len(sf.c_offset) else 0.0
        self.A = sf.A.tocsr()
        self.cost = cost
        self.col_lower, self.col_upper = lower, upper
        lp = highs_lp(self.A, cost, lower, upper, self.row_lower, self.row_upper,
                       offset=self.offset)
        h = new_highs()
        h.setOptionValue("output_flag", False)
        set_highs_options(h, threads, options)
        _checked(h.passModel(lp), "passModel", "HiGHS refused the master problem")
        self._h = h
        self._threads = threads
        self._presolve = str((options or {}).get("presolve", "choose"))
        self.row_of = {id(r.constraint): k for k, r in enumerate(sf.rows)}
        self.col_of = {id(v): k for k, v in enumerate(self.columns)}
        self.n_cols = n_col
        self.version = highs_version()
        self.compile_seconds = time.perf_counter() - t0

    def coefficient(self, row: int, col: int) -> float:
        """``A[row, col]`` of the compiled rows (0 when absent)."""
        return float(self.A[row, col])

    def add_columns(self, cost, lower, upper, starts, indices, values) -> np.ndarray:
        """Add columns (CSC arrays); returns their HiGHS indices."""
        k = len(cost)
        if k == 0:
            return np.zeros(0, dtype=np.int64)
        status = self._h.addCols(k, np.asarray(cost, float), np.asarray(lower, float),
                                 np.asarray(upper, float), len(values),
                                 np.asarray(starts, np.int32), np.asarray(indices, np.int32),
                                 np.asarray(values, float))
        if status == self._hs.HighsStatus.kError:
            raise SolverError("HiGHS refused the new columns")
        first = self.n_cols
        self.n_cols += k
        return np.arange(first, self.n_cols)

    def set_bounds(self, cols, lower, upper) -> None:
        cols = np.asarray(cols, np.int32)
        if len(cols):
            self._h.changeColsBounds(len(cols), cols, np.asarray(lower, float),
                                     np.asarray(upper, float))

    def solve(self, time_limit=None, integer=None, mip_gap=None, start=None, cold=False):
        """Solve; ``integer``: HiGHS column indices made integer for this solve only
        (``start``: a feasible point of every column, offered as the MIP start);
        ``cold``: drop the kept basis first (``clearSolver``) and solve with HiGHS presolve
        on (for this solve only), instead of from the previous optimal basis (on the degenerate
        column-generation masters a warm dual simplex after ``addCols`` can take far
        longer than a cold solve; card ``models/MLCol-column-generation.md``).

        Returns ``(status, message, objective, col_value, col_dual, row_dual, bound)``;
        the arrays are None without a solution; duals only for an LP (else None);
        ``bound``: the MIP's dual bound (the objective for an LP).
        """
        hs, h = self._hs, self._h
        if cold:
            h.clearSolver()
            h.setOptionValue("presolve", "on")
        time_limit = current_deadline().clip(time_limit)  # the run's wall-clock limit
        # HiGHS 1.16 compares an LP's time_limit with the object's run time summed over
        # all its runs, a MIP's with the time of this run (measured: a second LP run with
        # a limit below the first run's time stops at once; a MIP does not)
        idx = None
        if time_limit is None:
            limit = hs.kHighsInf
        elif integer is not None and len(integer):
            limit = float(time_limit)
        else:
            limit = h.getRunTime() + float(time_limit)
        h.setOptionValue("time_limit", limit)
        if integer is not None and len(integer):
            idx = np.asarray(integer, np.int32)
            h.changeColsIntegrality(len(idx), idx,
                                    np.full(len(idx), hs.HighsVarType.kInteger))
            if mip_gap is not None:
                h.setOptionValue("mip_rel_gap", float(mip_gap))
            if start is not None:
                h.setSolution(self.n_cols, np.arange(self.n_cols, dtype=np.int32),
                              np.asarray(start, float))
        _highs_pool(self._threads)
        try:
            run_status = h.run()
            model_status = h.getModelStatus()
            status = _HIGHS_STATUS.get(model_status.name, Status.ERROR)
            if run_status == hs.HighsStatus.kError and status != Status.TIME_LIMIT:
                status = Status.ERROR
            message = h.modelStatusToString(model_status)
            info = h.getInfo()
            has = info.primal_solution_status == 2
            if not has:
                return status, message, math.nan, None, None, None, math.nan
            sol = h.getSolution()
            obj = float(info.objective_function_value)
            if idx is not None:
                return (status, message, obj, np.asarray(sol.col_value), None, None,
                        float(info.mip_dual_bound))
            return (status, message, obj, np.asarray(sol.col_value), np.asarray(sol.col_dual),
                    np.asarray(sol.row_dual), obj if status == Status.OPTIMAL else math.nan)
        finally:
            if cold:
                h.setOptionValue("presolve", self._presolve)
            if idx is not None:
                h.changeColsIntegrality(len(idx), idx,
                                        np.full(len(idx), hs.HighsVarType.kContinuous))

    def load(self, col_value) -> None:
        """Put the fixed columns' values into their Pyomo variables."""
        for v, val in zip(self.columns, np.asarray(col_value)[:self.n_fixed].tolist(),
                          strict=True):
            v.set_value(val, skip_validation=True)


class HighsArrayLP:
    """An LP given as arrays, kept in one HiGHS object: rows and columns are added and
    row bounds changed in place, each re-solve starting from the previous basis.

    The pieces of a decomposed LP (the time-block Benders split of column
    generation's restricted master, :mod:`recopt.decomp.column_generation`): a
    block's operation LP re-solved for new right-hand sides (its rows' bounds), and
    the small master to which cuts (rows) and loop columns are added. Infinite bounds
    may be given as ``+-inf``.
    """

    def __init__(self, A, cost, col_lower, col_upper, row_lower, row_upper, *,
                 offset=0.0, threads=None, options=None):
        inf = highspy.kHighsInf
        self._fin = lambda a, s: np.where(np.isinf(a), s * inf,  # noqa: E731
                                          np.asarray(a, float))
        lp = highs_lp(A, cost, self._fin(col_lower, -1), self._fin(col_upper, 1),
                      self._fin(row_lower, -1), self._fin(row_upper, 1), offset=offset)
        h = new_highs()
        h.setOptionValue("output_flag", False)
        set_highs_options(h, threads, {"presolve": "off", **(options or {})})
        _checked(h.passModel(lp), "passModel", "HiGHS refused the block LP")
        self._h = h
        self._threads = threads
        self.n_col, self.n_row = A.shape[1], A.shape[0]

    def set_row_bounds(self, rows, lower, upper) -> None:
        rows = np.asarray(rows, np.int32)
        if len(rows):
            _checked(self._h.changeRowsBounds(len(rows), rows, self._fin(lower, -1),
                                              self._fin(upper, 1)),
                     "changeRowsBounds", "HiGHS refused the new row bounds")

    def add_rows(self, lower, upper, A) -> None:
        """Add the rows of the scipy sparse ``A`` (``n_col`` columns)."""
        A = A.tocsr()
        k = A.shape[0]
        if k:
            _checked(self._h.addRows(k, self._fin(lower, -1), self._fin(upper, 1), A.nnz,
                                     A.indptr[:-1].astype(np.int32),
                                     A.indices.astype(np.int32), A.data.astype(float)),
                     "addRows", "HiGHS refused the new rows")
            self.n_row += k

    def add_columns(self, cost, lower, upper, A) -> None:
        """Add the columns of the scipy sparse ``A`` (``n_row`` rows)."""
        A = A.tocsc()
        k = A.shape[1]
        if k:
            _checked(self._h.addCols(k, np.asarray(cost, float), self._fin(lower, -1),
                                     self._fin(upper, 1), A.nnz,
                                     A.indptr[:-1].astype(np.int32),
                                     A.indices.astype(np.int32), A.data.astype(float)),
                     "addCols", "HiGHS refused the new columns")
            self.n_col += k

    def solve(self, time_limit=None):
        """``(status, message, objective, col_value, col_dual, row_dual)``; the arrays
        None without a solution."""
        h = self._h
        run_status, model_status, _ = _run_kept_lp(h, time_limit, self._threads)
        info = h.getInfo()
        status, has_solution, message = _lp_run_status(h, run_status, model_status, info)
        if not has_solution:
            return status, message, math.nan, None, None, None
        sol = h.getSolution()
        return (status, message, float(info.objective_function_value),
                np.asarray(sol.col_value, float), np.asarray(sol.col_dual, float),
                np.asarray(sol.row_dual, float))


class HighsStagedLP:
    """One LP given as arrays, solved in stages on one kept HiGHS object.

    For lexicographic objectives: :meth:`solve` a first cost, :meth:`keep` the value
    reached as a row ``c x <= value``, :meth:`set_cost` the next objective and
    :meth:`solve` again: HiGHS starts from the previous optimal basis (the new row's
    slack is basic, so the basis stays primal feasible) and nothing is recompiled. The
    arrays come from a model module's assembly of its Pyomo model (the model stays the
    definition; each such assembly is tested equal to the Pyomo model's compiled form).
    Infinite bounds may be given as ``+-inf``.
    """

    def __init__(self, A, cost, col_lower, col_upper, row_lower, row_upper, *,
                 threads=None, options=None):
        inf = highspy.kHighsInf
        fin = lambda a, s: np.where(np.isinf(a), s * inf, np.asarray(a, float))  # noqa: E731
        t0 = time.perf_counter()
        self.n_col = A.shape[1]
        self.n_row = A.shape[0]
        lp = highs_lp(A, cost, fin(col_lower, -1), fin(col_upper, 1), fin(row_lower, -1),
                      fin(row_upper, 1))
        h = new_highs()
        h.setOptionValue("output_flag", log.isEnabledFor(logging.DEBUG))
        h.setOptionValue("log_to_console", False)
        self._threads = threads
        self._options = dict(options or {})
        set_highs_options(h, threads, self._options)
        _checked(h.passModel(lp), "passModel", "HiGHS refused the model")
        self._h = h
        self._cols = np.arange(self.n_col, dtype=np.int32)
        self._bounds = [np.array(col_lower, float), np.array(col_upper, float),
                        np.array(row_lower, float), np.array(row_upper, float)]
        self.compile_seconds = time.perf_counter() - t0
        self.version = highs_version()

    def set_cost(self, cost) -> None:
        """Replace the objective's cost vector."""
        self._h.changeColsCost(self.n_col, self._cols, np.asarray(cost, float))

    def keep(self, cost, value: float) -> None:
        """Add the row ``cost x <= value`` (a lexicographic stage's kept optimum)."""
        cost = np.asarray(cost, float)
        nz = np.flatnonzero(cost)
        _checked(self._h.addRow(-highspy.kHighsInf, float(value), nz.size,
                                nz.astype(np.int32), cost[nz]),
                 "addRow", "HiGHS refused the kept-objective row")
        self.n_row += 1
        self._bounds[2] = np.append(self._bounds[2], -np.inf)
        self._bounds[3] = np.append(self._bounds[3], float(value))

    def restrict_to_optimal_face(self, eps: float = 1e-9) -> tuple[int, int]:
        """Restrict the LP to the optimal face of the last (optimal) solve; ``(columns
        fixed, rows made equalities)``.

        LP complementary slackness: every optimal primal point is complementary to any
        one optimal dual point ``(d, y)``, so the optimal set is exactly the feasible
        points that keep each column with reduced cost ``|d_j| > eps`` at its bound and
        each row with dual ``|y_i| > eps`` at its bound (complementary slackness:
        Bertsimas and Tsitsiklis, *Introduction to Linear Optimization* (1997), Thm 4.5;
        the bound is the one the last solution sits at).
        A later stage then optimises its own cost over that face, with no kept-objective
        row (which makes the LP degenerate: measured, EMS4 + penalty at 100 members x
        720 h, stage 2 on the interior point 176.6 s with the kept row, 52.8 s on the
        face). A column or row whose active bound is infinite is left free, which can
        only enlarge the set: a caller that needs the face exactly checks the first
        cost after the next solve (:meth:`keep` the row if it rose).
        Only after an optimal LP solve with a dual solution.
        """
        cl, cu, rl, ru, n_c, n_r = self.optimal_face(eps)
        self.set_bounds(cl, cu, rl, ru)
        return n_c, n_r

    def optimal_face(self, eps: float = 1e-9) -> tuple:
        """The bounds of :meth:`restrict_to_optimal_face` without applying them:
        ``(col_lower, col_upper, row_lower, row_upper, columns fixed, rows fixed)``."""
        h = self._h
        sol = h.getSolution()
        if not sol.dual_valid:
            raise SolverError("HighsStagedLP.restrict_to_optimal_face: the last solve "
                              "left no dual solution")
        cl, cu, rl, ru = self._bounds
        x = np.asarray(sol.col_value, float)
        d = np.asarray(sol.col_dual, float)
        y = np.asarray(sol.row_dual, float)
        act = np.asarray(sol.row_value, float)

        def fix(lo, up, value, dual):
            at_lo = np.abs(value - lo) <= np.abs(value - up)
            to_lo = (np.abs(dual) > eps) & at_lo & np.isfinite(lo)
            to_up = (np.abs(dual) > eps) & ~at_lo & np.isfinite(up)
            lo, up = lo.copy(), up.copy()
            up[to_lo] = lo[to_lo]
            lo[to_up] = up[to_up]
            return lo, up, int(to_lo.sum() + to_up.sum())

        cl, cu, n_c = fix(cl, cu, x, d)
        rl, ru, n_r = fix(rl, ru, act, y)
        return cl, cu, rl, ru, n_c, n_r

    def set_bounds(self, col_lower, col_upper, row_lower, row_upper) -> None:
        """Replace every column's and row's bounds (``+-inf``: none)."""
        h = self._h
        inf = highspy.kHighsInf
        fin = lambda a, s: np.where(np.isinf(a), s * inf, np.asarray(a, float))  # noqa: E731
        cl, cu, rl, ru = (np.array(a, float) for a in (col_lower, col_upper, row_lower,
                                                       row_upper))
        self._bounds = [cl, cu, rl, ru]
        _checked(h.changeColsBounds(self.n_col, self._cols, fin(cl, -1), fin(cu, 1)),
                 "changeColsBounds", "HiGHS refused the face's column bounds")
        rows = np.arange(rl.size, dtype=np.int32)
        _checked(h.changeRowsBounds(rl.size, rows, fin(rl, -1), fin(ru, 1)),
                 "changeRowsBounds", "HiGHS refused the face's row bounds")

    def solve(self, method: str | None = None, time_limit=None, strategy: int | None = None,
              ) -> tuple[SolveOutcome, np.ndarray | None]:
        """Run HiGHS (``method``: its ``solver`` option, e.g. ``"ipm"``, ``"simplex"``;
        None: the user's option or HiGHS's choice; ``strategy``: its
        ``simplex_strategy``, e.g. 4 = primal, None: the user's or HiGHS's default);
        ``(outcome, x)``, x None without a solution."""
        h = self._h
        h.setOptionValue("solver", method or self._options.get("solver", "choose"))
        h.setOptionValue("simplex_strategy", int(self._options.get(
            "simplex_strategy", 1 if strategy is None else strategy)))
        run_status, model_status, seconds = _run_kept_lp(h, time_limit, self._threads)
        info = h.getInfo()
        status, has_solution, message = _lp_run_status(h, run_status, model_status, info)
        out = SolveOutcome(status=status, message=message,
                           has_solution=bool(has_solution), solver="highs",
                           solver_version=self.version, solve_seconds=seconds,
                           n_variables=self.n_col, n_constraints=self.n_row)
        if not has_solution:
            return out, None
        out.objective = float(info.objective_function_value)
        if status == Status.OPTIMAL:
            out.bound = out.objective
        return out, np.asarray(h.getSolution().col_value, float)
