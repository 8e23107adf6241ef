"""Mustika et al.'s two-stage method end to end: Stage 1 EMS, then Stage 2 keys.

Source: A. D. Mustika, R. Rigo-Mariani, V. Debusschere, A. Pachurka, "A two-stage
management strategy for the optimal operation and billing in an energy community with
collective self-consumption", Applied Energy 310 (2022) 118484,
doi:10.1016/j.apenergy.2021.118484, §3 and §4 (Table 3, Figs 5-8). Model card:
``models/EMS1-EMS4.md``.

>>> from recopt.solve.two_stage import run_two_stage
>>> out = run_two_stage("instances/le_cailar_march.nc")       # doctest: +SKIP
>>> out.table3()                                               # doctest: +SKIP

For every EMS: its schedule (EMS1/EMS2 by the rules of :mod:`recopt.ems.rules`,
EMS3/EMS4 by :func:`recopt.solve.solve`), its Stage 2 instance (meter flows as
consumption / production, :func:`recopt.ems.stage2.stage2_instance`), then every key on
that instance: rule keys through :func:`recopt.keys.rules.settle_key`, optimised keys
and LPs (KoR8-KoR10, LP1, ...) through :func:`recopt.solve.solve`; all bills come from
the one settlement rule :mod:`recopt.settle`. The baseline of a row is the EMS's own:
the members' bills at grid prices on that EMS's meter flows.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from recopt.data import view
from recopt.ems.rules import RULES
from recopt.ems.stage2 import check_schedule, grid_scr, grid_ssr, stage2_instance
from recopt.errors import ModelError
from recopt.keys.rules import KEYS, settle_key
from recopt.metrics.community import self_consumption_rate, self_sufficiency_rate
from recopt.metrics.storage_plot import storage_schedule
from recopt.models import registry
from recopt.solve.runner import as_instance, solve
from recopt.solvers.status import Status

__all__ = ["EMS_NAMES", "MUSTIKA_KEYS_ALL", "TwoStageResult", "run_two_stage"]

EMS_NAMES = ("EMS1", "EMS2", "EMS3", "EMS4")
MUSTIKA_KEYS_ALL = ("KoR1", "KoR2", "KoR3", "KoR4", "KoR5", "KoR6", "KoR7", "KoR8", "KoR9",
                    "KoR10")


def _weighted(da: xr.DataArray, prob: xr.DataArray) -> xr.DataArray:
    return (da * prob).sum("scenario")


@dataclass
class TwoStageResult:
    """What :func:`run_two_stage` returns.

    Attributes
    ----------
    schedules : dict of str to xarray.Dataset
        The Stage 1 schedule of each EMS (:mod:`recopt.ems.schedule`).
    instances : dict of str to xarray.Dataset
        The Stage 2 instance of each EMS.
    settlements : dict of (str, str) to xarray.Dataset
        The settlement (or Result) of each (EMS, key), with ``bill``, ``baseline_bill``,
        ``collective_bill`` and ``baseline_collective_bill``.
    statuses : dict of (str, str) to str
        The status of each (EMS, key) (``optimal`` for the rule keys).
    ems_status : dict of str to str
        The Stage 1 status of each EMS.
    seconds : dict
        Wall time of each EMS and (EMS, key).
    """

    schedules: dict = field(default_factory=dict)
    instances: dict = field(default_factory=dict)
    settlements: dict = field(default_factory=dict)
    statuses: dict = field(default_factory=dict)
    ems_status: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)
    keys: tuple = ()

    def table3(self) -> xr.DataArray:
        """Table 3: expected collective bill (EUR) per EMS (rows) and column
        (``baseline``, then the keys); NaN where a key has no solution."""
        ems = list(self.schedules)
        cols = ["baseline", *self.keys]
        out = np.full((len(ems), len(cols)), np.nan)
        for i, e in enumerate(ems):
            prob = self.instances[e]["scenario_probability"]
            for j, k in enumerate(self.keys):
                ds = self.settlements.get((e, k))
                if ds is None or "collective_bill" not in ds:
                    continue
                out[i, j + 1] = float(_weighted(ds["collective_bill"], prob))
                out[i, 0] = float(_weighted(ds["baseline_collective_bill"], prob))
        return xr.DataArray(out, dims=("ems", "column"), coords={"ems": ems, "column": cols},
                            attrs={"units": "EUR", "long_name": "collective bill (Table 3)"})

    def bill_reductions(self) -> xr.DataArray:
        """Fig. 8: each member's bill reduction ``(B0 - B) / |B0|`` per EMS and key."""
        ems = list(self.schedules)
        members = self.instances[ems[0]]["member"].values
        out = np.full((len(ems), len(self.keys), members.size), np.nan)
        for i, e in enumerate(ems):
            prob = self.instances[e]["scenario_probability"]
            for j, k in enumerate(self.keys):
                ds = self.settlements.get((e, k))
                if ds is None or "bill" not in ds:
                    continue
                b = _weighted(ds["bill"], prob).values
                b0 = _weighted(ds["baseline_bill"], prob).values
                out[i, j] = np.divide(b0 - b, np.abs(b0), out=np.full_like(b, np.nan),
                                      where=b0 != 0)
        return xr.DataArray(out, dims=("ems", "key", "member"),
                            coords={"ems": ems, "key": list(self.keys), "member": members},
                            attrs={"units": "1", "long_name": "bill reduction (Fig. 8)"})

    def indicators(self) -> xr.Dataset:
        """Per EMS: grid exchange, Mustika's grid-based SCR (29) and SSR (31), and
        recopt's community ratios (M1 community self-consumption, mean member SSR) under
        KoR2 (the key that shares the most each step) when it was run."""
        ems = list(self.schedules)
        rows: dict[str, list[float]] = {k: [] for k in (
            "grid_import_kwh", "grid_export_kwh", "stage1_community_kwh", "grid_scr",
            "grid_ssr", "community_self_consumption_rate", "mean_member_ssr",
            "soc_end_minus_init")}
        for e in ems:
            s, inst2 = self.schedules[e], self.instances[e]
            prob = inst2["scenario_probability"]
            raw = self._raw
            assert raw is not None  # set by run_two_stage
            rows["grid_import_kwh"].append(float(_weighted(s["grid_import"].sum(
                ("time", "member")), prob)))
            rows["grid_export_kwh"].append(float(_weighted(s["grid_export"].sum(
                ("time", "member")), prob)))
            rows["stage1_community_kwh"].append(float(_weighted(s["community_import"].sum(
                ("time", "member")), prob)))
            rows["grid_scr"].append(float(_weighted(grid_scr(raw, s), prob)))
            rows["grid_ssr"].append(float(_weighted(grid_ssr(raw, s), prob)))
            ds = self.settlements.get((e, "KoR2"))
            if ds is not None and "community_intake" in ds:
                cin = view.stm(ds, "community_intake")
                G = ds["community_production"].transpose("scenario", "time").values
                w = prob.values
                rows["community_self_consumption_rate"].append(
                    float((w * self_consumption_rate(cin, G)).sum()))
                # recopt's (de Villena) SSR on the ORIGINAL loads: own PV behind the meter
                # counts only through the meter flows, so this is on the Stage 2 instance
                c2 = view.stm(inst2, "consumption")
                p2 = view.stm(inst2, "production")
                ssr = self_sufficiency_rate(c2, p2, cin)
                rows["mean_member_ssr"].append(float((w * np.nanmean(ssr, axis=-1)).sum()))
            else:
                rows["community_self_consumption_rate"].append(math.nan)
                rows["mean_member_ssr"].append(math.nan)
            rows["soc_end_minus_init"].append(check_schedule(raw, s)["soc_final"])
        return xr.Dataset({k: ("ems", v) for k, v in rows.items()}, coords={"ems": ems})

    _raw: xr.Dataset | None = None


def _settle_one(inst2: xr.Dataset, key: str, solver_kw: dict, key_options: Mapping):
    opts = dict(key_options.get(key, {}))
    if key in KEYS:
        return settle_key(inst2, key, **opts), Status.OPTIMAL.value
    registry.get(key)  # an unknown name is a ModelError naming the known ones
    res = solve(inst2, key, **solver_kw, **opts)
    return res, res.attrs.get("status", "?")


def run_two_stage(instance, ems: Sequence[str] = EMS_NAMES,
                  keys: Sequence[str] = MUSTIKA_KEYS_ALL, *,
                  ems_options: Mapping[str, Mapping] | None = None,
                  key_options: Mapping[str, Mapping] | None = None,
                  solver: str = "highs", time_limit: float | None = None,
                  mip_gap: float | None = None, workers: int | None = 1,
                  progress=None) -> TwoStageResult:
    """Run Stage 1 (each EMS) then Stage 2 (each key) on an instance with storage.

    Parameters
    ----------
    instance : xarray.Dataset or path
        An instance with ``battery_*`` / ``ev_*`` storage (optional) and prices.
    ems : sequence of str
        Any of EMS1, EMS2 (rules), EMS3, EMS4 (LPs).
    keys : sequence of str
        Rule keys (KoR1-KoR7, GS, ES, ...) and registered models (KoR8-KoR10, LP1, ...).
    ems_options : mapping, optional
        ``{"EMS4": {"penalty": "lexicographic"}}``: options of the EMS models.
    key_options : mapping, optional
        ``{"KoR10": {"order": "bill_then_fairness"}}``.
    solver, time_limit, mip_gap, workers
        Passed to :func:`recopt.solve.solve` (``time_limit`` per solve).
    progress : callable, optional
        Called with one line of text after each step.
    """
    inst = as_instance(instance)
    ems_options = dict(ems_options or {})
    key_options = dict(key_options or {})
    solver_kw: dict[str, Any] = dict(solver=solver, time_limit=time_limit, mip_gap=mip_gap,
                                     workers=workers)
    out = TwoStageResult(keys=tuple(keys))
    out._raw = inst
    for e in ems:
        t0 = time.perf_counter()
        name = e.upper()
        if name in RULES:
            schedule = RULES[name](inst)
            status = Status.OPTIMAL.value
        elif name in ("EMS3", "EMS4"):
            schedule = solve(inst, name, **solver_kw, **ems_options.get(name, {}))
            status = schedule.attrs.get("status", "?")
            if not int(schedule.attrs.get("has_solution", 0)):
                out.ems_status[name] = status
                out.seconds[name] = time.perf_counter() - t0
                if progress:
                    progress(f"{name}: {status} ({schedule.attrs.get('message', '')})")
                continue
        else:
            raise ModelError(f"unknown EMS {e!r}; known: {', '.join(EMS_NAMES)}")
        inst2 = stage2_instance(inst, schedule)
        out.schedules[name], out.instances[name], out.ems_status[name] = schedule, inst2, status
        out.seconds[name] = time.perf_counter() - t0
        if progress:
            progress(f"{name}: {status} in {out.seconds[name]:.2f} s")
        for k in keys:
            t1 = time.perf_counter()
            ds, st = _settle_one(inst2, k, solver_kw, key_options)
            out.settlements[(name, k)], out.statuses[(name, k)] = ds, st
            out.seconds[(name, k)] = time.perf_counter() - t1
    return out


def write_outputs(result: TwoStageResult, folder: str | Path, plots: bool = True) -> list[Path]:
    """Write Table 3, the bill reductions, the indicators (CSV), the schedules (netCDF)
    and the storage-schedule plots (PNG) into ``folder``; returns the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    t3 = result.table3().to_pandas()
    t3.to_csv(folder / "table3_collective_bills.csv", float_format="%.4f")
    paths.append(folder / "table3_collective_bills.csv")
    red = result.bill_reductions().to_dataframe(name="bill_reduction").reset_index()
    red.to_csv(folder / "bill_reductions.csv", index=False, float_format="%.6f")
    paths.append(folder / "bill_reductions.csv")
    ind = result.indicators().to_dataframe()
    ind.to_csv(folder / "indicators.csv", float_format="%.6f")
    paths.append(folder / "indicators.csv")
    for e, s in result.schedules.items():
        p = folder / f"schedule_{e}.nc"
        s.drop_attrs().to_netcdf(p)
        paths.append(p)
        if plots:
            png = folder / f"storage_{e}.png"
            storage_schedule(s, png, title=f"{e}: storage schedule")
            week = folder / f"storage_{e}_first_week.png"
            storage_schedule(s, week, title=f"{e}: storage schedule, first 7 days", days=7)
            paths += [png, week]
    return paths


def format_tables(result: TwoStageResult) -> str:
    """Table 3, the indicators and the bill reductions as text."""
    t3 = result.table3().to_pandas()
    lines = ["Table 3 -- collective bill (EUR) per EMS: its own baseline, then each key",
             t3.round(2).to_string(), ""]
    ind = result.indicators().to_dataframe()
    lines += ["Stage 1 indicators (grid_scr / grid_ssr: Mustika (29)/(31); community ratios: "
              "recopt's, under KoR2)", ind.round(4).to_string(), ""]
    red = result.bill_reductions()
    for e in red["ems"].values:
        lines += [f"bill reduction per member (Fig. 8), {e}, %",
                  (100 * red.sel(ems=e)).to_pandas().round(1).to_string(), ""]
    bad = {k: v for k, v in result.statuses.items() if v != Status.OPTIMAL.value}
    bad.update({e: v for e, v in result.ems_status.items() if v != Status.OPTIMAL.value})
    if bad:
        lines.append("not optimal: " + ", ".join(f"{k}: {v}" for k, v in bad.items()))
    return "\n".join(lines)
