"""Mustika's rule-based energy management strategies EMS1 and EMS2 (pure NumPy).

Source: A. D. Mustika, R. Rigo-Mariani, V. Debusschere, A. Pachurka, "A two-stage
management strategy for the optimal operation and billing in an energy community with
collective self-consumption", Applied Energy 310 (2022) 118484,
doi:10.1016/j.apenergy.2021.118484, §3.1.1 (Algorithm 1, EMS1) and §3.1.2
(Algorithm 2, EMS2). Interpretations: ``models/EMS1-EMS4.md`` (notes a-f).

EMS1: each house alone -- own PV to own load, then its own battery, then the grid. EMS2:
EMS1 at every step, then the collective injection left is shared out to charge the
batteries of the houses that withdraw (weights = SoC headroom in %, clipped to power and
SoC, repeated until the injection is used up or no battery can take more). Community
energy only ever charges batteries; a battery only ever discharges into its own house.
The EV is idle in both.

Every function works on arrays shaped ``(S, T, U)`` (scenarios, steps, members) and
per-member battery arrays ``(U,)``; the only loop is over time (the SoC recursion), and
in EMS2 over at most U sharing passes per step. Units: powers kW, SoC %, Delta t h.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from recopt.data.schema import DIMS
from recopt.ems.schedule import schedule_dataset
from recopt.ems.storage import PowerData, StorageUnits

__all__ = ["Battery", "ems1_step", "run_rules", "ems1", "ems2", "RULES"]

_EPS = 1e-12


@dataclass(frozen=True)
class Battery:
    """Per-member battery arrays, shape (U,); members without one have power 0.

    power_kw, energy_kwh (1 where there is none, never used), soc_min, soc_max,
    soc_init (%), mu (one-way efficiency).
    """

    power_kw: np.ndarray
    energy_kwh: np.ndarray
    soc_min: np.ndarray
    soc_max: np.ndarray
    soc_init: np.ndarray
    mu: np.ndarray

    @classmethod
    def of(cls, units: StorageUnits, n_members: int) -> Battery:
        ks = units.of_kind("battery")
        full = {"power_kw": 0.0, "energy_kwh": 1.0, "soc_min": 0.0, "soc_max": 0.0,
                "soc_init": 0.0, "mu": 1.0}
        arrs = {}
        for f, dflt in full.items():
            a = np.full(n_members, dflt)
            a[units.member[ks]] = getattr(units, f)[ks]
            arrs[f] = a
        return cls(**arrs)


def ems1_step(net_demand: np.ndarray, soc: np.ndarray, bat: Battery, dt: float):
    """One step of Algorithm 1 for every (scenario, member) at once.

    Parameters
    ----------
    net_demand : numpy.ndarray (S, U)
        ``P^load - P^PV`` at the step, kW.
    soc : numpy.ndarray (S, U)
        Start-of-step SoC, %.

    Returns
    -------
    meter_import, meter_export, charge, discharge, soc_next : numpy.ndarray (S, U)
        kW and % (S-1)-(S-3): the battery covers the deficit / absorbs the surplus
        within its power and SoC limits; the meter sees the rest.
    """
    per_kw = dt * 100.0 / bat.energy_kwh  # % per kW over one step, before efficiency
    max_dis = np.minimum(bat.power_kw, np.maximum(soc - bat.soc_min, 0.0) * bat.mu / per_kw)
    max_ch = np.minimum(bat.power_kw, np.maximum(bat.soc_max - soc, 0.0) / (bat.mu * per_kw))
    discharge = np.clip(net_demand, 0.0, max_dis)
    charge = np.clip(-net_demand, 0.0, max_ch)
    residual = net_demand + charge - discharge
    soc_next = soc + (bat.mu * charge - discharge / bat.mu) * per_kw
    return (np.maximum(residual, 0.0), np.maximum(-residual, 0.0), charge, discharge,
            soc_next)


def _share_community(meter_import, meter_export, charge, discharge, soc, bat: Battery,
                     dt: float):
    """Algorithm 2 at one step (in place): the injection G charges withdrawers' batteries.

    Returns xi (S, U), kW: what each battery took from the community.
    """
    per_kw = dt * 100.0 / bat.energy_kwh
    G = meter_export.sum(axis=-1)
    xi_total = np.zeros_like(charge)
    owner = bat.power_kw > 0
    for _ in range(charge.shape[-1]):
        eligible = (owner & (meter_import > _EPS) & (discharge <= _EPS)
                    & (charge < bat.power_kw - _EPS) & (soc < bat.soc_max - _EPS))
        head = np.where(eligible, bat.soc_max - soc, 0.0)
        total = head.sum(axis=-1)
        active = (G > _EPS) & (total > 0)
        if not active.any():
            break
        w = np.divide(head, total[:, None], out=np.zeros_like(head), where=total[:, None] > 0)
        room = np.minimum(bat.power_kw - charge, (bat.soc_max - soc) / (bat.mu * per_kw))
        xi = np.where(eligible & active[:, None],
                      np.clip(np.minimum(w * G[:, None], room), 0.0, None), 0.0)
        charge += xi
        soc += bat.mu * xi * per_kw
        meter_import += xi
        xi_total += xi
        G = np.maximum(G - xi.sum(axis=-1), 0.0)
    return xi_total


def run_rules(load_kw: np.ndarray, pv_kw: np.ndarray, bat: Battery, dt: float,
              community: bool) -> dict[str, np.ndarray]:
    """EMS1 (``community=False``) or EMS2 over the horizon.

    Parameters
    ----------
    load_kw, pv_kw : numpy.ndarray (S, T, U)
        P^load and P^PV, kW.
    bat : Battery
    dt : float
        Step length, h.

    Returns
    -------
    dict of numpy.ndarray
        ``meter_import``, ``meter_export``, ``grid_import``, ``grid_export``,
        ``community_import``, ``community_export``, ``self_consumption``, ``charge``,
        ``discharge`` (S, T, U) in kW and ``soc`` (S, T+1, U) in %.
    """
    S, T, U = load_kw.shape
    out = {k: np.zeros((S, T, U)) for k in ("meter_import", "meter_export", "charge",
                                            "discharge", "community_import")}
    soc = np.empty((S, T + 1, U))
    soc[:, 0] = np.broadcast_to(bat.soc_init, (S, U))
    for t in range(T):
        mi, me, ch, dis, s_next = ems1_step(load_kw[:, t] - pv_kw[:, t], soc[:, t], bat, dt)
        if community:
            out["community_import"][:, t] = _share_community(mi, me, ch, dis, s_next, bat, dt)
        out["meter_import"][:, t] = mi
        out["meter_export"][:, t] = me
        out["charge"][:, t] = ch
        out["discharge"][:, t] = dis
        soc[:, t + 1] = s_next
    xi = out["community_import"]
    G = out["meter_export"].sum(axis=-1, keepdims=True)
    share = np.divide(out["meter_export"], G, out=np.zeros_like(xi), where=G > 0)
    out["community_export"] = share * xi.sum(axis=-1, keepdims=True)
    out["grid_import"] = out["meter_import"] - xi
    out["grid_export"] = out["meter_export"] - out["community_export"]
    out["self_consumption"] = np.minimum(pv_kw + out["discharge"], load_kw + out["charge"])
    out["soc"] = soc
    return out


def _rules(instance: xr.Dataset, community: bool) -> xr.Dataset:
    pw = PowerData.from_instance(instance)
    units = StorageUnits.from_instance(instance, kinds=("battery",))
    U = instance.sizes["member"]
    res = run_rules(pw.load_kw, pw.pv_kw, Battery.of(units, U), pw.step_hours, community)
    m = units.member
    return schedule_dataset(instance, res, units, res["charge"][:, :, m],
                            res["discharge"][:, :, m], res["soc"][:, :, m],
                            ems="EMS2" if community else "EMS1")


def ems1(instance: xr.Dataset) -> xr.Dataset:
    """EMS1 (Algorithm 1) on an instance: the schedule of :mod:`recopt.ems.schedule`."""
    return _rules(instance, community=False)


def ems2(instance: xr.Dataset) -> xr.Dataset:
    """EMS2 (Algorithm 2) on an instance: the schedule of :mod:`recopt.ems.schedule`."""
    return _rules(instance, community=True)


#: The rule-based EMSs by name.
RULES = {"EMS1": ems1, "EMS2": ems2}

assert DIMS == ("scenario", "time", "member")  # the (S, T, U) layout used above
