"""The staged solve of EMS3 / EMS4: lexicographic penalty and the complementarity fix.

Mustika et al., Applied Energy 310 (2022) 118484, doi:10.1016/j.apenergy.2021.118484,
§3.1.3-3.1.5: the LPs (17)-(32), the penalty (33)-(35) and the paper's post-check that
no pair (gd+, gd-), (comm+, comm-), (st+, st-) is simultaneously positive (check C6
of ``models/EMS1-EMS4.md``).

Per scenario (scenarios are independent LPs):

1. min f1 (grid export for EMS3, import for EMS4), or ``f1 + alpha sum rho`` with
   ``penalty="weighted"``;
2. ``penalty="lexicographic"``: keep ``f1 <= f1* + tol max(1, |f1*|)`` and minimise
   ``sum rho`` -- the limit alpha -> 0+ of (35), so f1 is unchanged (the paper's "with a
   proper selection of alpha");
3. check C6. With ``complementarity="fix"``, grid and community overlaps are netted out
   exactly (:func:`net_exchange_pairs`: taking ``min(gd+, gd-)`` off both halves keeps
   every constraint and f1); if a storage overlap remains, keep f1 (and sum rho) and
   minimise the storage throughput ``sum (st+ + st-)`` (with mu < 1, burning surplus in
   the losses can be what keeps f1 low, so an overlap may survive). If the LP optimum
   is reached by a complementary point it is optimal for the complementary (MILP)
   problem too, because the LP is its relaxation; if not, the MILP with one binary per
   storage unit and step (``binaries=True``) is solved: exact for f1. Its later stages
   (rho, throughput) are LPs at the charge/discharge modes the MILP chose.
   ``complementarity="report"`` keeps the LP solution and returns status ``error`` when
   C6 fails (never silently accepted).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from recopt.decomp.registry import register_algorithm
from recopt.ems.stage2 import TOLERANCE_KWH, check_schedule, complementarity_violations
from recopt.ems.storage import StorageUnits
from recopt.lazy import pyomo_module
from recopt.models.ems import (
    EMSMatrix,
    arrays,
    build,
    extract,
    extract_parts,
    matrix,
    projected_matrix,
    with_indicators_of,
)
from recopt.models.options import Tuning
from recopt.solvers.dispatch import solve_pyomo, tuned_options
from recopt.solvers.highs import HighsStagedLP
from recopt.solvers.outcome import relative_gap
from recopt.solvers.record import RunRecord
from recopt.solvers.status import Status, worst

if TYPE_CHECKING:
    import pyomo.environ as pyo
    from pyomo.common import gc_manager
else:
    pyo = pyomo_module("pyomo.environ")
    gc_manager = pyomo_module("pyomo.common.gc_manager")

#: The lexicographic stages are degenerate LPs: HiGHS's interior point (with crossover,
#: so a vertex) took 11 s where its simplex had not finished in 60 s (EMS4 + penalty on
#: the shipped Le Cailar case).
LATER_STAGE_TUNING = Tuning(lp_method="ipm")
#: From this many (step, member) cells on, the first stage runs on the interior point
#: too: 100 members x 720 h EMS4, simplex > 100 s, interior point 14.7 s; the shipped
#: 7 x 1488 case, simplex 1.5 s, interior point 3.1 s (HiGHS 1.16, shared 2-core machine).
FIRST_STAGE_IPM_CELLS = 50_000

#: From this many (step, member) cells on, the LP stages run on the model's NumPy
#: assembly (:func:`recopt.models.ems.matrix`, tested equal to the Pyomo model) on one
#: kept solver object: 100 members x 720 h, Pyomo build + compile 40 s vs 1 s.
FAST_PATH_CELLS = FIRST_STAGE_IPM_CELLS
#: HiGHS ``simplex_strategy`` of the array path's later stages when they run on the
#: simplex (a user's ``solver=simplex``): 4, the primal simplex, as the basis of the
#: stage before stays primal feasible when the kept row is added.
LATER_STAGE_SIMPLEX_STRATEGY = 4
#: The array path's lexicographic stage optimises sum rho over f1's optimal face (the
#: columns and rows that f1's optimal duals hold at a bound, fixed there:
#: :meth:`recopt.solvers.highs.HighsStagedLP.restrict_to_optimal_face`, exact by
#: complementary slackness) instead of adding the kept row f1 <= f1* (1 + tol), which
#: makes the LP degenerate. Measured at 100 members x 720 h, stage 2 on the interior
#: point: 176.6 s with the kept row, 52.8 s on the face (``benchmarks/README.md``).
FACE_STAGE = True
#: With ``FACE_STAGE``: stage 1 runs on the LP without the penalty block (ramps, rho
#: and (33)-(34): free at stage 1) and the rho stage on the whole LP with rho
#: eliminated (:func:`_penalty_lp`).
SPLIT_PENALTY = True
#: The array path solves the LP projected exactly onto the storage
#: (:func:`recopt.models.ems.projected_matrix`: the members' flows eliminated, one grid
#: column and two rows per step, one capacity column per storage owner and step; the
#: flows are rebuilt afterwards). 100 members x 720 h: see ``benchmarks/README.md``.
PROJECTED = True

__all__ = ["solve_ems", "keep_objective", "staged_arrays", "start_modes", "mode_start_point"]


def keep_objective(m: pyo.ConcreteModel, name: str, expr, tolerance: float) -> float:
    """Add ``expr <= value(expr) + tolerance max(1, |value|)`` as constraint ``name``."""
    best = float(pyo.value(expr))
    setattr(m, name, pyo.Constraint(
        expr=expr <= best + tolerance * max(1.0, abs(best)),
        doc=f"lexicographic stage: keep {name.removeprefix('keep_')} at its optimum"))
    return best


def _set_objective(m: pyo.ConcreteModel, expr, doc: str) -> None:
    for obj in m.component_objects(pyo.Objective, active=True):
        obj.deactivate()
    name = f"stage_objective_{sum(1 for _ in m.component_objects(pyo.Objective))}"
    setattr(m, name, pyo.Objective(expr=expr, sense=pyo.minimize, doc=doc))


def net_exchange_pairs(m: pyo.ConcreteModel) -> int:
    """Remove every grid and community overlap of a solved model, in place (exact).

    At each (n, t), ``delta = min(gd+, gd-)`` is taken off both halves (and likewise for
    comm+ / comm-): (25) and (26) lose delta on both sides, (27) loses the sum of the
    community deltas on both sides, (17)-(19) only loosen and f1 can only fall, so the
    point stays feasible and optimal. Returns the number of pairs changed.
    """
    changed = 0
    for a, b in ((m.grid_import, m.grid_export), (m.community_import, m.community_export)):
        for va, vb in zip(a.values(), b.values(), strict=True):
            x, y = va.value or 0.0, vb.value or 0.0
            delta = min(x, y)
            if delta > 0.0:
                va.set_value(x - delta, skip_validation=True)
                vb.set_value(y - delta, skip_validation=True)
                changed += 1
    return changed


def start_modes(charge: np.ndarray, discharge: np.ndarray, relaxed: np.ndarray,
                eps: float = 1e-6) -> np.ndarray:
    """Charge (1) / discharge (0) modes per (step, unit) from a relaxation's point.

    ``charge``, ``discharge`` (kW) and ``relaxed`` (the binaries' relaxed values) are
    (T, K) arrays. Each cell takes the direction of its net power (ties: the relaxed
    binary rounded). At a step where k >= 2 units both charge and discharge (the
    relaxation burns surplus in the losses of each), one of them -- rotating with the
    step -- discharges and the other k - 1 charge: the burning moves *across* units,
    which C6 allows; a lone such unit charges. Any modes give a feasible restriction
    only if the LP with them fixed is feasible; the caller checks.
    """
    c = np.asarray(charge, float)
    d = np.asarray(discharge, float)
    mode = np.where(c > d + eps, 1, np.where(d > c + eps, 0,
                                            (np.asarray(relaxed) >= 0.5).astype(int)))
    overlap = (c > eps) & (d > eps)
    for t in np.flatnonzero(overlap.sum(axis=1)):
        idx = np.flatnonzero(overlap[t])
        if len(idx) == 1:
            mode[t, idx[0]] = 1
        else:
            mode[t, idx] = 1
            mode[t, np.roll(idx, int(t))[0]] = 0
    return mode


def mode_start_point(m: pyo.ConcreteModel, run) -> dict:
    """A C6-feasible start for the MILP ``m`` (binaries ``charging``), left in ``m``.

    A primal heuristic, not a change of the model: (i) the MILP's LP relaxation (with
    ``room_cuts`` the SoC-room rows make it burn far less: EMS3 on the shipped month,
    100.76 kWh against the plain LP's 72.8); (ii) modes by :func:`start_modes`; (iii)
    the LP with the binaries fixed at them (any point of it is feasible for the MILP,
    so its f1 is an upper bound). The variables keep that point (the binaries are
    unfixed again) for the MILP to start from (``warm_start``). Returns what was found:
    ``relaxation_bound`` (kWh, a lower bound on the MILP's f1, when solved to
    optimality), ``start_objective`` (kWh, or absent when the fixed LP had no
    solution) and ``seconds``.
    """
    t0 = time.perf_counter()
    binaries = list(m.charging.values())
    units, steps = list(m.UNITS), list(m.STEPS)
    info: dict = {}
    for var in binaries:
        var.domain = pyo.UnitInterval
    try:
        relax = run(m)
    finally:
        for var in binaries:
            var.domain = pyo.Binary
    if relax.status == Status.OPTIMAL:
        info["relaxation_bound"] = float(pyo.value(m.first_objective))
    if relax.has_solution:
        def values(var):
            return np.array([[var[n, j, t].value or 0.0 for (n, j) in units] for t in steps])
        mode = start_modes(values(m.charge), values(m.discharge), values(m.charging))
        for t in steps:
            for k, (n, j) in enumerate(units):
                m.charging[n, j, t].fix(int(mode[t, k]))
        try:
            start = run(m)
        finally:
            for var in binaries:
                var.unfix()
        if start.has_solution:
            info["start_objective"] = float(pyo.value(m.first_objective))
    info["seconds"] = time.perf_counter() - t0
    return info


def _stages(m, penalty, tol, complementarity, run, instance_s) -> tuple[list, dict]:
    """Run stages 1-3 on one model; returns outcomes and what was done."""
    stages: list[str] = ["f1"]
    info: dict = {"stages": stages, "f1": math.nan, "rho": math.nan}
    outs = [run(m)]
    if not outs[-1].has_solution:
        return outs, info
    info["f1"] = float(pyo.value(m.first_objective))
    if hasattr(m, "charging"):  # MILP: the later stages run at the modes found
        for var in m.charging.values():
            var.fix(round(var.value or 0.0))
        stages[-1] = "f1 (MILP)"
    if penalty == "lexicographic":
        keep_objective(m, "keep_first_objective", m.first_objective, tol)
        _set_objective(m, m.variation_total, "lexicographic stage: min sum rho (34)")
        outs.append(run(m, True))
        stages.append("rho")
        if not outs[-1].has_solution:
            return outs, info
    if penalty != "none":
        info["rho"] = float(pyo.value(m.variation_total))
    viol = complementarity_violations(extract([m], instance_s))
    info["violations_lp"] = sum(viol.values())
    if complementarity == "fix":
        info["netted_pairs"] = net_exchange_pairs(m)
        viol = complementarity_violations(extract([m], instance_s))
    if sum(viol.values()) and complementarity == "fix":
        if "keep_first_objective" not in m.component_map(pyo.Constraint):
            keep_objective(m, "keep_first_objective", m.first_objective, tol)
        if penalty != "none":
            keep_objective(m, "keep_variation", m.variation_total, tol)
        _set_objective(m, m.storage_throughput,
                       "complementarity stage: min storage throughput at f1* (and rho*)")
        outs.append(run(m, True))
        stages.append("complementarity")
        if outs[-1].has_solution:
            net_exchange_pairs(m)
            viol = complementarity_violations(extract([m], instance_s))
    info["violations_left"] = sum(viol.values())
    return outs, info



def _storage_overlaps(part: dict, dt: float) -> int:
    """C6 on the storage pairs of one solution (kW arrays): (step, unit) cells where
    charge and discharge both exceed TOLERANCE_KWH over the step."""
    return int(((part["charge"] * dt > TOLERANCE_KWH)
                & (part["discharge"] * dt > TOLERANCE_KWH)).sum())


def _all_overlaps(part: dict, dt: float) -> int:
    """C6 on all pairs of one solution (kW arrays): the storage pairs
    (:func:`_storage_overlaps`) and the grid and community meter pairs -- the array
    form of :func:`recopt.ems.stage2.complementarity_violations`."""
    return _storage_overlaps(part, dt) + sum(
        int(((part[a] * dt > TOLERANCE_KWH) & (part[b] * dt > TOLERANCE_KWH)).sum())
        for a, b in (("grid_import", "grid_export"),
                     ("community_import", "community_export")))


def _net_pairs(part: dict) -> int:
    """:func:`net_exchange_pairs` on arrays (same exact argument), in place."""
    changed = 0
    for a, b in (("grid_import", "grid_export"), ("community_import", "community_export")):
        delta = np.minimum(part[a], part[b])
        pos = delta > 0.0
        changed += int(pos.sum())
        part[a] = np.where(pos, part[a] - delta, part[a])
        part[b] = np.where(pos, part[b] - delta, part[b])
    return changed


def _penalty_lp(M, lp1: HighsStagedLP, first, x1: np.ndarray, kw) -> tuple:
    """The lexicographic stage's LP when stage 1 ran without the penalty block: the
    whole LP on f1's optimal face (stage 1's duals extended by zeros: the penalty
    rows' duals and the ramp columns' reduced costs are 0 at stage 1, so the face of
    the whole LP is stage 1's face with the penalty block free) and with rho
    eliminated: its defining rows (34) dropped and its cost put on the ramps (sum rho =
    sum_k sum_t (ramp_up + ramp_down) / (|T| P_max,k)), which removes K dense rows with
    coefficients up to |T| P_max. Returns (LP, stage 1's point padded, the ramps' cost
    vector = sum rho)."""
    n0, m0 = lp1.n_col, M.rows["variation"].start
    if first.status == Status.OPTIMAL:
        cl, cu, rl, ru, _, _ = lp1.optimal_face()
    else:
        cl, cu = M.col_lower[:n0], M.col_upper[:n0]
        rl, ru = M.row_lower[:m0], M.row_upper[:m0]
    var = M.rows["variation"]
    rows = np.r_[np.arange(m0), np.arange(var.start, var.stop)]
    T, _, K = M.shape_TUK
    weight = M.A[M.rows["penalty"], M.columns["variation_ratio"]].diagonal()  # |T| P_max
    cost = np.zeros(M.A.shape[1])
    for name in ("ramp_up", "ramp_down"):
        cost[M.columns[name]] = np.repeat(1.0 / weight, T - 1)
    lp = HighsStagedLP(M.A[rows], cost, np.r_[cl, M.col_lower[n0:]],
                       np.r_[cu, M.col_upper[n0:]], np.r_[rl, M.row_lower[var]],
                       np.r_[ru, M.row_upper[var]], **kw)
    first.compile_seconds += lp.compile_seconds
    x = np.zeros(M.A.shape[1])
    x[:n0] = x1
    return lp, x, cost


def _with_ratios(M, x: np.ndarray) -> np.ndarray:
    """x with the rho columns recomputed from the ramps by (34) (they are in no row
    of the eliminated LP)."""
    x = np.array(x, float)
    T, _, K = M.shape_TUK
    weight = M.A[M.rows["penalty"], M.columns["variation_ratio"]].diagonal()
    ramps = (x[M.columns["ramp_up"]] + x[M.columns["ramp_down"]]).reshape(K, T - 1)
    x[M.columns["variation_ratio"]] = ramps.sum(axis=1) / weight
    return x


def staged_arrays(inst_s: xr.Dataset, *, ems: str, penalty: str, alpha: float,
                  final_soc: str, tol: float, complementarity: str, run_options: dict,
                  time_left) -> tuple[list, dict, dict | None, float]:
    """Stages 1-3 of the module docstring on the model's array assembly, one solver
    object (the LP stages only; the MILP fallback stays on the Pyomo model).

    Stage 1 minimises f1 alone on the interior point with crossover (a vertex, with
    its optimal duals); the lexicographic stage restricts the same object to f1's
    optimal face (``FACE_STAGE``: the bounds that the duals hold, exact by
    complementary slackness; the kept row f1 <= f1* (1 + tol) only if the face's
    optimum loses more f1 than that), the complementarity stage adds kept rows; each
    changes the cost (nothing recompiled) and runs on the interior point again, as the
    Pyomo path does (``LATER_STAGE_TUNING``). The primal simplex warm-started from stage 1's
    basis (the kept row's slack basic, so that basis stays primal feasible) was measured
    too: 1.7 s vs 33.6 s for the interior point at 100 members x 168 h, but 313 s of
    solve in all at 100 x 720 h (``benchmarks/README.md``), so it is not the default
    (``LATER_STAGE_SIMPLEX_STRATEGY``).
    ``time_left()`` gives the seconds left (None: no limit). Returns (outcomes, info,
    solution arrays or None, build seconds).
    """
    t0 = time.perf_counter()
    M: EMSMatrix | None = None
    if PROJECTED:
        M = projected_matrix(inst_s, ems=ems, penalty=penalty, alpha=alpha,
                             final_soc=final_soc)
    if M is None:
        M = matrix(inst_s, ems=ems, penalty=penalty, alpha=alpha, final_soc=final_soc)
    off = float(getattr(M, "first_objective_offset", 0.0))  # f1 = first_objective x + off
    build_s = time.perf_counter() - t0
    kw = dict(threads=run_options.get("threads"), options=run_options.get("options"))
    split = penalty == "lexicographic" and FACE_STAGE and SPLIT_PENALTY
    # with split: stage 1 without the penalty block (its columns are the last ones,
    # its rows the last ones, and it is free at stage 1: zero cost, always satisfiable)
    n0 = M.columns["ramp_up"].start if split else M.A.shape[1]
    m0 = M.rows["variation"].start if split else M.A.shape[0]
    lp = HighsStagedLP(M.A[:m0, :n0], M.cost[:n0], M.col_lower[:n0], M.col_upper[:n0],
                       M.row_lower[:m0], M.row_upper[:m0], **kw)
    rho_cost = M.variation_total
    stages: list[str] = ["f1"]
    info: dict = {"stages": stages, "f1": math.nan, "rho": math.nan}
    out, x = lp.solve(run_options.get("first_method"), time_left())
    out.compile_seconds = lp.compile_seconds
    out.objective += off  # stage 1's objective and bound are f1 (+ alpha sum rho)
    out.bound += off
    outs = [out]
    if x is None:
        return outs, info, None, build_s
    info["f1"] = float(M.first_objective[:n0] @ x) + off
    if split:
        lp, x, rho_cost = _penalty_lp(M, lp, outs[0], x, kw)
    later = run_options.get("later_method")
    primal = LATER_STAGE_SIMPLEX_STRATEGY
    face = False
    if penalty == "lexicographic":
        kept = info["f1"] + tol * max(1.0, abs(info["f1"]))
        face = outs[0].status == Status.OPTIMAL and FACE_STAGE
        if face and not split:  # f1's optimal face by its duals: no degenerate kept row
            info["face_columns"], info["face_rows"] = lp.restrict_to_optimal_face()
        elif not face:
            lp.keep(M.first_objective, kept - off)
        lp.set_cost(rho_cost)
        out, x = lp.solve(later, time_left(), primal)
        if split and x is not None:
            x = _with_ratios(M, x)
        if face and x is not None and float(M.first_objective @ x) + off > kept:
            # the face was left larger than the optimal set (an active bound at
            # infinity, a dual below eps): keep f1 by the row after all
            lp.keep(M.first_objective, kept - off)
            out, x = lp.solve(later, time_left(), primal)
            if split and x is not None:
                x = _with_ratios(M, x)
            info["face_fallback"] = True
        outs.append(out)
        stages.append("rho")
        if x is None:
            return outs, info, None, build_s
    if penalty != "none":
        info["rho"] = float(M.variation_total @ x)
    dt = float(inst_s.attrs["time_step_hours"])
    part = M.split(x)
    info["violations_lp"] = _all_overlaps(part, dt)
    if complementarity == "fix":
        info["netted_pairs"] = _net_pairs(part)
        if _storage_overlaps(part, dt):
            if penalty != "lexicographic" or (face and not info.get("face_fallback")):
                lp.keep(M.first_objective,
                        info["f1"] + tol * max(1.0, abs(info["f1"])) - off)
            if penalty != "none":
                lp.keep(rho_cost, info["rho"] + tol * max(1.0, abs(info["rho"])))
            lp.set_cost(M.storage_throughput)
            out, x = lp.solve(later, time_left(), primal)
            if split and x is not None:
                x = _with_ratios(M, x)
            outs.append(out)
            stages.append("complementarity")
            if x is None:
                return outs, info, None, build_s
            part = M.split(x)
            _net_pairs(part)
    info["violations_left"] = _all_overlaps(part, dt)
    flow = "grid_export" if ems == "EMS3" else "grid_import"
    info["f1_value"] = dt * float(part[flow].sum())  # after netting (f1 can only fall)
    info["rho_value"] = float(M.variation_total @ x)
    return outs, info, part, build_s

@register_algorithm("ems_stages")
def solve_ems(instance: xr.Dataset, *, model: str, time_limit=None, seed=None,
              solver="highs", mip_gap=None, threads=None, options=None,
              penalty="none", alpha=1.0, final_soc="at_least", complementarity="fix",
              lex_tolerance=1e-7, room_cuts=False,
              mode_start=False) -> tuple[xr.Dataset | None, RunRecord]:
    """Solve EMS3 or EMS4 (``model``) on every scenario: (schedule, RunRecord).

    The Result holds the schedule of :mod:`recopt.ems.schedule`, grid-based SCR (29) and
    SSR (31), and attrs: ``objective`` (expected f1, kWh), ``variation`` (expected
    sum rho), ``complementarity_violations`` (after the fix; 0 unless
    ``complementarity="report"``), ``milp`` (1 when binaries were needed), the stage list
    and the time split (build / compile / solve).
    """
    ems = model
    deadline = None if time_limit is None else time.time() + float(time_limit)
    solver_kw = dict(solver=solver, mip_gap=mip_gap, threads=threads, options=options)

    def run(m, later_stage=False, warm=False):
        kw = dict(solver_kw, warm_start=warm)
        large = instance.sizes["time"] * instance.sizes["member"] >= FIRST_STAGE_IPM_CELLS
        milp = hasattr(m, "charging") and not all(v.fixed for v in m.charging.values())
        if (later_stage or large) and not milp:
            kw["options"] = {**tuned_options(solver, LATER_STAGE_TUNING), **(options or {})}
        if deadline is not None:
            kw["time_limit"] = max(0.0, deadline - time.time())
        return solve_pyomo(m, **kw)

    def run_from_start(m, later_stage=False):
        return run(m, later_stage, warm=not later_stage)

    def staged(m, comp, starts, inst_s):
        """:func:`_stages` on ``m``; with ``mode_start`` and binaries, the first (MILP)
        stage starts from :func:`mode_start_point`'s schedule (appended to ``starts``)."""
        first: Callable = run
        with gc_manager.PauseGC():  # as in build(): the collector's passes over the model cost time
            if mode_start and hasattr(m, "charging"):
                starts.append(mode_start_point(m, run))
                if "start_objective" in starts[-1]:
                    first = run_from_start
            return _stages(m, penalty, lex_tolerance, comp, first, inst_s)

    S = instance.sizes["scenario"]
    models, outcomes, infos = [], [], []
    parts: list[dict] = []  # per scenario: the solution as kW / % arrays
    f1s: list[float] = []
    rhos: list[float] = []
    f1_bounds: list[float] = []  # per scenario: the best proven lower bound on f1, kWh
    build_s = 0.0
    fast = (instance.sizes["time"] * instance.sizes["member"] >= FAST_PATH_CELLS
            and complementarity != "binary" and solver == "highs")
    fast_options = dict(threads=threads, options=options,
                        first_method=(options or {}).get("solver", "ipm"),
                        later_method=(options or {}).get(
                            "solver", LATER_STAGE_TUNING.lp_method))

    def time_left():
        return None if deadline is None else max(0.0, deadline - time.time())

    for s in range(S):
        inst_s = instance.isel(scenario=[s])
        if fast:
            outs, info, part, b_s = staged_arrays(
                inst_s, ems=ems, penalty=penalty, alpha=alpha, final_soc=final_soc,
                tol=lex_tolerance, complementarity=complementarity,
                run_options=fast_options, time_left=time_left)
            build_s += b_s
            outcomes += outs
            if part is None or not (info["violations_left"] and complementarity == "fix"):
                infos.append(info)
                if part is not None:
                    parts.append(part)
                    f1s.append(info["f1_value"])
                    rhos.append(info["rho_value"] if penalty != "none" else 0.0)
                known = [o.bound for o in outs[:1] if math.isfinite(o.bound)]
                f1_bounds.append(max(known) if known and penalty != "weighted"
                                 else math.nan)
                continue
            # a storage overlap survived the LP stages: the exact MILP on the Pyomo model
        t0 = time.perf_counter()
        m = build(inst_s, ems=ems, penalty=penalty, alpha=alpha, final_soc=final_soc,
                  binaries=complementarity == "binary", room_cuts=room_cuts)
        build_s += time.perf_counter() - t0
        starts: list[dict] = []
        outs, info = staged(m, complementarity, starts, inst_s)
        outcomes += outs
        first_stages = [outs[0]]
        if outs[-1].has_solution and complementarity == "fix":
            # the LP optimum needs simultaneous charge/discharge
            if info["violations_left"]:
                t0 = time.perf_counter()
                m = build(inst_s, ems=ems, penalty=penalty, alpha=alpha,
                          final_soc=final_soc, binaries=True, room_cuts=room_cuts)
                build_s += time.perf_counter() - t0
                outs, info2 = staged(m, "fix", starts, inst_s)
                outcomes += outs
                first_stages.append(outs[0])
                info = {**info2, "milp": True, "violations_lp": info["violations_lp"]}
        models.append(m)
        parts.append(arrays(m))
        f1s.append(float(pyo.value(m.first_objective)))
        rhos.append(float(pyo.value(m.variation_total)) if penalty != "none" else 0.0)
        infos.append(info)
        # the first stage minimises f1 alone (unless weighted): its proven bound (the LP's
        # optimum, the MILP's best bound) is a lower bound on f1 of every later stage
        known = [o.bound for o in first_stages if math.isfinite(o.bound)]
        known += [st["relaxation_bound"] for st in starts if "relaxation_bound" in st]
        f1_bounds.append(max(known) if known and penalty != "weighted" else math.nan)
        if starts:
            info["mode_start"] = starts[-1]
    status = worst(o.status for o in outcomes)
    has_solution = all(o.has_solution for o in outcomes)
    t1 = time.perf_counter()
    extra = dict(
        solves=len(outcomes), stages=",".join(infos[0]["stages"]),
        milp=int(any(i.get("milp") for i in infos)),
        complementarity_violations_lp=int(sum(i.get("violations_lp", 0) for i in infos)),
    )
    for key in ("start_objective", "relaxation_bound", "seconds"):
        found = [i["mode_start"][key] for i in infos if key in i.get("mode_start", {})]
        if found:
            extra[f"mode_start_{key}"] = float(sum(found))
    sizes = dict(
        solver_version=outcomes[0].solver_version, build_seconds=build_s,
        compile_seconds=sum(o.compile_seconds for o in outcomes),
        solve_seconds=sum(o.solve_seconds for o in outcomes),
        n_variables=outcomes[-1].n_variables * S, n_constraints=outcomes[-1].n_constraints * S,
        n_integer=max(o.n_integer for o in outcomes), blocks=S, workers=1)
    message = "; ".join(sorted({o.message for o in outcomes if o.message}))
    if not has_solution:
        return None, RunRecord(
            status=status if status != Status.OPTIMAL else Status.ERROR, message=message,
            has_solution=False, extra=extra, **sizes)
    schedule = extract_parts(parts, instance, StorageUnits.from_instance(instance), ems)
    result = with_indicators_of(instance, schedule)
    checks = check_schedule(instance, schedule, final_soc=final_soc)
    viol = sum(v for k, v in checks.items() if k.startswith("complementarity_"))
    prob = np.asarray(instance["scenario_probability"].values, float)
    f1 = np.array(f1s)
    rho = np.array(rhos)
    if viol:
        status = Status.ERROR
        message = (f"complementarity check C6 failed at {viol} (step, member) pairs "
                   f"(grid/community/storage halves both > {TOLERANCE_KWH:g} kWh); rerun "
                   "with complementarity=fix or binary" + (f"; {message}" if message else ""))
    extra.update(variation=float((prob * rho).sum()), complementarity_violations=int(viol),
                 max_balance_error_kwh=checks["balance"],
                 max_soc_dynamics_error=checks["soc_dynamics"])
    extra["summary_text"] = _summary(ems, result, f1, rho, penalty, extra)
    objective = float((prob * f1).sum())
    bound = objective if status == Status.OPTIMAL else float((prob * np.array(f1_bounds)).sum())
    record = RunRecord(
        status=status, message=message, has_solution=True, objective=objective,
        bound=bound, gap=0.0 if status == Status.OPTIMAL else relative_gap(objective, bound),
        extract_seconds=time.perf_counter() - t1, extra=extra, **sizes)
    return result, record


def _summary(ems, result, f1, rho, penalty, attrs) -> str:
    what = "grid export" if ems == "EMS3" else "grid import"
    lines = [f"{ems:<10} {what} {f1.mean():,.3f} kWh; grid-based SCR "
             f"{float(result['grid_scr'].mean()):.1%}, SSR {float(result['grid_ssr'].mean()):.1%}"
             + (f"; sum rho {rho.mean():.4g}" if penalty != "none" else "")]
    lines.append(f"stages     {attrs['stages']}" + (" + MILP (binaries)" if attrs["milp"] else "")
                 + f"; LP complementarity violations before the fix: "
                 f"{attrs['complementarity_violations_lp']}")
    return "\n".join(lines)
