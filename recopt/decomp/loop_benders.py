"""SLExt and MLColExt: Benders decompositions of SLCpct and MLCol.

Source: Chasseray, Besançon, Lorca, Petitdemange (arXiv:2404.04428, ``docs/references.md``),
Models 3-5 (SLExt) and 10-11 (MLColExt); reconstruction in
``docs/reconstruction/loop-design.md`` (sections SLExt, MLColExt); model card
``models/SLExt-MLColExt.md``. The algorithm is :mod:`recopt.decomp.benders`; this
module only says which pieces of :mod:`recopt.models.loops.build` form the master
and the second stage, and registers the algorithm ``loop_benders`` that the
``SLExt`` and ``MLColExt`` specs (:mod:`recopt.models.loops`) name:

* SLExt: master = :func:`add_single_loop_design` (``member`` x, ``surplus`` u,
  (1g), (1h), (1k), (1l)); second stage = :func:`fixed_single_loop` (Model 4:
  (1a)-(1f), (1j)) with x, u as fixed Vars; one block per (scenario, step).
* MLColExt: master = :func:`add_column_choice` + :func:`add_pair_activity`
  (``choose`` z, (8b), ``pair_active`` y = Σ z); second stage = :func:`fixed_columns`
  (Model 11: (9a)-(9e), (8a)) with z, y as fixed Vars.

Units: energies kWh per step, prices EUR/kWh, objective and bounds EUR (expected).
"""

from __future__ import annotations

import math
import time
from collections.abc import Hashable
from typing import TYPE_CHECKING, cast

import numpy as np
import xarray as xr

from recopt.data.view import empty_solution
from recopt.decomp.benders import (
    BendersOptions,
    TwoStage,
    solve_benders,
)
from recopt.decomp.column_generation import (
    cg_history,
    cg_options,
    resume_column_generation,
    solve_column_generation,
)
from recopt.decomp.phase_clock import PhaseClock
from recopt.decomp.registry import register_algorithm
from recopt.lazy import pyomo_module
from recopt.models.loops import MASTER_TUNING, derive, loop_data
from recopt.models.loops.arrays import column_matrix, single_loop_matrix
from recopt.models.loops.build import (
    add_column_choice,
    add_pair_activity,
    add_single_loop_design,
    column_arcs,
    fixed_columns,
    fixed_single_loop,
    loop_set,
    loops_of_arc,
)
from recopt.models.loops.data import LoopData
from recopt.models.loops.enumeration import DEFAULT_MAX_LOOPS
from recopt.models.loops.solution import loops_of_choice, operation_arrays, solution_dataset
from recopt.solvers.dispatch import tuned_options
from recopt.solvers.outcome import relative_gap
from recopt.solvers.record import RunRecord
from recopt.solvers.status import Status

if TYPE_CHECKING:
    import pyomo.environ as pyo
else:
    pyo = pyomo_module("pyomo.environ")

#: MLColExt with ``enumeration=generate``: share of the time limit for column generation
#: (the rest for building the Benders problem on its loops and the iterations).
GENERATE_SHARE = 0.5


def _theta_lower(d: LoopData, steps) -> dict:
    """(3c) θ[ω,t] >= −π_ω Σ_i s[i,ω,t] P̂[i,ω,t]: everyone sells everything, EUR."""
    low = -(d.probability[:, None] * (d.sell * d.P).sum(axis=2))
    return {(s, t): float(low[s, t]) for s, t in steps}


def _blocks(d: LoopData, reduce: bool, arcs=None) -> tuple[list, float]:
    """The (ω,t) blocks of the second stage and the constant value of the others.

    ``reduce``: only :meth:`LoopData.decision_steps`; at the other steps every actor
    pays its standalone cost whatever the design (card, choice 7).
    """
    if not reduce:
        return d.steps, 0.0
    steps = d.decision_steps(arcs)
    standalone = (d.probability[:, None, None] * d.standalone_cost()).sum(axis=2)
    return steps, float(standalone[_left_out(d, steps)].sum())


def _left_out(d: LoopData, steps) -> np.ndarray:
    """(S, T) mask of the steps not in ``steps``."""
    out = np.ones(d.shape[:2], bool)
    for s, t in steps:
        out[s, t] = False
    return out


def standalone_operation(d: LoopData, steps, f, gb, gs) -> None:
    """Fill the steps outside ``steps`` (left out of the second stage) with the
    standalone operation: no flow, buy Ĉ, sell P̂ (there Ĉ P̂ = 0 for every actor)."""
    out = _left_out(d, steps)
    gb[out] = d.C[out]
    gs[out] = d.P[out]
    f[out] = 0.0


def _step_block(index):
    return tuple(index[:2])  # every second-stage row and column is indexed (ω, t, ...)


def slext_problem(d: LoopData, reduce: bool = True) -> TwoStage:
    """SLExt (Models 3-5) as a :class:`~recopt.decomp.benders.TwoStage` problem.

    First stage: ``member`` x (n) then ``surplus`` u (one per block (ω,t)), in that
    order. ``reduce``: blocks only at :meth:`LoopData.decision_steps` (u, (1g), (1h)
    too); the others' standalone cost is the problem's constant (card, choice 7).
    Core point (Pareto cuts): the mean of the feasible points "no loop, u = 0", "no
    loop, u = 1" and each single actor within the power cap with u its own status.
    Initial point: no loop (UB = the no-loop cost).
    """
    steps, constant = _blocks(d, reduce)
    S, T, n = d.shape
    master = pyo.ConcreteModel(name="SLExt-master")
    add_single_loop_design(master, d, steps)
    first = [master.member[i] for i in range(n)] + [master.surplus[s, t] for s, t in steps]

    def build_sub():
        sub = fixed_single_loop(d, np.zeros(n), np.zeros((S, T)), steps, first_stage="vars",
                                bounded=False)
        return sub, [sub.member[i] for i in range(n)] + [sub.surplus[s, t] for s, t in steps]

    nst = len(steps)
    net = d.P - d.C
    points = [np.zeros(n + nst), np.r_[np.zeros(n), np.ones(nst)]]
    for i in range(n):
        if d.power[i] <= d.wmax:
            x = np.zeros(n)
            x[i] = 1
            u = np.array([1.0 if net[s, t, i] >= 0 else 0.0 for s, t in steps])
            points.append(np.r_[x, u])
    return TwoStage(master=master, first_stage=first, build_sub=build_sub,
                    matrix=lambda: single_loop_matrix(d, steps),
                    block_of=_step_block, theta_lower=_theta_lower(d, steps),
                    core_point=np.mean(points, axis=0), initial_point=np.zeros(n + nst),
                    constant=constant)


#: The rows of MLColExt's second stage that hold its first stage: (8a) with y, (9d) /
#: (9e) with z (``TwoStage.coupling_rows``: the compile then holds no loop term).
MLCOLEXT_COUPLING_ROWS = ("loop_flow", "buy_rule", "sell_rule")
#: From this many loops on, MLColExt's second stage is compiled with the first stage
#: fixed (``coupling_rows``): its memory no longer grows with the loops, but reading
#: ``H`` row by row costs CPU (100 actors x 180 days, 47 maximal loops: build 17.8 s
#: against 15.4 s, same peak memory; 20 x 28 days, 2000 loops: the compile's memory
#: per loop 0.0017 against 0.0130 MiB; ``benchmarks/README.md``).
COUPLED_COMPILE_MIN_LOOPS = 1000


def mlcolext_problem(d: LoopData, loops, rows: str = "aggregated",
                     reduce: bool = True, coupled_compile: bool | None = None) -> TwoStage:
    """MLColExt (Models 10-11) as a :class:`~recopt.decomp.benders.TwoStage` problem.

    First stage: ``choose`` z (one per enumerated loop) then ``pair_active`` y (one
    per pair inside some loop, y = Σ_{S∋i,j} z by ``pair_link`` in the master).
    Core point: z = 1/(K+1) for every loop (the mean of "no loop" and each single
    loop), y its pair sums. Initial point: no loop. ``reduce``: as for SLExt, with
    the arcs inside some enumerated loop. ``coupled_compile``: compile the second
    stage with the first stage fixed (``TwoStage.coupling_rows``); None: from
    :data:`COUPLED_COMPILE_MIN_LOOPS` loops on.
    """
    K = len(loops)
    coupled = K >= COUPLED_COMPILE_MIN_LOOPS if coupled_compile is None else coupled_compile
    steps, constant = _blocks(d, reduce, column_arcs(loops))
    master = pyo.ConcreteModel(name="MLColExt-master")
    add_column_choice(master, d, loops)
    add_pair_activity(master, loops)
    pairs = list(master.PAIRS)
    first = [master.choose[k] for k in range(K)] + [master.pair_active[p] for p in pairs]

    def build_sub():
        sub = fixed_columns(d, loops, np.zeros(K), steps, rows=rows, first_stage="vars",
                            bounded=False)
        return sub, [sub.choose[k] for k in range(K)] + [sub.pair_active[p] for p in pairs]

    matrix = None
    if rows == "aggregated":  # the per-loop rows are compiled from Pyomo
        arcs = column_arcs(loops)

        def matrix():
            return column_matrix(d, loops, steps, pairs, arcs)

    z0 = np.full(K, 1.0 / (K + 1))
    of_arc = loops_of_arc(loops)
    y0 = np.array([len(of_arc[p]) / (K + 1) for p in pairs])
    return TwoStage(master=master, first_stage=first, build_sub=build_sub, matrix=matrix,
                    block_of=_step_block, theta_lower=_theta_lower(d, steps),
                    core_point=np.r_[z0, y0], initial_point=np.zeros(K + len(pairs)),
                    constant=constant,
                    coupling_rows=MLCOLEXT_COUPLING_ROWS if coupled else None)


#: Going back to pricing after Benders: the next Benders run (build included) is
#: assumed to take up to this multiple of the last one, which pricing leaves to it.
RESERVE_FACTOR = 1.5


def _price_again(d: LoopData, cg, state: dict, opts: BendersOptions, deadline: PhaseClock,
                 rows, reduce, cuts, cg_end: float):
    """MLColExt with ``enumeration=generate``: while the proven gap (Benders' incumbent
    against column generation's bound, valid for all loops) is above the target and
    Benders left time, resume pricing in the kept master (the bound improves, new
    loops enter), then Benders again on the larger loop set, started from the best
    design so far (so its incumbent is never worse). ``state``: ``res`` (the Benders
    run) and ``problem``; the previous run is closed before the next is built (one
    second stage in memory at a time). Returns the last run, its problem and loops
    (card ``models/SLExt-MLColExt.md``, choice 14)."""
    res, problem = state.pop("res"), state.pop("problem")
    loops = cg.loops
    taken = max(1.0, time.perf_counter() - cg_end)  # the first Benders, build included
    while not cg.converged and res.has_solution:
        gap = relative_gap(res.upper_bound, min(cg.bound, res.lower_bound))
        left = deadline.remaining()
        if gap <= opts.gap + 1e-12 or left is None or left <= RESERVE_FACTOR * taken:
            break
        added = resume_column_generation(cg, PhaseClock(left - RESERVE_FACTOR * taken))
        gap = relative_gap(res.upper_bound, min(cg.bound, res.lower_bound))
        if added == 0 or gap <= opts.gap + 1e-12 or deadline.expired():
            break  # the bound alone closed the gap, or no new loop to try
        last = time.perf_counter()
        new_loops = cg.loops
        K = len(loops)
        z = np.r_[res.best_point[:K], np.zeros(len(new_loops) - K)]  # the best design
        group_of = problem.group_of
        if res.second_stage is not None:
            res.second_stage.close()
        del res, problem  # one Benders problem in memory at a time
        problem = mlcolext_problem(d, new_loops, rows, reduce)
        problem.group_of = group_of
        of_arc = loops_of_arc(new_loops)
        y = np.array([sum(z[k] for k in of_arc[p]) for p in problem.master.PAIRS])
        problem.initial_point = np.r_[z, y]
        opts.time_limit = deadline.remaining()
        res = solve_benders(problem, opts)
        loops = new_loops
        taken = max(1.0, time.perf_counter() - last)
    return res, problem, loops


# --------------------------------------------------------------------------------------
# the algorithm: python -m recopt.solve instance.nc --model SLExt|MLColExt
# --------------------------------------------------------------------------------------
def steps_per_day(instance: xr.Dataset) -> int:
    """Time steps per day of the instance (its ``time_step_hours``; at least 1)."""
    return max(1, int(round(24.0 / float(instance.attrs["time_step_hours"]))))


def _count(model, kind) -> int:
    """Variables / constraints of the final master (first stage, θ, cuts)."""
    return sum(1 for _ in model.component_data_objects(kind, active=True))


def history_dataset(res) -> xr.Dataset:
    """The Benders iteration log as variables on ``benders_iteration``."""
    keys = ("lower_bound", "upper_bound", "gap", "cuts_added", "pareto_cuts",
            "master_seconds", "master_compile_seconds", "master_gap", "sub_seconds",
            "cut_seconds")
    data = {f"benders_{k}": (("benders_iteration",),
                             np.array([h[k] for h in res.history], dtype=float))
            for k in keys}
    return xr.Dataset(data, coords={"benders_iteration":
                                    np.array([h["iteration"] for h in res.history])})


@register_algorithm("loop_benders")
def solve_loop_benders(instance: xr.Dataset, *, model: str, time_limit=None, seed=None,
                       solver="highs", mip_gap=None, threads=None, options=None,
                       self_consumption=True, distance="auto", internal_price=math.nan,
                       cuts="aggregated", pareto=False, max_iterations=500, enumeration="all",
                       max_loops=DEFAULT_MAX_LOOPS, rows="aggregated", reduce=True,
                       progress=None, exact_pricing=True, stabilisation=0.0,
                       columns_per_round=40, workers=None, scheduler=None,
                       master_solver="split") -> tuple[xr.Dataset, RunRecord]:
    """SLExt or MLColExt (``model``) by Benders: the solution and the run's record.

    MLColExt with ``enumeration="generate"``: column generation
    (:mod:`recopt.decomp.column_generation`, LP only) gives the loop set; the Result's
    bound is then ``min(CG bound, Benders bound)`` (Benders' own bound holds for the
    generated loops only).

    ``workers`` (the runner's; default 1 here): the sub-problem's blocks in that many
    worker processes, each part kept in HiGHS; ``scheduler``: the address of a Dask
    scheduler whose workers solve the parts (``BendersOptions.workers``,
    ``.scheduler``). The master stays in this process."""
    t0 = time.perf_counter()
    deadline = PhaseClock(None if time_limit is None else float(time_limit), start=t0)
    d = loop_data(instance, self_consumption=self_consumption, distance=distance)
    cg, cg_end = None, None
    if model == "SLExt":
        problem = slext_problem(d, reduce)
        loops = None
    elif enumeration == "generate":  # the loops column generation priced in
        cg_opts = cg_options(time_limit, None if mip_gap is None else float(mip_gap) / 10,
                             threads, exact_pricing, False, stabilisation, columns_per_round,
                             progress=progress, solver=solver, master_solver=master_solver)
        cg_opts.integer = False
        cg_opts.deadline, cg_opts.pricing_share = deadline.share(GENERATE_SHARE), 1.0
        cg = solve_column_generation(d, cg_opts)
        cg_end = time.perf_counter()
        loops = cg.loops
        problem = mlcolext_problem(d, loops, rows, reduce)
    else:
        loops = loop_set(d, enumeration, max_loops)
        problem = mlcolext_problem(d, loops, rows, reduce)
    if cuts == "daily":  # one θ per scenario and day: the sum of its hours' cuts
        spd = steps_per_day(instance)

        def by_day(block: Hashable) -> Hashable:
            s, t = cast(tuple[int, int], block)  # the blocks are (scenario, step)
            return (s, t // spd)

        problem.group_of = by_day
    build = time.perf_counter() - t0
    opts = BendersOptions(
        solver=solver, gap=1e-4 if mip_gap is None else float(mip_gap),
        max_iterations=int(max_iterations),
        time_limit=deadline.remaining(),  # what set-up (and column generation) left
        threads=threads, cuts="grouped" if cuts == "daily" else cuts,
        pareto=bool(pareto), sub_options=options,
        master_options={**tuned_options(solver, MASTER_TUNING), **(options or {})},
        progress=progress, workers=1 if workers is None else max(1, int(workers)),
        scheduler=scheduler)
    res = solve_benders(problem, opts)
    if cg is not None:  # back to pricing while Benders leaves time (card, choice 14)
        assert cg_end is not None  # set with cg
        state = {"res": res, "problem": problem}
        del res, problem  # _price_again may free them before its next Benders run
        res, problem, loops = _price_again(d, cg, state, opts, deadline, rows, reduce, cuts,
                                           cg_end)
    t1 = time.perf_counter()
    stage, best = res.second_stage, res.best_point
    if stage is not None and not res.has_solution:
        stage.close()
    if res.has_solution:
        assert stage is not None and best is not None  # a solution has both
        try:
            y = stage.load(best, opts)
        finally:
            stage.close()
        if stage.matrix is not None:  # built as arrays: no Pyomo second stage
            f, gb, gs = stage.matrix.operation(y, d)
            stage.matrix = None
        else:
            f, gb, gs = operation_arrays(problem.sub, d)
        del y
        stage.release()  # the second stage's arrays and LPs: not needed for the Result
        # the second stage's steps, in the first stage's order (as the problem was built)
        blocks = _blocks(d, reduce, None if loops is None else column_arcs(loops))[0]
        standalone_operation(d, blocks, f, gb, gs)
        if model == "SLExt":
            x = best[:d.n]
            members = tuple(i for i in range(d.n) if x[i] > 0.5)
            S, T, _ = d.shape
            u = np.zeros((S, T, 1 if members else 0))
            if members:  # u from the loop's net position, then the master's where it has one
                u[:, :, 0] = (d.P - d.C)[:, :, list(members)].sum(axis=2) >= 0
                for k, (s, t) in enumerate(blocks):
                    u[s, t, 0] = best[d.n + k] > 0.5
            chosen = [members] if members else []
        else:
            assert loops is not None  # MLColExt has its loops
            chosen, u = loops_of_choice(best[:len(loops)], loops, d)
        sol = solution_dataset(instance, d, chosen, u, f, gb, gs)
        sol.attrs["n_graph_edges"] = len(d.edges)
        if loops is not None:
            sol.attrs["n_enumerated_loops"] = len(loops)
        out = derive(instance, sol, self_consumption=self_consumption,
                     internal_price=internal_price, enumeration=enumeration)
        out = xr.merge([out, history_dataset(res)], combine_attrs="override")
    else:
        out = xr.merge([empty_solution(instance), history_dataset(res)])
    if cg is not None:  # the rounds that generated the loops, for the convergence figure
        out = xr.merge([out, cg_history(cg)], combine_attrs="override")
    t2 = time.perf_counter()
    if res.has_solution and "summary_text" in out.attrs:
        out.attrs["summary_text"] += (
            f"\nbenders    {res.iterations} iterations, {res.n_cuts} cuts; time master "
            f"{res.master_seconds:.2f} s, sub-problems {res.sub_seconds:.2f} s, cuts "
            f"{res.cut_seconds:.2f} s, set-up {res.setup_seconds:.2f} s")
    bound, gap, status, note = res.lower_bound, res.gap, res.status, ""
    if cg is not None:  # Benders' bound holds for the generated loops only
        bound = min(cg.bound, res.lower_bound)
        gap = relative_gap(res.upper_bound, bound)
        if status == Status.OPTIMAL and not gap <= opts.gap + 1e-12:
            status = Status.TIME_LIMIT if cg.status == Status.TIME_LIMIT else Status.FEASIBLE
        assert loops is not None  # generated with cg
        note = (f"; {len(loops)} loops generated ({cg.rounds} rounds, {cg.exact_pricings} "
                "exact pricings), bound from column generation")
    sub_columns, sub_rows = (0, 0) if stage is None else (stage.n_columns, stage.n_rows)
    record = RunRecord(
        status=status,
        message=(f"Benders ({cuts} cuts{', Pareto' if pareto else ''}): {res.message}; "
                 f"{res.iterations} iterations, {res.n_cuts} cuts{note}"),
        has_solution=res.has_solution, objective=res.upper_bound,
        bound=bound, gap=gap, solver_version=res.solver_version,
        build_seconds=build + res.setup_seconds, compile_seconds=0.0,
        solve_seconds=res.master_seconds + res.sub_seconds + res.cut_seconds,
        extract_seconds=t2 - t1, blocks=res.n_blocks, workers=opts.workers,
        n_variables=_count(problem.master, pyo.Var) + sub_columns,
        n_constraints=_count(problem.master, pyo.Constraint) + sub_rows,
        n_integer=sum(1 for v in problem.first_stage if v.is_integer()),
        extra=dict(
            benders_iterations=res.iterations, benders_cuts=res.n_cuts,
            benders_pareto_cuts=res.pareto_cuts, benders_master_seconds=res.master_seconds,
            benders_sub_seconds=res.sub_seconds, benders_cut_seconds=res.cut_seconds,
            benders_setup_seconds=res.setup_seconds),
    )
    return out, record


__all__ = ["slext_problem", "mlcolext_problem", "solve_loop_benders", "steps_per_day"]
