"""Figure of a Stage 1 storage schedule (EMS1-EMS4, Mustika et al. 2022, Figs 6-7).

In the project style (:mod:`recopt.metrics.style`: fixed size, units in words, PNG +
PDF). matplotlib is imported when a figure is drawn (Agg canvas, no pyplot, nothing
shown), so importing this module costs nothing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from recopt.metrics.style import PALETTE, figure, save, styled

__all__ = ["storage_schedule", "MAX_OWNERS"]

#: Storage owners drawn one by one; beyond this many, the largest ones and the sum.
MAX_OWNERS = 6


def storage_schedule(schedule: xr.Dataset, path, *, title: str = "storage schedule",
                     scenario: int = 0, days: float | None = None) -> Path:
    """Plot a Stage 1 schedule (:mod:`recopt.ems.schedule`): SoC, storage power, grid.

    Three panels sharing the time axis: the state of charge (percent) of every battery
    and EV; the net storage power (kilowatts, discharge positive) of every owner; the
    community's grid import and export (kilowatts, export drawn negative). With more
    than :data:`MAX_OWNERS` storage units, the :data:`MAX_OWNERS` largest by throughput
    are drawn and the power panel adds the sum of all. ``days`` limits the plot to the
    first days. Returns the PNG path (a PDF is written beside it).
    """
    s = schedule.isel(scenario=scenario)
    t = s["time"].values
    tb = s["time_boundary"].values
    dt_h = (t[1] - t[0]) / np.timedelta64(1, "h") if t.size > 1 else 1.0
    n_t = t.size if days is None else min(t.size, int(round(days * 24 / dt_h)))
    units = []  # (label, style, soc, power)
    for kind, style in (("battery", "-"), ("ev", "--")):
        if f"{kind}_soc" not in s:
            continue
        soc = s[f"{kind}_soc"].transpose("time_boundary", "member")
        for m in s["member"].values:
            values = soc.sel(member=m).values[: n_t + 1]
            if np.isnan(values).all():
                continue
            power = ((s[f"{kind}_discharge"] - s[f"{kind}_charge"]).sel(member=m).values
                     / dt_h)[:n_t]
            units.append((f"{'EV' if kind == 'ev' else kind} {m}", style, values, power))
    shown = sorted(units, key=lambda u: -float(np.nansum(np.abs(u[3]))))[:MAX_OWNERS]
    from matplotlib import dates as mdates  # optional: figures only

    with styled():
        fig = figure("tall")
        ax_soc, ax_p, ax_g = fig.subplots(3, 1, sharex=True)
        for j, (label, style, soc_v, power) in enumerate(shown):
            c = PALETTE[j % len(PALETTE)]
            ax_soc.plot(tb[: n_t + 1], soc_v, style, color=c, lw=1.0, label=label)
            ax_p.step(t[:n_t], power, style, color=c, where="post", lw=0.8, label=label)
        if len(units) > len(shown):
            total = np.sum([u[3] for u in units], axis=0)
            ax_p.step(t[:n_t], total, "-", color="black", where="post", lw=1.0,
                      label=f"all {len(units)} units")
            ax_soc.set_title(f"state of charge ({len(shown)} of {len(units)} units: the "
                             "largest throughput)", loc="left")
        else:
            ax_soc.set_title("state of charge", loc="left")
        ax_soc.set_ylabel("state of charge (percent)")
        ax_soc.set_ylim(-2, 102)
        ax_p.set_title("storage power (discharge positive)", loc="left")
        ax_p.set_ylabel("power (kilowatts)")
        ax_p.axhline(0, color="0.5", lw=0.5)
        imp = s["grid_import"].sum("member").values[:n_t] / dt_h
        exp = s["grid_export"].sum("member").values[:n_t] / dt_h
        ax_g.step(t[:n_t], imp, where="post", lw=0.8, color="#D55E00", label="grid import")
        ax_g.step(t[:n_t], -exp, where="post", lw=0.8, color="#009E73",
                  label="grid export (drawn negative)")
        ax_g.set_title("community grid exchange", loc="left")
        ax_g.set_ylabel("power (kilowatts)")
        ax_g.axhline(0, color="0.5", lw=0.5)
        # one legend of the storage units for both upper panels, below the figure (a
        # legend inside the SoC panel covers the curves), the grid's in its panel
        handles, labels = ax_p.get_legend_handles_labels()
        if handles:
            fig.legend(handles, labels, loc="outside lower center",
                       ncol=min(4, len(handles)))
        ax_g.legend(ncol=2, loc="upper right")
        locator = mdates.AutoDateLocator(minticks=4, maxticks=8)
        ax_g.xaxis.set_major_locator(locator)
        ax_g.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        ax_g.set_xlabel("time (UTC)")
        fig.suptitle(title)
        return save(fig, path)
