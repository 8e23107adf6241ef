"""The per-round LP of the multi-round static key search (OptimCE's LOGAAS).

Source: the OptimCE note on automatic key generation (2026, ``docs/references.md``
[OptimCE]: "linear optimisation to find the best ex-post allocation for a given
iteration"); the round semantics are the project's multi-round settlement
(``docs/reconstruction/allocation-keys.md``, :func:`recopt.settle.settle_rounds`). Model card:
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
:func:`recopt.keys.logaas.round_split` (it is separable by member); the search over
round shares that registers as ``LOGAAS`` is :mod:`recopt.decomp.logaas`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from recopt.keys.logaas import OBJECTIVES, round_inputs
from recopt.lazy import pyomo_module
from recopt.models.construction import templated_constraints
from recopt.models.options import Option
from recopt.models.registry import ModelSpec, register

if TYPE_CHECKING:
    import pyomo.environ as pyo
else:
    pyo = pyomo_module("pyomo.environ")


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


# --------------------------------------------------------------------------------------
# registration: the search as an algorithm (python -m recopt.solve inst.nc --model LOGAAS)
# --------------------------------------------------------------------------------------
register(ModelSpec(
    name="LOGAAS",
    description="multi-round static keys: round shares searched (grid or niche GA), "
                "each round's split by the surplus-minimising LP (OptimCE LOGAAS)",
    family="keys",
    algorithm="logaas_search",
    options=(
        Option("method", str, "grid", "'grid' (exact over the lattice) or 'ga'",
               choices=("grid", "ga")),
        Option("rounds", int, 3, "at most this many rounds"),
        Option("resolution", int, 20, "shares are multiples of 1/resolution"),
        Option("objective", str, "surplus", "what the shares minimise / maximise",
               choices=tuple(OBJECTIVES)),
        Option("carry", bool, True, "re-offer what a round leaves in later rounds"),
        Option("population", int, 6, "GA: individuals per niche"),
        Option("generations", int, 15, "GA: generations"),
    ),
    objective="the objective option's value: final surplus, kWh (OptimCE's, default), or "
              "the chosen metric in its unit",
    card="models/LOGAAS.md",
))
