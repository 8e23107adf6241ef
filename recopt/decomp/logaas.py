"""LOGAAS: the multi-round static key search as an algorithm, and the round LP solved.

The search over round shares is :func:`recopt.keys.logaas.search` (grid, exact over
the share lattice, or a niche GA); each round's split is the LP (L1)-(L5) of
:func:`recopt.models.logaas.build_round`, whose exact fast path the search uses.
Model card ``models/LOGAAS.md``.
"""

from __future__ import annotations

import math
import time

import numpy as np
import xarray as xr

from recopt.data.roles import aggregate_mask
from recopt.decomp.registry import register_algorithm
from recopt.errors import SolverError
from recopt.keys.logaas import search
from recopt.models.kor import saving_metrics
from recopt.models.logaas import build_round
from recopt.solvers.dispatch import solve_pyomo
from recopt.solvers.record import RunRecord
from recopt.solvers.status import Status


def solve_round(available, need, weights=None, solver: str = "highs") -> tuple[np.ndarray,
                                                                              float]:
    """Solve (L1)-(L5) with a solver; returns ``(split, surplus)``."""
    m = build_round(available, need, weights)
    out = solve_pyomo(m, solver)
    if not out.has_solution:
        raise SolverError(f"the round LP was not solved: {out.status.value} {out.message}")
    split = np.array([m.split[i].value or 0.0 for i in m.MEMBERS])
    return split, float(out.objective)


@register_algorithm("logaas_search")
def solve_logaas(instance: xr.Dataset, *, model: str = "LOGAAS", time_limit=None, seed=None,
                 solver="highs", mip_gap=None, threads=None, options=None, method="grid",
                 rounds=3, resolution=20, objective="surplus", carry=True, population=6,
                 generations=15) -> tuple[xr.Dataset, RunRecord]:
    """Run the search; the solution is the best key settled, the ranking goes in attrs."""
    t0 = time.perf_counter()
    kw = dict(n_rounds=rounds, resolution=resolution, objective=objective, carry=carry)
    if method == "ga":
        kw.update(population=population, generations=generations,
                  seed=0 if seed is None else int(seed))
    res = search(instance, method, **kw)
    t1 = time.perf_counter()
    best = res.best_rounds(1)
    st = res.settlement(1)
    out = st.drop_vars([v for v in st.data_vars if str(v).startswith("round_")])
    out = out.assign(saving_metrics(out, aggregate_mask(instance)))
    out["round_share"] = (("round",), np.array([r.share for r in best]),
                          {"units": "1", "long_name": "share of G put on the table"})
    out["round_split"] = (("round", "member"), np.array([np.asarray(r.keys)[0, 0]
                                                         for r in best]),
                          {"units": "1", "long_name": "static split of the round (L1)-(L5)"})
    out = out.assign_coords(round=np.arange(1, len(best) + 1))
    out.attrs = {}
    ranking = res.ranking.drop(columns=["splits"]).assign(
        shares=[list(s) for s in res.ranking["shares"]])
    value = float(res.ranking["objective"].iloc[0])
    exact = method == "grid"
    record = RunRecord(
        status=Status.OPTIMAL if exact else Status.FEASIBLE,
        message=f"{method} search, best of {len(res.ranking)} niches "
                f"({res.evaluations} evaluations); the grid is exact over the share lattice",
        has_solution=True, objective=value, bound=value if exact else math.nan,
        gap=0.0 if exact else math.nan, solve_seconds=t1 - t0,
        extract_seconds=time.perf_counter() - t1,
        extra=dict(evaluations=res.evaluations, ranking=ranking.to_json(orient="records")),
    )
    return out, record
