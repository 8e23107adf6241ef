"""Mustika et al.'s optimised keys of repartition KoR8, KoR9, KoR10.

Source: A. D. Mustika et al., "A two-stage management strategy for the optimal operation
and billing in an energy community with collective self-consumption", Applied Energy
310 (2022), DOI 10.1016/j.apenergy.2021.118484, §2.2-2.3 (settlement and bills, eqs
(4)-(16)) and §3.2.8-3.2.10 (KoR8 eq. (45), KoR9 eq. (46), KoR10 eq. (47)). Model
card: ``models/KoR8-KoR10.md``; the Pyomo component names below are the card's
equation names.

Units: energies in kWh per time step, prices in EUR/kWh, subscription fees in EUR
per billing period, bills in EUR, saving ratios dimensionless.

The decision is the community intake ``c[i,t] = Pcomm+`` of each member with
``0 <= c <= C+`` and ``sum_i c <= G`` (the exact reformulation of
``docs/reconstruction/allocation-keys.md``): the keys are recovered as ``lambda = c / G``
and settle back to exactly ``c`` with the DSO's rule (:mod:`recopt.settle`), so the
``min`` of Mustika (7) needs no binary variable. With ``X[t] = sum_i c[i,t]`` (the
collective self-consumption, (9)), the sales to the community are
``Pcomm-[j,t] = P-[j,t] / G[t] * X[t]`` ((10)-(12)) and every bill is linear:

``B[i,k] = B0[i,k] + sum_{t in k} ((cb - b)[i,t] c[i,t] + (s - cs)[i,t] P-[i,t]/G[t] X[t])``

where ``B0`` is the baseline bill (fee included, no community) of
:func:`recopt.settle.bills` for billing period ``k``.

* KoR8 minimises the collective bill (45); it separates by time step, so the runner
  solves it in blocks of steps (``separable="time"``).
* KoR9 (equal saving ratios, (46)) and KoR10 (max-min saving ratio, (47)) couple the
  steps of a billing period; billing periods (and scenarios) are independent
  problems, so they are solved one (scenario, period) at a time by an algorithm that
  stitches them into one Result (exact; :mod:`recopt.decomp.kor_periods`). KoR10's
  lexicographic second stage runs inside each period.

The models are composed from named pieces (:func:`add_intake` (7)-(10),
:func:`add_energy_bill` / :func:`add_period_bills` (13)-(16),
:func:`add_equal_saving_ratio` (46), :func:`add_min_saving_ratio` (47)):
:func:`build_kor8`, :func:`build_kor9`, :func:`build_kor10`.

Members whose baseline bill of a period is <= 0 (net earners): the saving ratio is
taken on ``|B0|`` (``nonpositive_baseline="abs"``, default), so ``B0 - B >= z |B0|``
still means "at least the same relative gain" and a member with ``B0 = 0`` is only
guaranteed not to lose; ``"exclude"`` leaves them out of (46)/(47) with only
``B <= B0``; ``"refuse"`` raises a ModelError naming them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from recopt.data.instance import billing_period_index
from recopt.data.roles import aggregate_mask, member_mask, plant_mask
from recopt.data.schema import DIMS
from recopt.data.view import coords_of, stm
from recopt.errors import ModelError
from recopt.lazy import pyomo_module
from recopt.metrics.community import gini, saving_ratio
from recopt.models.community import CommunityArrays
from recopt.models.construction import nonzero_index, scatter, templated_constraints, var_values
from recopt.models.options import Option, Tuning
from recopt.models.registry import ModelSpec, register
from recopt.models.step_lp import StepLP, one_row_matrix
from recopt.models.tie_break import TIE_BREAK_OPTIONS, without_tie_break
from recopt.settle import bills, meter_flows
from recopt.settle.kernels import sales_ratio

if TYPE_CHECKING:
    import pyomo.environ as pyo
else:
    pyo = pyomo_module("pyomo.environ")

CARD = "models/KoR8-KoR10.md"
#: Default tolerance of the lexicographic second stage: the first stage's optimum may
#: be lost by this much (saving-ratio units for KoR10's z; relative for the bill).
LEX_TOLERANCE = 1e-9
ORDERS = ("fairness", "fairness_then_bill", "bill_then_fairness")
BASELINE_RULES = ("abs", "exclude", "refuse")


# --------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------
@dataclass
class KorData(CommunityArrays):
    """The arrays KoR8-KoR10 read: :class:`~recopt.models.community.CommunityArrays`
    and the bill coefficients, billing periods and baseline bills."""

    # always filled by :meth:`of`; the empty defaults only satisfy the dataclass order
    intake_cost: np.ndarray = field(default_factory=lambda: np.zeros(0))
    # (S, T, U) cb - b: EUR per kWh taken from the community
    sales_cost: np.ndarray = field(default_factory=lambda: np.zeros(0))
    # (S, T, U) (s - cs) P-/G: EUR per kWh of X (collective)
    period: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    # (T,) billing period position of each step
    baseline: np.ndarray | None = None  # (S, K, U) B0 per billing period, fee included, EUR
    energy_baseline: float = 0.0  # expected sum_t (b C+ - s P-): B0 without the fees, EUR

    @classmethod
    def of(cls, instance: xr.Dataset, with_baseline: bool = True, **extra: Any) -> KorData:
        a = CommunityArrays.of(instance)
        cp, pm, G, pr = a.net_consumption, a.net_production, a.G, a.prices
        share = np.zeros_like(pm)
        np.divide(pm, G[:, :, None], out=share, where=G[:, :, None] > 0)
        base = None
        if with_baseline:
            zeros = np.zeros_like(cp)
            b0 = bills(instance, zeros, zeros)
            # a plant's row is its own money flow (minus its revenue), so that the
            # collective bill (16) is the community's: members minus the account
            base = (b0["baseline_bill_by_period"]
                    - b0["baseline_plant_revenue_by_period"]).values
        energy0 = (pr["price_grid_buy"] * cp - pr["price_grid_sell"] * pm).sum(axis=(1, 2))
        return cls(
            **a.base_fields(),
            intake_cost=pr["price_community_buy"] - pr["price_grid_buy"],
            sales_cost=(pr["price_grid_sell"] - pr["price_community_sell"]) * share,
            period=np.asarray(billing_period_index(instance)).astype(int),
            baseline=base,
            energy_baseline=float((a.probability * energy0).sum()),
            **extra,
        )


def check_baseline(instance: xr.Dataset, baseline: np.ndarray, rule: str) -> None:
    """Apply the rule for members whose baseline bill of a period is <= 0.

    ``rule="abs"`` accepts them (ratios on ``|B0|``); ``"exclude"`` leaves them out of
    the fairness constraints (they only keep ``B <= B0``); ``"refuse"`` raises a
    :class:`~recopt.errors.ModelError` naming every such member and period.
    """
    if rule not in BASELINE_RULES:
        raise ModelError(f"nonpositive_baseline must be one of {', '.join(BASELINE_RULES)}; "
                         f"got {rule!r}")
    if rule != "refuse":
        return
    bad = baseline <= 0
    if not bad.any():
        return
    members = np.asarray(instance["member"].values)
    names = sorted({str(members[i]) for i in np.nonzero(bad)[2]})
    s, k, i = (int(a) for a in np.argwhere(bad)[0])
    raise ModelError(
        f"the saving ratio (B0 - B) / B0 of Mustika (46)-(47) is ill-defined for members "
        f"whose baseline bill is <= 0: {', '.join(names)} (e.g. member {members[i]}: "
        f"B0 = {baseline[s, k, i]:.6g} EUR in billing period {k} of scenario {s}); use "
        f"nonpositive_baseline='abs' (ratio on |B0|) or 'exclude' (no fairness constraint, "
        f"no loss) or leave them out of the instance"
    )


# --------------------------------------------------------------------------------------
# the pieces: one function per equation group of the card
# --------------------------------------------------------------------------------------
def new_model(instance: xr.Dataset, name: str, *, with_baseline: bool,
              nonpositive_baseline: str = "abs") -> pyo.ConcreteModel:
    """The model's data and its index sets (active steps, consumers), no variable.

    ``with_baseline``: compute the baseline bills per billing period (KoR9/KoR10),
    after which ``nonpositive_baseline`` is applied (:func:`check_baseline`).
    """
    d = KorData.of(instance, with_baseline=with_baseline)
    if with_baseline:
        assert d.baseline is not None  # built with_baseline
        check_baseline(instance, d.baseline, nonpositive_baseline)
    cp, pm = d.net_consumption, d.net_production
    act = d.active[:, :, None]
    members = member_mask(instance)[None, None, :]  # a plant takes no intake
    cons = nonzero_index(act & (cp > 0) & members)
    prod = nonzero_index(act & (pm > 0))
    steps = nonzero_index(d.active)
    m = pyo.ConcreteModel(name=name)
    m.recopt_data = d
    m.recopt_index = {"cons": cons, "prod": prod, "steps": steps}
    m.recopt_plant = plant_mask(instance)  # community-owned plants: no fairness row
    at: dict[tuple[int, int], list[int]] = {st: [] for st in steps}
    for s, t, i in cons:
        at[(s, t)].append(i)
    m.MEMBERS = pyo.Set(initialize=range(cp.shape[2]), ordered=True, doc="member positions")
    m.STEPS = pyo.Set(initialize=steps, dimen=2, ordered=True,
                      doc="active (scenario, step): G > 0 and some net consumption")
    m.CONSUMERS = pyo.Set(initialize=cons, dimen=3, ordered=True,
                          doc="(scenario, step, member) with C+ > 0 in an active step")
    m.CONSUMERS_AT = pyo.Set(m.STEPS, initialize=at, ordered=True,
                             doc="consumers of an active step")
    return m


def add_intake(m: pyo.ConcreteModel, templates: bool = True) -> None:
    """``c = Pcomm+`` with (7)-(8) as bounds, ``X`` with (6)/(10) as bounds, and (9)."""
    d: KorData = m.recopt_data
    cons, steps = m.recopt_index["cons"], m.recopt_index["steps"]
    cp = d.net_consumption
    m.community_intake = pyo.Var(
        m.CONSUMERS, bounds=(0.0, None),
        doc="c = Pcomm+: energy taken from the community, kWh (7); c <= C+ (7)-(8)")
    for (s, t, i), var in zip(cons, m.community_intake.values(), strict=True):
        var.setub(cp[s, t, i])
    m.self_consumption = pyo.Var(
        m.STEPS, bounds=(0.0, None),
        doc="X = Pselfcons_coll: collective self-consumption, kWh (9); X <= G is (6)/(10)")
    for (s, t), var in zip(steps, m.self_consumption.values(), strict=True):
        var.setub(d.G[s, t])
    with templated_constraints(templates and bool(steps)):
        m.collective_self_consumption = pyo.Constraint(
            m.STEPS,
            rule=lambda m, s, t: (
                m.self_consumption[s, t]
                - sum(m.community_intake[s, t, i] for i in m.CONSUMERS_AT[s, t])
                == 0
            ),
            doc="(9) X = sum_i Pcomm+",
        )


def _coefficients(m: pyo.ConcreteModel):
    d: KorData = m.recopt_data
    cons, steps = m.recopt_index["cons"], m.recopt_index["steps"]
    cons_arr = np.array(cons, dtype=int).reshape(-1, 3)
    steps_arr = np.array(steps, dtype=int).reshape(-1, 2)
    coef_c = d.intake_cost[tuple(cons_arr.T)] if cons else np.zeros(0)
    return cons_arr, steps_arr, coef_c


def add_energy_bill(m: pyo.ConcreteModel) -> None:
    """KoR8's (16) without the fees: ``collective_bill`` as a linear expression of c and X."""
    d: KorData = m.recopt_data
    cons, steps = m.recopt_index["cons"], m.recopt_index["steps"]
    cons_arr, steps_arr, coef_c = _coefficients(m)
    w = d.probability
    coef_x = d.sales_cost.sum(axis=-1)[tuple(steps_arr.T)] if steps else np.zeros(0)
    wc = w[cons_arr[:, 0]] * coef_c if cons else coef_c
    wx = w[steps_arr[:, 0]] * coef_x if steps else coef_x
    terms = [a * v for a, v in zip(wc.tolist(), m.community_intake.values(), strict=True)]
    terms += [a * x for a, x in zip(wx.tolist(), m.self_consumption.values(), strict=True)]
    m.collective_bill = pyo.Expression(
        expr=d.energy_baseline + pyo.quicksum(terms),
        doc="(16) expected collective bill without the subscription fees, EUR")


def add_period_bills(m: pyo.ConcreteModel, nonpositive_baseline: str = "abs") -> None:
    """(13)-(16) per (scenario, billing period, member): ``bill``, its definition, the
    collective bill, and the members of the fairness constraints (``FAIR``; with
    ``"exclude"``, the others keep only ``no_loss``: ``B <= B0``)."""
    d: KorData = m.recopt_data
    cons, steps = m.recopt_index["cons"], m.recopt_index["steps"]
    _, _, coef_c = _coefficients(m)
    S, _, U = d.net_consumption.shape
    assert d.baseline is not None  # KoR9/KoR10 are built with_baseline
    K = d.baseline.shape[1]
    w = d.probability
    periods = [(s, k) for s in range(S) for k in range(K)]
    rows = [(s, k, i) for s, k in periods for i in range(U)]
    m.PERIODS = pyo.Set(initialize=periods, dimen=2, ordered=True,
                        doc="(scenario, billing period)")
    m.BILLS = pyo.Set(initialize=rows, dimen=3, ordered=True,
                      doc="(scenario, billing period, member)")
    m.baseline_bill = pyo.Param(
        m.BILLS, initialize={r: float(d.baseline[r]) for r in rows},
        doc="B0: bill without community, fee included, EUR (Mustika §3.2.9)")
    m.bill = pyo.Var(m.BILLS, doc="B: bill per member and billing period, EUR (15)")
    terms: dict[tuple[int, int, int], list] = {r: [] for r in rows}
    per = d.period
    for (s, t, i), a, var in zip(cons, coef_c.tolist(), m.community_intake.values(),
                                 strict=True):
        if a != 0.0:
            terms[(s, per[t], i)].append((a, var))
    sc = d.sales_cost
    for (s, t), var in zip(steps, m.self_consumption.values(), strict=True):
        k = per[t]
        for j in np.nonzero(sc[s, t])[0].tolist():
            terms[(s, k, j)].append((float(sc[s, t, j]), var))

    def bill_rule(m, s, k, i):
        expr = pyo.quicksum(a * v for a, v in terms[(s, k, i)])
        return m.bill[s, k, i] - expr == m.baseline_bill[s, k, i]

    m.bill_definition = pyo.Constraint(
        m.BILLS, rule=bill_rule,
        doc="(13)-(15) B = B0 + sum_t ((cb - b) Pcomm+ + (s - cs) P-/G X)")
    m.collective_bill = pyo.Expression(
        expr=pyo.quicksum(w[s] * m.bill[s, k, i] for s, k, i in rows),
        doc="(16) expected collective bill over the horizon, fees included, EUR")
    m.recopt_abs_baseline = {r: abs(float(d.baseline[r])) for r in rows}
    fair = [r for r in rows if d.baseline[r] > 0] if nonpositive_baseline == "exclude" else rows
    plant = m.recopt_plant
    if plant.any():  # a plant is not a member: no fairness row
        fair = [r for r in fair if not plant[r[2]]]
    excluded = sorted(set(rows) - set(fair))
    m.FAIR = pyo.Set(initialize=fair, dimen=3, ordered=True,
                     doc="(scenario, period, member) in the fairness constraints (46)/(47)")
    m.EXCLUDED = pyo.Set(initialize=excluded, dimen=3, ordered=True,
                         doc="members with B0 <= 0 left out of (46)/(47) ('exclude' rule)")
    m.no_loss = pyo.Constraint(
        m.EXCLUDED, rule=lambda m, s, k, i: m.bill[s, k, i] <= m.baseline_bill[s, k, i],
        doc="B <= B0 for the members left out of the fairness constraints")


def add_equal_saving_ratio(m: pyo.ConcreteModel) -> None:
    """KoR9's (46): one saving ratio ``r`` per period, ``B0 - B = r |B0|`` for everyone."""
    absb = m.recopt_abs_baseline
    m.saving_ratio = pyo.Var(m.PERIODS, doc="r: the common bill-saving ratio (46)")
    m.equal_saving_ratio = pyo.Constraint(
        m.FAIR,
        rule=lambda m, s, k, i: (
            m.baseline_bill[s, k, i] - m.bill[s, k, i] - absb[(s, k, i)] * m.saving_ratio[s, k]
            == 0),
        doc="(46) (B0 - B) = r |B0| for every member: equal saving ratios")


def add_min_saving_ratio(m: pyo.ConcreteModel) -> None:
    """KoR10's (47): ``z |B0| <= B0 - B`` for everyone, and ``fairness`` = expected sum
    over periods of ``z`` (each ``z`` lives in one period, so maximising the sum
    maximises each)."""
    absb = m.recopt_abs_baseline
    w = m.recopt_data.probability
    m.min_saving_ratio = pyo.Var(m.PERIODS, doc="z: minimum bill-saving ratio (47)")
    m.min_saving = pyo.Constraint(
        m.FAIR,
        rule=lambda m, s, k, i: (
            absb[(s, k, i)] * m.min_saving_ratio[s, k] - m.baseline_bill[s, k, i]
            + m.bill[s, k, i] <= 0),
        doc="(47) z |B0| <= B0 - B for every member")
    fair = list(m.FAIR)
    for (s, k), var in m.min_saving_ratio.items():
        if not any(absb[r] > 0 for r in fair if r[:2] == (s, k)):
            var.fix(0.0)  # no member has a bill: the ratio is 0 by convention
    m.fairness = pyo.Expression(
        expr=pyo.quicksum(w[s] * m.min_saving_ratio[s, k] for s, k in m.PERIODS),
        doc="expected sum over billing periods of z")


# --------------------------------------------------------------------------------------
# the models, composed from the pieces
# --------------------------------------------------------------------------------------
def build_kor8(instance: xr.Dataset, *, templates: bool = True, **_ignored) -> pyo.ConcreteModel:
    """KoR8 (Mustika (45)): keys minimising the expected collective bill."""
    m = new_model(instance, "KoR8", with_baseline=False)
    add_intake(m, templates)  # (7)-(10)
    add_energy_bill(m)  # (13)-(16)
    m.objective = pyo.Objective(expr=m.collective_bill, sense=pyo.minimize,
                                doc="(45) min collective bill")
    return m


def build_kor9(instance: xr.Dataset, *, nonpositive_baseline: str = "abs",
               templates: bool = True, **_ignored) -> pyo.ConcreteModel:
    """KoR9 (Mustika (45) with (46)): min collective bill at equal saving ratios."""
    m = new_model(instance, "KoR9", with_baseline=True,
                  nonpositive_baseline=nonpositive_baseline)
    add_intake(m, templates)  # (7)-(10)
    add_period_bills(m, nonpositive_baseline)  # (13)-(16)
    add_equal_saving_ratio(m)  # (46)
    m.objective = pyo.Objective(expr=m.collective_bill, sense=pyo.minimize,
                                doc="(45) with (46): min collective bill")
    return m


def build_kor10(instance: xr.Dataset, *, nonpositive_baseline: str = "abs",
                templates: bool = True, **_ignored) -> pyo.ConcreteModel:
    """KoR10 (Mustika (47)): max the minimum saving ratio (its lexicographic second
    stage is :func:`add_second_stage`)."""
    m = new_model(instance, "KoR10", with_baseline=True,
                  nonpositive_baseline=nonpositive_baseline)
    add_intake(m, templates)  # (7)-(10)
    add_period_bills(m, nonpositive_baseline)  # (13)-(16)
    add_min_saving_ratio(m)  # (47)
    m.objective = pyo.Objective(expr=m.fairness, sense=pyo.maximize,
                                doc="(47) max min saving ratio")
    return m


BUILDERS = {"KoR8": build_kor8, "KoR9": build_kor9, "KoR10": build_kor10}


def build(instance: xr.Dataset, *, variant: str, nonpositive_baseline: str = "abs",
          templates: bool = True, **_ignored) -> pyo.ConcreteModel:
    """KoR8, KoR9 or KoR10 by name on ``instance`` (all its scenarios and periods).

    Periods and scenarios are independent: KoR9's objective is the expected
    collective bill, KoR10's the expected sum over periods of the minimum saving
    ratio ``z``. ``**_ignored`` takes the registry's other options (``order``,
    ``period_workers``), which belong to the period algorithm.
    """
    if variant not in BUILDERS:
        raise ModelError(f"unknown KoR variant {variant!r}")
    return BUILDERS[variant](instance, nonpositive_baseline=nonpositive_baseline,
                             templates=templates)


def add_second_stage(m: pyo.ConcreteModel, order: str, tolerance: float = LEX_TOLERANCE):
    """Turn a solved first stage into KoR10's lexicographic second stage.

    ``"fairness_then_bill"``: keep ``z >= z* - tolerance`` per period and minimise the
    collective bill; ``"bill_then_fairness"``: the model was solved with the bill
    objective (see :func:`set_bill_objective`); keep ``bill <= B* + tolerance *
    max(1, |B*|)`` and maximise ``z``.
    """
    if order == "fairness_then_bill":
        for var in m.min_saving_ratio.values():
            if not var.fixed:
                var.setlb(float(var.value) - tolerance)
        m.objective.deactivate()
        m.lexicographic_objective = pyo.Objective(
            expr=m.collective_bill, sense=pyo.minimize,
            doc="second stage: min collective bill at the fairness level z*")
    elif order == "bill_then_fairness":
        best = float(pyo.value(m.collective_bill))
        m.bill_objective.deactivate()
        m.keep_bill = pyo.Constraint(
            expr=m.collective_bill <= best + tolerance * max(1.0, abs(best)),
            doc="second stage: collective bill at most B* (KoR8's optimum)")
        m.objective.activate()
    else:
        raise ModelError(f"order must be one of {', '.join(ORDERS)}; got {order!r}")


def set_bill_objective(m: pyo.ConcreteModel) -> None:
    """First stage of ``bill_then_fairness``: minimise the collective bill (45)."""
    m.objective.deactivate()
    m.bill_objective = pyo.Objective(expr=m.collective_bill, sense=pyo.minimize,
                                     doc="first stage: min collective bill (45)")


# --------------------------------------------------------------------------------------
# extraction and derived quantities
# --------------------------------------------------------------------------------------
def extract(model: pyo.ConcreteModel, instance: xr.Dataset, **options) -> xr.Dataset:
    """Keys, intake and sales on the (sub-)instance's dims (and z / r per period)."""
    d: KorData = model.recopt_data
    idx = model.recopt_index
    shape = d.net_consumption.shape
    out = intake_solution(instance, d, scatter(idx["cons"], var_values(model.community_intake),
                                               shape))
    for name, long in (("min_saving_ratio", "z of KoR10 (47)"),
                       ("saving_ratio", "common ratio r of KoR9 (46)")):
        comp = getattr(model, name, None)
        if isinstance(comp, pyo.Var):
            n_periods = 0 if d.baseline is None else d.baseline.shape[1]
            z = np.array([[comp[s, k].value for k in range(n_periods)]
                          for s in range(shape[0])], dtype=float)
            out[f"model_{name}"] = (("scenario", "period"), z, {"units": "1", "long_name": long})
    return out


def intake_solution(instance: xr.Dataset, d: KorData, c: np.ndarray) -> xr.Dataset:
    """Keys, intake and sales (the DSO's rule) from the intake ``c`` (kWh, (S, T, U))."""
    c = np.clip(c, 0.0, d.net_consumption)
    # X from the intake itself (equal to the variable up to the solver's tolerance), so
    # that the sales are exactly what the DSO's rule gives for these keys
    X = c.sum(axis=-1)
    G = d.G
    safe = np.where(G > 0, G, 1.0)
    keys = np.where(G[:, :, None] > 0, c / safe[:, :, None], 0.0)
    sales = d.net_production * sales_ratio(X, G)[:, :, None]  # Mustika (11)-(12)
    coords = coords_of(instance)
    kwh = {"units": "kWh"}
    out = xr.Dataset(
        {
            "key": (DIMS, keys, {"units": "1", "long_name": "key lambda = Pcomm+ / G (5)"}),
            "allocation": (DIMS, c, {**kwh, "long_name": "allocated energy lambda G (5)"}),
            "community_intake": (DIMS, c, {**kwh, "long_name": "Pcomm+ (7)"}),
            "community_sales": (DIMS, sales, {**kwh, "long_name": "Pcomm- (12)"}),
        },
        coords=coords,
    )
    return out


def kor8_step_lp(instance: xr.Dataset, **_options) -> StepLP:
    """KoR8 (Mustika (45)) as one step's LP and every step's numbers.

    Per step the columns are ``c_i = Pcomm+`` (``community_intake``, bounds (7)-(8)
    ``0 <= c_i <= C+_i``) and ``X`` (bounds (6)/(10) ``0 <= X <= G``); the one row is
    (9) ``X - sum_i c_i = 0``; the cost is (16)'s without the fees: ``w (cb - b)`` on
    ``c`` and ``w sum_j (s - cs)_j P-_j / G`` on ``X``, plus the constant
    ``E[sum (b C+ - s P-)]``. The builder's reductions (no ``c`` where ``C+ = 0``, no
    inactive step) hold by the bounds and (9) (``G = 0`` forces ``X`` and every ``c``
    to 0).
    """
    d = KorData.of(instance, with_baseline=False)
    cp, G = d.net_consumption, d.G
    S, T, U = cp.shape
    w = d.probability[:, None, None]
    start, index, value = one_row_matrix(np.r_[-np.ones(U), 1.0])
    zeros = np.zeros((S, T, 1))
    return StepLP(
        a_start=start, a_index=index, a_value=value,
        cost=np.concatenate((w * d.intake_cost, w * d.sales_cost.sum(axis=-1, keepdims=True)),
                            axis=2),
        col_lower=np.zeros((S, T, U + 1)),
        col_upper=np.concatenate((cp, G[:, :, None]), axis=2),
        row_lower=zeros, row_upper=zeros, offset=d.energy_baseline,
        columns={"community_intake": slice(0, U)},
    )


def kor8_from_steps(instance: xr.Dataset, arrays: dict, **_options) -> xr.Dataset:
    """:func:`extract`'s KoR8 Dataset from :func:`kor8_step_lp`'s solution arrays."""
    d = KorData.of(instance, with_baseline=False)
    return intake_solution(instance, d, arrays["community_intake"])


def derive(instance: xr.Dataset, solution: xr.Dataset, **options) -> xr.Dataset:
    """Bills through the one settlement rule, savings, saving ratios."""
    billing = bills(instance, solution["community_intake"], solution["community_sales"])
    out = xr.merge([solution, billing], compat="override", join="outer")
    out = out.assign(saving_metrics(out, aggregate_mask(instance)))
    out["community_production"] = (
        ("scenario", "time"),
        meter_flows(stm(instance, "consumption"), stm(instance, "production"))[1].sum(axis=-1),
        {"units": "kWh", "long_name": "community production G (4)"},
    )
    return out


def saving_metrics(billing: xr.Dataset, members: np.ndarray | None = None
                   ) -> dict[str, xr.DataArray]:
    """Savings, saving ratios and their Gini for a settlement's bills.

    ``saving = B0 - B`` (EUR, :func:`recopt.metrics.community.bill_savings`' definition)
    and ``saving_ratio = (B0 - B) / |B0|`` (:func:`recopt.metrics.community.saving_ratio`,
    NaN where ``B0 = 0``), over the horizon and per billing period; ``gini`` of the
    horizon savings per scenario (:func:`recopt.metrics.community.gini`, Ospina (22)),
    over ``members`` (``(member,)`` bool, default all: pass
    :func:`recopt.data.roles.aggregate_mask` so that plants are left out).
    """
    out = {}
    for suffix in ("", "_by_period"):
        b = billing[f"bill{suffix}"]
        b0 = billing[f"baseline_bill{suffix}"]
        saving = b0 - b
        out[f"saving{suffix}"] = saving.assign_attrs(units="EUR", long_name="B0 - B")
        out[f"saving_ratio{suffix}"] = saving.copy(
            data=saving_ratio(saving.values, b0.values)).assign_attrs(
            units="1", long_name="(B0 - B) / |B0| (Mustika 46)")
    sv = out["saving"].transpose("scenario", "member")
    vals = sv.values if members is None else sv.values[:, np.asarray(members, dtype=bool)]
    out["gini"] = xr.DataArray(gini(vals), dims=("scenario",),
                               coords={"scenario": sv["scenario"].values},
                               attrs={"units": "1", "long_name": "Gini of savings (Ospina 22)"})
    return out


# --------------------------------------------------------------------------------------
# registration
# --------------------------------------------------------------------------------------
PERIOD_WORKERS = Option(
    "period_workers", int, 0, "worker processes for the (scenario, billing period) LPs "
    "(0: one per core, at most one per period)")

BASELINE_OPTION = Option(
    "nonpositive_baseline", str, "abs",
    "members whose baseline bill of a period is <= 0: 'abs' (ratio on |B0|), 'exclude' "
    "(out of the fairness constraints, B <= B0 only) or 'refuse' (error naming them)",
    choices=BASELINE_RULES)

#: HiGHS's presolve costs more than it saves on KoR8's per-step LPs, as on LP1's.
PER_STEP_TUNING = Tuning(presolve=False)
#: KoR9/KoR10's period LPs couple every step through a few dense bill rows: HiGHS's
#: interior point (with crossover, so the solution is a vertex) is ~80x faster than its
#: simplex there (30 members x 2880 steps: 0.9 s against 72 s; benchmarks/bench_kor.py).
PERIOD_TUNING = Tuning(lp_method="ipm")

register(
    ModelSpec(
        name="KoR8", game="community",
        description="Mustika KoR8: keys minimising the collective bill (eq 45), DSO settlement",
        family="keys",
        build=without_tie_break(build_kor8),
        extract=extract,
        derive=derive,
        separable="time",
        step_lp=kor8_step_lp,
        from_steps=kor8_from_steps,
        tuning=PER_STEP_TUNING,
        options=TIE_BREAK_OPTIONS,
        algorithm="lexicographic_tie_break",
        algorithm_if=(("tie_break", "proportional"),),
        objective="expected collective bill, fees included, EUR (Mustika (45))",
        card=CARD,
    )
)

register(
    ModelSpec(
        name="KoR9",
        description="Mustika KoR9: min collective bill with equal bill-saving ratios (eq 46), "
        "per billing period",
        family="keys",
        build=build_kor9,
        extract=extract,
        derive=derive,
        algorithm="kor_periods",
        tuning=PERIOD_TUNING,
        options=(BASELINE_OPTION, PERIOD_WORKERS),
        objective="expected collective bill with equal saving ratios, EUR "
                  "(Mustika (45)-(46))",
        card=CARD,
    )
)

register(
    ModelSpec(
        name="KoR10",
        description="Mustika KoR10: max the minimum bill-saving ratio (eq 47), per billing "
        "period, optionally lexicographic with the collective bill",
        family="keys",
        build=build_kor10,
        extract=extract,
        derive=derive,
        algorithm="kor_periods",
        tuning=PERIOD_TUNING,
        options=(
            Option("order", str, "fairness_then_bill",
                   "'fairness': max z only; 'fairness_then_bill': then min collective bill "
                   "at z >= z* - tol; 'bill_then_fairness': min bill first, then max z at "
                   "that bill", choices=ORDERS),
            Option("lex_tolerance", float, LEX_TOLERANCE,
                   "how much of the first stage's optimum the second may lose (ratio "
                   "units for z; relative for the bill)"),
            BASELINE_OPTION,
            PERIOD_WORKERS,
        ),
        objective="expected sum over billing periods of the minimum saving ratio z, 1 "
                  "(Mustika (47))",
        card=CARD,
    )
)
