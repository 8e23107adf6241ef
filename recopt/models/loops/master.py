"""The two Pyomo models of column generation for MLCol: restricted master and pricing.

Source: Chasseray, Besançon, Lorca, Petitdemange, "Optimisation models for the design of
multiple self-consumption loops in semi-rural areas"
(arXiv 2404.04428, DOI 10.48550/arXiv.2404.04428), Models 8-9 (MLCol) and §3.5 (the
paper enumerates the columns to avoid branch-and-price); the Dantzig-Wolfe pricing is
recopt's extension, model card ``models/MLCol-column-generation.md`` (equations CG1-CG6).
The algorithm driving these models is :mod:`recopt.decomp.column_generation`; nothing
here solves anything.

* :func:`build_restricted_master` — MLCol's LP relaxation with *every* row a loop
  column can touch and **no** loop column: ``z[S]`` columns are added by the
  algorithm straight into the solver, their coefficients given by
  :func:`loop_column` (the same numbers the Pyomo model of MLCol writes).
* :func:`build_pricing` — the pricing MILP: the cheapest feasible loop (a clique of
  the neighbourhood graph within the power cap, its status from its net position)
  for given duals, respecting Ryan-Foster branching decisions.

Units: energies kWh per step, prices EUR/kWh, objective and reduced costs EUR.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from recopt.lazy import pyomo_module
from recopt.models.loops.build import add_operation, add_single_loop_design
from recopt.models.loops.data import LoopData

if TYPE_CHECKING:
    import pyomo.environ as pyo
else:
    pyo = pyomo_module("pyomo.environ")


def pricing_pairs(d: LoopData) -> list[tuple[int, int]]:
    """Edges ``i < j`` of the neighbourhood graph along which some flow is possible
    (``M > 0`` in one direction at some step): the pairs with a (8a) link row."""
    u = d.useful
    return [(i, j) for i, j in d.edges if u[i, j] or u[j, i]]


def loop_members(d: LoopData) -> list[int]:
    """Actors that can be in some loop (they have a neighbour)."""
    return sorted(i for i in d.graph if d.graph.degree(i) > 0)


def build_restricted_master(d: LoopData, reduce: bool = True) -> pyo.ConcreteModel:
    """MLCol's LP relaxation (Models 8-9) with its rows and no loop column (card, CG1).

    ``reduce``: rows and operation only at :meth:`LoopData.decision_steps` (over every
    arc of the graph); at the other steps no loop column has a coefficient (a clique in
    surplus there has no member with ``Ĉ > 0``, one in deficit none with ``P̂ > 0``:
    such a member and the one that puts the loop in surplus / deficit would form an arc
    with ``M > 0``), so every actor's standalone cost there is a constant of the
    objective (``m.left_out_cost``, EUR) and the master is exact (card, CG1').

    Components (the rows are written in the orientation of the card's table, so
    that a loop column's coefficients are those of :func:`loop_column`):

    * the operation of :func:`add_operation` on every arc of the graph, *unbounded*
      (``f, g⁺, g⁻ >= 0`` only: every bound is implied by the rows, so the duals sit
      on the rows and the reduced-cost formula reads them all);
    * ``idle[i] >= 0`` and ``one_loop[i]``: ``idle[i] + Σ_{S∋i} z[S] = 1`` (8b);
    * ``pair_active[i,j] >= 0``, ``pair_link``: ``y[i,j] − Σ_{S∋i,j} z[S] = 0`` and
      ``loop_flow``: ``f[i,j] <= M y[i,j]`` (8a) for :func:`pricing_pairs`;
    * ``buy_rule`` (9d), aggregated: ``g⁺[i,ω,t] + Ĉ Σ_{S∋i, σ_S=1} z[S] <= Ĉ`` per
      buyer ``(ω,t,i)``, and ``sell_rule`` (9e): ``g⁻ + P̂ Σ_{S∋i, σ_S=0} z[S] <= P̂``;
    * the objective (9a).

    ``z = 0`` (no loop) is feasible, so the master is feasible with no column.
    """
    m = pyo.ConcreteModel(name="MLCol-restricted-master")
    C, P = d.C, d.P
    steps = d.decision_steps() if reduce else list(d.steps)
    kept = np.zeros(d.shape[:2], bool)
    for s, t in steps:
        kept[s, t] = True
    standalone = (d.probability[:, None, None] * d.standalone_cost()).sum(axis=2)
    m.left_out_cost = float(standalone[~kept].sum())
    m.kept_steps = kept
    add_operation(m, d, steps=steps, bounded=False)
    members = loop_members(d)
    in_loop = set(members)
    m.COVERED = pyo.Set(initialize=members, ordered=True, doc="actors with a neighbour")
    m.idle = pyo.Var(m.COVERED, bounds=(0.0, None),
                     doc="1 − Σ_{S∋i} z[S]: actor i in no loop (slack of (8b))")
    m.one_loop = pyo.Constraint(m.COVERED, rule=lambda m, i: m.idle[i] == 1,
                                doc="(8b) idle[i] + Σ_{S∋i} z[S] = 1 (columns added later)")
    m.PAIRS = pyo.Set(initialize=pricing_pairs(d), dimen=2, ordered=True,
                      doc="pairs {i, j} of E with a possible flow")
    m.pair_active = pyo.Var(m.PAIRS, bounds=(0.0, None),
                            doc="y[i,j] = Σ_{S∋i,j} z[S]: i and j share a chosen loop")
    m.pair_link = pyo.Constraint(m.PAIRS, rule=lambda m, i, j: m.pair_active[i, j] == 0,
                                 doc="(8a) y[i,j] − Σ_{S∋i,j} z[S] = 0 (columns added later)")
    pairs = set(m.PAIRS)
    m.LINKED_FLOWS = pyo.Set(
        initialize=[f for f in m.FLOWS if (min(f[2], f[3]), max(f[2], f[3])) in pairs],
        dimen=4, ordered=True)
    m.loop_flow = pyo.Constraint(
        m.LINKED_FLOWS,
        rule=lambda m, s, t, i, j: m.flow[s, t, i, j] <= float(min(P[s, t, i], C[s, t, j]))
        * m.pair_active[min(i, j), max(i, j)],
        doc="(8a) f <= M y[i,j]")
    m.BUY_ROWS = pyo.Set(initialize=[k for k in m.BUYERS if k[2] in in_loop], dimen=3,
                         ordered=True, doc="(ω, t, i): Ĉ > 0, i can be in a loop")
    m.SELL_ROWS = pyo.Set(initialize=[k for k in m.SELLERS if k[2] in in_loop], dimen=3,
                          ordered=True, doc="(ω, t, i): P̂ > 0, i can be in a loop")
    m.buy_rule = pyo.Constraint(
        m.BUY_ROWS, rule=lambda m, s, t, i: m.grid_buy[s, t, i] <= float(C[s, t, i]),
        doc="(9d) g⁺ + Ĉ Σ_{S∋i,(S,ω,t)∈Λ} z[S] <= Ĉ (columns added later)")
    m.sell_rule = pyo.Constraint(
        m.SELL_ROWS, rule=lambda m, s, t, i: m.grid_sell[s, t, i] <= float(P[s, t, i]),
        doc="(9e) g⁻ + P̂ Σ_{S∋i,(S,ω,t)∉Λ} z[S] <= P̂ (columns added later)")
    # every flow arc of A without a link row has M = 0 everywhere: add_operation made
    # no variable for it; a FLOWS entry without a pair cannot exist (useful pairs)
    assert len(m.LINKED_FLOWS) == len(m.FLOWS)
    m.objective = pyo.Objective(expr=m.cost + m.left_out_cost, sense=pyo.minimize,
                                doc="(9a) expected grid cost, EUR (left-out steps: constant)")
    return m


@dataclass
class LoopColumn:
    """The coefficients of ``z[S]`` in the restricted master, by row family (card, CG2).

    ``members`` (i ∈ S, coefficient +1 in ``one_loop``); ``pairs`` (coefficient −1 in
    ``pair_link``); ``buy`` rows ``(ω, t, i)`` with coefficient ``Ĉ[i,ω,t]`` where S
    is in surplus; ``sell`` rows with ``P̂[i,ω,t]`` where S is in deficit.
    """

    members: tuple[int, ...]
    pairs: list[tuple[int, int]]
    surplus: np.ndarray
    """σ_S(ω,t), bool (S, T)."""


def loop_status(d: LoopData, S) -> np.ndarray:
    """σ_S(ω,t) = [Σ_{i∈S} (P̂ − Ĉ)[i,ω,t] >= 0], bool (S, T) (the data-given status of
    MLCol's Λ)."""
    return (d.P - d.C)[:, :, list(S)].sum(axis=2) >= 0


def loop_column(d: LoopData, S, pairs: set) -> LoopColumn:
    """The column of loop ``S`` (sorted member positions); ``pairs``: the master's
    :func:`pricing_pairs` as a set."""
    S = tuple(sorted(int(i) for i in S))
    ps = [(a, b) for k, a in enumerate(S) for b in S[k + 1:] if (a, b) in pairs]
    return LoopColumn(S, ps, loop_status(d, S))


# --------------------------------------------------------------------------------------
# the pricing problem
# --------------------------------------------------------------------------------------
def build_pricing(d: LoopData, alpha: np.ndarray, beta: dict, a: np.ndarray, b: np.ndarray,
                  together=(), apart=(), tol: float = 0.0) -> pyo.ConcreteModel:
    """The pricing MILP: ``min_S c̄(S)`` over cliques within the power cap (card, CG4).

    Parameters
    ----------
    alpha : ndarray (n,)
        Duals of (8b), ``α_i <= 0`` (0 for actors without a row).
    beta : dict
        ``(i, j) -> β_ij``, duals of the pair links (free).
    a, b : ndarray (S, T, n)
        The non-negative status penalties ``a = −γ⁺ Ĉ`` (paid by a member at a step
        where the loop is in surplus) and ``b = −γ⁻ P̂`` (in deficit), EUR.
    together, apart : iterable of (i, j)
        Ryan-Foster decisions: ``x_i = x_j`` / ``x_i + x_j <= 1``.
    tol : float
        Entries of ``a``, ``b``, ``beta`` with ``|value| <= tol`` are left out.

    The model reuses SLCpct's first stage (:func:`add_single_loop_design`: ``member``
    x, ``surplus`` u with (1g)/(1h) as the status rows, (1k), (1l)) restricted to the
    steps where a penalty is non-zero; a status may take either value only where the
    net position is exactly 0, which makes the MILP a relaxation of ``min c̄`` (its
    bound is valid) and exact otherwise. Products are linearised in the direction
    the objective pushes them (McCormick, one side):

    * ``pair[i,j] <= x_i, x_j`` for ``β_ij < 0``, ``pair >= x_i + x_j − 1`` for ``β_ij > 0``;
    * ``pen_surplus[ω,t,i] >= x_i + u[ω,t] − 1`` (cost ``a``),
      ``pen_deficit[ω,t,i] >= x_i − u[ω,t]`` (cost ``b``).

    Objective (CG3): ``−Σ α_i x_i + Σ β_ij pair_ij + Σ a·pen_surplus + Σ b·pen_deficit``.
    The empty set (value 0) and single actors (value >= 0) are feasible: the optimum
    is ``min(0, min_{S∈𝓛} c̄(S))``.
    """
    n = d.n
    keep_a = np.abs(a) > tol
    keep_b = np.abs(b) > tol
    active = (keep_a | keep_b).any(axis=2)
    steps = [(s, t) for s, t in d.steps if active[s, t]]
    m = pyo.ConcreteModel(name="MLCol-pricing")
    add_single_loop_design(m, d, steps)
    for i in range(n):
        if d.graph.degree(i) == 0:
            m.member[i].fix(0)
    nz_pairs = [(i, j) for (i, j), v in beta.items() if abs(v) > tol]
    m.PRICE_PAIRS = pyo.Set(initialize=sorted(nz_pairs), dimen=2, ordered=True,
                            doc="pairs with a non-zero dual β")
    m.pair = pyo.Var(m.PRICE_PAIRS, bounds=(0.0, 1.0), doc="x_i x_j (linearised)")
    neg = [p for p in m.PRICE_PAIRS if beta[p] < 0]
    pos = [p for p in m.PRICE_PAIRS if beta[p] > 0]
    m.pair_le_i = pyo.Constraint(neg, rule=lambda m, i, j: m.pair[i, j] <= m.member[i],
                                 doc="pair <= x_i (β < 0)")
    m.pair_le_j = pyo.Constraint(neg, rule=lambda m, i, j: m.pair[i, j] <= m.member[j],
                                 doc="pair <= x_j (β < 0)")
    m.pair_ge = pyo.Constraint(
        pos, rule=lambda m, i, j: m.pair[i, j] >= m.member[i] + m.member[j] - 1,
        doc="pair >= x_i + x_j − 1 (β > 0)")
    pa = [(s, t, i) for s, t in steps for i in np.nonzero(keep_a[s, t])[0].tolist()]
    pb = [(s, t, i) for s, t in steps for i in np.nonzero(keep_b[s, t])[0].tolist()]
    m.PEN_SURPLUS = pyo.Set(initialize=pa, dimen=3, ordered=True)
    m.PEN_DEFICIT = pyo.Set(initialize=pb, dimen=3, ordered=True)
    m.pen_surplus = pyo.Var(m.PEN_SURPLUS, bounds=(0.0, None),
                            doc="x_i u[ω,t]: member i pays (9d)'s dual in a surplus step")
    m.pen_deficit = pyo.Var(m.PEN_DEFICIT, bounds=(0.0, None),
                            doc="x_i (1 − u[ω,t]): member i pays (9e)'s dual in a deficit step")
    m.surplus_penalty = pyo.Constraint(
        m.PEN_SURPLUS,
        rule=lambda m, s, t, i: m.pen_surplus[s, t, i] >= m.member[i] + m.surplus[s, t] - 1,
        doc="(CG4) pen⁺ >= x_i + u − 1")
    m.deficit_penalty = pyo.Constraint(
        m.PEN_DEFICIT,
        rule=lambda m, s, t, i: m.pen_deficit[s, t, i] >= m.member[i] - m.surplus[s, t],
        doc="(CG4) pen⁻ >= x_i − u")
    m.TOGETHER = pyo.Set(initialize=sorted(together), dimen=2, ordered=True)
    m.APART = pyo.Set(initialize=sorted(apart), dimen=2, ordered=True)
    m.branch_together = pyo.Constraint(
        m.TOGETHER, rule=lambda m, i, j: m.member[i] == m.member[j],
        doc="Ryan-Foster: i and j in the same loop or both out of it")
    m.branch_apart = pyo.Constraint(
        m.APART, rule=lambda m, i, j: m.member[i] + m.member[j] <= 1,
        doc="Ryan-Foster: i and j never in the same loop")
    m.objective = pyo.Objective(
        expr=-pyo.quicksum(float(alpha[i]) * m.member[i] for i in range(n) if alpha[i] != 0)
        + pyo.quicksum(float(beta[p]) * m.pair[p] for p in m.PRICE_PAIRS)
        + pyo.quicksum(float(a[s, t, i]) * m.pen_surplus[s, t, i] for s, t, i in pa)
        + pyo.quicksum(float(b[s, t, i]) * m.pen_deficit[s, t, i] for s, t, i in pb),
        sense=pyo.minimize, doc="(CG3) reduced cost c̄(S) of the loop x")
    return m


__all__ = ["build_restricted_master", "build_pricing", "loop_column", "loop_status",
           "LoopColumn", "pricing_pairs", "loop_members"]
