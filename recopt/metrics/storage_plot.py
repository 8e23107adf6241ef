"""Plot of a Stage 1 storage schedule (EMS1-EMS4, Mustika et al. 2022 Figs 6-7).

matplotlib is imported when a figure is drawn (Agg canvas, no pyplot, nothing shown), so
importing this module costs nothing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

__all__ = ["storage_schedule"]


def storage_schedule(schedule: xr.Dataset, path, *, title: str = "storage schedule",
                     scenario: int = 0, days: float | None = None) -> Path:
    """Plot a Stage 1 schedule (:mod:`recopt.ems.schedule`): SoC, storage power, grid.

    Three panels sharing the time axis: the SoC (%) of every battery and EV; the net
    storage power (kW, discharge positive) of every owner; the community's grid import
    and export (kW, export drawn negative). ``days`` limits the plot to the first days.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    s = schedule.isel(scenario=scenario)
    t = s["time"].values
    tb = s["time_boundary"].values
    dt_h = (t[1] - t[0]) / np.timedelta64(1, "h") if t.size > 1 else 1.0
    n_t = t.size if days is None else min(t.size, int(round(days * 24 / dt_h)))
    fig = Figure(figsize=(11, 7.5), constrained_layout=True)
    FigureCanvasAgg(fig)
    ax_soc, ax_p, ax_g = fig.subplots(3, 1, sharex=True)
    for kind, style in (("battery", "-"), ("ev", "--")):
        if f"{kind}_soc" not in s:
            continue
        soc = s[f"{kind}_soc"].transpose("time_boundary", "member")
        for m in s["member"].values:
            values = soc.sel(member=m).values[: n_t + 1]
            if np.isnan(values).all():
                continue
            ax_soc.plot(tb[: n_t + 1], values, style, lw=0.9, label=f"{kind} {m}")
            power = (s[f"{kind}_discharge"] - s[f"{kind}_charge"]).sel(member=m).values / dt_h
            ax_p.step(t[:n_t], power[:n_t], style, where="post", lw=0.7, label=f"{kind} {m}")
    ax_soc.set_ylabel("SoC (%)")
    ax_soc.set_ylim(-2, 102)
    ax_p.set_ylabel("discharge - charge (kW)")
    ax_p.axhline(0, color="0.5", lw=0.5)
    imp = s["grid_import"].sum("member").values[:n_t] / dt_h
    exp = s["grid_export"].sum("member").values[:n_t] / dt_h
    ax_g.step(t[:n_t], imp, where="post", lw=0.7, label="grid import")
    ax_g.step(t[:n_t], -exp, where="post", lw=0.7, label="grid export (negative)")
    ax_g.set_ylabel("community grid flow (kW)")
    ax_g.axhline(0, color="0.5", lw=0.5)
    for ax in (ax_soc, ax_p, ax_g):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, ncol=4, loc="upper right")
    ax_g.set_xlabel("time (UTC)")
    fig.suptitle(title)
    path = Path(path)
    fig.savefig(path, dpi=110)
    return path
