"""Pyomo builders of SLCpct (Model 1), MLCpct (Model 7) and MLCol (Models 8-9).

Source: Chasseray, Besançon, Lorca, Petitdemange, "Optimisation models for the design of
multiple self-consumption loops in semi-rural areas" (arXiv:2404.04428) §3.2-3.5; the
formulas are the reconstruction of ``docs/reconstruction/loop-design.md``; model card
``models/SLCpct-MLCpct-MLCol.md``
(each Pyomo component below is named there next to its equation number).

Units: energies kWh per step, prices EUR/kWh, objective EUR (expected over scenarios).

Two-stage structure (for the Benders decompositions SLExt / MLColExt)
--------------------------------------------------------------------
Every model is assembled from the same pieces:

* :func:`add_operation` — the per-(scenario, step) flow LP shared by all models:
  ``flow``, ``grid_buy``, ``grid_sell``, ``kirchhoff`` (1d), ``no_transit`` (1j),
  the expected ``cost`` (1a), for any subset of (scenario, step);
* first stages: :func:`add_single_loop_design` (``member``, ``surplus``, (1g),
  (1h), (1k), (1l)) and :func:`add_column_choice` (``choose``, (8b));
* linking rows that read the first stage through ``m.member`` / ``m.surplus``
  (:func:`add_single_loop_rules`: (1b), (1c), (1e), (1f)) or ``m.choose``
  (:func:`add_column_rules`: (8a), (9d), (9e)).

The linking rows only index ``m.member[i]``, ``m.surplus[s, t]`` and
``m.choose[k]``: in the compact models these are binary Vars; a Benders
sub-problem builds the same rows with *mutable Params* of the same names
(:func:`fixed_single_loop`, :func:`fixed_columns`), so the first stage values
appear only in right-hand sides and can be updated and re-solved without a rebuild.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from recopt.errors import ModelError
from recopt.lazy import pyomo_module
from recopt.models.loops.data import LoopData
from recopt.models.loops.enumeration import DEFAULT_MAX_LOOPS, enumerate_loops

if TYPE_CHECKING:
    import pyomo.environ as pyo
else:
    pyo = pyomo_module("pyomo.environ")


# --------------------------------------------------------------------------------------
# the operational (second-stage) LP every model shares
# --------------------------------------------------------------------------------------
def add_operation(m: pyo.Block, d: LoopData, steps=None, arcs=None,
                  bounded: bool = True) -> None:
    """Flows and grid exchanges on ``steps`` (default: all (scenario, step) pairs).

    Adds sets ``STEPS``, ``FLOWS`` ``(s,t,i,j)``, ``BUYERS``/``SELLERS`` ``(s,t,i)``
    (``Ĉ > 0`` / ``P̂ > 0``), ``NODES`` (either); variables ``flow`` (kWh, ``f``,
    bounded by the tight big-M ``M = min(P̂_i, Ĉ_j)``), ``grid_buy`` (``g⁺ <= Ĉ``),
    ``grid_sell`` (``g⁻ <= P̂``); constraints ``kirchhoff`` (1d) and ``no_transit``
    (1j); expression ``cost`` (1a) restricted to ``steps``.

    ``arcs`` restricts the flow arcs (MLCol: arcs inside some enumerated loop).
    The bounds ``g⁺ <= Ĉ`` and ``g⁻ <= P̂`` are implied by (1d) and (1j) (card),
    ``f <= M`` by the linking rows (1b)/(8a) at any first stage in ``[0, 1]``.
    ``bounded=False`` leaves them out (only ``>= 0``): the Benders sub-problems do,
    so that LP duality reads ``Φ = Σ_r λ_r rhs_r`` over the rows alone and every
    cut can be checked against the sub-problem value (``recopt.decomp.benders``).
    """
    steps = d.steps if steps is None else list(steps)
    C, P = d.C, d.P
    flows = d.flow_index(steps)
    if arcs is not None:
        keep = set(arcs)
        flows = [f for f in flows if (f[2], f[3]) in keep]
    buyers = [(s, t, i) for s, t in steps for i in np.nonzero(C[s, t] > 0)[0].tolist()]
    sellers = [(s, t, i) for s, t in steps for i in np.nonzero(P[s, t] > 0)[0].tolist()]
    nodes = sorted(set(buyers) | set(sellers))
    out_of: dict[tuple, list] = {n: [] for n in nodes}
    into: dict[tuple, list] = {n: [] for n in nodes}
    for s, t, i, j in flows:
        out_of[(s, t, i)].append(j)
        into[(s, t, j)].append(i)

    m.STEPS = pyo.Set(initialize=steps, dimen=2, ordered=True, doc="(scenario, step)")
    m.FLOWS = pyo.Set(initialize=flows, dimen=4, ordered=True,
                      doc="(s, t, i, j): arc (i, j) of A with M[i,j,s,t] > 0")
    m.BUYERS = pyo.Set(initialize=buyers, dimen=3, ordered=True, doc="(s, t, i) with Ĉ > 0")
    m.SELLERS = pyo.Set(initialize=sellers, dimen=3, ordered=True, doc="(s, t, i) with P̂ > 0")
    m.NODES = pyo.Set(initialize=nodes, dimen=3, ordered=True, doc="(s, t, i) with Ĉ or P̂ > 0")

    def ub(value):
        return float(value) if bounded else None

    m.flow = pyo.Var(m.FLOWS,
                     bounds=lambda m, s, t, i, j: (0.0, ub(min(P[s, t, i], C[s, t, j]))),
                     doc="f[i,j,ω,t]: energy sent by i to j inside a loop, kWh (1o)")
    m.grid_buy = pyo.Var(m.BUYERS, bounds=lambda m, s, t, i: (0.0, ub(C[s, t, i])),
                         doc="g⁺[i,ω,t]: energy bought from the grid, kWh (1o)")
    m.grid_sell = pyo.Var(m.SELLERS, bounds=lambda m, s, t, i: (0.0, ub(P[s, t, i])),
                          doc="g⁻[i,ω,t]: energy sold to the grid, kWh (1o)")

    def kirchhoff(m, s, t, i):
        lhs = float(P[s, t, i]) + sum(m.flow[s, t, k, i] for k in into[(s, t, i)])
        rhs = float(C[s, t, i]) + sum(m.flow[s, t, i, j] for j in out_of[(s, t, i)])
        if C[s, t, i] > 0:
            lhs = lhs + m.grid_buy[s, t, i]
        if P[s, t, i] > 0:
            rhs = rhs + m.grid_sell[s, t, i]
        return lhs == rhs

    m.kirchhoff = pyo.Constraint(m.NODES, rule=kirchhoff,
                                 doc="(1d)/(7b)/(9b) P̂ + Σ_in f + g⁺ = Ĉ + Σ_out f + g⁻")
    m.no_transit = pyo.Constraint(
        m.SELLERS,
        rule=lambda m, s, t, i: (sum(m.flow[s, t, i, j] for j in out_of[(s, t, i)])
                                 + m.grid_sell[s, t, i] <= float(P[s, t, i])),
        doc="(1j)/(7j)/(9c) Σ_out f + g⁻ <= P̂: no transit through an actor")
    w = d.probability
    m.cost = pyo.Expression(
        expr=pyo.quicksum(float(w[s] * d.buy[s, t, i]) * m.grid_buy[s, t, i]
                          for s, t, i in buyers)
        - pyo.quicksum(float(w[s] * d.sell[s, t, i]) * m.grid_sell[s, t, i]
                       for s, t, i in sellers),
        doc="(1a) Σ_ω π_ω Σ_t Σ_i (b g⁺ - s g⁻), EUR",
    )


def _objective(m) -> None:
    m.objective = pyo.Objective(expr=m.cost, sense=pyo.minimize,
                                doc="(1a)/(7a)/(9a) expected grid cost, EUR")


def _net_sum(d: LoopData, s, t, i) -> float:
    return float(d.P[s, t, i] - d.C[s, t, i])


# --------------------------------------------------------------------------------------
# SLCpct (Model 1)
# --------------------------------------------------------------------------------------
def add_single_loop_design(m, d: LoopData, steps=None) -> None:
    """First stage of SLCpct: ``member`` x[i], ``surplus`` u[ω,t] (binary, (1n)),
    ``status_up`` (1g), ``status_down`` (1h), ``distance_rule`` (1k), ``power_rule`` (1l).

    ``steps`` (default: all) restricts u, (1g) and (1h) to those (ω,t) (SLExt drops
    the steps where the design cannot matter, :meth:`LoopData.decision_steps`).
    """
    n = d.n
    m.ACTORS = pyo.Set(initialize=range(n), ordered=True, doc="actors N (positions)")
    m.ALL_STEPS = pyo.Set(initialize=d.steps if steps is None else list(steps), dimen=2,
                          ordered=True)
    m.NON_EDGES = pyo.Set(initialize=d.non_edges, dimen=2, ordered=True,
                          doc="pairs {i, j} not in E")
    m.member = pyo.Var(m.ACTORS, domain=pyo.Binary, doc="x[i]: actor i is in the loop (1n)")
    m.surplus = pyo.Var(m.ALL_STEPS, domain=pyo.Binary,
                        doc="u[ω,t]: the loop is a net producer at (ω,t) (1n)")
    netsum = (d.P - d.C)
    totp = d.P.sum(axis=2)
    totc = d.C.sum(axis=2)
    m.status_up = pyo.Constraint(
        m.ALL_STEPS,
        rule=lambda m, s, t: (pyo.quicksum(float(netsum[s, t, i]) * m.member[i]
                                           for i in range(n) if netsum[s, t, i] != 0)
                              - float(totp[s, t]) * m.surplus[s, t] <= 0),
        doc="(1g) Σ_i x (P̂ - Ĉ) <= (Σ_i P̂) u")
    m.status_down = pyo.Constraint(
        m.ALL_STEPS,
        rule=lambda m, s, t: (pyo.quicksum(float(netsum[s, t, i]) * m.member[i]
                                           for i in range(n) if netsum[s, t, i] != 0)
                              - float(totc[s, t]) * m.surplus[s, t] >= -float(totc[s, t])),
        doc="(1h) Σ_i x (P̂ - Ĉ) >= -(Σ_i Ĉ)(1 - u)")
    m.distance_rule = pyo.Constraint(
        m.NON_EDGES, rule=lambda m, i, j: m.member[i] + m.member[j] <= 1,
        doc="(1k) x[i] + x[j] <= 1 for {i,j} not in E")
    m.power_rule = pyo.Constraint(
        expr=pyo.quicksum(float(d.power[i]) * m.member[i] for i in range(n)) <= d.wmax,
        doc="(1l) Σ_i W x <= Wmax")


def add_single_loop_rules(m, d: LoopData) -> None:
    """Linking rows of SLCpct on ``m``'s operation: (1b), (1c), (1e), (1f)."""
    C, P = d.C, d.P

    def bm(s, t, i, j):
        return float(min(P[s, t, i], C[s, t, j]))

    m.sender_member = pyo.Constraint(
        m.FLOWS, rule=lambda m, s, t, i, j: m.flow[s, t, i, j] <= bm(s, t, i, j) * m.member[i],
        doc="(1b) f <= M x[i]: the sender is a member")
    m.receiver_member = pyo.Constraint(
        m.FLOWS, rule=lambda m, s, t, i, j: m.flow[s, t, i, j] <= bm(s, t, i, j) * m.member[j],
        doc="(1c) f <= M x[j]: the receiver is a member")
    m.sell_rule = pyo.Constraint(
        m.SELLERS,
        rule=lambda m, s, t, i: (m.grid_sell[s, t, i]
                                 <= float(P[s, t, i]) * (1 - m.member[i] + m.surplus[s, t])),
        doc="(1e) g⁻ <= P̂ (1 - x + u): members sell only when the loop has a surplus")
    m.buy_rule = pyo.Constraint(
        m.BUYERS,
        rule=lambda m, s, t, i: (m.grid_buy[s, t, i]
                                 <= float(C[s, t, i]) * (2 - m.member[i] - m.surplus[s, t])),
        doc="(1f) g⁺ <= Ĉ (2 - x - u): members buy only when the loop has a deficit")


def build_slcpct(d: LoopData) -> pyo.ConcreteModel:
    """SLCpct, Chasseray Model 1 (1a)-(1o): one loop, two-stage stochastic."""
    m = pyo.ConcreteModel(name="SLCpct")
    add_single_loop_design(m, d)
    add_operation(m, d)
    add_single_loop_rules(m, d)
    _objective(m)
    return m


FIRST_STAGE_FORMS = ("params", "vars")


def _first_stage(m, name, index, values, form, doc):
    """``m.<name>``: the first stage as mutable Params or as fixed Vars in ``[0, 1]``."""
    if form not in FIRST_STAGE_FORMS:
        raise ModelError(f"first_stage must be one of {', '.join(FIRST_STAGE_FORMS)}; "
                         f"got {form!r}")
    if form == "params":
        setattr(m, name, pyo.Param(index, mutable=True, initialize=values, doc=doc))
        return
    var = pyo.Var(index, bounds=(0.0, 1.0), initialize=values, doc=doc)
    setattr(m, name, var)
    var.fix()


def fixed_single_loop(d: LoopData, x, u, steps=None, *, first_stage: str = "params",
                      bounded: bool = True) -> pyo.ConcreteModel:
    """SLCpct's second stage (Model 4) for given ``x`` (n,) and ``u`` (S, T), on ``steps``.

    ``first_stage="params"``: ``member`` and ``surplus`` are mutable Params: set new
    values and re-solve. ``"vars"``: they are Vars fixed at ``x``, ``u`` (unfix them
    to read the rows' dependence on the first stage, as the Benders decomposition
    does). ``bounded=False``: see :func:`add_operation`.
    """
    m = pyo.ConcreteModel(name="SLCpct-second-stage")
    steps = d.steps if steps is None else list(steps)
    u = np.asarray(u)
    _first_stage(m, "member", range(d.n), {i: float(x[i]) for i in range(d.n)}, first_stage,
                 "x[i]: actor i is in the loop (first stage)")
    _first_stage(m, "surplus", steps, {(s, t): float(u[s, t]) for s, t in steps}, first_stage,
                 "u[ω,t]: the loop is a net producer (first stage)")
    add_operation(m, d, steps, bounded=bounded)
    add_single_loop_rules(m, d)
    _objective(m)
    return m


# --------------------------------------------------------------------------------------
# MLCpct (Model 7)
# --------------------------------------------------------------------------------------
def build_mlcpct(d: LoopData, n_loops: int | None = None) -> pyo.ConcreteModel:
    """MLCpct, Chasseray Model 7 (7a)-(7r): up to ``⌊n/2⌋`` loops."""
    n = d.n
    C, P = d.C, d.P
    L = n // 2 if n_loops is None else int(n_loops)
    m = pyo.ConcreteModel(name="MLCpct")
    m.ACTORS = pyo.Set(initialize=range(n), ordered=True, doc="actors N")
    m.LOOPS = pyo.Set(initialize=range(L), ordered=True, doc="loops L = {1..⌊n/2⌋}")
    m.ALL_STEPS = pyo.Set(initialize=d.steps, dimen=2, ordered=True)
    m.EDGES = pyo.Set(initialize=d.edges, dimen=2, ordered=True, doc="E")
    m.NON_EDGES = pyo.Set(initialize=d.non_edges, dimen=2, ordered=True)
    add_operation(m, d)
    m.member = pyo.Var(m.ACTORS, m.LOOPS, domain=pyo.Binary, doc="x[i,l] (7n)")
    m.surplus = pyo.Var(m.LOOPS, m.ALL_STEPS, domain=pyo.Binary, doc="u[l,ω,t] (7q)")
    m.pair = pyo.Var(m.EDGES, m.LOOPS, bounds=(0.0, 1.0),
                     doc="y[i,j,l]: i and j both in loop l (continuous, (7r))")

    m.sell_rule = pyo.Constraint(
        m.SELLERS, m.LOOPS,
        rule=lambda m, s, t, i, l: (m.grid_sell[s, t, i] <= float(P[s, t, i])
                                    * (1 - m.member[i, l] + m.surplus[l, s, t])),
        doc="(7c) g⁻ <= P̂ (1 - x[i,l] + u[l])")
    m.buy_rule = pyo.Constraint(
        m.BUYERS, m.LOOPS,
        rule=lambda m, s, t, i, l: (m.grid_buy[s, t, i] <= float(C[s, t, i])
                                    * (2 - m.member[i, l] - m.surplus[l, s, t])),
        doc="(7d) g⁺ <= Ĉ (2 - x[i,l] - u[l])")
    netsum = P - C
    totp = P.sum(axis=2)
    totc = C.sum(axis=2)

    def net(m, l, s, t):
        return pyo.quicksum(float(netsum[s, t, i]) * m.member[i, l]
                            for i in range(n) if netsum[s, t, i] != 0)

    m.status_up = pyo.Constraint(
        m.LOOPS, m.ALL_STEPS,
        rule=lambda m, l, s, t: net(m, l, s, t) - float(totp[s, t]) * m.surplus[l, s, t] <= 0,
        doc="(7e) Σ_i x[i,l] (P̂ - Ĉ) <= (Σ P̂) u[l]")
    m.status_down = pyo.Constraint(
        m.LOOPS, m.ALL_STEPS,
        rule=lambda m, l, s, t: (net(m, l, s, t) - float(totc[s, t]) * m.surplus[l, s, t]
                                 >= -float(totc[s, t])),
        doc="(7f) Σ_i x[i,l] (P̂ - Ĉ) >= -(Σ Ĉ)(1 - u[l])")
    m.power_rule = pyo.Constraint(
        m.LOOPS,
        rule=lambda m, l: pyo.quicksum(float(d.power[i]) * m.member[i, l]
                                       for i in range(n)) <= d.wmax,
        doc="(7h) Σ_i W x[i,l] <= Wmax")
    m.distance_rule = pyo.Constraint(
        m.NON_EDGES, m.LOOPS, rule=lambda m, i, j, l: m.member[i, l] + m.member[j, l] <= 1,
        doc="(7i) x[i,l] + x[j,l] <= 1 for {i,j} not in E")
    m.one_loop = pyo.Constraint(
        m.ACTORS, rule=lambda m, i: pyo.quicksum(m.member[i, l] for l in m.LOOPS) <= 1,
        doc="(7k) Σ_l x[i,l] <= 1")

    def pair_flow(m, s, t, i, j):
        e = (min(i, j), max(i, j))
        return m.flow[s, t, i, j] <= float(min(P[s, t, i], C[s, t, j])) * pyo.quicksum(
            m.pair[e[0], e[1], l] for l in m.LOOPS)

    m.pair_flow = pyo.Constraint(m.FLOWS, rule=pair_flow,
                                 doc="(7l)/(6) f <= M Σ_l y[i,j,l]")
    m.pair_member_i = pyo.Constraint(
        m.EDGES, m.LOOPS, rule=lambda m, i, j, l: m.pair[i, j, l] <= m.member[i, l],
        doc="(7m) y[i,j,l] <= x[i,l]")
    m.pair_member_j = pyo.Constraint(
        m.EDGES, m.LOOPS, rule=lambda m, i, j, l: m.pair[i, j, l] <= m.member[j, l],
        doc="(7m) y[i,j,l] <= x[j,l]")
    m.symmetry = pyo.Constraint(
        [l for l in range(L - 1)],
        rule=lambda m, l: (pyo.quicksum(m.member[i, l] for i in range(n))
                           >= pyo.quicksum(m.member[i, l + 1] for i in range(n))),
        doc="(7o) Σ_i x[i,l] >= Σ_i x[i,l+1]: symmetry breaking")
    _objective(m)
    return m


# --------------------------------------------------------------------------------------
# MLCol (Models 8-9)
# --------------------------------------------------------------------------------------
def loop_set(d: LoopData, enumeration: str = "all",
             max_loops: int = DEFAULT_MAX_LOOPS) -> list[tuple[int, ...]]:
    """The enumerated feasible loops 𝓛 of MLCol (:mod:`recopt.models.loops.enumeration`)."""
    return enumerate_loops(d.graph, d.power, d.wmax, d.useful, strategy=enumeration,
                           max_loops=max_loops)


def surplus_of_loops(d: LoopData, loops) -> np.ndarray:
    """Λ as a boolean array (K, S, T): ``Σ_{i∈S} (P̂ - Ĉ)[i,ω,t] >= 0``."""
    net = d.P - d.C
    if not loops:
        return np.zeros((0,) + net.shape[:2], bool)
    return np.stack([net[:, :, list(S)].sum(axis=2) >= 0 for S in loops])


def add_column_choice(m, d: LoopData, loops) -> None:
    """First stage of MLCol: ``choose`` z[S] (8c) and ``one_loop`` (8b)."""
    m.recopt_loops = list(loops)
    m.COLUMNS = pyo.Set(initialize=range(len(loops)), ordered=True, doc="enumerated loops 𝓛")
    m.choose = pyo.Var(m.COLUMNS, domain=pyo.Binary, doc="z[S]: loop S is formed (8c)")
    of_actor: dict[int, list[int]] = {}
    for k, S in enumerate(loops):
        for i in S:
            of_actor.setdefault(i, []).append(k)
    m.COVERED = pyo.Set(initialize=sorted(of_actor), ordered=True, doc="actors in some loop")
    m.one_loop = pyo.Constraint(
        m.COVERED, rule=lambda m, i: pyo.quicksum(m.choose[k] for k in of_actor[i]) <= 1,
        doc="(8b) Σ_{S∋i} z[S] <= 1")


def column_arcs(loops) -> list[tuple[int, int]]:
    """Arcs (i, j) inside at least one loop of ``loops``."""
    arcs: set[tuple[int, int]] = set()
    for S in loops:
        arcs.update((i, j) for i in S for j in S if i != j)
    return sorted(arcs)


ROW_FORMS = ("aggregated", "per_loop")


def loops_of_arc(loops) -> dict[tuple[int, int], list[int]]:
    """Arc ``(i, j)``, ``i != j`` -> positions of the loops of ``loops`` holding both."""
    of_arc: dict[tuple[int, int], list[int]] = {}
    for k, S in enumerate(loops):
        for i in S:
            for j in S:
                if i != j:
                    of_arc.setdefault((i, j), []).append(k)
    return of_arc


def loop_pairs(loops) -> list[tuple[int, int]]:
    """Unordered pairs ``(i, j)``, ``i < j``, inside at least one loop of ``loops``."""
    return sorted({(min(i, j), max(i, j)) for i, j in loops_of_arc(loops)})


def add_pair_activity(m, loops) -> None:
    """(8a)'s pair variables: ``pair_active`` y[i,j] = Σ_{S∋i,j} z[S] (``pair_link``).

    (8a) is written ``f <= M y[i,j]`` through one pair variable per pair: exact (y is
    that sum), and the flow rows keep 2 non-zeros instead of one per loop containing
    the arc (card, choice 12). ``y`` is first-stage data: MLColExt's master holds it.
    """
    of_arc = loops_of_arc(loops)
    m.PAIRS = pyo.Set(initialize=loop_pairs(loops), dimen=2, ordered=True,
                      doc="pairs {i, j} inside some enumerated loop")
    m.pair_active = pyo.Var(m.PAIRS, bounds=(0.0, 1.0),
                            doc="y[i,j] = Σ_{S∋i,j} z[S]: i and j share a chosen loop")
    m.pair_link = pyo.Constraint(
        m.PAIRS,
        rule=lambda m, i, j: m.pair_active[i, j]
        == pyo.quicksum(m.choose[k] for k in of_arc[(i, j)]),
        doc="(8a) y[i,j] = Σ_{S∋i,j} z[S]")


def add_column_rules(m, d: LoopData, loops, rows: str = "aggregated") -> None:
    """Linking rows of MLCol on ``m``'s operation: (8a), (9d), (9e).

    ``rows="per_loop"`` writes (9d)/(9e) as in the spec, one row per (loop, ω, t,
    member); ``"aggregated"`` (default) one row per (ω, t, member) summing the
    loops that contain the member:
    ``g⁺ <= Ĉ (1 - Σ_{S∋i, (S,ω,t)∈Λ} z[S])`` and
    ``g⁻ <= P̂ (1 - Σ_{S∋i, (S,ω,t)∉Λ} z[S])``. With (8b) at most one of those
    ``z`` is 1, so both forms have the same integer solutions; the aggregated row
    implies every per-loop row, so its LP relaxation is at least as tight, and it
    has at most ``n |Ω| |T|`` rows instead of ``Σ_S |S| |Ω| |T|`` (card).
    """
    if rows not in ROW_FORMS:
        raise ModelError(f"rows must be one of {', '.join(ROW_FORMS)}; got {rows!r}")
    C, P = d.C, d.P
    lam = surplus_of_loops(d, loops)
    if not hasattr(m, "pair_active"):
        add_pair_activity(m, loops)
    m.loop_flow = pyo.Constraint(
        m.FLOWS,
        rule=lambda m, s, t, i, j: m.flow[s, t, i, j] <= float(min(P[s, t, i], C[s, t, j]))
        * m.pair_active[min(i, j), max(i, j)],
        doc="(8a) f <= M y[i,j] = M Σ_{S∋i,j} z[S]")
    steps = list(m.STEPS)
    if rows == "per_loop":
        buy_rows, sell_rows = [], []
        for k, S in enumerate(loops):
            for s, t in steps:
                if lam[k, s, t]:
                    buy_rows += [(k, s, t, i) for i in S if C[s, t, i] > 0]
                else:
                    sell_rows += [(k, s, t, i) for i in S if P[s, t, i] > 0]
        m.SURPLUS_ROWS = pyo.Set(initialize=buy_rows, dimen=4, ordered=True,
                                 doc="(S, ω, t, i): (S,ω,t) in Λ, i in S, Ĉ > 0")
        m.DEFICIT_ROWS = pyo.Set(initialize=sell_rows, dimen=4, ordered=True,
                                 doc="(S, ω, t, i): (S,ω,t) not in Λ, i in S, P̂ > 0")
        m.buy_rule = pyo.Constraint(
            m.SURPLUS_ROWS,
            rule=lambda m, k, s, t, i: (m.grid_buy[s, t, i]
                                        <= float(C[s, t, i]) * (1 - m.choose[k])),
            doc="(9d) g⁺ <= Ĉ (1 - z[S]) when S has a surplus")
        m.sell_rule = pyo.Constraint(
            m.DEFICIT_ROWS,
            rule=lambda m, k, s, t, i: (m.grid_sell[s, t, i]
                                        <= float(P[s, t, i]) * (1 - m.choose[k])),
            doc="(9e) g⁻ <= P̂ (1 - z[S]) when S has a deficit")
        return
    of_actor: dict[int, list[int]] = {}
    for k, S in enumerate(loops):
        for i in S:
            of_actor.setdefault(i, []).append(k)
    surplus_loops: dict[tuple, list[int]] = {}
    deficit_loops: dict[tuple, list[int]] = {}
    for s, t in steps:
        for i, ks in of_actor.items():
            if C[s, t, i] > 0:
                sel = [k for k in ks if lam[k, s, t]]
                if sel:
                    surplus_loops[(s, t, i)] = sel
            if P[s, t, i] > 0:
                sel = [k for k in ks if not lam[k, s, t]]
                if sel:
                    deficit_loops[(s, t, i)] = sel
    m.SURPLUS_ROWS = pyo.Set(initialize=sorted(surplus_loops), dimen=3, ordered=True,
                             doc="(ω, t, i): Ĉ > 0 and i in a loop with a surplus")
    m.DEFICIT_ROWS = pyo.Set(initialize=sorted(deficit_loops), dimen=3, ordered=True,
                             doc="(ω, t, i): P̂ > 0 and i in a loop with a deficit")
    m.buy_rule = pyo.Constraint(
        m.SURPLUS_ROWS,
        rule=lambda m, s, t, i: m.grid_buy[s, t, i] <= float(C[s, t, i]) * (
            1 - pyo.quicksum(m.choose[k] for k in surplus_loops[(s, t, i)])),
        doc="(9d) aggregated: g⁺ <= Ĉ (1 - Σ_{S∋i,(S,ω,t)∈Λ} z[S])")
    m.sell_rule = pyo.Constraint(
        m.DEFICIT_ROWS,
        rule=lambda m, s, t, i: m.grid_sell[s, t, i] <= float(P[s, t, i]) * (
            1 - pyo.quicksum(m.choose[k] for k in deficit_loops[(s, t, i)])),
        doc="(9e) aggregated: g⁻ <= P̂ (1 - Σ_{S∋i,(S,ω,t)∉Λ} z[S])")


def build_mlcol(d: LoopData, loops, rows: str = "aggregated") -> pyo.ConcreteModel:
    """MLCol, Chasseray Models 8-9, over the enumerated ``loops``."""
    m = pyo.ConcreteModel(name="MLCol")
    add_column_choice(m, d, loops)
    add_pair_activity(m, loops)
    add_operation(m, d, arcs=column_arcs(loops))
    add_column_rules(m, d, loops, rows)
    _objective(m)
    return m


def fixed_columns(d: LoopData, loops, z, steps=None, rows: str = "aggregated", *,
                  first_stage: str = "params", bounded: bool = True) -> pyo.ConcreteModel:
    """MLCol's second stage (Model 11) for given loop choices ``z`` (K,), on ``steps``.

    ``first_stage="params"``: ``choose`` is a mutable Param (set new values and
    re-solve) and ``pair_active`` follows it through ``pair_link``. ``"vars"``:
    ``choose`` and ``pair_active`` (y = Σ_{S∋i,j} z) are Vars fixed at ``z`` and its
    pair sums, and ``pair_link`` is left to the master (MLColExt). ``bounded``: see
    :func:`add_operation`.
    """
    m = pyo.ConcreteModel(name="MLCol-second-stage")
    m.recopt_loops = list(loops)
    zval = {k: float(z[k]) for k in range(len(loops))}
    _first_stage(m, "choose", range(len(loops)), zval, first_stage,
                 "z[S]: loop S is formed (first stage)")
    if first_stage == "vars":
        of_arc = loops_of_arc(loops)
        pairs = loop_pairs(loops)
        m.PAIRS = pyo.Set(initialize=pairs, dimen=2, ordered=True)
        _first_stage(m, "pair_active", m.PAIRS,
                     {(i, j): sum(zval[k] for k in of_arc[(i, j)]) for i, j in pairs},
                     "vars", "y[i,j] = Σ_{S∋i,j} z[S] (first stage)")
    add_operation(m, d, steps, arcs=column_arcs(loops), bounded=bounded)
    add_column_rules(m, d, loops, rows)
    _objective(m)
    return m
