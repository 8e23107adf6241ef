"""Plots of key comparisons under uncertainty (PNG files, matplotlib Agg).

* :func:`radar` -- normalised metrics per key (Ospina Fig. 7: SCR, mean SSR, mean
  bill saving, CO2 avoided, Gini inverted so that outer = better);
* :func:`member_bars` -- per-member SSR and bill savings per key, mean with P10-P90
  whiskers;
* :func:`bands` -- each metric's mean and P10-P90 band per key (Ospina §5.2);
* :func:`convergence_plot` -- CI half-width against N with the tolerance and N*
  (Ospina Fig. 8).

Inputs are ``{key name: Dataset}`` mappings of per-scenario metrics
(:func:`recopt.metrics.evaluate` outputs). The figures are drawn on a
:class:`matplotlib.figure.Figure` with the Agg canvas (no pyplot, no global backend
change, nothing shown) and written to PNG.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from recopt.errors import ModelError
from recopt.metrics.community import across_scenarios

__all__ = ["RADAR_AXES", "normalise", "radar", "member_bars", "bands", "convergence_plot"]

#: Ospina Fig. 7 axes: (variable, label, higher is better).
RADAR_AXES = (
    ("self_consumption_rate", "SCR", True),
    ("self_sufficiency_mean", "mean SSR", True),
    ("bill_saving_mean", "mean bill saving", True),
    ("co2_avoided", "CO2 avoided", True),
    ("gini", "Gini (inverted)", False),
)


def _figure(**kw):
    """A matplotlib Figure on the Agg canvas (matplotlib is imported only to draw)."""
    from matplotlib.figure import Figure

    return Figure(**kw)


def _save(fig, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return path


def _stats(results: Mapping[str, xr.Dataset]) -> dict[str, xr.Dataset]:
    if not results:
        raise ModelError("nothing to plot: give {key: metrics Dataset}")
    return {k: across_scenarios(ds) if "scenario" in ds.dims else ds
            for k, ds in results.items()}


def normalise(values: np.ndarray, higher_is_better: bool = True) -> np.ndarray:
    """Min-max normalisation over keys to [0, 1], 1 = best (all equal -> 1)."""
    v = np.asarray(values, dtype=float)
    lo, hi = np.nanmin(v), np.nanmax(v)
    if not np.isfinite(hi - lo) or hi - lo <= 1e-12 * max(abs(hi), abs(lo), 1.0):
        return np.ones_like(v)
    return (v - lo) / (hi - lo) if higher_is_better else (hi - v) / (hi - lo)


def radar(results: Mapping[str, xr.Dataset], path, *,
          axes: Sequence[tuple[str, str, bool]] = RADAR_AXES, title: str | None = None) -> Path:
    """Radar of the scenario means, min-max normalised over keys (outer = better).

    Axes whose variable is missing from the results (e.g. CO2 without an intensity
    series) are left out. Returns the PNG path.
    """
    stats = _stats(results)
    keys = list(stats)
    axes = [a for a in axes if all(a[0] in stats[k] for k in keys)]
    if len(axes) < 3:
        raise ModelError("a radar needs at least 3 metrics present in every key's results")
    means = np.array([[float(stats[k][v].sel(stat="mean")) for v, _, _ in axes]
                      for k in keys])
    norm = np.column_stack([normalise(means[:, j], better)
                            for j, (_, _, better) in enumerate(axes)])
    angles = np.linspace(0, 2 * np.pi, len(axes), endpoint=False)
    fig = _figure(figsize=(6, 6))
    ax = fig.add_subplot(projection="polar")
    for i, k in enumerate(keys):
        r = np.r_[norm[i], norm[i, :1]]
        a = np.r_[angles, angles[:1]]
        ax.plot(a, r, label=k, linewidth=1.5)
        ax.fill(a, r, alpha=0.08)
    ax.set_xticks(angles)
    ax.set_xticklabels([lab for _, lab, _ in axes])
    ax.set_ylim(0, 1.05)
    ax.set_yticklabels([])
    ax.legend(loc="upper right", bbox_to_anchor=(1.25, 1.1), fontsize=8)
    ax.set_title(title or "metrics per key (scenario means, min-max normalised)", fontsize=10)
    return _save(fig, path)


def member_bars(results: Mapping[str, xr.Dataset], path, *,
                variables: Sequence[str] = ("self_sufficiency", "bill_saving")) -> Path:
    """Per-member bars per key (scenario mean) with P10-P90 whiskers, one panel a variable."""
    stats = _stats(results)
    keys = list(stats)
    variables = [v for v in variables if all(v in stats[k] for k in keys)]
    if not variables:
        raise ModelError("none of the per-member variables is in every key's results")
    fig = _figure(figsize=(max(6, 0.6 * stats[keys[0]].sizes.get("member", 5) * len(keys)),
                          3.2 * len(variables)))
    for row, v in enumerate(variables):
        ax = fig.add_subplot(len(variables), 1, row + 1)
        members = [str(m) for m in stats[keys[0]][v]["member"].values]
        x = np.arange(len(members))
        width = 0.8 / len(keys)
        for i, k in enumerate(keys):
            da = stats[k][v]
            mean = da.sel(stat="mean").values
            lo, hi = da.sel(stat="p10").values, da.sel(stat="p90").values
            ax.bar(x + (i - (len(keys) - 1) / 2) * width, mean, width, label=k,
                   yerr=np.vstack([mean - lo, hi - mean]), capsize=2)
        ax.set_xticks(x)
        ax.set_xticklabels(members, rotation=45, ha="right", fontsize=8)
        unit = stats[keys[0]][v].attrs.get("units", "")
        ax.set_ylabel(f"{v} [{unit}]")
        if row == 0:
            ax.legend(fontsize=8, ncol=len(keys))
    fig.tight_layout()
    return _save(fig, path)


def bands(results: Mapping[str, xr.Dataset], path, *,
          metrics: Sequence[str] = ("self_consumption_rate", "self_sufficiency_mean",
                                    "bill_saving_mean", "gini", "energy_to_shift_total",
                                    "co2_avoided")) -> Path:
    """Mean and P10-P90 band of each per-scenario metric, keys side by side."""
    stats = _stats(results)
    keys = list(stats)
    metrics = [m for m in metrics if all(m in stats[k] and stats[k][m].dims == ("stat",)
                                         for k in keys)]
    if not metrics:
        raise ModelError("none of the metrics is in every key's results")
    cols = min(3, len(metrics))
    rows = int(np.ceil(len(metrics) / cols))
    fig = _figure(figsize=(4 * cols, 3 * rows))
    x = np.arange(len(keys))
    for j, m in enumerate(metrics):
        ax = fig.add_subplot(rows, cols, j + 1)
        mean = np.array([float(stats[k][m].sel(stat="mean")) for k in keys])
        lo = np.array([float(stats[k][m].sel(stat="p10")) for k in keys])
        hi = np.array([float(stats[k][m].sel(stat="p90")) for k in keys])
        ax.bar(x, hi - lo, bottom=lo, width=0.5, alpha=0.35, label="P10-P90")
        ax.plot(x, mean, "o", color="black", label="mean")
        ax.margins(y=0.15)
        ax.set_xticks(x)
        ax.set_xticklabels(keys, fontsize=8)
        unit = stats[keys[0]][m].attrs.get("units", "")
        ax.set_title(f"{m} [{unit}]", fontsize=9)
        if j == 0:
            ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def convergence_plot(conv: xr.Dataset, path) -> Path:
    """CI half-width h(N) per (key, metric), tolerance and N* (Ospina Fig. 8).

    ``conv``: output of :func:`recopt.metrics.convergence.convergence`. One panel per
    metric (its own unit), one line per key.
    """
    metrics = [str(m) for m in conv["metric"].values]
    cols = min(3, len(metrics))
    rows = int(np.ceil(len(metrics) / cols))
    fig = _figure(figsize=(4.2 * cols, 3 * rows))
    n = conv["n"].values
    n_star = conv.attrs.get("n_star", -1)
    for j, m in enumerate(metrics):
        ax = fig.add_subplot(rows, cols, j + 1)
        for k in conv["key"].values:
            ax.plot(n, conv["half_width"].sel(key=k, metric=m).values, label=str(k),
                    linewidth=1)
        tol = conv["tolerance"].sel(metric=m).item()
        if not conv.attrs.get("relative", 0):
            ax.axhline(tol, color="grey", linestyle="--", linewidth=1, label="tolerance")
        if n_star and n_star > 0:
            ax.axvline(n_star, color="red", linewidth=1, label=f"N* = {n_star}")
        ax.set_title(m, fontsize=9)
        ax.set_xlabel("N")
        ax.set_ylabel("95% CI half-width")
        if j == 0:
            ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)
