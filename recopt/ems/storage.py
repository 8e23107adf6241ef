"""The storage and power data of an instance as arrays, in Mustika's units.

Powers in kW (mean power over a step: energy per step / ``time_step_hours``), energies
in kWh, states of charge in percent of the usable capacity (the factor ``100 / E`` of
Mustika (22)), efficiencies one way (the ``mu`` of (22); an instance may give them as
round trip, see :func:`recopt.data.one_way_efficiency`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from recopt.data import view
from recopt.data.instance import one_way_efficiency
from recopt.data.schema import STORAGE_KINDS, storage_variable

__all__ = ["StorageUnits", "PowerData"]


@dataclass(frozen=True)
class StorageUnits:
    """Every storage owned by a member (``power_kw > 0``), one entry per unit.

    Attributes
    ----------
    kind : numpy.ndarray of str, shape (K,)
        ``"battery"`` or ``"ev"``.
    member : numpy.ndarray of int, shape (K,)
        Position of the owner in the instance's ``member`` dim.
    power_kw, energy_kwh, soc_min, soc_max, soc_init, mu : numpy.ndarray, shape (K,)
        P_max (kW, charge = discharge limit, (20)), E_max (kWh), SoC bounds and initial
        value (%, (21), (23)), one-way efficiency (22).
    available : numpy.ndarray of bool, shape (T, K)
        Whether the unit may charge or discharge at each step (EVs: plugged in, (S-5);
        batteries: always).
    """

    kind: np.ndarray
    member: np.ndarray
    power_kw: np.ndarray
    energy_kwh: np.ndarray
    soc_min: np.ndarray
    soc_max: np.ndarray
    soc_init: np.ndarray
    mu: np.ndarray
    available: np.ndarray

    @property
    def size(self) -> int:
        return int(self.kind.size)

    def of_kind(self, kind: str) -> np.ndarray:
        """Positions of the units of one kind."""
        return np.flatnonzero(self.kind == kind)

    @classmethod
    def from_instance(cls, instance: xr.Dataset, kinds=STORAGE_KINDS) -> StorageUnits:
        """The units of the given kinds (``("battery",)`` for the rule-based EMSs)."""
        T = instance.sizes["time"]
        cols: dict[str, list] = {k: [] for k in ("kind", "member", "power_kw", "energy_kwh",
                                                 "soc_min", "soc_max", "soc_init", "mu")}
        avail = []
        for kind in kinds:
            name = storage_variable(kind, "power_kw")
            if name not in instance:
                continue
            power = np.asarray(instance[name].values, float)
            owners = np.flatnonzero(power > 0)
            if owners.size == 0:
                continue
            cols["kind"] += [kind] * owners.size
            cols["member"] += owners.tolist()
            cols["power_kw"] += power[owners].tolist()
            for f in ("energy_kwh", "soc_min", "soc_max", "soc_init"):
                cols[f] += np.asarray(instance[storage_variable(kind, f)].values,
                                      float)[owners].tolist()
            cols["mu"] += one_way_efficiency(instance, kind)[owners].tolist()
            if kind == "ev" and "ev_available" in instance:
                a = instance["ev_available"].transpose("time", "member").values
                avail.append(np.asarray(a, bool)[:, owners])
            else:
                avail.append(np.ones((T, owners.size), bool))
        return cls(
            kind=np.asarray(cols["kind"], dtype=str),
            member=np.asarray(cols["member"], dtype=int),
            **{f: np.asarray(cols[f], float) for f in ("power_kw", "energy_kwh", "soc_min",
                                                       "soc_max", "soc_init", "mu")},
            available=np.concatenate(avail, axis=1) if avail else np.ones((T, 0), bool),
        )

    def soc_gain(self, step_hours: float) -> tuple[np.ndarray, np.ndarray]:
        """Percent of SoC per kW over one step: (charge ``mu dt 100/E``, discharge
        ``dt 100 / (mu E)``), the coefficients of (22)."""
        k = step_hours * 100.0 / self.energy_kwh
        return self.mu * k, k / self.mu


@dataclass(frozen=True)
class PowerData:
    """Load, PV and limits of an instance in kW.

    Attributes
    ----------
    load_kw, pv_kw : numpy.ndarray, shape (S, T, U)
        P^load and P^PV: consumption and production per step divided by the step
        length (mean power, kW).
    step_hours : float
        Delta t (h).
    subscribed_kw : numpy.ndarray or None, shape (U,)
        P^subs (kW = kVA), or None when the instance has no subscribed power (then
        (17)-(18) are left out).
    peak_load_kw : numpy.ndarray, shape (S, U)
        L^_n = max_t P^load_{n,t} of (19) / (S-4).
    """

    load_kw: np.ndarray
    pv_kw: np.ndarray
    step_hours: float
    subscribed_kw: np.ndarray | None
    peak_load_kw: np.ndarray

    @classmethod
    def from_instance(cls, instance: xr.Dataset) -> PowerData:
        dt = float(instance.attrs["time_step_hours"])
        load = view.stm(instance, "consumption") / dt
        pv = view.stm(instance, "production") / dt
        subs = (np.asarray(instance["subscribed_power_kw"].values, float)
                if "subscribed_power_kw" in instance else None)
        return cls(load, pv, dt, subs, load.max(axis=1))
