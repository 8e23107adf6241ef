"""The per-round LP of the multi-round static key search (OptimCE's LOGAAS).

Source: the OptimCE note on automatic key generation (``seeds/optimce-automatic-key-
generation.txt``: "linear optimisation to find the best ex-post allocation for a given
iteration"); the round semantics are the project's multi-round settlement
(``formulations/allocation-keys.md``, :func:`recopt.settle.settle_rounds`). Model card:
``models/LOGAAS.md`` (equations L1-L5, names below).

Given the energy ``A[s,t]`` put on the table in a round (kWh per step) and the need
``N[s,t,i]`` still uncovered (kWh per step), choose one static split ``lambda_i``
(dimensionless, the same at every step) minimising the round's expected surplus::

    min  sum_{s,t} w_s (A[s,t] - sum_i take[s,t,i])          (L1) round_surplus
    s.t. take[s,t,i] <= lambda_i A[s,t]                        (L2) take_le_offer
         0 <= take[s,t,i] <= N[s,t,i]                          (L3) bounds of take
         sum_i lambda_i <= 1                                   (L4) split_sum
         lambda_i >= 0                                         (L5) bounds of split

At the optimum ``take = min(lambda A, N)`` (the DSO's rule, Mustika (7)), because the
objective rewards every unit of take. The exact fast path of this LP is
:func:`recopt.keys.logaas.round_split` (it is separable by member).
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo

from recopt.models.construction import templated_constraints


def build_round(available, need, weights=None, *, templates: bool = True) -> pyo.ConcreteModel:
    """The per-round LP (L1)-(L5) as a Pyomo model.

    Parameters
    ----------
    available : array_like, shape (S, T) or (T,)
        ``A``: energy on the table in the round, kWh per step.
    need : array_like, shape (S, T, U) or (T, U)
        ``N``: remaining need per member, kWh per step.
    weights : array_like, shape (S,), optional
        Scenario probabilities ``w`` (default 1).

    Returns
    -------
    pyomo.environ.ConcreteModel
        Components ``MEMBERS``, ``CELLS`` ((s, t, i) with ``A > 0`` and ``N > 0``: takes
        elsewhere are 0), ``split`` (L5), ``take`` (L3), ``take_le_offer`` (L2),
        ``split_sum`` (L4), ``round_surplus`` (L1, the objective, kWh).
    """
    from recopt.keys.logaas import round_inputs

    A, N, w = round_inputs(available, need, weights)
    S, T, U = N.shape
    cells = list(zip(*(x.tolist() for x in np.nonzero((A[:, :, None] > 0) & (N > 0))),
                     strict=True))
    m = pyo.ConcreteModel(name="LOGAAS round")
    m.MEMBERS = pyo.Set(initialize=range(U), ordered=True, doc="member positions")
    m.CELLS = pyo.Set(initialize=cells, dimen=3, ordered=True,
                      doc="(scenario, step, member) with energy available and need")
    m.available = pyo.Param(m.CELLS, initialize={c: float(A[c[:2]]) for c in cells},
                            doc="A: energy on the table, kWh")
    m.split = pyo.Var(m.MEMBERS, bounds=(0.0, None), doc="lambda: static split (L5)")
    m.take = pyo.Var(m.CELLS, bounds=(0.0, None), doc="energy taken, kWh; <= N (L3)")
    for c, var in zip(cells, m.take.values(), strict=True):
        var.setub(float(N[c]))
    with templated_constraints(templates and bool(cells)):
        m.take_le_offer = pyo.Constraint(
            m.CELLS, rule=lambda m, s, t, i: m.take[s, t, i] - m.available[s, t, i]
            * m.split[i] <= 0, doc="(L2) take <= lambda A")
    m.split_sum = pyo.Constraint(expr=pyo.quicksum(m.split[i] for i in m.MEMBERS) <= 1,
                                 doc="(L4) sum_i lambda <= 1")
    total = float((w[:, None] * A).sum())
    m.round_surplus = pyo.Objective(
        expr=total - pyo.quicksum(float(w[c[0]]) * v for c, v in zip(cells, m.take.values(),
                                                                  strict=True)),
        sense=pyo.minimize, doc="(L1) expected surplus of the round, kWh")
    return m


def solve_round(available, need, weights=None, solver: str = "highs") -> tuple[np.ndarray,
                                                                              float]:
    """Solve (L1)-(L5) with a solver; returns ``(split, surplus)``."""
    from recopt.errors import SolverError
    from recopt.solve.solvers import solve_pyomo

    m = build_round(available, need, weights)
    out = solve_pyomo(m, solver)
    if not out.has_solution:
        raise SolverError(f"the round LP was not solved: {out.status.value} {out.message}")
    split = np.array([m.split[i].value or 0.0 for i in m.MEMBERS])
    return split, float(out.objective)


# --------------------------------------------------------------------------------------
# registration: the search as an algorithm (python -m recopt.solve inst.nc --model LOGAAS)
# --------------------------------------------------------------------------------------
def _algorithm(instance, *, time_limit=None, seed=None, solver="highs", mip_gap=None,
               threads=None, options=None, method="grid", rounds=3, resolution=20,
               objective="surplus", carry=True, population=6, generations=15):
    """Run the search and return a Result: the best key settled, the ranking in attrs."""
    import time

    from recopt.keys.logaas import search
    from recopt.models.kor import saving_metrics

    t0 = time.perf_counter()
    kw = dict(n_rounds=rounds, resolution=resolution, objective=objective, carry=carry)
    if method == "ga":
        kw.update(population=population, generations=generations,
                  seed=0 if seed is None else int(seed))
    res = search(instance, method, **kw)
    t1 = time.perf_counter()
    best = res.best_rounds(1)
    st = res.settlement(1)
    out = st.drop_vars([v for v in st.data_vars if v.startswith("round_")])
    out = out.assign(saving_metrics(out))
    out["round_share"] = (("round",), np.array([r.share for r in best]),
                          {"units": "1", "long_name": "share of G put on the table"})
    out["round_split"] = (("round", "member"), np.array([np.asarray(r.keys)[0, 0]
                                                         for r in best]),
                          {"units": "1", "long_name": "static split of the round (L1)-(L5)"})
    out = out.assign_coords(round=np.arange(1, len(best) + 1))
    ranking = res.ranking.drop(columns=["splits"]).assign(
        shares=[list(s) for s in res.ranking["shares"]])
    value = float(res.ranking["objective"].iloc[0])
    out.attrs = dict(
        status="optimal" if method == "grid" else "feasible",
        message=f"{method} search, best of {len(res.ranking)} niches "
                f"({res.evaluations} evaluations); the grid is exact over the share lattice",
        has_solution=True, objective=value, bound=value if method == "grid" else float("nan"),
        gap=0.0 if method == "grid" else float("nan"), solver_version="",
        build_seconds=0.0, compile_seconds=0.0, solve_seconds=t1 - t0,
        extract_seconds=time.perf_counter() - t1, blocks=1, workers=1,
        n_variables=0, n_constraints=0, n_integer=0, evaluations=res.evaluations,
        ranking=ranking.to_json(orient="records"),
    )
    return out


def _register():
    from recopt.keys.logaas import OBJECTIVES
    from recopt.models.registry import ModelSpec, Option, register

    register(ModelSpec(
        name="LOGAAS",
        description="multi-round static keys: round shares searched (grid or niche GA), "
                    "each round's split by the surplus-minimising LP (OptimCE LOGAAS)",
        family="keys",
        algorithm=_algorithm,
        options=(
            Option("method", str, "grid", "'grid' (exact over the lattice) or 'ga'",
                   choices=("grid", "ga")),
            Option("rounds", int, 3, "at most this many rounds"),
            Option("resolution", int, 20, "shares are multiples of 1/resolution"),
            Option("objective", str, "surplus", "what the shares minimise / maximise",
                   choices=tuple(OBJECTIVES)),
            Option("carry", lambda s: str(s).lower() in ("1", "true", "yes"), True,
                   "re-offer what a round leaves in later rounds"),
            Option("population", int, 6, "GA: individuals per niche"),
            Option("generations", int, 15, "GA: generations"),
        ),
        card="models/LOGAAS.md",
    ))


_register()
