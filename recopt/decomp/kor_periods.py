"""KoR9 / KoR10 solved one (scenario, billing period) at a time, stitched (exact).

Mustika et al.'s KoR9 (equal saving ratios, eq. (46)) and KoR10 (max-min saving
ratio, eq. (47)) couple the steps of a billing period through the bills; periods
and scenarios are independent problems (model card ``models/KoR8-KoR10.md``).
This algorithm builds :func:`recopt.models.kor.build` on each period block
(:func:`recopt.decomp.blocks.period_blocks`), solves them in worker processes
through :func:`recopt.decomp.blocks.solve_blocks`, runs KoR10's lexicographic
second stage inside each period, stitches the blocks (:func:`~recopt.decomp.blocks.stitch`)
and derives the bills once on the whole instance.
"""

from __future__ import annotations

import math
import os
import time
from typing import cast

import numpy as np
import xarray as xr

from recopt.decomp.blocks import BlockResult, block_record, period_blocks, solve_blocks, stitch
from recopt.decomp.registry import register_algorithm
from recopt.models import kor
from recopt.solvers.dispatch import solve_pyomo
from recopt.solvers.record import RunRecord
from recopt.solvers.status import Status


def solve_period(sub: xr.Dataset, variant: str, opts: dict, solver_kw: dict,
                 deadline: float | None) -> BlockResult:
    """Build and solve one (scenario, billing period) block; KoR10's second stage too."""
    order = opts.get("order", "fairness")
    tol = float(opts.get("lex_tolerance", kor.LEX_TOLERANCE))
    t0 = time.perf_counter()
    m = kor.build(sub, variant=variant, nonpositive_baseline=opts["nonpositive_baseline"])
    if variant == "KoR10" and order == "bill_then_fairness":
        kor.set_bill_objective(m)
    build = time.perf_counter() - t0
    outcomes = []

    def run():
        kw = dict(solver_kw)
        if deadline is not None:
            kw["time_limit"] = max(0.0, deadline - time.time())
        outcomes.append(solve_pyomo(m, **kw))
        return outcomes[-1]

    out = run()
    if variant == "KoR10" and order != "fairness" and out.status == Status.OPTIMAL:
        t1 = time.perf_counter()
        kor.add_second_stage(m, order, tol)
        build += time.perf_counter() - t1
        out = run()
    t2 = time.perf_counter()
    sol = kor.extract(m, sub) if out.has_solution else None
    return BlockResult(sol, outcomes, build, time.perf_counter() - t2)


@register_algorithm("kor_periods")
def solve_by_period(instance: xr.Dataset, *, model: str, time_limit=None, seed=None,
                    solver="highs", mip_gap=None, threads=None, options=None,
                    **opts) -> tuple[xr.Dataset | None, RunRecord]:
    """KoR9 or KoR10 (``model``) on ``instance``, one LP per (scenario, billing period)."""
    deadline = None if time_limit is None else time.time() + float(time_limit)
    solver_kw = dict(solver=solver, mip_gap=mip_gap, threads=threads, options=options)
    blocks = period_blocks(instance)
    n_workers = int(opts.pop("period_workers", 0)) or (os.cpu_count() or 1)
    parts = solve_blocks(solve_period, instance, blocks, (model, opts, solver_kw, deadline),
                         n_workers, desc=f"{model} billing periods")
    record = block_record(parts, workers=n_workers, n_integer=0,
                          extra={"solves": sum(len(p.outcomes) for p in parts)})
    prob = np.asarray(instance["scenario_probability"].values, float)
    t0 = time.perf_counter()
    result = None
    objective = math.nan
    if record.has_solution:
        solutions = cast(list[xr.Dataset], [p.solution for p in parts])  # all solved
        result = kor.derive(instance, stitch(instance, blocks, solutions),
                            **opts)
        if model == "KoR10":  # expected sum over periods of z (47)
            objective = float((prob[:, None] * result["model_min_saving_ratio"].values).sum())
        else:  # expected collective bill, fees included (45)
            objective = float((prob * result["collective_bill"].values).sum())
    optimal = record.status == Status.OPTIMAL
    record = record.replace(
        status=record.status if record.has_solution or not optimal else Status.ERROR,
        objective=objective, bound=objective if optimal else math.nan,
        gap=0.0 if optimal else math.nan,
        extract_seconds=record.extract_seconds + time.perf_counter() - t0)
    return result, record
