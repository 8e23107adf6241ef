"""The lexicographic tie-break of LP1-LP3 and KoR8: bills that do not depend on the solver.

Stage 1 solves the model as it is (the collective bill, EUR); stage 2
(:func:`recopt.models.tie_break.add_proportional_tie_break`) keeps that optimum and
minimises the L1 distance of the intake (and free local sales) to the proportional
allocation, so that members' bills are the same whatever formulation, solver or
vertex stage 1 ends at. Chosen by the models' ``tie_break="proportional"`` option
(``ModelSpec.algorithm_if``). Model card: ``models/LP1-LP3.md`` ("Tie-break").
"""

from __future__ import annotations

import math
import time

import xarray as xr

from recopt.decomp.registry import register_algorithm
from recopt.models.registry import get as get_model
from recopt.models.tie_break import (
    TIE_BREAK_TOLERANCE,
    add_proportional_tie_break,
    proportional_targets,
)
from recopt.solvers.dispatch import solve_pyomo
from recopt.solvers.record import RunRecord
from recopt.solvers.status import Status


@register_algorithm("lexicographic_tie_break")
def solve_tie_break(instance: xr.Dataset, *, model: str, time_limit=None, seed=None,
                    solver="highs", mip_gap=None, threads=None, options=None,
                    **opts) -> tuple[xr.Dataset | None, RunRecord]:
    """``model`` (LP1, LP2, LP3, KoR8) then its proportional tie-break, one instance."""
    spec = get_model(model)
    tol = float(opts.pop("tie_break_tolerance", TIE_BREAK_TOLERANCE))
    opts.pop("tie_break", None)
    if spec.prepare is not None:
        opts = spec.prepare(instance, **opts)
    kw = dict(solver=solver, mip_gap=mip_gap, threads=threads, options=options)
    assert spec.build is not None and spec.extract is not None  # a tie-breakable model
    t0 = time.perf_counter()
    m = spec.build(instance, **opts)
    build = time.perf_counter() - t0
    first = solve_pyomo(m, time_limit=time_limit, **kw)
    outcomes = [first]
    if first.status != Status.OPTIMAL:
        rec = RunRecord.from_outcomes(outcomes, has_solution=False, build_seconds=build)
        return None, rec
    best = float(first.objective)
    d = m.recopt_data
    v_target, y_target = proportional_targets(d.net_consumption, d.net_production)
    idx = m.recopt_index
    if hasattr(m, "verified"):  # LP1-LP3: v and (free) local sales y
        free = opts.get("producer_sales", "free") == "free"
        add_proportional_tie_break(m, best, m.verified, idx["cons"], v_target,
                                   m.local_sales if free else None, idx["prod"],
                                   y_target if free else None, tolerance=tol)
    else:  # KoR8: the intake; sales follow the DSO's pro-rata rule
        add_proportional_tie_break(m, best, m.community_intake, idx["cons"], v_target,
                                   tolerance=tol)
    second = solve_pyomo(m, time_limit=time_limit, **kw)
    outcomes.append(second)
    if not second.has_solution:
        rec = RunRecord.from_outcomes(outcomes, has_solution=False, build_seconds=build)
        return None, rec.replace(status=second.status)
    t1 = time.perf_counter()
    solution = spec.extract(m, instance, **opts)
    result = spec.derive(instance, solution, **opts) if spec.derive else solution
    rec = RunRecord.from_outcomes(outcomes, has_solution=True, build_seconds=build,
                                  extract_seconds=time.perf_counter() - t1)
    distance = float(second.objective)
    return result, rec.replace(
        status=second.status, objective=best, bound=best if math.isfinite(best) else math.nan,
        gap=0.0, extra={"tie_break": "proportional", "tie_break_distance_kwh": distance,
                        "solves": 2})
