"""Figures of key comparisons under uncertainty (PNG + PDF, :mod:`recopt.metrics.style`).

* :func:`key_comparison` -- the community metrics of every key (Ospina Lopez 2026,
  §5.1-5.2: SCR, mean SSR, mean bill saving, Gini, energy to shift, CO2 avoided) as a
  dot plot that keeps the real values: one panel per metric on its own unit, from
  zero, the value printed beside each dot, the P10-P90 range over scenarios drawn
  only when there are several scenarios. (It replaces Ospina Fig. 7's radar, whose
  per-axis min-max normalisation makes an SSR of 0.213 against 0.223 fill the whole
  radius.)
* :func:`member_figure` -- per-member self-sufficiency and bill saving of each key:
  one row per member up to :data:`MAX_NAMED_MEMBERS` members, beyond that the
  members ranked by their value under the first key (every member drawn, the
  extremes named), in the same fixed size for 1 or 1,000 members;
* :func:`bands` -- the distribution over scenarios of each metric per key (every
  scenario a dot, the mean and the P10-P90 range; Ospina §5.2); only with two
  scenarios or more (one scenario has no spread to draw);
* :func:`convergence_plot` -- CI half-width against N with the tolerance and N*
  (Ospina Fig. 8, eq. (32)).

Inputs are ``{key name: Dataset}`` mappings of per-scenario metrics
(:func:`recopt.metrics.evaluate` / :func:`recopt.keys.evaluate.evaluate_keys`
outputs). Each function writes ``path`` (PNG) and a PDF beside it and returns the
PNG's path.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from recopt.errors import ModelError
from recopt.metrics.community import across_scenarios
from recopt.metrics.style import (
    axis_label,
    colours,
    figure,
    percent_metric,
    pretty,
    save,
    styled,
    unit_words,
)

__all__ = ["KEY_METRICS", "MAX_NAMED_MEMBERS", "key_comparison", "member_figure", "bands",
           "convergence_plot", "fmt_value"]

#: Community metrics of the key comparison (Ospina §5), in panel order.
KEY_METRICS = ("self_consumption_rate", "self_sufficiency_mean", "bill_saving_mean", "gini",
               "energy_to_shift_total", "co2_avoided")
#: Up to this many members, the per-member figure names every member on its own row.
MAX_NAMED_MEMBERS = 25


def _n_scenarios(results: Mapping[str, xr.Dataset]) -> int:
    first = next(iter(results.values()))
    return int(first.sizes.get("scenario", 1))


def _stats(results: Mapping[str, xr.Dataset]) -> dict[str, xr.Dataset]:
    if not results:
        raise ModelError("nothing to plot: give {key: metrics Dataset}")
    return {k: across_scenarios(ds) if "scenario" in ds.dims else ds
            for k, ds in results.items()}


def _scale(name: str, unit: str) -> tuple[float, str]:
    """Factor and unit of a metric as drawn (rates in percent)."""
    if percent_metric(name) and unit in ("1", ""):
        return 100.0, "%"
    if name == "gini":
        return 1.0, "index from 0 (equal) to 1"
    return 1.0, unit


def fmt_value(v: float, unit: str = "") -> str:
    """A value as printed on a figure: 3 significant digits, thousands separated."""
    if v is None or not math.isfinite(v):
        return "n/a"
    a = abs(v)
    if a >= 1000:
        text = f"{v:,.0f}"
    elif a >= 100:
        text = f"{v:.0f}"
    elif a >= 10:
        text = f"{v:.1f}"
    elif a >= 1:
        text = f"{v:.2f}"
    else:
        text = f"{v:.3g}"
    return text + (" %" if unit == "%" else "")


def _unit_label(unit: str) -> str:
    words = unit_words(unit)
    return words


def key_comparison(results: Mapping[str, xr.Dataset], path, *,
                   metrics: Sequence[str] = KEY_METRICS, title: str | None = None) -> Path:
    """Dot plot of each community metric per key, real values printed (see the module).

    Metrics missing from some key's results (e.g. CO2 without an intensity) are left
    out. Scenario means; with several scenarios a line spans P10-P90.
    """
    stats = _stats(results)
    keys = list(stats)
    metrics = [m for m in metrics if all(m in stats[k] and stats[k][m].dims == ("stat",)
                                         for k in keys)]
    if not metrics:
        raise ModelError("none of the metrics is in every key's results")
    several = _n_scenarios(results) > 1
    col = colours(keys)
    cols = min(3, len(metrics))
    rows = math.ceil(len(metrics) / cols)
    y = np.arange(len(keys))[::-1]
    with styled():
        fig = figure("grid" if rows > 1 else "wide")
        axes = np.atleast_1d(fig.subplots(rows, cols, sharey=True, squeeze=False)).ravel()
        for ax, m in zip(axes, metrics, strict=False):
            unit = str(stats[keys[0]][m].attrs.get("units", ""))
            f, shown = _scale(m, unit)
            mean = np.array([float(stats[k][m].sel(stat="mean")) for k in keys]) * f
            lo = np.array([float(stats[k][m].sel(stat="p10")) for k in keys]) * f
            hi = np.array([float(stats[k][m].sel(stat="p90")) for k in keys]) * f
            for i, k in enumerate(keys):
                if several:
                    ax.hlines(y[i], lo[i], hi[i], color=col[k], lw=3, alpha=0.35)
                ax.plot([mean[i]], [y[i]], "o", color=col[k], ms=6, zorder=3)
            ref = np.concatenate([mean, hi, lo]) if several else mean
            ref = ref[np.isfinite(ref)]
            left = min(0.0, float(ref.min())) if ref.size else 0.0
            right = max(0.0, float(ref.max())) if ref.size else 1.0
            span = (right - left) or 1.0
            ax.set_xlim(left - 0.04 * span, right + 0.42 * span)
            for i, _ in enumerate(keys):
                xt = (hi[i] if several and math.isfinite(hi[i]) else mean[i])
                if math.isfinite(xt):
                    ax.annotate(fmt_value(mean[i], shown), (xt, y[i]), xytext=(5, 0),
                                textcoords="offset points", va="center", fontsize=8)
            ax.axvline(0.0, color="0.4", lw=0.7)
            ax.set_title(pretty(m), loc="left")
            ax.set_xlabel(_unit_label(shown))
            ax.grid(axis="y", visible=False)
            ax.set_ylim(-0.6, len(keys) - 0.4)
        for ax in axes[len(metrics):]:
            ax.set_visible(False)
        axes[0].set_yticks(y, keys)
        for ax in axes[::cols]:
            ax.set_yticks(y, keys)
        n = _n_scenarios(results)
        fig.suptitle(title or ("Keys compared: mean over " + (
            f"{n} scenarios (line: P10 to P90)" if several else "the one scenario")))
        return save(fig, path)


def _ranked(ax, keys, col, vals, names, shown, first):
    """Members ranked by their value under ``first`` (descending): every key a line."""
    order = np.argsort(-np.nan_to_num(vals[first], nan=-np.inf), kind="stable")
    rank = np.arange(1, order.size + 1)
    for k in keys:
        ax.plot(rank, vals[k][order], "-", color=col[k], lw=1.2, marker="o", ms=2.2,
                label=k)
    finite = [j for j in order.tolist() if math.isfinite(vals[first][j])]
    if finite:
        top = ", ".join(names[j] for j in finite[:3])
        low = ", ".join(names[j] for j in finite[-3:][::-1])
        ax.text(0.98, 0.97, f"highest under {first}: {top}\nlowest: {low}",
                transform=ax.transAxes, ha="right", va="top", fontsize=7, color="0.25",
                bbox=dict(facecolor="white", edgecolor="0.8", boxstyle="round,pad=0.3"))
    ax.set_xlabel(f"members ranked under {first} (1 = highest)")
    ax.set_xlim(0, order.size + 1)


def member_figure(results: Mapping[str, xr.Dataset], path, *,
                  variables: Sequence[str] = ("self_sufficiency", "bill_saving"),
                  title: str | None = None) -> Path:
    """Per-member values of each key, one panel a variable, in a fixed size.

    Up to :data:`MAX_NAMED_MEMBERS` members: one row per member (scenario mean; with
    several scenarios a line spans P10-P90). More members: ranked by their value under
    the first key, every key a line over the ranks, the three highest and lowest
    members named (the full table is the caller's CSV).
    """
    stats = _stats(results)
    keys = list(stats)
    variables = [v for v in variables if all(v in stats[k] and "member" in stats[k][v].dims
                                             for k in keys)]
    if not variables:
        raise ModelError("none of the per-member variables is in every key's results")
    several = _n_scenarios(results) > 1
    col = colours(keys)
    names = [str(m) for m in stats[keys[0]]["member"].values]
    n = len(names)
    named = n <= MAX_NAMED_MEMBERS
    with styled():
        fig = figure("tall")
        axes = np.atleast_1d(fig.subplots(1, len(variables), sharey=named, squeeze=False)).ravel()
        for ax, v in zip(axes, variables, strict=True):
            unit = str(stats[keys[0]][v].attrs.get("units", ""))
            f, shown = _scale(v, unit)
            vals = {k: stats[k][v].sel(stat="mean").transpose("member").values * f
                    for k in keys}
            if named:
                y = np.arange(n)[::-1].astype(float)
                dodge = 0.6 / max(1, len(keys))
                for i, k in enumerate(keys):
                    yy = y + (len(keys) - 1) / 2 * dodge - i * dodge
                    if several:
                        lo = stats[k][v].sel(stat="p10").transpose("member").values * f
                        hi = stats[k][v].sel(stat="p90").transpose("member").values * f
                        ax.hlines(yy, lo, hi, color=col[k], lw=2, alpha=0.35)
                    ax.plot(vals[k], yy, "o", color=col[k], ms=4, label=k, zorder=3)
                ax.set_yticks(y, names)
                ax.set_ylim(-0.7, n - 0.3)
                ax.grid(axis="y", visible=False)
                ax.set_xlabel(axis_label(v, shown))
                ax.axvline(0.0, color="0.4", lw=0.7)
            else:
                _ranked(ax, keys, col, vals, names, shown, keys[0])
                ax.set_ylabel(axis_label(v, shown))
            ax.set_title(pretty(v), loc="left")
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncol=min(len(keys), 6))
        fig.suptitle(title or (f"Per member ({n} member{'s' if n != 1 else ''}), mean over "
                               + (f"{_n_scenarios(results)} scenarios"
                                  + (" (line: P10 to P90)" if named else "")
                                  if several else "the one scenario")))
        return save(fig, path)


def bands(results: Mapping[str, xr.Dataset], path, *,
          metrics: Sequence[str] = KEY_METRICS, title: str | None = None) -> Path:
    """Distribution over scenarios of each metric per key (needs >= 2 scenarios).

    Every scenario is a dot (jittered), the black tick the mean, the bar P10-P90.
    Raises :class:`~recopt.errors.ModelError` with one scenario: there is no band.
    """
    if not results:
        raise ModelError("nothing to plot: give {key: metrics Dataset}")
    n = _n_scenarios(results)
    if n < 2:
        raise ModelError("one scenario: no distribution over scenarios to draw")
    keys = list(results)
    metrics = [m for m in metrics if all(m in results[k] and results[k][m].dims == ("scenario",)
                                         for k in keys)]
    if not metrics:
        raise ModelError("none of the metrics is in every key's results")
    col = colours(keys)
    cols = min(3, len(metrics))
    rows = math.ceil(len(metrics) / cols)
    rng = np.random.default_rng(0)
    with styled():
        fig = figure("grid" if rows > 1 else "wide")
        axes = np.atleast_1d(fig.subplots(rows, cols, sharex=True, squeeze=False)).ravel()
        x = np.arange(len(keys))
        for ax, m in zip(axes, metrics, strict=False):
            unit = str(results[keys[0]][m].attrs.get("units", ""))
            f, shown = _scale(m, unit)
            for i, k in enumerate(keys):
                v = results[k][m].values.astype(float) * f
                v = v[np.isfinite(v)]
                if not v.size:
                    continue
                jit = rng.uniform(-0.18, 0.18, v.size)
                ax.plot(x[i] + jit, v, ".", color=col[k], ms=2.5, alpha=0.5)
                p10, p90 = np.quantile(v, [0.1, 0.9])
                ax.vlines(x[i] + 0.3, p10, p90, color=col[k], lw=3)
                ax.hlines(v.mean(), x[i] - 0.25, x[i] + 0.35, color="black", lw=1.2)
            ax.set_title(pretty(m), loc="left")
            ax.set_ylabel(_unit_label(shown))
            ax.set_xticks(x, keys, rotation=30 if len(keys) > 4 else 0,
                          ha="right" if len(keys) > 4 else "center")
            ax.margins(y=0.08)
            ax.grid(axis="x", visible=False)
        for ax in axes[len(metrics):]:
            ax.set_visible(False)
        fig.suptitle(title or f"Distribution over {n} scenarios (dots: scenarios, black: "
                     "mean, bar: P10 to P90)")
        return save(fig, path)


def convergence_plot(conv: xr.Dataset, path, *, units: Mapping[str, str] | None = None) -> Path:
    """CI half-width h(N) per (key, metric), tolerance and N* (Ospina Fig. 8, eq. (32)).

    ``conv``: output of :func:`recopt.metrics.convergence.convergence`. One panel per
    metric (its own unit, from ``units`` when given), one line per key.
    """
    metrics = [str(m) for m in conv["metric"].values]
    units = dict(units or {})
    cols = min(3, len(metrics))
    rows = math.ceil(len(metrics) / cols)
    n = conv["n"].values
    n_star = int(conv.attrs.get("n_star", -1))
    keys = [str(k) for k in conv["key"].values]
    col = colours(keys)
    relative = bool(conv.attrs.get("relative", 0))
    with styled():
        fig = figure("grid" if rows > 1 else "wide")
        axes = np.atleast_1d(fig.subplots(rows, cols, sharex=True, squeeze=False)).ravel()
        for ax, m in zip(axes, metrics, strict=False):
            for k in keys:
                ax.plot(n, conv["half_width"].sel(key=k, metric=m).values, label=k,
                        color=col[k], lw=1.1)
            tol = float(conv["tolerance"].sel(metric=m))
            if not relative:
                ax.axhline(tol, color="0.3", ls="--", lw=1, label="tolerance")
            if n_star > 0:
                ax.axvline(n_star, color="black", ls=":", lw=1.2, label=f"N* = {n_star}")
            ax.set_title(pretty(m), loc="left")
            ax.set_xlabel("number of scenarios N")
            what = ("95 % CI half-width / running mean" if relative
                    else axis_label("95 % CI half-width", units.get(m, "")))
            ax.set_ylabel(what)
        for ax in axes[len(metrics):]:
            ax.set_visible(False)
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 6))
        fig.suptitle("Monte Carlo convergence of the running mean (Ospina eq. 32)")
        return save(fig, path)
