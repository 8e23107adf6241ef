"""From a Stage 1 schedule to Stage 2: the meter-flow instance, indicators, checks.

* :func:`stage2_instance` -- the instance Stage 2 works on: ``consumption`` /
  ``production`` are the EMS's meter withdrawals / injections (so
  :func:`recopt.settle.meter_flows` is a no-op on it), the schedule's trajectories are
  kept as extra variables; every key, LP, metric and :func:`recopt.settle.settle` work
  on it unchanged.
* :func:`grid_scr`, :func:`grid_ssr` -- Mustika's grid-based self-consumption (29) and
  self-sufficiency (31) ratios (not recopt's community ratios of
  :mod:`recopt.metrics.community`).
* :func:`check_schedule` -- the checks C1 (member balance), C3 (SoC dynamics, bounds,
  energy identity), C4 (limits (17)-(19), reported), C6 (complementarity) of the card.

Source: Mustika et al., Applied Energy 310 (2022) 118484,
doi:10.1016/j.apenergy.2021.118484, eqs (1)-(3), (17)-(32).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from recopt.data import view
from recopt.data.instance import validate
from recopt.data.schema import DIMS, STORAGE_KINDS
from recopt.ems.storage import PowerData, StorageUnits

__all__ = ["stage2_instance", "grid_scr", "grid_ssr", "complementarity_violations",
           "check_schedule", "with_indicators", "PAIRS", "TOLERANCE_KWH"]

#: Tolerance of the checks, kWh per step (the card's 1e-6 kWh).
TOLERANCE_KWH = 1e-6
#: The complementary pairs of check C6.
PAIRS = {"grid": ("grid_import", "grid_export"),
         "community": ("community_import", "community_export"),
         "battery": ("battery_charge", "battery_discharge"),
         "ev": ("ev_charge", "ev_discharge")}


def stage2_instance(instance: xr.Dataset, schedule: xr.Dataset) -> xr.Dataset:
    """The Stage 2 instance of a schedule: meter flows as consumption / production.

    Every other variable of ``instance`` (prices, fees, investment, storage data) is
    kept; the schedule's variables are added under ``stage1_<name>`` (SoC keeps its
    ``time_boundary`` dim); ``attrs["stage1_ems"]`` names the EMS.
    """
    out = instance.copy()
    out["consumption"] = schedule["meter_import"].transpose(*DIMS).copy()
    out["production"] = schedule["meter_export"].transpose(*DIMS).copy()
    for energy in ("consumption", "production"):
        out[energy].attrs = {"units": "kWh"}
    for name, var in schedule.data_vars.items():
        if name in ("meter_import", "meter_export"):
            continue
        out[f"stage1_{name}"] = var
    out.attrs["stage1_ems"] = schedule.attrs.get("ems", "")
    return validate(out)


def grid_scr(instance: xr.Dataset, schedule: xr.Dataset) -> xr.DataArray:
    """Mustika (29): ``SCR = 1 - sum gd- / sum P^PV`` per scenario (NaN without PV)."""
    pv = instance["production"].sum(("time", "member"))
    out = 1.0 - schedule["grid_export"].sum(("time", "member")) / pv.where(pv > 0)
    return out.assign_attrs(units="1", long_name="grid-based self-consumption ratio (29)")


def grid_ssr(instance: xr.Dataset, schedule: xr.Dataset) -> xr.DataArray:
    """Mustika (31): ``SSR = 1 - sum gd+ / sum P^load`` per scenario."""
    load = instance["consumption"].sum(("time", "member"))
    out = 1.0 - schedule["grid_import"].sum(("time", "member")) / load.where(load > 0)
    return out.assign_attrs(units="1", long_name="grid-based self-sufficiency ratio (31)")


def complementarity_violations(schedule: xr.Dataset, tol: float = TOLERANCE_KWH
                               ) -> dict[str, int]:
    """Check C6: number of (scenario, step, member) where both halves of a pair exceed
    ``tol`` kWh (grid, community, battery, EV)."""
    out = {}
    for pair, (a, b) in PAIRS.items():
        if a in schedule and b in schedule:
            out[pair] = int(((schedule[a] > tol) & (schedule[b] > tol)).sum())
    return out


def check_schedule(instance: xr.Dataset, schedule: xr.Dataset, *, kinds=STORAGE_KINDS,
                   final_soc: str | None = None, tol: float = TOLERANCE_KWH) -> dict:
    """The checks C1, C3, C4, C6 of the card on a schedule.

    Returns a dict of maximal violations (kWh per step, or % of SoC) and counts:
    ``balance`` (C1), ``meter_complementarity`` (C1, meter+ meter- both > 0),
    ``soc_dynamics``, ``soc_bounds``, ``power_bounds``, ``soc_initial``, ``soc_final``
    (``SOC_end - SOC_init``, min over units; negative means (24) is violated),
    ``energy_identity`` (C3), ``ev_away_power`` (S-5), ``subs_import``,
    ``subs_export``, ``peak_import`` (C4, kW over the limit), and the C6 counts.
    Only the storage kinds the schedule operates are checked (EMS1/EMS2: batteries; the
    EV is idle there).
    """
    pw = PowerData.from_instance(instance)
    kinds = tuple(k for k in kinds if f"{k}_charge" in schedule)  # EMS1/EMS2: batteries
    units = StorageUnits.from_instance(instance, kinds=kinds)
    dt = pw.step_hours
    S, T, U = pw.load_kw.shape
    v = {k: view.stm(schedule, str(k)) for k in schedule.data_vars
         if schedule[k].dims == DIMS}
    storage_net = np.zeros((S, T, U))
    for kind in STORAGE_KINDS:
        if f"{kind}_charge" in v:
            storage_net += v[f"{kind}_charge"] - v[f"{kind}_discharge"]
    cons = view.stm(instance, "consumption")
    prod = view.stm(instance, "production")
    out: dict[str, float | int] = {}
    out["balance"] = float(np.abs(cons - prod + storage_net
                                  - (v["meter_import"] - v["meter_export"])).max())
    out["meter_complementarity"] = int(((v["meter_import"] > tol)
                                        & (v["meter_export"] > tol)).sum())
    gc, gd = units.soc_gain(dt)
    dyn = bounds = pbound = ident = away = init = 0.0
    final = np.inf
    for k in range(units.size):
        kind, n = units.kind[k], units.member[k]
        ch = v[f"{kind}_charge"][:, :, n] / dt
        dis = v[f"{kind}_discharge"][:, :, n] / dt
        soc = schedule[f"{kind}_soc"].transpose("scenario", "time_boundary", "member"
                                                ).values[:, :, n]
        dyn = max(dyn, float(np.abs(soc[:, 1:] - soc[:, :-1] - gc[k] * ch + gd[k] * dis).max()))
        bounds = max(bounds, float(np.maximum(units.soc_min[k] - soc,
                                              soc - units.soc_max[k]).max()))
        pbound = max(pbound, float(np.maximum(np.maximum(-ch, -dis),
                                              np.maximum(ch, dis) - units.power_kw[k]).max()))
        init = max(init, float(np.abs(soc[:, 0] - units.soc_init[k]).max()))
        final = min(final, float((soc[:, -1] - units.soc_init[k]).min()))
        lhs = units.energy_kwh[k] * (soc[:, -1] - soc[:, 0]) / 100.0
        rhs = (units.mu[k] * ch.sum(axis=1) - dis.sum(axis=1) / units.mu[k]) * dt
        ident = max(ident, float(np.abs(lhs - rhs).max()))
        off = ~units.available[:, k]
        if off.any():
            away = max(away, float(np.maximum(ch[:, off], dis[:, off]).max()))
    out.update(soc_dynamics=dyn, soc_bounds=bounds, power_bounds=pbound, soc_initial=init,
               soc_final=final if units.size else 0.0, energy_identity=ident,
               ev_away_power=away)
    if pw.subscribed_kw is not None:
        out["subs_import"] = float(((v["grid_import"] + v["community_import"]) / dt
                                    - pw.subscribed_kw).max())
        out["subs_export"] = float(((v["grid_export"] + v["community_export"]) / dt
                                    - pw.subscribed_kw).max())
    out["peak_import"] = float((v["grid_import"] / dt - pw.peak_load_kw[:, None, :]).max())
    out.update({f"complementarity_{k}": c
                for k, c in complementarity_violations(schedule, tol).items()})
    return out


def with_indicators(instance: xr.Dataset, schedule: xr.Dataset) -> xr.Dataset:
    """The schedule plus grid-based SCR (29), SSR (31) and the community exchange."""
    out = schedule.copy()
    out["grid_scr"] = grid_scr(instance, schedule)
    out["grid_ssr"] = grid_ssr(instance, schedule)
    for name in ("grid_import", "grid_export", "community_import"):
        out[f"total_{name}"] = schedule[name].sum(("time", "member")).assign_attrs(
            units="kWh", long_name=f"{name} over the horizon")
    return out
