"""Mustika et al.'s optimisation-based energy management strategies EMS3 and EMS4.

Source: A. D. Mustika, R. Rigo-Mariani, V. Debusschere, A. Pachurka, "A two-stage
management strategy for the optimal operation and billing in an energy community with
collective self-consumption", Applied Energy 310 (2022) 118484,
doi:10.1016/j.apenergy.2021.118484, §3.1.3-3.1.4, eqs (17)-(35). Model card:
``models/EMS1-EMS4.md``; the Pyomo component names below are the card's.

One LP per scenario over the whole horizon (perfect foresight): for every member n and
step t the contractual flows with the grid (gd+/gd-) and the community (comm+/comm-),
the power used behind the meter (indsc) and, per storage unit (battery, EV), charge,
discharge and the SoC on |T|+1 boundary points. EMS3 minimises the grid export (30),
EMS4 the grid import (32), both as energies (kWh, ``sum P dt``). The storage
power-variation penalty (33)-(35) is added with ``penalty="weighted"`` (weight
``alpha``, in kWh) or solved lexicographically by the algorithm of
:mod:`recopt.decomp.ems` (``penalty="lexicographic"``). ``binaries=True`` adds the
complementarity of (gd+, gd-), (comm+, comm-) and (st+, st-) as binary variables (the
exact fix of check C6 for the storage pairs; a MILP).

Units: powers kW, energies kWh, SoC %, Delta t h; ``rho`` dimensionless.

This module builds and reads models; it never solves: the registered specs name the
algorithm ``"ems_stages"`` (:mod:`recopt.decomp.ems`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
import xarray as xr

from recopt.ems.schedule import schedule_dataset
from recopt.ems.stage2 import with_indicators
from recopt.ems.storage import PowerData, StorageUnits
from recopt.errors import ModelError
from recopt.lazy import pyomo_module
from recopt.models.construction import templated_constraints
from recopt.models.options import Option
from recopt.models.registry import ModelSpec, register

if TYPE_CHECKING:
    import pyomo.environ as pyo
    from pyomo.common import gc_manager
else:
    pyo = pyomo_module("pyomo.environ")
    gc_manager = pyomo_module("pyomo.common.gc_manager")

CARD = "models/EMS1-EMS4.md"
OBJECTIVES = {"EMS3": "export", "EMS4": "import"}
PENALTIES = ("none", "weighted", "lexicographic")
FINAL_SOC = ("at_least", "equal")
COMPLEMENTARITY = ("fix", "binary", "report")
#: Default of the option ``room_cuts``: whether the MILP (binaries) carries the SoC-room
#: cuts of :func:`_add_binaries` (off: they raise the MILP's bound but, measured on the
#: shipped month at a 20 s limit, not its incumbent; see the card).
ROOM_CUTS = False


def _values(var) -> np.ndarray:
    """The values of an indexed Var in its index order (unset: 0)."""
    out = np.array([v.value for v in var.values()], dtype=float)
    out[np.isnan(out)] = 0.0  # None (never set) reads as NaN
    return out


def _grid(a: np.ndarray) -> dict:
    """A (T, U) array as the {(n, t): value} initializer of a (MEMBERS, STEPS) Param."""
    T, U = a.shape
    return dict(zip(((n, t) for n in range(U) for t in range(T)), a.T.ravel().tolist(),
                    strict=True))


def build(instance: xr.Dataset, *, ems: str = "EMS4", scenario: int = 0,
          penalty: str = "none", alpha: float = 1.0, final_soc: str = "at_least",
          binaries: bool = False, complementarity: str = "fix", templates: bool = True,
          room_cuts: bool | None = None, **_ignored) -> pyo.ConcreteModel:
    """Build EMS3 or EMS4 for one scenario of ``instance``.

    Parameters
    ----------
    instance : xarray.Dataset
        A validated instance; storage from ``battery_*`` / ``ev_*``, ``ev_available``,
        ``subscribed_power_kw`` (all optional).
    ems : {"EMS3", "EMS4"}
        Minimise grid export (30) or grid import (32).
    scenario : int
        Position of the scenario to build.
    penalty : {"none", "weighted", "lexicographic"}
        Whether the variation variables (33)-(34) are added; ``"weighted"`` puts
        ``alpha * sum rho`` into the objective (35); ``"lexicographic"`` only builds
        them (the algorithm minimises ``sum rho`` in a second stage).
    alpha : float
        Weight of the penalty (35), kWh (the unit of f1 here).
    final_soc : {"at_least", "equal"}
        (24) as printed (``SOC_end >= SOC_init``) or the text's "equal".
    binaries : bool
        Add one binary per storage unit and step (charge or discharge, exact
        complementarity of (st+, st-); a MILP); also
        implied by ``complementarity="binary"``.
    room_cuts : bool, optional
        With the binaries, also the valid SoC-room rows ``charge_room`` /
        ``discharge_room`` (see :func:`_add_binaries`); None: :data:`ROOM_CUTS`.
    """
    # Python's cyclic garbage collector finds nothing to free while the model's ~10^5
    # components are created, but its passes over them doubled the build time (0.45 s
    # vs 0.20 s on the shipped case); Pyomo's own writers pause it the same way.
    with gc_manager.PauseGC():
        return _build(instance, ems=ems, scenario=scenario, penalty=penalty, alpha=alpha,
                      final_soc=final_soc, binaries=binaries,
                      complementarity=complementarity, templates=templates,
                      room_cuts=ROOM_CUTS if room_cuts is None else bool(room_cuts))


def _check_choices(ems: str, penalty: str, final_soc: str) -> None:
    """The named choices of :func:`build` and :func:`matrix`, refused by name."""
    if ems not in OBJECTIVES:
        raise ModelError(f"ems must be EMS3 or EMS4, got {ems!r}")
    if penalty not in PENALTIES:
        raise ModelError(f"penalty must be one of {', '.join(PENALTIES)}; got {penalty!r}")
    if final_soc not in FINAL_SOC:
        raise ModelError(f"final_soc must be one of {', '.join(FINAL_SOC)}; got {final_soc!r}")


def _build(instance: xr.Dataset, *, ems: str, scenario: int, penalty: str, alpha: float,
           final_soc: str, binaries: bool, complementarity: str,
           templates: bool, room_cuts: bool) -> pyo.ConcreteModel:
    """The body of :func:`build` (same parameters)."""
    binaries = bool(binaries) or complementarity == "binary"
    _check_choices(ems, penalty, final_soc)
    pw, units, load, pv, T, U, K, dt = _scenario_data(instance, scenario)
    gain_c, gain_d = units.soc_gain(dt)

    m = pyo.ConcreteModel(name=ems)
    m.recopt_meta = {"ems": ems, "scenario": scenario, "units": units, "power": pw,
                     "penalty": penalty, "alpha": float(alpha)}
    m.MEMBERS = pyo.RangeSet(0, U - 1, doc="member positions n")
    m.STEPS = pyo.RangeSet(0, T - 1, doc="steps t (0-based), length Delta t")
    m.BOUNDARIES = pyo.RangeSet(0, T, doc="SoC instants: start of each step and the end")
    slot = [int((units.member[:k] == units.member[k]).sum()) for k in range(K)]
    unit_index = [(int(units.member[k]), slot[k]) for k in range(K)]
    m.UNITS = pyo.Set(initialize=unit_index, dimen=2, ordered=True,
                      doc="storage units (n, j): the j-th storage (battery, EV) of member n")
    m.UNITS_OF = pyo.Set(m.MEMBERS, initialize={n: [j for (u, j) in unit_index if u == n]
                                                for n in range(U)},
                         doc="the storage slots j of each member n")

    # ---- flows, kW --------------------------------------------------------------------
    peak = pw.peak_load_kw[scenario]
    m.grid_import = pyo.Var(
        m.MEMBERS, m.STEPS, bounds=lambda m, n, t: (0.0, float(peak[n])),
        doc="P^gd+: contractual import from the grid, kW (1); its upper bound is (19) in "
            "linear form (S-4): P^gd+_{n,t} <= max_tau P^load_{n,tau}")
    m.grid_export = pyo.Var(m.MEMBERS, m.STEPS, bounds=(0, None),
                            doc="P^gd-: contractual export to the grid, kW (1)")
    m.community_import = pyo.Var(m.MEMBERS, m.STEPS, bounds=(0, None),
                                 doc="P^comm+: import from the community, kW (2)")
    m.community_export = pyo.Var(m.MEMBERS, m.STEPS, bounds=(0, None),
                                 doc="P^comm-: export to the community, kW (2)")
    m.self_consumption = pyo.Var(m.MEMBERS, m.STEPS, bounds=(0, None),
                                 doc="P^indsc: power used behind the member's own meter, kW")
    # ---- storage, kW and % -------------------------------------------------------------
    m.charge = pyo.Var(m.UNITS, m.STEPS, bounds=(0, None),
                       doc="P^st+: storage charge, kW; <= P^st_max (20); 0 when an EV is "
                           "away (S-5)")
    m.discharge = pyo.Var(m.UNITS, m.STEPS, bounds=(0, None),
                          doc="P^st-: storage discharge, kW; <= P^st_max (20); 0 when an EV "
                              "is away (S-5)")
    m.soc = pyo.Var(m.UNITS, m.BOUNDARIES,
                    doc="SOC^st: state of charge at each boundary, % of E^st_max; bounds (21)")
    for k, (n, j) in enumerate(unit_index):
        ub = float(units.power_kw[k])
        for t in range(T):
            cap = ub if units.available[t, k] else 0.0
            m.charge[n, j, t].setub(cap)
            m.discharge[n, j, t].setub(cap)
        for t in range(T + 1):
            m.soc[n, j, t].setlb(float(units.soc_min[k]))
            m.soc[n, j, t].setub(float(units.soc_max[k]))

    # ---- data as Params (so that the indexed rows below are built as templates) -----
    m.pv_kw = pyo.Param(m.MEMBERS, m.STEPS, initialize=_grid(pv), doc="P^PV, kW")
    m.load_kw = pyo.Param(m.MEMBERS, m.STEPS, initialize=_grid(load), doc="P^load, kW")
    m.peak_load = pyo.Param(m.MEMBERS, initialize=dict(enumerate(
        pw.peak_load_kw[scenario].tolist())), doc="L^_n = max_t P^load_{n,t}, kW (19)")
    per_unit = lambda a: dict(zip(unit_index, np.asarray(a, float).tolist(),  # noqa: E731
                                  strict=True))
    m.charge_gain = pyo.Param(m.UNITS, initialize=per_unit(gain_c),
                              doc="mu dt 100 / E: % of SoC per kW charged over a step (22)")
    m.discharge_gain = pyo.Param(m.UNITS, initialize=per_unit(gain_d),
                                 doc="dt 100 / (mu E): % of SoC per kW discharged (22)")
    m.soc_init = pyo.Param(m.UNITS, initialize=per_unit(units.soc_init),
                           doc="SOC^init, % (23)")
    subs = pw.subscribed_kw
    with templated_constraints(templates):
        # ---- (17)-(19) flow limits ---------------------------------------------------------
        if subs is not None:
            m.subscribed = pyo.Param(m.MEMBERS, initialize=dict(enumerate(subs.tolist())),
                                     doc="P^subs, kW (= kVA)")
            m.subs_import = pyo.Constraint(
                m.MEMBERS, m.STEPS,
                rule=lambda m, n, t: m.grid_import[n, t] + m.community_import[n, t]
                <= m.subscribed[n],
                doc="(17) P^gd+ + P^comm+ <= P^subs")
            m.subs_export = pyo.Constraint(
                m.MEMBERS, m.STEPS,
                rule=lambda m, n, t: m.grid_export[n, t] + m.community_export[n, t]
                <= m.subscribed[n],
                doc="(18) P^gd- + P^comm- <= P^subs")
        # ---- (22)-(24) storage dynamics ---------------------------------------------------
        m.soc_dynamics = pyo.Constraint(
            m.UNITS, m.STEPS,
            rule=lambda m, n, j, t: m.soc[n, j, t + 1] == m.soc[n, j, t]
            + m.charge_gain[n, j] * m.charge[n, j, t]
            - m.discharge_gain[n, j] * m.discharge[n, j, t],
            doc="(22) SOC_{t+1} = SOC_t + (mu P^st+ - P^st-/mu) dt 100/E")
        m.soc_initial = pyo.Constraint(
            m.UNITS, rule=lambda m, n, j: m.soc[n, j, 0] == m.soc_init[n, j],
            doc="(23) SOC_1 = SOC^init")
        if final_soc == "equal":
            m.soc_final = pyo.Constraint(
                m.UNITS, rule=lambda m, n, j: m.soc[n, j, T] == m.soc_init[n, j],
                doc="(24) as the text says: SOC_end = SOC^init")
        else:
            m.soc_final = pyo.Constraint(
                m.UNITS, rule=lambda m, n, j: m.soc[n, j, T] >= m.soc_init[n, j],
                doc="(24) as printed: SOC_end >= SOC^init")
        # ---- (25)-(27) power balances ((28) is the split done by extract()) ----------
        m.supply_balance = pyo.Constraint(
            m.MEMBERS, m.STEPS,
            rule=lambda m, n, t: m.pv_kw[n, t]
            + sum(m.discharge[n, j, t] for j in m.UNITS_OF[n])
            == m.self_consumption[n, t] + m.grid_export[n, t] + m.community_export[n, t],
            doc="(25) P^PV + P^bat- + P^EV- = P^indsc + P^gd- + P^comm-")
        m.demand_balance = pyo.Constraint(
            m.MEMBERS, m.STEPS,
            rule=lambda m, n, t: m.load_kw[n, t]
            + sum(m.charge[n, j, t] for j in m.UNITS_OF[n])
            == m.self_consumption[n, t] + m.grid_import[n, t] + m.community_import[n, t],
            doc="(26) P^load + P^bat+ + P^EV+ = P^indsc + P^gd+ + P^comm+")
        m.community_balance = pyo.Constraint(
            m.STEPS, rule=lambda m, t: sum(m.community_import[n, t] for n in m.MEMBERS)
            == sum(m.community_export[n, t] for n in m.MEMBERS),
            doc="(27) sum_n P^comm+ = sum_n P^comm-")

    # ---- objectives (30) / (32), kWh --------------------------------------------------------
    flow = m.grid_export if OBJECTIVES[ems] == "export" else m.grid_import
    m.first_objective = pyo.Expression(
        expr=dt * pyo.quicksum(flow.values()),
        doc="f1, kWh: total grid export (30, EMS3) or import (32, EMS4), sum P dt")
    m.storage_throughput = pyo.Expression(
        expr=dt * (pyo.quicksum(m.charge.values()) + pyo.quicksum(m.discharge.values())),
        doc="sum (P^st+ + P^st-) dt, kWh: the complementarity fix's second-stage objective")
    if penalty != "none":
        _add_penalty(m, units, T)
        total = m.variation_total
    else:
        total = 0.0
    weight = float(alpha) if penalty == "weighted" else 0.0
    m.objective = pyo.Objective(expr=m.first_objective + weight * total, sense=pyo.minimize,
                                doc="(30)/(32), plus alpha sum rho (35) when weighted")
    if binaries:
        _add_binaries(m, units, room=room_cuts)
    return m


def _add_penalty(m: pyo.ConcreteModel, units: StorageUnits, T: int) -> None:
    rated = dict(zip(list(m.UNITS), units.power_kw.tolist(), strict=True))
    """(33)-(34): ramps of the storage's net output and their normalised sum rho."""
    m.RAMPS = pyo.RangeSet(1, T - 1, doc="steps t >= 2 (0-based t >= 1) of (33)")
    m.ramp_up = pyo.Var(m.UNITS, m.RAMPS, bounds=(0, None),
                        doc="Delta P^st+: upward change of the net storage output, kW (33)")
    m.ramp_down = pyo.Var(m.UNITS, m.RAMPS, bounds=(0, None),
                          doc="Delta P^st-: downward change of the net storage output, kW (33)")
    m.variation_ratio = pyo.Var(m.UNITS, bounds=(0, None),
                                doc="rho^st_n: normalised storage-variation penalty, 1 (34)")

    def net(n, j, t):
        return m.discharge[n, j, t] - m.charge[n, j, t]

    m.variation = pyo.Constraint(
        m.UNITS, m.RAMPS,
        rule=lambda m, n, j, t: m.ramp_up[n, j, t] - m.ramp_down[n, j, t]
        == net(n, j, t) - net(n, j, t - 1),
        doc="(33) Delta P^+ - Delta P^- = P^st_t - P^st_{t-1}, P^st = P^st- - P^st+")
    m.penalty = pyo.Constraint(
        m.UNITS,
        rule=lambda m, n, j: m.variation_ratio[n, j] * float(T * rated[n, j])
        == sum(m.ramp_up[n, j, t] + m.ramp_down[n, j, t] for t in m.RAMPS),
        doc="(34) rho = sum_t (Delta P^+ + Delta P^-) / (|T| P^st_max)")
    m.variation_total = pyo.Expression(expr=pyo.quicksum(m.variation_ratio.values()),
                                       doc="sum_n sum_st rho^st_n, 1 (the term of (35))")


def _add_binaries(m, units: StorageUnits, room: bool = True) -> None:
    """One binary per storage unit and step: charge or discharge, never both (C6).

    The grid and community pairs need none: lowering both halves of such a pair by the
    same amount keeps every constraint and f1, so :mod:`recopt.decomp.ems` nets every
    such overlap out of the solution exactly (see the card).
    """
    m.charging = pyo.Var(m.UNITS, m.STEPS, domain=pyo.Binary,
                         doc="1: the storage may charge at t, 0: it may discharge (C6)")
    rated = dict(zip(list(m.UNITS), units.power_kw.tolist(), strict=True))
    m.charge_mode = pyo.Constraint(
        m.UNITS, m.STEPS,
        rule=lambda m, n, j, t: m.charge[n, j, t] <= rated[n, j] * m.charging[n, j, t],
        doc="C6: P^st+ <= P^st_max b")
    m.discharge_mode = pyo.Constraint(
        m.UNITS, m.STEPS,
        rule=lambda m, n, j, t: m.discharge[n, j, t]
        <= rated[n, j] * (1 - m.charging[n, j, t]),
        doc="C6: P^st- <= P^st_max (1 - b)")
    if not room:
        return
    # Valid inequalities (implied by C6 with (21)-(22), no binary in them): a unit that
    # charges does not discharge in that step, so its charge alone must fit below
    # SOC_max, and likewise its discharge above SOC_min. The LP relaxation burns surplus
    # by charging and discharging at once at a bound of the SoC; these rows cut that
    # off (EMS3 on the shipped month: relaxation bound 72.8 -> 100.76 kWh, the MILP's
    # own bound after 60 s was 100.7).
    m.charge_room = pyo.Constraint(
        m.UNITS, m.STEPS,
        rule=lambda m, n, j, t: m.soc[n, j, t] + m.charge_gain[n, j] * m.charge[n, j, t]
        <= float(m.soc[n, j, t].ub),
        doc="C6 cut: SOC_t + mu dt 100/E P^st+_t <= SOC_max")
    m.discharge_room = pyo.Constraint(
        m.UNITS, m.STEPS,
        rule=lambda m, n, j, t: m.soc[n, j, t] - m.discharge_gain[n, j]
        * m.discharge[n, j, t] >= float(m.soc[n, j, t].lb),
        doc="C6 cut: SOC_t - dt 100/(mu E) P^st-_t >= SOC_min")


def arrays(model: pyo.ConcreteModel) -> dict[str, np.ndarray]:
    """The solution in kW (flows (T, U), storage (T, K)) and % (SoC (T+1, K))."""
    meta = model.recopt_meta
    load = meta["power"].load_kw[meta["scenario"]]
    T, U = load.shape
    K = meta["units"].size
    out = {name: _values(getattr(model, var)).reshape(U, T).T for name, var in (
        ("grid_import", "grid_import"), ("grid_export", "grid_export"),
        ("community_import", "community_import"), ("community_export", "community_export"),
        ("self_consumption", "self_consumption"))}
    out["charge"] = _values(model.charge).reshape(K, T).T
    out["discharge"] = _values(model.discharge).reshape(K, T).T
    out["soc"] = _values(model.soc).reshape(K, T + 1).T
    return out


def extract(models: list[pyo.ConcreteModel], instance: xr.Dataset, **options) -> xr.Dataset:
    """The schedule of solved per-scenario models (one per scenario, in order).

    The meter flows are split from the net of (28), ``P^meter+ = max(net, 0)``, net
    taken from the flows themselves (round-off below 1e-9 kW is cut to 0).
    """
    return extract_parts([arrays(m) for m in models], instance, models[0].recopt_meta["units"],
                         models[0].recopt_meta["ems"])


def extract_parts(parts: list[dict], instance: xr.Dataset, units: StorageUnits,
                  ems: str) -> xr.Dataset:
    """The schedule of per-scenario solutions given as the arrays of :func:`arrays`
    (or :meth:`EMSMatrix.split`), one dict per scenario in order (see :func:`extract`)."""
    S = len(parts)
    stack = {k: np.stack([p[k] for p in parts]) for k in parts[0]}
    for k in ("grid_import", "grid_export", "community_import", "community_export",
              "self_consumption", "charge", "discharge"):
        stack[k] = np.where(stack[k] > 1e-9, stack[k], 0.0)
    net = (stack["grid_import"] - stack["grid_export"] + stack["community_import"]
           - stack["community_export"])
    net = np.where(np.abs(net) > 1e-9, net, 0.0)
    flows = {"meter_import": np.maximum(net, 0.0), "meter_export": np.maximum(-net, 0.0)}
    for k in ("grid_import", "grid_export", "community_import", "community_export",
              "self_consumption"):
        flows[k] = stack[k]
    if S != instance.sizes["scenario"]:
        raise ModelError(f"{S} solved scenarios for an instance of "
                         f"{instance.sizes['scenario']}")
    return schedule_dataset(instance, flows, units, stack["charge"], stack["discharge"],
                            stack["soc"], ems=ems)


def with_indicators_of(instance: xr.Dataset, schedule: xr.Dataset, **options) -> xr.Dataset:
    """Grid-based SCR / SSR (29)/(31) and exchange totals, added to the schedule."""
    return with_indicators(instance, schedule)



@dataclass(frozen=True)
class EMSMatrix:
    """The LP of :func:`build` as arrays: ``min cost x``, ``row_lower <= A x <= row_upper``,
    ``col_lower <= x <= col_upper`` (the same columns, rows, coefficients and bounds as
    the Pyomo model, assembled by NumPy; the Pyomo model stays the definition and
    ``tests/test_ems.py`` checks this against its compiled form).

    Columns, in order, each block member- or unit-major (``n * T + t``): ``grid_import``,
    ``grid_export``, ``community_import``, ``community_export``, ``self_consumption``
    (U T each), ``charge``, ``discharge`` (K T), ``soc`` (K (T+1)) and, with a penalty,
    ``ramp_up``, ``ramp_down`` (K (T-1)) and ``variation_ratio`` (K). ``columns`` maps a
    block name to its slice. ``first_objective`` is f1 (kWh, (30)/(32)),
    ``variation_total`` sum rho (34) and ``storage_throughput`` sum (P^st+ + P^st-) dt
    (kWh), each as a cost vector; ``cost`` is the model's objective (f1, plus alpha sum
    rho when weighted). Infinite bounds are ``+-inf``.
    """

    A: sp.csr_matrix
    cost: np.ndarray
    col_lower: np.ndarray
    col_upper: np.ndarray
    row_lower: np.ndarray
    row_upper: np.ndarray
    columns: dict
    rows: dict
    first_objective: np.ndarray
    variation_total: np.ndarray
    storage_throughput: np.ndarray
    shape_TUK: tuple

    def split(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """A column vector as the arrays of :func:`arrays` (kW (T, U) / (T, K), % (T+1, K))."""
        T, U, K = self.shape_TUK
        out = {name: x[self.columns[name]].reshape(U, T).T for name in (
            "grid_import", "grid_export", "community_import", "community_export",
            "self_consumption")}
        out["charge"] = x[self.columns["charge"]].reshape(K, T).T
        out["discharge"] = x[self.columns["discharge"]].reshape(K, T).T
        out["soc"] = x[self.columns["soc"]].reshape(K, T + 1).T
        return out


def matrix(instance: xr.Dataset, *, ems: str = "EMS4", scenario: int = 0,
           penalty: str = "none", alpha: float = 1.0, final_soc: str = "at_least",
           **_ignored) -> EMSMatrix:
    """The LP of :func:`build` (no binaries) for one scenario, assembled as arrays.

    Same parameters as :func:`build`; rows in the order (17), (18), (22), (23), (24),
    (25), (26), (27), then (33), (34) with a penalty; each row as Pyomo writes it
    (variables to the left, data to the right, e.g. (25) as
    ``P^bat- + P^EV- - P^indsc - P^gd- - P^comm- = -P^PV``). Units as in :func:`build`.
    """
    _check_choices(ems, penalty, final_soc)
    pw, units, load, pv, T, U, K, dt = _scenario_data(instance, scenario)
    gain_c, gain_d = units.soc_gain(dt)
    inf = np.inf
    # ---- columns ------------------------------------------------------------------------
    columns, n_col = _column_layout(
        [("grid_import", U * T), ("grid_export", U * T), ("community_import", U * T),
         ("community_export", U * T), ("self_consumption", U * T)]
        + _storage_columns(K, T, penalty))
    cap = np.where(units.available, units.power_kw[None, :], 0.0)  # (20), (S-5)
    lo, up = _storage_bounds(columns, n_col, cap, units, T)
    up[columns["grid_import"]] = np.repeat(pw.peak_load_kw[scenario], T)  # (19) / (S-4)

    def col(name, idx):
        return columns[name].start + np.asarray(idx)

    nt = np.arange(U * T)  # member-major cell n * T + t
    kt = np.arange(K * T)  # unit-major cell k * T + t
    k_of, t_of = np.divmod(kt, T)
    unit_cell = units.member[k_of] * T + t_of  # the (n, t) cell of each (k, t)
    blocks = []  # (name, rows, cols, vals, lower, upper, n_rows)

    def rows(name, r, c, v, lower, upper):
        blocks.append((name, np.asarray(r), np.asarray(c), np.asarray(v, float),
                       np.asarray(lower, float), np.asarray(upper, float)))

    ones = np.ones(U * T)
    if pw.subscribed_kw is not None:
        subs = np.repeat(pw.subscribed_kw, T)
        rows("subs_import", np.r_[nt, nt], np.r_[col("grid_import", nt),
             col("community_import", nt)], np.r_[ones, ones], np.full(U * T, -inf), subs)
        rows("subs_export", np.r_[nt, nt], np.r_[col("grid_export", nt),
             col("community_export", nt)], np.r_[ones, ones], np.full(U * T, -inf), subs)
    _soc_rows(rows, col, units, gain_c, gain_d, T, final_soc)
    rows("supply_balance", np.r_[unit_cell, nt, nt, nt],
         np.r_[col("discharge", kt), col("self_consumption", nt), col("grid_export", nt),
               col("community_export", nt)],
         np.r_[np.ones(K * T), -ones, -ones, -ones], -pv.T.ravel(), -pv.T.ravel())
    rows("demand_balance", np.r_[unit_cell, nt, nt, nt],
         np.r_[col("charge", kt), col("self_consumption", nt), col("grid_import", nt),
               col("community_import", nt)],
         np.r_[np.ones(K * T), -ones, -ones, -ones], -load.T.ravel(), -load.T.ravel())
    t_of_cell = nt % T
    rows("community_balance", np.r_[t_of_cell, t_of_cell],
         np.r_[col("community_import", nt), col("community_export", nt)],
         np.r_[ones, -ones], np.zeros(T), np.zeros(T))
    if penalty != "none":
        _penalty_rows(rows, col, units, T)
    A, row_lower, row_upper, row_slices = _stack_rows(blocks, n_col)
    f1 = np.zeros(n_col)
    f1[columns["grid_export" if OBJECTIVES[ems] == "export" else "grid_import"]] = dt
    rho, throughput, cost = _storage_objectives(columns, n_col, f1, dt, penalty, alpha)
    return EMSMatrix(A, cost, lo, up, row_lower, row_upper, columns, row_slices, f1, rho,
                     throughput, (T, U, K))


@dataclass(frozen=True)
class EMSProjection(EMSMatrix):
    """The LP of :func:`build` projected exactly onto the storage (see
    :func:`projected_matrix`); :meth:`split` rebuilds every flow of the full model.

    Columns, in order: ``grid_total`` (T: G_t = sum_n P^gd+_{n,t}, kW), ``capacity``
    (S T, one per storage owner and step, owner-major: h_{n,t}, kW), ``charge``,
    ``discharge`` (K T), ``soc`` (K (T+1)) and, with a penalty, ``ramp_up``,
    ``ramp_down`` (K (T-1)), ``variation_ratio`` (K), as in :class:`EMSMatrix`.
    ``first_objective_offset`` (kWh) is added to ``first_objective @ x`` to give f1
    (EMS3: the export of the storage-less balance; EMS4: 0).
    """

    first_objective_offset: float
    load: np.ndarray  # (T, U) kW
    pv: np.ndarray  # (T, U) kW
    peak: np.ndarray  # (U,) kW
    subs: np.ndarray  # (U,) kW, inf without (17)-(18)
    unit_member: np.ndarray  # (K,)

    def split(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """A column vector as the arrays of :func:`arrays`: the storage as solved, the
        flows of every member rebuilt from it (the disaggregation of
        :func:`projected_matrix`: G_t = max(0, sum_n b_n), spread over the members'
        boxes g_n in [0, min(L^_n, X_n)], s_n in [b_n, X_n] by one ratio each)."""
        T, U, K = self.shape_TUK
        charge = x[self.columns["charge"]].reshape(K, T).T
        discharge = x[self.columns["discharge"]].reshape(K, T).T
        soc = x[self.columns["soc"]].reshape(K, T + 1).T
        plus = _per_owner(charge, self.unit_member, U)
        net = _per_owner(charge - discharge, self.unit_member, U)
        b = self.load - self.pv + net  # meter net withdrawal, kW
        X = np.minimum(np.minimum(self.load + plus, self.subs), self.subs + b)
        g_hat = np.maximum(np.minimum(self.peak[None, :], X), 0.0)
        X = np.maximum(X, b)
        B = b.sum(axis=1)
        G = np.minimum(np.maximum(B, 0.0), g_hat.sum(axis=1))  # the f1-minimal import
        with np.errstate(divide="ignore", invalid="ignore"):
            lam = np.where(g_hat.sum(axis=1) > 0, G / g_hat.sum(axis=1), 0.0)
            room = (X - b).sum(axis=1)
            mu = np.clip(np.where(room > 0, (G - B) / room, 0.0), 0.0, 1.0)
        g = lam[:, None] * g_hat
        s = b + mu[:, None] * (X - b)
        c = s - g
        comm_in, comm_out = np.maximum(c, 0.0), np.maximum(-c, 0.0)
        return {"grid_import": g, "grid_export": np.maximum(s - b, 0.0),
                "community_import": comm_in, "community_export": comm_out,
                "self_consumption": np.maximum(self.load + plus - g - comm_in, 0.0),
                "charge": charge, "discharge": discharge, "soc": soc}


def projected_matrix(instance: xr.Dataset, *, ems: str = "EMS4", scenario: int = 0,
                     penalty: str = "none", alpha: float = 1.0, final_soc: str = "at_least",
                     **_ignored) -> EMSProjection | None:
    """The LP of :func:`build` (no binaries), projected exactly onto the storage.

    Mustika (2022) (17)-(28): per member n and step t, with the storage fixed, the
    member's meter net withdrawal is ``b = P^load - P^PV + sum_j (P+ - P-)`` (kW) and
    its flows (gd+, gd-, comm+, comm-, indsc >= 0, rows (17)-(19), (25), (26)) are
    feasible iff, with ``g = gd+`` and ``s = gd+ + comm+ - comm-`` (so ``gd- = s - b``),

        0 <= g <= min(L^_n, X),  b <= s <= X,
        X = min(P^load + sum_j P+, P^subs, P^subs + b)

    (taking comm+ = (s - g)^+, comm- = (g - s)^+; the bound on max(g, s) is indsc >= 0
    and (17)-(18)). Boxes in (g, s): their Minkowski sum over the members is the box of
    the sums, and (27) says ``sum_n s_n = sum_n g_n = G_t``. So the storage schedule is
    feasible iff per step ``sum_n b_n <= sum_n min(L^_n, X_n)`` and per member
    ``-P^subs <= b <= P^subs``, and then the least grid import is
    ``G_t = max(0, sum_n b_n)`` (EMS4's f1 (32); EMS3's (30) is the export ``G_t -
    sum_n b_n``). The LP here keeps, per step, G_t with ``G_t >= sum_n b_n`` (row
    ``import_floor``) and the capacity row ``sum_n b_n <= sum h_n + sum_m g^_m`` with one
    h per storage owner (h <= L^_n, P^subs by bounds; ``h <= P^load + sum P+`` and
    ``h <= P^subs + b`` by rows, each left out where the data make it redundant) and the
    constant ``g^_m = min(P^load, P^subs, P^subs + b_m)`` of each member without storage;
    the members' rows (17)-(19), (25)-(27) and their 5 U T columns are gone. The
    storage rows (20)-(24) and the penalty (33)-(34) are those of :func:`matrix`.
    Every feasible point of either LP maps to one of the other with the same storage
    and the same f1 (tested against :func:`matrix`), so both objectives of the
    lexicographic solve are unchanged. Returns None when a member without storage
    already breaks ``|P^load - P^PV| <= P^subs`` (the full LP is infeasible; the caller
    keeps :func:`matrix`, which reports it).
    """
    _check_choices(ems, penalty, final_soc)
    pw, units, load, pv, T, U, K, dt = _scenario_data(instance, scenario)
    inf = np.inf
    subs = (np.full(U, inf) if pw.subscribed_kw is None
            else np.asarray(pw.subscribed_kw, float))
    peak = np.asarray(pw.peak_load_kw[scenario], float)
    owners = np.unique(units.member)  # storage owners, sorted
    S = owners.size
    owner_of_unit = np.searchsorted(owners, units.member)  # (K,) position in owners
    bare = np.setdiff1d(np.arange(U), owners)
    b_bare = load[:, bare] - pv[:, bare]
    if (np.abs(b_bare) > subs[bare][None, :]).any():
        return None
    gain_c, gain_d = units.soc_gain(dt)
    cap = np.where(units.available, units.power_kw[None, :], 0.0)  # (T, K) kW
    cap_owner = _per_owner(cap, owner_of_unit, S)
    columns, n_col = _column_layout([("grid_total", T), ("capacity", S * T)]
                                    + _storage_columns(K, T, penalty))
    lo, up = _storage_bounds(columns, n_col, cap, units, T)
    up[columns["capacity"]] = np.repeat(np.minimum(peak[owners], subs[owners]), T)

    def col(name, idx):
        return columns[name].start + np.asarray(idx)

    kt = np.arange(K * T)
    k_of, t_of = np.divmod(kt, T)
    st = np.arange(S * T)  # owner-major h cell
    s_of, ts_of = np.divmod(st, T)
    h_of_unit = owner_of_unit[k_of] * T + t_of  # the h cell of each (k, t)
    tt = np.arange(T)
    blocks = []

    def rows(name, r, c, v, lower, upper):
        blocks.append((name, np.asarray(r), np.asarray(c), np.asarray(v, float),
                       np.asarray(lower, float), np.asarray(upper, float)))

    ones_k = np.ones(K * T)
    D = (load - pv).sum(axis=1)  # the members' net withdrawal without storage, kW
    rows("import_floor", np.r_[tt, t_of, t_of],
         np.r_[col("grid_total", tt), col("charge", kt), col("discharge", kt)],
         np.r_[np.ones(T), -ones_k, ones_k], D, np.full(T, inf))
    g_bare = np.minimum(np.minimum(load[:, bare], subs[bare][None, :]),
                        subs[bare][None, :] + b_bare).sum(axis=1)
    rows("capacity_total", np.r_[t_of, t_of, ts_of],
         np.r_[col("charge", kt), col("discharge", kt), col("capacity", st)],
         np.r_[ones_k, -ones_k, -np.ones(S * T)], np.full(T, -inf), g_bare - D)
    load_o, pv_o, subs_o = load[:, owners], pv[:, owners], subs[owners]
    # h <= P^load + sum P+ : needed where the bound min(L^, P^subs) can exceed P^load
    need = (np.minimum(peak[owners], subs_o)[None, :] > load_o).T.ravel()  # (S T)
    _owner_rows(rows, "capacity_load", need, st, h_of_unit, k_of, t_of, T, col,
                plus=-1.0, minus=0.0, upper=load_o.T.ravel())
    # h <= P^subs + b : needed where P^PV + sum P_max can exceed P^subs
    need = ((pv_o + cap_owner) > subs_o[None, :]).T.ravel()
    _owner_rows(rows, "capacity_subs", need, st, h_of_unit, k_of, t_of, T, col,
                plus=-1.0, minus=1.0, upper=(subs_o[None, :] + load_o - pv_o).T.ravel())
    # -P^subs <= b <= P^subs, (17)-(18) of the owner: where the storage can break it
    need = ((load_o - pv_o + cap_owner > subs_o[None, :])
            | (pv_o - load_o + cap_owner > subs_o[None, :])).T.ravel()
    _owner_rows(rows, "meter_limit", need, st, h_of_unit, k_of, t_of, T, col,
                plus=1.0, minus=-1.0, upper=(subs_o[None, :] - load_o + pv_o).T.ravel(),
                lower=(-subs_o[None, :] - load_o + pv_o).T.ravel(), with_h=False)
    _soc_rows(rows, col, units, gain_c, gain_d, T, final_soc)
    if penalty != "none":
        _penalty_rows(rows, col, units, T)
    A, row_lower, row_upper, row_slices = _stack_rows(blocks, n_col)
    f1 = np.zeros(n_col)
    f1[columns["grid_total"]] = dt
    offset = 0.0
    if OBJECTIVES[ems] == "export":  # export = G - sum_n b_n
        f1[columns["charge"]] = -dt
        f1[columns["discharge"]] = dt
        offset = -float(D.sum()) * dt
    rho, throughput, cost = _storage_objectives(columns, n_col, f1, dt, penalty, alpha)
    return EMSProjection(A, cost, lo, up, row_lower, row_upper, columns, row_slices, f1,
                         rho, throughput, (T, U, K), offset, load, pv, peak, subs,
                         units.member)


def _scenario_data(instance: xr.Dataset, scenario: int):
    """What every EMS builder reads of one scenario: ``(pw, units, load, pv, T, U, K,
    dt)`` -- the :class:`PowerData` and :class:`StorageUnits` of the instance, the
    scenario's load and PV ((T, U) kW), the sizes and the step length (h)."""
    pw = PowerData.from_instance(instance)
    units = StorageUnits.from_instance(instance)
    load, pv = pw.load_kw[scenario], pw.pv_kw[scenario]
    T, U = load.shape
    return pw, units, load, pv, T, U, units.size, pw.step_hours


def _storage_columns(K: int, T: int, penalty: str) -> list[tuple[str, int]]:
    """The storage's columns, common to :func:`matrix` and :func:`projected_matrix`:
    ``charge``, ``discharge`` (K T, unit-major), ``soc`` (K (T+1)) and, with a penalty,
    ``ramp_up``, ``ramp_down`` (K (T-1)) and ``variation_ratio`` (K)."""
    sizes = [("charge", K * T), ("discharge", K * T), ("soc", K * (T + 1))]
    if penalty != "none":
        sizes += [("ramp_up", K * (T - 1)), ("ramp_down", K * (T - 1)),
                  ("variation_ratio", K)]
    return sizes


def _column_layout(sizes: list[tuple[str, int]]) -> tuple[dict[str, slice], int]:
    """Consecutive column slices for ``[(name, size), ...]`` and the column count."""
    columns, start = {}, 0
    for name, size in sizes:
        columns[name] = slice(start, start + size)
        start += size
    return columns, start


def _storage_bounds(columns, n_col: int, cap: np.ndarray, units,
                    T: int) -> tuple[np.ndarray, np.ndarray]:
    """Column bounds: 0 <= x < inf, then the storage's (20) / (S-5) power limits ``cap``
    ((T, K) kW, 0 where an EV is away) and (21) SoC limits (kWh)."""
    lo = np.zeros(n_col)
    up = np.full(n_col, np.inf)
    up[columns["charge"]] = cap.T.ravel()
    up[columns["discharge"]] = cap.T.ravel()
    lo[columns["soc"]] = np.repeat(units.soc_min, T + 1)
    up[columns["soc"]] = np.repeat(units.soc_max, T + 1)
    return lo, up


def _soc_rows(rows, col, units, gain_c, gain_d, T: int, final_soc: str) -> None:
    """(22) SoC dynamics on |T|+1 points, (23) initial and (24) final SoC."""
    K = units.size
    kt = np.arange(K * T)
    k_of, t_of = np.divmod(kt, T)
    ones = np.ones(K * T)
    rows("soc_dynamics", np.r_[kt, kt, kt, kt],
         np.r_[col("soc", k_of * (T + 1) + t_of + 1), col("soc", k_of * (T + 1) + t_of),
               col("charge", kt), col("discharge", kt)],
         np.r_[ones, -ones, -gain_c[k_of], gain_d[k_of]], np.zeros(K * T), np.zeros(K * T))
    kk = np.arange(K)
    rows("soc_initial", kk, col("soc", kk * (T + 1)), np.ones(K), units.soc_init,
         units.soc_init)
    rows("soc_final", kk, col("soc", kk * (T + 1) + T), np.ones(K), units.soc_init,
         units.soc_init if final_soc == "equal" else np.full(K, np.inf))


def _penalty_rows(rows, col, units, T: int) -> None:
    """(33)-(34): the power variation of each unit between steps t-1 and t (RAMPS =
    1 .. T-1) split into ramp_up - ramp_down, and T P^max rho_k = their sum."""
    K = units.size
    kk = np.arange(K)
    kr = np.arange(K * (T - 1))
    k_r, t_r = np.divmod(kr, T - 1)
    t_r = t_r + 1
    now, before = k_r * T + t_r, k_r * T + t_r - 1
    one = np.ones(kr.size)
    rows("variation", np.r_[kr, kr, kr, kr, kr, kr],
         np.r_[col("ramp_up", kr), col("ramp_down", kr), col("discharge", now),
               col("charge", now), col("discharge", before), col("charge", before)],
         np.r_[one, -one, -one, one, one, -one], np.zeros(kr.size), np.zeros(kr.size))
    rows("penalty", np.r_[kk, np.repeat(kk, T - 1), np.repeat(kk, T - 1)],
         np.r_[col("variation_ratio", kk), col("ramp_up", kr), col("ramp_down", kr)],
         np.r_[T * units.power_kw, -np.ones(2 * kr.size)], np.zeros(K), np.zeros(K))


def _storage_objectives(columns, n_col: int, f1: np.ndarray, dt: float, penalty: str,
                        alpha: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rho, throughput, cost): Σρ's coefficients (35), the storage throughput (kWh) and
    the objective given f1's (f1 + α Σρ with the weighted penalty)."""
    rho = np.zeros(n_col)
    if penalty != "none":
        rho[columns["variation_ratio"]] = 1.0
    throughput = np.zeros(n_col)
    throughput[columns["charge"]] = dt
    throughput[columns["discharge"]] = dt
    cost = f1 + (float(alpha) * rho if penalty == "weighted" else 0.0)
    return rho, throughput, cost


def _per_owner(values: np.ndarray, owner: np.ndarray, n: int) -> np.ndarray:
    """(T, K) per-unit values summed per owner: (T, n), ``owner[k]`` the column."""
    onehot = np.zeros((owner.size, n))
    onehot[np.arange(owner.size), owner] = 1.0
    return values @ onehot


def _owner_rows(rows, name, need, st, h_of_unit, k_of, t_of, T, col, *, plus, minus,
                upper, lower=None, with_h=True) -> None:
    """Rows ``[h] + plus sum_j P+ + minus sum_j P- <= upper`` (``lower <=`` when given)
    of :func:`projected_matrix`, one per owner cell where ``need`` (the others are
    redundant for the data)."""
    pos = np.full(st.size, -1)
    pos[need] = np.arange(int(need.sum()))
    r_unit = pos[h_of_unit]
    keep = r_unit >= 0
    kt = np.flatnonzero(keep)
    cells = np.flatnonzero(need)
    r = [r_unit[kt], r_unit[kt]]
    c = [col("charge", kt), col("discharge", kt)]
    v = [np.full(kt.size, plus), np.full(kt.size, minus)]
    if with_h:
        r.append(np.arange(cells.size))
        c.append(col("capacity", cells))
        v.append(np.ones(cells.size))
    keep_v = np.concatenate(v) != 0.0
    rows(name, np.concatenate(r)[keep_v], np.concatenate(c)[keep_v],
         np.concatenate(v)[keep_v],
         np.full(cells.size, -np.inf) if lower is None else lower[cells], upper[cells])


def _stack_rows(blocks, n_col):
    """The row blocks ``(name, rows, cols, vals, lower, upper)`` as one CSR matrix, its
    row bounds and each block's slice."""
    r_all, c_all, v_all, lower, upper, row_slices, offset = [], [], [], [], [], {}, 0
    for name, r, c, v, rl, ru in blocks:
        r_all.append(r + offset)
        c_all.append(c)
        v_all.append(v)
        lower.append(rl)
        upper.append(ru)
        row_slices[name] = slice(offset, offset + rl.size)
        offset += rl.size
    A = sp.csr_matrix((np.concatenate(v_all), (np.concatenate(r_all), np.concatenate(c_all))),
                      shape=(offset, n_col))
    return A, np.concatenate(lower), np.concatenate(upper), row_slices


OPTIONS = (
    Option("penalty", str, "none",
           "storage power-variation penalty (33)-(35): 'none', 'weighted' (f1 + alpha sum "
           "rho) or 'lexicographic' (min f1, then min sum rho at f1 <= f1* (1 + "
           "lex_tolerance): the alpha -> 0+ limit, f1 unchanged)", choices=PENALTIES),
    Option("alpha", float, 1.0, "weight of the penalty (35) with penalty=weighted, kWh"),
    Option("final_soc", str, "at_least",
           "(24): 'at_least' (SOC_end >= SOC_init, as printed) or 'equal' (as the text "
           "says)", choices=FINAL_SOC),
    Option("complementarity", str, "fix",
           "check C6 (no simultaneous charge and discharge, import and export): 'fix' "
           "(when violated: a second stage min storage throughput at f1 fixed, then, if "
           "still violated, the exact MILP with binaries), 'binary' (MILP from the start) "
           "or 'report' (keep the LP solution, status 'error' if it is violated)",
           choices=COMPLEMENTARITY),
    Option("room_cuts", bool, False,
           "with the exact fix's binaries, also the valid SoC-room rows SOC_t + "
           "charge gain P+ <= SOC_max, SOC_t - discharge gain P- >= SOC_min (C6 cuts): a "
           "tighter bound, same optimum"),
    Option("mode_start", bool, False,
           "with the exact fix's binaries, first a C6-feasible start (the MILP's LP "
           "relaxation, modes from its net powers with the burning moved across units, "
           "the LP at those modes) given to the MILP as its incumbent; a heuristic, "
           "the MILP and its gap are unchanged (best with room_cuts)"),
    Option("lex_tolerance", float, 1e-7,
           "relative loss of f1 allowed in the lexicographic stages"),
)


for _name, _what in (("EMS3", "min grid export (30): max grid-based SCR (29)"),
                     ("EMS4", "min grid import (32): max grid-based SSR (31)")):
    register(ModelSpec(
        name=_name,
        description=f"Mustika {_name}: storage schedule (battery + EV) by LP over the "
                    f"horizon, {_what}; Stage 1 of the two-stage method",
        family="ems",
        build=functools.partial(build, ems=_name),
        extract=lambda model, inst, **o: extract([model], inst, **o),
        derive=with_indicators_of,
        algorithm="ems_stages",
        separable="scenario",
        options=OPTIONS,
        card=CARD,
    ))
