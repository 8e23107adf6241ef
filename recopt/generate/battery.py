"""Community battery pre-processing, Ospina Lopez (2026) §4.1.2, eqs (9)-(14).

A shared battery (BESS) operates at the community level *before* any key: each step
it charges from the aggregate surplus and discharges into the aggregate deficit,
greedily, starting empty; keys then share the augmented generation

``G_aug(t) = G(t) - P_charge(t) + P_discharge(t)``                         (9)

with ``E_net(t) = G(t) - C_total(t)``                                      (10)
``P_charge = min(E_net, P_max dt, E_cap - SOC(t-1))`` if ``E_net > 0``     (11)
``SOC(t) = SOC(t-1) + P_charge``                                            (12)
``P_discharge = min(-E_net, P_max dt, SOC(t-1))`` if ``E_net < 0``          (13)
``SOC(t) = SOC(t-1) - P_discharge``                                         (14)

Interpretation choices (see ``models/metrics-and-uncertainty.md``):

* With member-owned PV, ``G`` and ``C_total`` are the meter values after individual
  self-consumption: ``G = sum_i P-_i`` (the settlement's community production) and
  ``C_total = sum_i C+_i``. For Ospina's shared plant without member PV these are her
  ``G_PV`` and total consumption.
* (13) is printed as ``min(E_net, ...)`` with ``E_net < 0``; the discharged energy is
  ``min(|E_net|, ...)``.
* Energies per step: the power cap ``P_max`` (kW) allows ``P_max * dt`` kWh per step.
  Lossless, as in Ospina; charge and discharge are mutually exclusive by construction.
  SOC starts at 0 in every scenario (each synthetic year).

:func:`add_community_battery` turns this into an instance the settlement and every
key use unchanged: the battery becomes one more member (``consumption = 0``,
``production = P_discharge``), and the charge is taken from the injections of the
members who inject at that step, pro rata to their injection. Hence the settlement's
community production ``sum_i P-_i`` is exactly ``G_aug``, and no member's withdrawal
``C+`` changes.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from recopt.data.instance import validate
from recopt.data.schema import DIMS, MEMBER, PRICE_VARIABLES, SCENARIO, TIME, VARIABLES
from recopt.errors import InstanceError, ModelError
from recopt.settle import community_production, meter_flows

__all__ = ["dispatch", "add_community_battery"]


def dispatch(
    community_production_,
    total_need,
    energy_kwh: float,
    power_kw: float,
    step_hours: float,
    soc_initial: float = 0.0,
) -> dict[str, np.ndarray]:
    """Greedy battery dispatch, Ospina eqs (10)-(14) (NumPy core).

    Loops over time (the SOC recursion), vectorised over every leading axis
    (scenarios).

    Parameters
    ----------
    community_production_ : array_like
        ``G``, kWh per step, shape ``(..., time)``.
    total_need : array_like
        ``C_total``, kWh per step, same shape.
    energy_kwh : float
        Usable capacity ``E_cap``, kWh.
    power_kw : float
        Charge/discharge power cap ``P_max``, kW.
    step_hours : float
        Step length ``dt``, h.
    soc_initial : float, default 0
        SOC before the first step, kWh (Ospina: 0).

    Returns
    -------
    dict of numpy.ndarray
        ``charge``, ``discharge``, ``soc`` (end of step) and ``g_aug`` (eq. (9)), kWh,
        shape ``(..., time)``.
    """
    g = np.asarray(community_production_, dtype=float)
    need = np.asarray(total_need, dtype=float)
    g, need = np.broadcast_arrays(g, need)
    for name, v in (("energy_kwh", energy_kwh), ("power_kw", power_kw),
                    ("step_hours", step_hours)):
        if not np.isfinite(v) or v < 0 or (name == "step_hours" and v == 0):
            raise ModelError(f"battery {name} must be a finite number >= 0, got {v!r}")
    if not 0 <= soc_initial <= energy_kwh:
        raise ModelError(f"soc_initial {soc_initial} must lie in [0, energy_kwh]")
    e_net = g - need  # (10)
    p_step = float(power_kw) * float(step_hours)
    cap = float(energy_kwh)
    charge = np.zeros_like(e_net)
    discharge = np.zeros_like(e_net)
    soc_out = np.zeros_like(e_net)
    soc = np.full(e_net.shape[:-1], float(soc_initial))
    for t in range(e_net.shape[-1]):
        en = e_net[..., t]
        ch = np.where(en > 0, np.minimum(np.minimum(en, p_step), cap - soc), 0.0)  # (11)
        dis = np.where(en < 0, np.minimum(np.minimum(-en, p_step), soc), 0.0)  # (13)
        ch = np.maximum(ch, 0.0)
        soc = np.clip(soc + ch - dis, 0.0, cap)  # (12), (14)
        charge[..., t], discharge[..., t], soc_out[..., t] = ch, dis, soc
    return {"charge": charge, "discharge": discharge, "soc": soc_out,
            "g_aug": g - charge + discharge}  # (9)


def _fill_member(da: xr.DataArray, value) -> xr.DataArray:
    """One member's worth of ``da`` (member dim of length 1) holding ``value``.

    ``value=None``: the mean over the members (numeric variables).
    """
    if value is None:
        new = da.mean(MEMBER, keepdims=True)
    else:
        new = da.isel({MEMBER: [0]}, drop=True).copy(deep=True)
        if isinstance(value, str) or not np.issubdtype(da.dtype, np.number):
            new = new.astype(object)
        new[...] = value
    return new


def add_community_battery(
    instance: xr.Dataset,
    energy_kwh: float,
    power_kw: float,
    *,
    name: str = "community_battery",
    investment: float | None = None,
    prices: dict[str, float] | None = None,
    soc_initial: float = 0.0,
) -> xr.Dataset:
    """The instance with a community battery as one more member (Ospina (9)-(14)).

    Parameters
    ----------
    instance : xarray.Dataset
        A recopt instance (any number of scenarios; each starts with an empty battery).
    energy_kwh, power_kw : float
        Battery capacity (kWh) and power cap (kW); Ospina's case: 30 kWh / 15 kW.
    name : str, default "community_battery"
        Member name of the battery (must be new).
    investment : float, optional
        EUR, stored in ``investment`` for keys prorata to investment (Mustika KoR4:
        battery EUR/kWh); default 0 when the instance has ``investment``.
    prices : dict, optional
        Prices (EUR/kWh) of the battery member for the price variables stored per
        member; default: the mean over the other members.
    soc_initial : float, default 0
        SOC before the first step, kWh.

    Returns
    -------
    xarray.Dataset
        Validated instance with member ``name`` added (``consumption`` 0,
        ``production`` = discharge, category ``battery``, installed power
        ``power_kw``, coordinates at the members' centroid); the injectors'
        ``production`` reduced by the charge pro rata to their injection; and
        ``battery_charge``, ``battery_discharge``, ``battery_soc``,
        ``community_production_original`` on (scenario, time), kWh. Its community
        production ``sum_i P-_i`` equals ``G_aug`` (9).
    """
    if name in set(np.asarray(instance[MEMBER].values).tolist()):
        raise InstanceError(f"member {name!r} already exists; give another battery name",
                            MEMBER)
    cons = instance["consumption"].transpose(*DIMS)
    prod = instance["production"].transpose(*DIMS)
    c_plus, p_minus = meter_flows(cons.values, prod.values)
    g = community_production(p_minus)
    step = float(instance.attrs["time_step_hours"])
    res = dispatch(g, c_plus.sum(axis=-1), energy_kwh, power_kw, step, soc_initial)
    # charge taken from the injections pro rata (charge <= E_net <= G, so <= each P-)
    frac = np.zeros_like(g)
    np.divide(res["charge"], g, out=frac, where=g > 0)
    new_prod = np.maximum(prod.values - p_minus * frac[..., None], 0.0)

    out = instance.copy()
    out["production"] = (DIMS, new_prod, dict(prod.attrs))
    battery = {
        "consumption": np.zeros(cons.shape[:2] + (1,)),
        "production": res["discharge"][..., None],
    }
    prices = dict(prices or {})
    member_vars = [v for v in out.data_vars if MEMBER in out[v].dims]
    pieces = {}
    for v in member_vars:
        da = out[v]
        if v in battery:
            ext = xr.DataArray(battery[v], dims=DIMS,
                               coords={SCENARIO: da[SCENARIO], TIME: da[TIME]})
        elif v in PRICE_VARIABLES:
            ext = _fill_member(da, prices.get(v))
        elif v == "installed_power":
            ext = _fill_member(da, float(power_kw))
        elif v == "investment":
            ext = _fill_member(da, 0.0 if investment is None else float(investment))
        elif v == "subscription_fee":
            ext = _fill_member(da, 0.0)
        elif v == "category":
            ext = _fill_member(da, "battery")
        elif v in VARIABLES:  # coordinates: centroid
            ext = _fill_member(da, None)
        else:  # unknown member variables: NaN / empty
            ext = _fill_member(da, np.nan if np.issubdtype(da.dtype, np.number) else "")
        ext = ext.assign_coords({MEMBER: [name]}).transpose(*da.dims)
        if ext.dtype == object or not np.issubdtype(da.dtype, np.number):
            da, ext = da.astype(object), ext.astype(object)
        pieces[v] = xr.concat([da, ext], dim=MEMBER)
    others = out.drop_vars(member_vars)
    others = others.drop_vars(MEMBER) if MEMBER in others.coords else others
    merged = xr.Dataset({v: pieces[v] for v in member_vars}).merge(others)
    merged.attrs = dict(instance.attrs)
    st = (SCENARIO, TIME)
    kwh = {"units": "kWh"}
    merged["battery_charge"] = (st, res["charge"], {**kwh, "long_name": "P_charge (11)"})
    merged["battery_discharge"] = (st, res["discharge"], {**kwh, "long_name": "P_discharge (13)"})
    merged["battery_soc"] = (st, res["soc"], {**kwh, "long_name": "SOC at end of step (12)"})
    merged["community_production_original"] = (st, g, {**kwh, "long_name": "G before BESS"})
    merged.attrs.update(battery_energy_kwh=float(energy_kwh), battery_power_kw=float(power_kw),
                        battery_member=name)
    return validate(merged)
