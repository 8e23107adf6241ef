"""Declarative builders of the benefit-sharing games (model card ``models/benefit-sharing.md``).

Two families of coalitional games share these pieces:

* **community game** — ``v(S)`` is the optimal expected collective bill saving of
  coalition ``S`` alone: de Villena et al.'s LP1 (IEEE Access 2022,
  doi:10.1109/ACCESS.2022.3191804, eqs (8)-(16), projected form) restricted to the
  members of ``S``; it equals Mustika et al.'s KoR8 (Applied Energy 2022,
  doi:10.1016/j.apenergy.2021.118484, eq. (45)) whenever the grid and community
  selling prices are the same for every producer of a step (card, choice 2);
* **loop game** — ``v(S)`` is the value of Chasseray et al.'s second stage (Model 4
  of arXiv 2404.04428, the flow LP every loop model shares) when ``S`` forms the loop:
  the coalition's cost outside every loop minus its cost inside the loop.

Every builder has the coalition's membership ``member[i]`` (``z_i``) as a first stage:

* ``membership="fixed"``: ``member`` are Vars fixed at 0/1; the rows that read them
  (``intake_member`` (13), ``sales_member`` (11) for the community, (1b), (1c), (1e),
  (1f) for the loop) make a member outside ``S`` exchange nothing. The
  decomposition layer compiles the model once and changes only right-hand sides
  per coalition (the same trick as the Benders sub-problems);
* ``membership="binary"``: ``member`` are binary Vars: with
  :func:`add_excess_objective` the model is the **separation MILP** of the
  row-generation algorithms (max over coalitions of ``v(S) - x(S)``), and
  :func:`add_outside_span` restricts it to coalitions outside the span of those
  already fixed by the nucleolus.

The big-M of every linking row is the instance's own bound (``C+`` / ``P-`` for
the community; the flow bound ``M = min(P̂_i, Ĉ_j)`` for the loop), so a member's
flows are forced to zero exactly when ``z_i = 0`` and are not restricted otherwise.

:func:`build_excess_lp` is the LP over allocations of the least core / nucleolus
(one stage of the Maschler-Peleg-Shapley sequence).

Units: energies kWh per step, prices EUR/kWh, values and allocations EUR (expected
over scenarios, over the instance's horizon). No solving here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from recopt.errors import ModelError
from recopt.lazy import pyomo_module
from recopt.models.construction import nonzero_index
from recopt.models.loops.build import build_slcpct, fixed_single_loop
from recopt.models.loops.data import LoopData
from recopt.models.repartition import RepartitionData

if TYPE_CHECKING:
    import pyomo.environ as pyo
else:
    pyo = pyomo_module("pyomo.environ")

CARD = "models/benefit-sharing.md"
MEMBERSHIPS = ("fixed", "binary")


def _membership(m, n: int, membership: str, value=1.0) -> None:
    if membership not in MEMBERSHIPS:
        raise ModelError(f"membership must be one of {', '.join(MEMBERSHIPS)}; "
                         f"got {membership!r}")
    m.PLAYERS = pyo.Set(initialize=range(n), ordered=True, doc="players (member positions)")
    if membership == "binary":
        m.member = pyo.Var(m.PLAYERS, domain=pyo.Binary, doc="z_i: member i is in S")
    else:
        m.member = pyo.Var(m.PLAYERS, bounds=(0.0, 1.0), initialize=value,
                           doc="z_i: member i is in S (first stage, fixed)")
        m.member.fix()


# --------------------------------------------------------------------------------------
# the community game: LP1 restricted to the members of S
# --------------------------------------------------------------------------------------
def community_coalition(instance: xr.Dataset, *, membership: str = "fixed") -> pyo.ConcreteModel:
    """LP1 (de Villena (8)-(16), keys projected out) with membership ``z``.

    Variables ``verified`` v[s,t,i] (kWh, >= 0, at active steps where ``C+ > 0``)
    and ``local_sales`` y[s,t,j] (kWh, >= 0, where ``P- > 0``); rows
    ``intake_member``: ``v <= C+ z_i`` ((13) with the bound switched by ``z``),
    ``sales_member``: ``y <= P- z_j`` ((11) switched), ``sales_balance`` (10):
    ``Σ_i v = Σ_j y``. Expression ``coalition_value`` (EUR):
    ``Σ_ω π_ω Σ_t [Σ_i (b - cb) v + Σ_j (cs - s) y]``, the expected saving of the
    members in ``S`` over their stand-alone bills (fees cancel); objective
    ``min -coalition_value``. With ``z = 1_S`` its optimum is LP1's saving on the
    sub-instance of ``S`` (tested). The variables carry no upper bound (the rows
    hold them), so the LP's right-hand sides are affine in ``z``.
    """
    d = RepartitionData.of(instance)
    cp, pm = d.net_consumption, d.net_production
    U = cp.shape[2]
    m = pyo.ConcreteModel(name="community-coalition")
    _membership(m, U, membership)
    act = d.active[:, :, None]
    cons = nonzero_index(act & (cp > 0))
    prod = nonzero_index(act & (pm > 0))
    steps = list(zip(*(a.tolist() for a in np.nonzero(d.active)), strict=True))
    m.recopt_index = {"cons": cons, "prod": prod, "steps": steps}
    m.STEPS = pyo.Set(initialize=steps, dimen=2, ordered=True,
                      doc="active (scenario, step): G > 0 and some net consumption")
    m.CONSUMERS = pyo.Set(initialize=cons, dimen=3, ordered=True,
                          doc="(scenario, step, member) with C+ > 0 in an active step")
    m.PRODUCERS = pyo.Set(initialize=prod, dimen=3, ordered=True,
                          doc="(scenario, step, member) with P- > 0 in an active step")
    m.verified = pyo.Var(m.CONSUMERS, bounds=(0.0, None),
                         doc="v: energy a member of S takes from S's production, kWh (16)")
    m.local_sales = pyo.Var(m.PRODUCERS, bounds=(0.0, None),
                            doc="y: production a member of S sells inside S, kWh (16)")
    cons_at: dict[tuple, list[int]] = {st: [] for st in steps}
    prod_at: dict[tuple, list[int]] = {st: [] for st in steps}
    for s, t, i in cons:
        cons_at[(s, t)].append(i)
    for s, t, j in prod:
        prod_at[(s, t)].append(j)
    m.intake_member = pyo.Constraint(
        m.CONSUMERS,
        rule=lambda m, s, t, i: m.verified[s, t, i] - float(cp[s, t, i]) * m.member[i] <= 0,
        doc="(13) switched by membership: v <= C+ z_i")
    m.sales_member = pyo.Constraint(
        m.PRODUCERS,
        rule=lambda m, s, t, j: m.local_sales[s, t, j] - float(pm[s, t, j]) * m.member[j] <= 0,
        doc="(11) switched by membership: y <= P- z_j")
    m.sales_balance = pyo.Constraint(
        m.STEPS,
        rule=lambda m, s, t: (sum(m.verified[s, t, i] for i in cons_at[(s, t)])
                              - sum(m.local_sales[s, t, j] for j in prod_at[(s, t)]) == 0),
        doc="(10) Σ_i v = Σ_j y")
    b, sp = d.prices["price_grid_buy"], d.prices["price_grid_sell"]
    cb, cs = d.prices["price_community_buy"], d.prices["price_community_sell"]
    w = d.probability[:, None, None]
    gain_v = (w * (b - cb))[tuple(np.array(cons).T)] if cons else np.zeros(0)
    gain_y = (w * (cs - sp))[tuple(np.array(prod).T)] if prod else np.zeros(0)
    terms = [g * v for g, v in zip(gain_v.tolist(), m.verified.values(), strict=True)]
    terms += [g * y for g, y in zip(gain_y.tolist(), m.local_sales.values(), strict=True)]
    m.coalition_value = pyo.Expression(
        expr=pyo.quicksum(terms),
        doc="v(S): expected bill saving of S, Σ π [(b - cb) v + (cs - s) y], EUR (7)")
    m.objective = pyo.Objective(expr=-m.coalition_value, sense=pyo.minimize,
                                doc="(8) min collective bill of S minus its stand-alone bills")
    return m


# --------------------------------------------------------------------------------------
# the loop game: Chasseray's second stage with S as the loop
# --------------------------------------------------------------------------------------
def loop_coalition(d: LoopData, *, membership: str = "fixed") -> pyo.ConcreteModel:
    """The loop's flow model with ``member`` x = ``z``.

    ``"fixed"``: :func:`recopt.models.loops.fixed_single_loop` (Model 4, unbounded
    second stage, ``member`` and ``surplus`` as fixed Vars; the caller sets
    ``surplus`` u[ω,t] to the status of ``S``, ``Σ_{i∈S} (P̂ - Ĉ) >= 0``).
    ``"binary"``: SLCpct (Model 1) on the players — its ``member`` are the ``z``
    and its status rows (1g)-(1h) choose ``u``; the distance and power rules hold
    for every subset of a feasible loop, so every coalition is a feasible loop.

    Expression ``coalition_value`` (EUR) = the players' expected cost outside every
    loop minus (1a): ``v(S)``; objective ``min -coalition_value``.
    """
    if membership not in MEMBERSHIPS:
        raise ModelError(f"membership must be one of {', '.join(MEMBERSHIPS)}; "
                         f"got {membership!r}")
    if membership == "fixed":
        m = fixed_single_loop(d, np.ones(d.n), np.ones(d.shape[:2]), first_stage="vars",
                              bounded=False)
    else:
        m = build_slcpct(d)
    m.name = "loop-coalition"
    m.objective.deactivate()
    m.del_component("objective")
    m.coalition_value = pyo.Expression(
        expr=d.no_loop_cost() - m.cost,
        doc="v(S): expected cost of the players outside every loop minus (1a), EUR")
    m.objective = pyo.Objective(expr=-m.coalition_value, sense=pyo.minimize,
                                doc="(1a) minus the no-loop cost: min -v(S)")
    return m


def loop_status(d: LoopData, z: np.ndarray) -> np.ndarray:
    """u[ω,t] of coalition ``z``: ``Σ_i z_i (P̂ - Ĉ)[ω,t,i] >= 0`` (Λ of Model 8), (S, T)."""
    return ((d.P - d.C) @ np.asarray(z, float)) >= 0


# --------------------------------------------------------------------------------------
# pieces of the separation MILP
# --------------------------------------------------------------------------------------
def add_excess_objective(m, allocation) -> None:
    """Replace the objective by ``min x(S) - v(S)`` (= minus the excess of ``S``).

    ``allocation`` x (EUR per player) is a mutable Param ``allocation`` (change it
    and re-solve). The optimum is minus the largest excess ``max_S v(S) - x(S)``
    over the coalitions the model allows (:func:`add_outside_span`, ``size_rule``).
    """
    x = np.asarray(allocation, float)
    players = list(m.member.keys())
    n = len(players)
    if x.shape != (n,):
        raise ModelError(f"allocation has {x.size} values for {n} players")
    m.allocation = pyo.Param(players, mutable=True, initialize=dict(enumerate(x.tolist())),
                             doc="x_i: the allocation tested, EUR")
    m.objective.deactivate()
    m.del_component("objective")
    m.objective = pyo.Objective(
        expr=pyo.quicksum(m.allocation[i] * m.member[i] for i in players) - m.coalition_value,
        sense=pyo.minimize, doc="min x(S) - v(S): the most violated coalition")
    m.size_rule = pyo.Constraint(
        expr=pyo.inequality(1, pyo.quicksum(m.member[i] for i in players), n - 1),
        doc="1 <= |S| <= n - 1: neither the empty nor the grand coalition")


_SPAN_COMPONENTS = ("outside_span", "span_down", "span_up", "span_residual", "span_sign",
                    "span_minus", "span_plus", "SPAN_DIRECTIONS")


def set_allocation(m, allocation) -> None:
    """New values of the mutable ``allocation`` of :func:`add_excess_objective`."""
    x = np.asarray(allocation, float)
    if x.shape != (len(m.allocation),):
        raise ModelError(f"allocation has {x.size} values for {len(m.allocation)} players")
    for i, v in enumerate(x.tolist()):
        m.allocation[i] = v


def remove_outside_span(m) -> None:
    """Undo :func:`add_outside_span` (before adding the next stage's span rows)."""
    for name in _SPAN_COMPONENTS:
        if hasattr(m, name):
            m.del_component(name)


def add_outside_span(m, basis) -> None:
    """Allow only coalitions whose vector ``z`` is outside a span.

    ``basis`` (n, d) integer: a basis of the null space of the fixed coalitions'
    vectors (grand coalition included). ``z`` is in their span iff ``Bᵀ z = 0``;
    as ``Bᵀ z`` is an integer vector, ``z`` is outside iff ``Σ_k |(Bᵀ z)_k| >= 1``.
    Rows: ``span_residual`` ``w_k = Σ_i B_ik z_i = p_k - q_k``, ``span_up``
    ``p_k <= M_k a_k``, ``span_down`` ``q_k <= M_k (1 - a_k)`` with a binary sign
    ``a_k`` and ``M_k = Σ_i |B_ik|``, so that ``p_k + q_k = |w_k|``, and
    ``outside_span`` ``Σ_k (p_k + q_k) >= 1``.
    """
    B = np.asarray(basis)
    players = list(m.member.keys())
    if B.ndim != 2 or B.shape[0] != len(players):
        raise ModelError("basis must have one row per player")
    if not np.array_equal(B, np.round(B)):
        raise ModelError("the span basis must be integer (scale it)")
    dim = B.shape[1]
    big = np.abs(B).sum(axis=0)
    m.SPAN_DIRECTIONS = pyo.Set(initialize=range(dim), ordered=True,
                                doc="basis vectors of the null space of the fixed family")
    m.span_plus = pyo.Var(m.SPAN_DIRECTIONS, bounds=(0.0, None), doc="p_k: positive part of w_k")
    m.span_minus = pyo.Var(m.SPAN_DIRECTIONS, bounds=(0.0, None),
                           doc="q_k: negative part of w_k")
    m.span_sign = pyo.Var(m.SPAN_DIRECTIONS, domain=pyo.Binary, doc="a_k: w_k >= 0")
    m.span_residual = pyo.Constraint(
        m.SPAN_DIRECTIONS,
        rule=lambda m, k: (pyo.quicksum(int(B[i, k]) * m.member[i] for i in players
                                        if B[i, k] != 0)
                           == m.span_plus[k] - m.span_minus[k]),
        doc="w_k = Σ_i B_ik z_i = p_k - q_k")
    m.span_up = pyo.Constraint(
        m.SPAN_DIRECTIONS, rule=lambda m, k: m.span_plus[k] <= float(big[k]) * m.span_sign[k],
        doc="p_k <= M_k a_k")
    m.span_down = pyo.Constraint(
        m.SPAN_DIRECTIONS,
        rule=lambda m, k: m.span_minus[k] <= float(big[k]) * (1 - m.span_sign[k]),
        doc="q_k <= M_k (1 - a_k)")
    m.outside_span = pyo.Constraint(
        expr=pyo.quicksum(m.span_plus[k] + m.span_minus[k] for k in m.SPAN_DIRECTIONS) >= 1,
        doc="Σ_k |w_k| >= 1: z is outside the span of the fixed coalitions")


# --------------------------------------------------------------------------------------
# the LP over allocations (least core, one stage of the nucleolus)
# --------------------------------------------------------------------------------------
def build_excess_lp(n: int, grand_value: float, rows, fixed=(), *,
                    eps_floor: float | None = None) -> pyo.ConcreteModel:
    """``min ε`` over allocations x (EUR) and ε (EUR):

    * ``efficiency``: ``Σ_i x_i = v(N)``;
    * ``fixed_excess[r]``: ``x(S_r) = v(S_r) - ε_r`` for the coalitions fixed at the
      earlier stages (``fixed``: (vector, v(S) - ε_r) pairs);
    * ``excess[r]``: ``x(S_r) + ε >= v(S_r)`` for the coalitions ``rows``
      ((vector, v(S)) pairs): ε bounds their excess ``e(S, x) = v(S) - x(S)``.

    Schmeidler (1969), doi:10.1137/0117107; Maschler, Peleg, Shapley (1979),
    doi:10.1287/moor.4.4.303. ``eps_floor`` bounds ε from below (a row generation
    may start with too few rows for the LP to be bounded). A ``dual`` Suffix is
    declared so the solver layer loads the rows' duals.
    """
    m = pyo.ConcreteModel(name="excess-LP")
    rows = list(rows)
    fixed = list(fixed)
    m.PLAYERS = pyo.Set(initialize=range(n), ordered=True, doc="players")
    m.ROWS = pyo.Set(initialize=range(len(rows)), ordered=True, doc="generated coalitions")
    m.FIXED = pyo.Set(initialize=range(len(fixed)), ordered=True, doc="fixed coalitions")
    m.x = pyo.Var(m.PLAYERS, doc="x_i: payoff of player i, EUR")
    m.eps = pyo.Var(bounds=(eps_floor, None), doc="ε: the largest excess, EUR")
    m.efficiency = pyo.Constraint(expr=pyo.quicksum(m.x[i] for i in m.PLAYERS)
                                  == float(grand_value), doc="x(N) = v(N)")

    def coalition_sum(m, vec):
        return pyo.quicksum(m.x[i] for i in np.flatnonzero(vec).tolist())

    m.fixed_excess = pyo.Constraint(
        m.FIXED, rule=lambda m, r: coalition_sum(m, fixed[r][0]) == float(fixed[r][1]),
        doc="x(S) = v(S) - ε_r: coalitions fixed at stage r")
    m.excess = pyo.Constraint(
        m.ROWS, rule=lambda m, r: coalition_sum(m, rows[r][0]) + m.eps >= float(rows[r][1]),
        doc="x(S) + ε >= v(S): excess of S at most ε")
    m.objective = pyo.Objective(expr=m.eps, sense=pyo.minimize, doc="min ε")
    m.dual = pyo.Suffix(direction=pyo.Suffix.IMPORT)
    return m


# --------------------------------------------------------------------------------------
# the separation by outer approximation (community game)
# --------------------------------------------------------------------------------------
def build_separation_master(n: int, cut_constants, cut_slopes, allocation) -> pyo.ConcreteModel:
    """The master of the decomposed separation: ``max θ - x·z`` over binary ``z``.

    ``v`` is concave in ``z`` on ``[0, 1]^n`` (the community LP's value with ``z`` in
    its right-hand sides), so every coalition LP solved at ``ẑ`` gives, through its
    duals ``λ``, a cut ``v(z) <= a + g·z`` valid everywhere and tight at ``ẑ``
    (``outer_cut``: ``θ <= a_k + g_k·z``). Same objective name and ``size_rule`` as
    :func:`add_excess_objective`; :func:`add_outside_span` applies unchanged.
    """
    a = np.asarray(cut_constants, float)
    g = np.asarray(cut_slopes, float).reshape(len(a), n)
    x = np.asarray(allocation, float)
    m = pyo.ConcreteModel(name="separation-master")
    _membership(m, n, "binary")
    m.CUTS = pyo.Set(initialize=range(len(a)), ordered=True, doc="coalition LPs solved")
    m.allocation = pyo.Param(m.PLAYERS, mutable=True, initialize=dict(enumerate(x.tolist())),
                             doc="x_i: the allocation tested, EUR")
    m.coalition_value = pyo.Var(doc="θ: outer approximation of v(z), EUR")
    m.outer_cut = pyo.Constraint(
        m.CUTS, rule=lambda m, k: m.coalition_value <= float(a[k]) + pyo.quicksum(
            float(g[k, i]) * m.member[i] for i in range(n) if g[k, i] != 0),
        doc="θ <= a_k + g_k·z: LP duality cut of the coalition LP at ẑ_k")
    m.objective = pyo.Objective(
        expr=pyo.quicksum(m.allocation[i] * m.member[i] for i in m.PLAYERS) - m.coalition_value,
        sense=pyo.minimize, doc="min x(S) - θ")
    m.size_rule = pyo.Constraint(
        expr=pyo.inequality(1, pyo.quicksum(m.member[i] for i in m.PLAYERS), n - 1),
        doc="1 <= |S| <= n - 1")
    return m
