"""de Villena et al.'s repartition-key linear programs LP1, LP2, LP3.

Source: M. Manuel de Villena et al., "Financial optimization of renewable energy
communities through optimal allocation of locally generated electricity", IEEE Access 10
(2022), DOI 10.1109/ACCESS.2022.3191804, Linear programs 1-3, eqs (1)-(28). Model card:
``models/LP1-LP3.md``; the Pyomo component names below are the card's equation names.

Units: energies in kWh per time step, prices in EUR/kWh, bills in EUR.

The models are composed from named pieces, one ``add_*`` function per equation
group: :func:`build_lp1` is (7)-(16); :func:`build_lp2` is LP1 + :func:`add_min_ssr`
(20); :func:`build_lp3` adds the initial keys and tolerance (21)-(28).

Exact reductions made while building (the card proves each):

* only *active* steps are modelled, those with community production ``G > 0`` and
  some net consumption; elsewhere every flow is 0 and the keys are 0 (LP1/LP2) or
  the initial keys (LP3);
* ``v`` (verified allocation) exists only where ``C+ > 0`` and ``y`` (local sales)
  only where ``P- > 0``: bounds (13) and (11) force them to 0 elsewhere;
* in LP1/LP2 a key exists only where ``C+ > 0``: a key given to a member with no
  net consumption can never be verified (12)-(13), so fixing it to 0 keeps the
  optimum; in LP3 every member keeps a key (the tolerance (26)-(27) binds it);
* the allocation ``a = k G`` of (9) is substituted into (12), (24) and (25)
  rather than kept as a variable with an equality row; the Result reports it.

Constraints are built as Pyomo templates (:mod:`recopt.models.construction`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from recopt.data.roles import member_mask
from recopt.data.schema import DIMS
from recopt.data.view import coords_of, stm
from recopt.errors import ModelError
from recopt.lazy import pyomo_module
from recopt.metrics import self_sufficiency
from recopt.models.community import CommunityArrays
from recopt.models.construction import nonzero_index, scatter, templated_constraints, var_values
from recopt.models.options import Option, Tuning
from recopt.models.registry import ModelSpec, register
from recopt.models.step_lp import StepLP, csc, one_row_matrix
from recopt.models.tie_break import TIE_BREAK_OPTIONS, without_tie_break
from recopt.settle import bills, meter_flows

if TYPE_CHECKING:
    import pyomo.environ as pyo
else:
    pyo = pyomo_module("pyomo.environ")

CARD = "models/LP1-LP3.md"


# --------------------------------------------------------------------------------------
# data preparation
# --------------------------------------------------------------------------------------
class RepartitionData(CommunityArrays):
    """The arrays LP1-LP3 read (:class:`~recopt.models.community.CommunityArrays`)."""


def initial_keys(instance: xr.Dataset, kind) -> np.ndarray:
    """Initial keys ``K_i`` of LP3 (de Villena §IV-D), one per member.

    ``"uniform"``: equal shares among the members with positive net demand over the
    horizon (all scenarios pooled); ``"proportional"``: shares proportional to each
    member's mean net consumption ``C+``. A sequence / mapping / DataArray gives the
    keys directly (they must be >= 0 and sum to <= 1).
    """
    cp, _ = meter_flows(stm(instance, "consumption"), stm(instance, "production"))
    demand = cp.sum(axis=(0, 1)) * member_mask(instance)  # a plant has no key
    members = [str(m) for m in instance["member"].values]
    if isinstance(kind, str):
        if kind == "uniform":
            k = (demand > 0).astype(float)
        elif kind == "proportional":
            k = demand.astype(float)
        else:
            raise ModelError(
                f"initial_keys must be 'uniform', 'proportional' or one key per member; "
                f"got {kind!r}"
            )
        total = k.sum()
        return k / total if total > 0 else k
    if isinstance(kind, xr.DataArray):
        k = kind.sel(member=instance["member"]).values.astype(float)
    elif isinstance(kind, dict):
        missing = [m for m in members if m not in kind]
        if missing:
            raise ModelError(f"initial_keys misses members {', '.join(missing)}")
        k = np.array([float(kind[m]) for m in members])
    else:
        k = np.asarray(kind, dtype=float).ravel()
        if k.shape != (len(members),):
            raise ModelError(f"initial_keys has {k.size} values for {len(members)} members")
    if (k < 0).any() or k.sum() > 1 + 1e-9:
        raise ModelError("initial_keys must be >= 0 and sum to at most 1")
    return k


def min_ssr_vector(instance: xr.Dataset, min_ssr) -> np.ndarray:
    """LP2's minimum SSR per member (a fraction), from one value or a member mapping."""
    members = [str(m) for m in instance["member"].values]
    if isinstance(min_ssr, dict):
        unknown = sorted(set(map(str, min_ssr)) - set(members))
        if unknown:  # a typo would silently leave that member unconstrained
            raise ModelError(f"min_ssr names no member {', '.join(unknown)}; the members "
                             f"are {', '.join(members[:10])}{' ...' if len(members) > 10 else ''}")
        v = np.array([float(min_ssr.get(m, 0.0)) for m in members])
    else:
        v = np.broadcast_to(np.asarray(min_ssr, dtype=float), (len(members),)).copy()
    if not np.isfinite(v).all() or ((v < 0) | (v > 1)).any():
        raise ModelError("min_ssr must lie in [0, 1] (a fraction, e.g. 0.42 for 42 %)")
    return v


# --------------------------------------------------------------------------------------
# the pieces: one function per equation group of the card
# --------------------------------------------------------------------------------------
def new_model(instance: xr.Dataset, name: str, *, keys_everywhere: bool = False
              ) -> pyo.ConcreteModel:
    """The model's data, index sets and ``G`` (de Villena (9)'s factor), no variable.

    ``keys_everywhere``: every member of an active step has a key (LP3), else only
    the consumers (LP1, LP2; see the module docstring).
    """
    d = RepartitionData.of(instance)
    cp, pm, G = d.net_consumption, d.net_production, d.G
    m = pyo.ConcreteModel(name=name)
    m.recopt_data = d  # kept for extract(); not a Pyomo component
    active3 = d.active[:, :, None]
    # a community-owned plant (role "plant") is not a member: no key, no intake; what
    # it consumes itself it buys from the grid (a constant of the bill)
    member3 = member_mask(instance)[None, None, :]
    cons = nonzero_index(active3 & (cp > 0) & member3)
    prod = nonzero_index(active3 & (pm > 0))
    steps = nonzero_index(d.active)
    keyed = (nonzero_index(np.broadcast_to(active3 & member3, cp.shape)) if keys_everywhere
             else cons)
    m.recopt_index = {"cons": cons, "prod": prod, "keyed": keyed, "steps": steps}

    def members_at(index):
        out: dict[tuple[int, int], list[int]] = {st: [] for st in steps}
        for s, t, i in index:
            out[(s, t)].append(i)
        return out

    m.MEMBERS = pyo.Set(initialize=range(cp.shape[2]), ordered=True, doc="member positions")
    m.STEPS = pyo.Set(initialize=steps, dimen=2, ordered=True,
                      doc="active (scenario, step): G > 0 and some net consumption")
    m.CONSUMERS = pyo.Set(initialize=cons, dimen=3, ordered=True,
                          doc="(scenario, step, member) with C+ > 0 in an active step")
    m.PRODUCERS = pyo.Set(initialize=prod, dimen=3, ordered=True,
                          doc="(scenario, step, member) with P- > 0 in an active step")
    m.KEYED = pyo.Set(initialize=keyed, dimen=3, ordered=True,
                      doc="(scenario, step, member) with a key: the consumers (LP1, LP2) or "
                      "every member of an active step (LP3)")
    m.CONSUMERS_AT = pyo.Set(m.STEPS, initialize=members_at(cons), ordered=True,
                             doc="consumers of an active step")
    m.PRODUCERS_AT = pyo.Set(m.STEPS, initialize=members_at(prod), ordered=True,
                             doc="producers of an active step")
    m.KEYED_AT = pyo.Set(m.STEPS, initialize=members_at(keyed), ordered=True,
                         doc="members with a key in an active step")
    m.G = pyo.Param(m.STEPS, initialize={st: float(G[st]) for st in steps},
                    doc="community production sum_i P-_i, kWh (the factor of (9))")
    return m


def _templates(m: pyo.ConcreteModel, templates: bool) -> bool:
    # (Pyomo's templates cannot be made over an empty index set)
    return templates and bool(m.recopt_index["steps"])


def add_keys(m: pyo.ConcreteModel) -> None:
    """``k``: the repartition keys (15), in [0, 1]."""
    m.key = pyo.Var(m.KEYED, bounds=(0.0, 1.0), doc="k: repartition key (15)")


def add_initial_keys(m: pyo.ConcreteModel, initial: np.ndarray, tolerance: float) -> None:
    """LP3's initial keys ``K`` (21) and keys ``k`` within ``X K`` of them, (26)-(27) as
    bounds of ``k`` (``tolerance`` is ``X``, a fraction)."""
    if tolerance < 0:
        raise ModelError("tolerance must be >= 0 (a fraction of the initial key)")
    m.recopt_initial_keys = initial
    m.K = pyo.Param(m.MEMBERS, initialize=dict(enumerate(initial.tolist())),
                    doc="initial keys K_i (21)")
    klo = np.maximum(0.0, initial * (1 - tolerance)).tolist()  # (27) K - k <= X K
    kup = np.minimum(1.0, initial * (1 + tolerance)).tolist()  # (26) k - K <= X K
    m.key = pyo.Var(m.KEYED, bounds=(0.0, 1.0),
                    doc="k: repartition key (15); tolerance (26)-(27) as bounds")
    for (_s, _t, i), var in zip(m.recopt_index["keyed"], m.key.values(), strict=True):
        var.setlb(klo[i])
        var.setub(kup[i])


def add_flows(m: pyo.ConcreteModel) -> None:
    """``v`` (verified allocation) and ``y`` (local sales), (16), with (13) and (11)
    as their upper bounds."""
    d: RepartitionData = m.recopt_data
    m.verified = pyo.Var(m.CONSUMERS, bounds=(0.0, None),
                         doc="v: verified allocated production, kWh (16); v <= C+ is (13)")
    m.local_sales = pyo.Var(m.PRODUCERS, bounds=(0.0, None),
                            doc="y: production sold to the community, kWh (16); y <= P- is (11)")
    cp, pm = d.net_consumption, d.net_production
    for (s, t, i), var in zip(m.recopt_index["cons"], m.verified.values(), strict=True):
        var.setub(cp[s, t, i])  # (13)
    for (s, t, i), var in zip(m.recopt_index["prod"], m.local_sales.values(), strict=True):
        var.setub(pm[s, t, i])  # (11)


def add_verified_le_allocated(m: pyo.ConcreteModel, templates: bool = True) -> None:
    """(12) ``v <= a`` with ``a = k G`` (9) substituted."""
    with templated_constraints(_templates(m, templates)):
        m.verified_le_allocated = pyo.Constraint(
            m.CONSUMERS,
            rule=lambda m, s, t, i: m.verified[s, t, i] - m.G[s, t] * m.key[s, t, i] <= 0,
            doc="(12) v <= a, with a = k G (9)")


def add_sales_balance(m: pyo.ConcreteModel, templates: bool = True) -> None:
    """(10) what members take equals what producers sell, per step."""
    with templated_constraints(_templates(m, templates)):
        m.sales_balance = pyo.Constraint(
            m.STEPS,
            rule=lambda m, s, t: (
                sum(m.verified[s, t, i] for i in m.CONSUMERS_AT[s, t])
                - sum(m.local_sales[s, t, j] for j in m.PRODUCERS_AT[s, t])
                == 0
            ),
            doc="(10) sum_i v = sum_i y")


def add_keys_sum(m: pyo.ConcreteModel, templates: bool = True) -> None:
    """(14) the keys of a step sum to at most 1."""
    with templated_constraints(_templates(m, templates)):
        m.keys_sum = pyo.Constraint(
            m.STEPS, rule=lambda m, s, t: sum(m.key[s, t, i] for i in m.KEYED_AT[s, t]) <= 1,
            doc="(14) sum_i k <= 1")


def add_pro_rata_sales(m: pyo.ConcreteModel, templates: bool = True) -> None:
    """The DSO's surplus rule instead of free local sales: ``y_j = P-_j / G sum_i v``
    (Mustika (11)-(12))."""
    d: RepartitionData = m.recopt_data
    pm, G = d.net_production, d.G
    m.injection_share = pyo.Param(
        m.PRODUCERS,
        initialize={(s, t, j): float(pm[s, t, j] / G[s, t]) for s, t, j in m.recopt_index["prod"]},
        doc="P-_j / G, 1")
    with templated_constraints(_templates(m, templates)):
        m.pro_rata_sales = pyo.Constraint(
            m.PRODUCERS,
            rule=lambda m, s, t, j: (
                m.local_sales[s, t, j]
                - m.injection_share[s, t, j]
                * sum(m.verified[s, t, i] for i in m.CONSUMERS_AT[s, t])
                == 0
            ),
            doc="y_j = P-_j / G * sum_i v_i (Mustika (11)-(12))")


def add_min_ssr(m: pyo.ConcreteModel, ssr_min: np.ndarray) -> None:
    """LP2's (20): every member's self-sufficiency at least ``ssr_min`` (per member, 1).

    ``sum_t (min(P, C) + v) >= SSR_min sum_t C`` for each (scenario, member) with
    consumption and a positive minimum.
    """
    d: RepartitionData = m.recopt_data
    S, _, U = d.net_consumption.shape
    covered_own = d.own_coverage
    total_c = d.total_consumption
    rows = [(s, i) for s in range(S) for i in range(U) if total_c[s, i] > 0 and ssr_min[i] > 0]
    steps_of: dict[tuple[int, int], list[int]] = {r: [] for r in rows}
    for s, t, i in m.recopt_index["cons"]:
        if (s, i) in steps_of:
            steps_of[(s, i)].append(t)
    m.SSR_MEMBERS = pyo.Set(initialize=rows, dimen=2, ordered=True,
                            doc="(scenario, member) with a minimum SSR")
    m.CONSUMING_STEPS = pyo.Set(m.SSR_MEMBERS, initialize=steps_of, ordered=True,
                                doc="active steps in which the member consumes")
    m.own_coverage = pyo.Param(m.SSR_MEMBERS, initialize={r: float(covered_own[r]) for r in rows},
                               doc="sum_t min(P, C), kWh")
    m.ssr_target = pyo.Param(
        m.SSR_MEMBERS, initialize={(s, i): float(ssr_min[i] * total_c[s, i]) for s, i in rows},
        doc="SSR_min_i * sum_t C, kWh")
    # one row per member, built plainly (Pyomo's templates reject empty sums); a member
    # with no step to receive energy in keeps only its own coverage, and the
    # fixed-at-zero `no_intake` keeps such a row a row
    m.no_intake = pyo.Var(bounds=(0.0, 0.0), doc="0: intake of a member with no need")
    with templated_constraints(False):
        m.min_ssr = pyo.Constraint(
            m.SSR_MEMBERS,
            rule=lambda m, s, i: (
                m.own_coverage[s, i]
                + sum(m.verified[s, t, i] for t in m.CONSUMING_STEPS[s, i])
                + m.no_intake
                >= m.ssr_target[s, i]
            ),
            doc="(20) sum_t (min(P, C) + v) >= SSR_min * sum_t C")


def add_deviation(m: pyo.ConcreteModel, templates: bool = True) -> None:
    """LP3's deviation of the allocation from the initial one: (24)-(25), (28)."""
    m.deviation_up = pyo.Var(m.STEPS, bounds=(0.0, None), doc="a+_t, kWh (28)")
    m.deviation_down = pyo.Var(m.STEPS, bounds=(0.0, None), doc="a-_t, kWh (28)")
    with templated_constraints(_templates(m, templates)):
        m.allocation_above_initial = pyo.Constraint(
            m.KEYED,
            rule=lambda m, s, t, i: (
                m.G[s, t] * m.key[s, t, i] - m.deviation_up[s, t] <= m.G[s, t] * m.K[i]
            ),
            doc="(24) a - A <= a+_t, with A = K G (21)")
        m.allocation_below_initial = pyo.Constraint(
            m.KEYED,
            rule=lambda m, s, t, i: (
                m.G[s, t] * m.K[i] - m.G[s, t] * m.key[s, t, i] - m.deviation_down[s, t] <= 0
            ),
            doc="(25) A - a <= a-_t")


def add_bill(m: pyo.ConcreteModel) -> None:
    """``bill``: (7) summed over members and steps, expected over scenarios, EUR."""
    d: RepartitionData = m.recopt_data
    cons, prod = m.recopt_index["cons"], m.recopt_index["prod"]
    b = d.prices["price_grid_buy"]
    sp = d.prices["price_grid_sell"]
    cb = d.prices["price_community_buy"]
    cs = d.prices["price_community_sell"]
    w = d.probability[:, None, None]
    constant = float((w * (b * d.net_consumption - sp * d.net_production)).sum())
    coef_v = (w * (cb - b))[tuple(np.array(cons).T)] if cons else np.zeros(0)
    coef_y = (w * (sp - cs))[tuple(np.array(prod).T)] if prod else np.zeros(0)
    terms = [c * v for c, v in zip(coef_v.tolist(), m.verified.values(), strict=True)]
    terms += [c * y for c, y in zip(coef_y.tolist(), m.local_sales.values(), strict=True)]
    m.bill = pyo.Expression(expr=constant + pyo.quicksum(terms),
                            doc="(7) summed over members and steps: energy bill, EUR")


def add_deviation_cost(m: pyo.ConcreteModel, deviation_price: float) -> None:
    """LP3's ``xi_d sum_t (a+_t + a-_t)`` (23), EUR (``deviation_price`` in EUR/kWh)."""
    d: RepartitionData = m.recopt_data
    m.deviation_cost = pyo.Expression(
        expr=pyo.quicksum(
            deviation_price * float(d.probability[s])
            * (m.deviation_up[s, t] + m.deviation_down[s, t])
            for s, t in m.recopt_index["steps"]),
        doc="xi_d * sum_t (a+_t + a-_t), EUR (23)")


def add_objective(m: pyo.ConcreteModel) -> None:
    """(8) / (19) / (23): minimise the expected collective bill (plus LP3's deviation cost)."""
    total = m.bill + m.deviation_cost if hasattr(m, "deviation_cost") else m.bill
    m.objective = pyo.Objective(expr=total, sense=pyo.minimize,
                                doc="(8) / (19) / (23): expected collective bill, EUR")


def _check_choices(producer_sales: str, formulation: str) -> None:
    if producer_sales not in ("free", "pro_rata"):
        raise ModelError("producer_sales must be 'free' (de Villena) or 'pro_rata' (DSO rule)")
    if formulation not in ("projected", "paper"):
        raise ModelError("formulation must be 'projected' (default) or 'paper'")


# --------------------------------------------------------------------------------------
# the models, composed from the pieces
# --------------------------------------------------------------------------------------
def build_lp1(instance: xr.Dataset, *, producer_sales: str = "free",
              formulation: str = "projected", templates: bool = True,
              name: str = "LP1") -> pyo.ConcreteModel:
    """LP1 (de Villena (8)-(16)): keys minimising the expected collective bill.

    ``formulation="paper"`` keeps the keys ``k`` with (12) and (14); ``"projected"``
    (default) projects them out: a ``v`` with ``sum_i v <= G`` has the keys
    ``k = v / G``, and (10)-(11) already imply ``sum_i v <= G``, so the optimum is the
    same and the keys are recovered exactly from ``v`` (the card's exact
    reformulation). ``templates=False`` builds every constraint as an ordinary
    expression (slower, same model; the tests compare both).
    """
    _check_choices(producer_sales, formulation)
    m = new_model(instance, name)
    with_keys = formulation == "paper"
    if with_keys:
        add_keys(m)
    add_flows(m)
    if with_keys:
        add_verified_le_allocated(m, templates)  # (12)
    add_sales_balance(m, templates)  # (10)
    if with_keys:
        add_keys_sum(m, templates)  # (14)
    if producer_sales == "pro_rata":
        add_pro_rata_sales(m, templates)
    add_bill(m)  # (7)
    add_objective(m)  # (8)
    return m


def build_lp2(instance: xr.Dataset, *, min_ssr=0.0, producer_sales: str = "free",
              formulation: str = "projected", templates: bool = True) -> pyo.ConcreteModel:
    """LP2 = LP1 + (20): a minimum self-sufficiency rate per member (``min_ssr``, a
    fraction or one per member)."""
    m = build_lp1(instance, producer_sales=producer_sales, formulation=formulation,
                  templates=templates, name="LP2")
    add_min_ssr(m, min_ssr_vector(instance, min_ssr))  # (20)
    return m


def build_lp3(instance: xr.Dataset, *, initial_keys_kind="uniform", tolerance: float = 0.0,
              deviation_price: float = 0.001, producer_sales: str = "free",
              templates: bool = True) -> pyo.ConcreteModel:
    """LP3 (de Villena (21)-(28)): LP1 with keys kept within ``tolerance`` of initial
    keys (bounds (26)-(27)) and the deviation priced at ``deviation_price`` EUR/kWh
    ((24)-(25), (28), objective (23)). LP3 always keeps its keys."""
    _check_choices(producer_sales, "paper")
    m = new_model(instance, "LP3", keys_everywhere=True)
    add_initial_keys(m, initial_keys(instance, initial_keys_kind), tolerance)  # (21), (26)-(27)
    add_flows(m)
    add_verified_le_allocated(m, templates)  # (12)
    add_sales_balance(m, templates)  # (10)
    add_keys_sum(m, templates)  # (14)
    if producer_sales == "pro_rata":
        add_pro_rata_sales(m, templates)
    add_deviation(m, templates)  # (24)-(25), (28)
    add_bill(m)  # (7)
    add_deviation_cost(m, deviation_price)  # (23)
    add_objective(m)  # (23)
    return m


def build(instance: xr.Dataset, *, variant: str, producer_sales: str = "free", min_ssr=0.0,
          initial_keys_kind="uniform", tolerance: float = 0.0, deviation_price: float = 0.001,
          formulation: str = "projected", templates: bool = True) -> pyo.ConcreteModel:
    """LP1, LP2 or LP3 by name (:func:`build_lp1`, :func:`build_lp2`, :func:`build_lp3`)."""
    if variant == "LP1":
        return build_lp1(instance, producer_sales=producer_sales, formulation=formulation,
                         templates=templates)
    if variant == "LP2":
        return build_lp2(instance, min_ssr=min_ssr, producer_sales=producer_sales,
                         formulation=formulation, templates=templates)
    if variant == "LP3":
        return build_lp3(instance, initial_keys_kind=initial_keys_kind, tolerance=tolerance,
                         deviation_price=deviation_price, producer_sales=producer_sales,
                         templates=templates)
    raise ModelError(f"unknown repartition LP {variant!r} (LP1, LP2 or LP3)")


# --------------------------------------------------------------------------------------
# extraction and derived quantities
# --------------------------------------------------------------------------------------
def lp1_step_lp(instance: xr.Dataset, *, producer_sales: str = "free",
                formulation: str = "projected", **_options) -> StepLP | None:
    """LP1 (projected formulation, free sales) as one step's LP and every step's numbers.

    Per step (de Villena (8)-(16), keys projected out as in :func:`build_lp1`): the
    columns are ``v_i`` (``community_intake``, bounds (13) ``0 <= v_i <= C+_i``) then
    ``y_i`` (``local_sales``, bounds (11) ``0 <= y_i <= P-_i``), ``i`` over the ``U``
    members; the one row is (10) ``sum_i v_i - sum_i y_i = 0``; the cost is (7)'s,
    ``w (c_buy - b)`` on ``v`` and ``w (s - c_sell)`` on ``y`` (EUR/kWh, ``w`` the
    scenario's probability), plus the constant ``sum w (b C+ - s P-)``. The builder's
    exact reductions hold here by the bounds (no ``v`` where ``C+ = 0``, no ``y``
    where ``P- = 0``: bounds ``[0, 0]``) and by (10) in an inactive step (``G = 0``
    forces every ``v`` to 0, no net consumption every ``y``). ``None`` for the options the Pyomo
    model alone covers (``formulation="paper"``, ``producer_sales="pro_rata"``).
    """
    if formulation != "projected" or producer_sales != "free":
        return None
    d = RepartitionData.of(instance)
    cp, pm = d.net_consumption, d.net_production
    U = cp.shape[2]
    b = d.prices["price_grid_buy"]
    sp = d.prices["price_grid_sell"]
    cb = d.prices["price_community_buy"]
    cs = d.prices["price_community_sell"]
    w = d.probability[:, None, None]
    start, index, value = one_row_matrix(np.r_[np.ones(U), -np.ones(U)])
    zeros = np.zeros(cp.shape[:2] + (1,))
    return StepLP(
        a_start=start, a_index=index, a_value=value,
        cost=np.concatenate((w * (cb - b), w * (sp - cs)), axis=2),
        col_lower=np.zeros(cp.shape[:2] + (2 * U,)),
        col_upper=np.concatenate((cp, pm), axis=2),
        row_lower=zeros, row_upper=zeros,
        offset=float((w * (b * cp - sp * pm)).sum()),
        columns={"community_intake": slice(0, U), "local_sales": slice(U, 2 * U)},
    )


#: LP3's dense step LP (keys and rows (12), (24), (25) for every member): HiGHS's
#: simplex time grows faster than the block (2880 x 100, one process, loaded machine:
#: 2.1-2.8 s in blocks of 5-10 steps, 3.5-3.8 s of 25-50, 7.5 s of 100).
LP3_STEPS_PER_BLOCK = 10


def lp3_step_lp(instance: xr.Dataset, *, initial_keys, tolerance: float = 0.0,
                deviation_price: float = 0.001, producer_sales: str = "free",
                **_options) -> StepLP | None:
    """LP3 (de Villena (21)-(28), free sales) as one step's LP and every step's numbers.

    Per step the columns are ``v_i`` (bounds (13)), ``y_i`` (bounds (11)), ``k_i``
    (bounds (15) with (26)-(27): ``max(0, K_i (1 - X)) <= k_i <= min(1, K_i (1 + X))``),
    ``a+`` and ``a-`` ((28), >= 0); the rows are (12) ``v_i - G k_i <= 0`` (U rows),
    (10) ``sum v - sum y = 0``, (14) ``sum k <= 1``, (24) ``G k_i - a+ <= G K_i`` and
    (25) ``-G k_i - a- <= -G K_i`` (U rows each): the ``G k`` terms make the matrix
    values per step. The cost is (23): (7)'s on ``v``, ``y`` and ``w xi_d`` on ``a+``,
    ``a-``. ``initial_keys`` are the prepared keys (``_prepare_lp3``); in an inactive
    step the keys go back to them (as :func:`extract` does). ``None`` for
    ``producer_sales="pro_rata"``.
    """
    if producer_sales != "free":
        return None
    if tolerance < 0:
        raise ModelError("tolerance must be >= 0 (a fraction of the initial key)")
    K = np.asarray(initial_keys, dtype=float)
    d = RepartitionData.of(instance)
    cp, pm, G = d.net_consumption, d.net_production, d.G
    S, T, U = cp.shape
    b = d.prices["price_grid_buy"]
    sp = d.prices["price_grid_sell"]
    cb = d.prices["price_community_buy"]
    cs = d.prices["price_community_sell"]
    w = d.probability[:, None, None]
    # rows: 0..U-1 (12), U (10), U+1 (14), U+2.. (24), 2U+2.. (25)
    r12, r10, r14, r24, r25 = 0, U, U + 1, U + 2, 2 * U + 2
    cols = ([[(r12 + i, 1.0), (r10, 1.0)] for i in range(U)]
            + [[(r10, -1.0)] for _ in range(U)]
            + [[(r12 + i, -1.0), (r14, 1.0), (r24 + i, 1.0), (r25 + i, -1.0)]
               for i in range(U)]
            + [[(r24 + i, -1.0) for i in range(U)], [(r25 + i, -1.0) for i in range(U)]])
    start, index, unit = csc(cols)
    # the G k entries (value -1 in (12), +1 in (24), -1 in (25) of the k columns) scale
    # with G; every other entry is a constant
    k_entry = np.zeros(len(unit), dtype=bool)
    k_entry[start[2 * U]:start[3 * U]] = True
    k_entry &= index != r14
    value = np.broadcast_to(unit, (S, T, len(unit))).copy()
    value[..., k_entry] *= G[:, :, None]
    klo = np.maximum(0.0, K * (1 - tolerance))
    kup = np.minimum(1.0, K * (1 + tolerance))
    n_col, n_row = 3 * U + 2, 3 * U + 2
    zeros_u = np.zeros((S, T, U))
    dev = np.broadcast_to(w[:, :, 0:1] * deviation_price, (S, T, 1))
    cost = np.concatenate((w * (cb - b), w * (sp - cs), zeros_u, dev, dev), axis=2)
    col_upper = np.concatenate((cp, pm, np.broadcast_to(kup, (S, T, U)),
                                np.full((S, T, 2), np.inf)), axis=2)
    col_lower = np.concatenate((zeros_u, zeros_u, np.broadcast_to(klo, (S, T, U)),
                                np.zeros((S, T, 2))), axis=2)
    GK = G[:, :, None] * K
    row_lower = np.concatenate((np.full((S, T, U), -np.inf), np.zeros((S, T, 1)),
                                np.full((S, T, 1 + 2 * U), -np.inf)), axis=2)
    row_upper = np.concatenate((np.zeros((S, T, U)), np.zeros((S, T, 1)), np.ones((S, T, 1)),
                                GK, -GK), axis=2)
    assert cost.shape[-1] == n_col and row_upper.shape[-1] == n_row
    return StepLP(
        a_start=start, a_index=index, a_value=value, cost=cost,
        col_lower=col_lower, col_upper=col_upper, row_lower=row_lower, row_upper=row_upper,
        offset=float((w * (b * cp - sp * pm)).sum()),
        columns={"community_intake": slice(0, U), "local_sales": slice(U, 2 * U),
                 "key": slice(2 * U, 3 * U)},
        steps_per_block=LP3_STEPS_PER_BLOCK,
    )


def lp3_from_steps(instance: xr.Dataset, arrays: dict, *, initial_keys, **_options
                   ) -> xr.Dataset:
    """:func:`extract`'s LP3 Dataset from :func:`lp3_step_lp`'s solution arrays."""
    d = RepartitionData.of(instance)
    k = np.clip(arrays["key"], 0.0, 1.0)
    k = np.where(d.active[:, :, None], k, np.asarray(initial_keys, dtype=float)[None, None, :])
    return flows_solution(instance, d, arrays["community_intake"], arrays["local_sales"], k)


def lp1_from_steps(instance: xr.Dataset, arrays: dict, **_options) -> xr.Dataset:
    """:func:`extract`'s Dataset from :func:`lp1_step_lp`'s solution arrays (S, T, U)."""
    d = RepartitionData.of(instance)
    return flows_solution(instance, d, arrays["community_intake"], arrays["local_sales"])


def flows_solution(instance: xr.Dataset, d: RepartitionData, v: np.ndarray, y: np.ndarray,
                   k: np.ndarray | None = None) -> xr.Dataset:
    """LP1-LP3's solution Dataset from ``v``, ``y`` (kWh, (S, T, U)) and the keys ``k``
    (``None``: the projected formulation's ``k = v / G``)."""
    v = np.clip(v, 0.0, d.net_consumption)
    y = np.clip(y, 0.0, d.net_production)
    if k is None:
        with np.errstate(invalid="ignore", divide="ignore"):
            k = np.where(d.G[:, :, None] > 0, v / np.where(d.G > 0, d.G, 1)[:, :, None], 0.0)
    stm_dims = DIMS
    coords = coords_of(instance)
    kwh = {"units": "kWh"}
    return xr.Dataset(
        {
            "key": (stm_dims, k, {"units": "1", "long_name": "repartition key k (de Villena (9))"}),
            "allocation": (
                stm_dims,
                k * d.G[:, :, None],
                {**kwh, "long_name": "allocated production a = k G (9)"},
            ),
            "community_intake": (stm_dims, v,
                                 {**kwh, "long_name": "verified allocation v (12)-(13)"}),
            "local_sales": (stm_dims, y, {**kwh, "long_name": "production sold locally y (11)"}),
        },
        coords=coords,
    )


def extract(model: pyo.ConcreteModel, instance: xr.Dataset, **options) -> xr.Dataset:
    d: RepartitionData = model.recopt_data
    idx = model.recopt_index
    shape = d.net_consumption.shape
    v = np.clip(scatter(idx["cons"], var_values(model.verified), shape), 0.0, d.net_consumption)
    y = np.clip(scatter(idx["prod"], var_values(model.local_sales), shape), 0.0, d.net_production)
    with np.errstate(invalid="ignore", divide="ignore"):
        canon = np.where(d.G[:, :, None] > 0, v / np.where(d.G > 0, d.G, 1)[:, :, None], 0.0)
    if not hasattr(model, "key"):  # projected formulation: the keys are v / G
        k = canon
    else:
        k = np.clip(scatter(idx["keyed"], var_values(model.key), shape), 0.0, 1.0)
        if model.name == "LP3":
            # outside active steps the keys stay at the initial keys (any value in the
            # tolerance band is optimal there; the initial key has zero deviation cost)
            k = np.where(d.active[:, :, None], k, model.recopt_initial_keys[None, None, :])
        else:
            # Canonical keys: where the LP allocated more than it verified although the
            # member still had need (v < min(kG, C+): a degenerate optimum), use v / G,
            # so that settling the keys with the DSO's rule gives back exactly v.
            slack = v < np.minimum(k * d.G[:, :, None], d.net_consumption) - 1e-9
            k = np.where(slack, canon, k)
    return flows_solution(instance, d, v, y, k)


def derive(instance: xr.Dataset, solution: xr.Dataset, **options) -> xr.Dataset:
    """Bills through the one settlement rule, SSR (17), community production."""
    billing = bills(instance, solution["community_intake"], solution["local_sales"])
    out = xr.merge([solution, billing], compat="override", join="exact")
    out["self_sufficiency"] = self_sufficiency(instance, solution["community_intake"].values)
    out["community_production"] = (
        ("scenario", "time"),
        meter_flows(stm(instance, "consumption"), stm(instance, "production"))[1].sum(axis=-1),
        {"units": "kWh", "long_name": "community production G"},
    )
    return out


# --------------------------------------------------------------------------------------
# LP2's infeasibility explanation: the highest attainable uniform minimum SSR
# --------------------------------------------------------------------------------------
def build_max_uniform_ssr(instance: xr.Dataset) -> pyo.ConcreteModel:
    """The LP of the highest uniform minimum SSR every member can reach (LP1's feasible set).

    ``max z  s.t. (9)-(16),  sum_t (min(P,C) + v) >= z sum_t C  for all i``
    (members with positive consumption; the worst scenario counts). Solved by
    :func:`recopt.decomp.lp2_diagnosis.max_uniform_min_ssr` to explain an
    infeasible LP2 (eq. (20)).
    """
    m = build_lp1(instance)
    m.objective.deactivate()
    d: RepartitionData = m.recopt_data
    cons = m.recopt_index["cons"]
    covered_own = d.own_coverage
    total_c = d.total_consumption
    S, _, U = d.consumption.shape
    by_member: dict[tuple[int, int], list] = {}
    for (s, _t, i), var in zip(cons, m.verified.values(), strict=True):
        by_member.setdefault((s, i), []).append(var)
    m.z = pyo.Var(bounds=(0.0, 1.0), doc="uniform minimum SSR, 1")
    rows = [(s, i) for s in range(S) for i in range(U) if total_c[s, i] > 0]
    m.uniform_ssr = pyo.Constraint(
        rows,
        rule=lambda m, s, i: (
            float(covered_own[s, i]) + sum(by_member.get((s, i), ())) >= m.z * float(total_c[s, i])
        ),
        doc="(20) with one z: every member's SSR at least z",
    )
    m.max_z = pyo.Objective(expr=m.z, sense=pyo.maximize, doc="max uniform minimum SSR")
    return m


#: HiGHS's presolve costs more than it saves on these per-step LPs: at 2880 x 100
#: with ~200-step blocks, HiGHS time x0.21 (LP1) and x0.71 (LP3), end to end x0.84
#: and x0.83 without it (benchmarks/bench_lp.py --presolve-study, medians of 3).
PER_STEP_TUNING = Tuning(presolve=False)


def _prepare_lp3(instance: xr.Dataset, **options) -> dict:
    """Fix the initial keys on the whole instance (blocks of steps must share them)."""
    return {**options, "initial_keys": initial_keys(instance, options["initial_keys"])}


# --------------------------------------------------------------------------------------
# registration
# --------------------------------------------------------------------------------------
_SALES = Option(
    "producer_sales",
    str,
    "free",
    "'free': producers choose local sales y (de Villena (10)); 'pro_rata': "
    "y_j = P-_j/G * sum v, the DSO's surplus rule (Mustika (11)-(12))",
    choices=("free", "pro_rata"),
)


_FORMULATION = Option(
    "formulation",
    str,
    "projected",
    "'projected': keys projected out, k = v/G (exact, faster); 'paper': k, (12), (14) "
    "kept as in de Villena",
    choices=("projected", "paper"),
)


def _float_or_members(text):
    """``0.42`` or ``User1:0.5,User2:0.3`` (per member)."""
    if isinstance(text, str) and ":" in text:
        return {k.strip(): float(v) for k, v in (p.split(":") for p in text.split(","))}
    return float(text)


def _keys_option(text):
    if isinstance(text, str) and text not in ("uniform", "proportional"):
        return _float_or_members(text) if ":" in text else text
    return text


register(
    ModelSpec(
        name="LP1", game="community",
        description="de Villena LP1: repartition keys minimising the collective bill (eqs 8-16)",
        family="keys",
        build=without_tie_break(build_lp1),
        extract=extract,
        derive=derive,
        separable="time",
        step_lp=lp1_step_lp,
        from_steps=lp1_from_steps,
        tuning=PER_STEP_TUNING,
        options=(_SALES, _FORMULATION, *TIE_BREAK_OPTIONS),
        algorithm="lexicographic_tie_break",
        algorithm_if=(("tie_break", "proportional"),),
        objective="expected collective bill, EUR (de Villena (8))",
        card=CARD,
    )
)

register(
    ModelSpec(
        name="LP2",
        description="de Villena LP2: LP1 with a minimum self-sufficiency rate per member (eq 20)",
        family="keys",
        build=without_tie_break(build_lp2),
        extract=extract,
        derive=derive,
        algorithm="lexicographic_tie_break",
        algorithm_if=(("tie_break", "proportional"),),
        diagnosis="lp2_max_uniform_ssr",
        separable="scenario",
        options=(
            Option(
                "min_ssr",
                _float_or_members,
                0.0,
                "minimum SSR, a fraction: 0.42, or per member 'User1:0.5,User2:0.3'",
            ),
            _SALES,
            _FORMULATION,
            *TIE_BREAK_OPTIONS,
        ),
        objective="expected collective bill, EUR (de Villena (19))",
        card=CARD,
    )
)

register(
    ModelSpec(
        name="LP3",
        description="de Villena LP3: keys within a tolerance of initial keys, with a "
        "deviation price (eqs 21-28)",
        family="keys",
        build=without_tie_break(
            lambda inst, **o: build_lp3(inst, initial_keys_kind=o.pop("initial_keys"), **o)),
        algorithm="lexicographic_tie_break",
        algorithm_if=(("tie_break", "proportional"),),
        prepare=_prepare_lp3,
        extract=extract,
        derive=derive,
        separable="time",
        step_lp=lp3_step_lp,
        from_steps=lp3_from_steps,
        tuning=PER_STEP_TUNING,
        options=(
            Option(
                "initial_keys",
                _keys_option,
                "uniform",
                "'uniform', 'proportional' (to mean net demand) or 'User1:0.3,User2:0.7'",
            ),
            Option(
                "tolerance",
                float,
                0.0,
                "X: allowed deviation of k from K, as a fraction of K (0.05 = 5 %)",
            ),
            Option(
                "deviation_price",
                float,
                0.001,
                "xi_d: price of the per-step deviation a+_t + a-_t, EUR/kWh (Table 2: 1 EUR/MWh)",
            ),
            _SALES,
            *TIE_BREAK_OPTIONS,
        ),
        objective="expected collective bill plus deviation cost, EUR (de Villena (23))",
        card=CARD,
    )
)
