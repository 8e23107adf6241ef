"""A Stage 1 schedule as a Dataset: the one form EMS1-EMS4 all return.

Variables (kWh per step unless said otherwise, on ``(scenario, time, member)``):

``meter_import`` / ``meter_export``
    P^{meter+} Delta t / P^{meter-} Delta t: what the member's meter records (28);
    Stage 2 needs nothing else.
``grid_import`` / ``grid_export``, ``community_import`` / ``community_export``
    Stage 1's own bookkeeping of the contractual flows (1)-(2) (for EMS1 the community
    flows are 0; for EMS2 ``community_import`` is the xi of Algorithm 2 and
    ``community_export`` the producers' matching share). Stage 2 recomputes the
    community flows from the meter flows and the keys.
``self_consumption``
    P^{indsc} Delta t: energy used behind the member's own meter.
``battery_charge`` / ``battery_discharge``, ``ev_charge`` / ``ev_discharge``
    P^{st+} Delta t / P^{st-} Delta t (0 for members without that storage).
``battery_soc`` / ``ev_soc``
    SoC in % on ``(scenario, time_boundary, member)``: ``time_boundary`` has |T|+1
    points, the start of every step and the end of the last (NaN for non-owners).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from recopt.data.schema import DIMS, STORAGE_KINDS
from recopt.ems.storage import StorageUnits

__all__ = ["FLOWS", "schedule_dataset", "time_boundaries"]

#: The flow variables of a schedule (kWh per step, (scenario, time, member)).
FLOWS = ("meter_import", "meter_export", "grid_import", "grid_export", "community_import",
         "community_export", "self_consumption")


def time_boundaries(instance: xr.Dataset) -> np.ndarray:
    """The |T|+1 SoC instants: every step's start and the end of the last step."""
    t = pd.DatetimeIndex(instance["time"].values)
    step = pd.Timedelta(hours=float(instance.attrs["time_step_hours"]))
    return np.append(t.values, (t[-1] + step).to_datetime64()).astype("datetime64[ns]")


def schedule_dataset(instance: xr.Dataset, flows_kw: dict[str, np.ndarray],
                     units: StorageUnits, charge_kw: np.ndarray, discharge_kw: np.ndarray,
                     soc: np.ndarray, ems: str, attrs: dict | None = None) -> xr.Dataset:
    """Assemble a schedule from arrays in kW (flows (S,T,U), storage (S,T,K), SoC (S,T+1,K)).

    Powers are turned into kWh per step here (times Delta t), the one place of that
    conversion for every EMS.
    """
    dt = float(instance.attrs["time_step_hours"])
    S, T, U = (instance.sizes[d] for d in DIMS)
    coords = {d: instance[d].values for d in DIMS}
    coords["time_boundary"] = time_boundaries(instance)
    kwh = {"units": "kWh"}
    data = {}
    for name in FLOWS:
        data[name] = (DIMS, np.asarray(flows_kw[name], float) * dt, dict(kwh))
    for kind in STORAGE_KINDS:
        ks = units.of_kind(kind)
        if ks.size == 0:
            continue
        ch = np.zeros((S, T, U))
        dis = np.zeros((S, T, U))
        s_full = np.full((S, T + 1, U), np.nan)
        ch[:, :, units.member[ks]] = charge_kw[:, :, ks] * dt
        dis[:, :, units.member[ks]] = discharge_kw[:, :, ks] * dt
        s_full[:, :, units.member[ks]] = soc[:, :, ks]
        data[f"{kind}_charge"] = (DIMS, ch, {**kwh, "long_name": f"P^{kind}+ dt"})
        data[f"{kind}_discharge"] = (DIMS, dis, {**kwh, "long_name": f"P^{kind}- dt"})
        data[f"{kind}_soc"] = (("scenario", "time_boundary", "member"), s_full,
                               {"units": "%", "long_name": f"state of charge of the {kind}"})
    ds = xr.Dataset(data, coords=coords)
    ds.attrs.update({"ems": ems, **(attrs or {})})
    return ds
