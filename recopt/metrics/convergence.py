"""Monte Carlo convergence: the number of scenarios ``N*`` (Ospina Lopez 2026, §4.4.2).

For each key and each metric, the half-width of the 95 % confidence interval on the
running mean over the first ``N`` scenarios is (Ospina eq. (32))

``h(N) = 1.96 * sigma(N) / sqrt(N)``

with ``sigma(N)`` the (sample, ``ddof=1``) standard deviation of the metric over the
first ``N`` scenarios (``h(1)`` is undefined: NaN). ``N*`` of one (key, metric) is
the smallest ``N`` with ``h(n) < tol`` for **all** ``n = N, N+1, ..., N+window-1``
(``window = 20`` consecutive values of N, N included); the overall ``N*`` is the
worst case (the largest) over keys and metrics, and the (key, metric) attaining it is
the *binding* one (Ospina: Gini under consumption prorata, ``N* = 74``). A series
that never stays below the tolerance for a whole window within the scenarios given
has no ``N*`` (NaN), and then neither has the overall result.

The tolerance is absolute (in the metric's unit) by default, one number or one per
metric; with ``relative=True`` the half-width is compared with ``tol * |running
mean|``. Ospina does not print her tolerance; choose it per metric.

Scenario order matters (running means): the bootstrap's years are prefix-stable in
N (:func:`recopt.generate.bootstrap.seasonal_block_bootstrap`), so the first N
scenarios of a 500-year set are an N-year set.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr

from recopt.data.schema import SCENARIO
from recopt.errors import ModelError

__all__ = ["Z95", "WINDOW", "running_half_width", "first_stable", "convergence"]

#: Two-sided 95 % normal quantile of Ospina (32).
Z95 = 1.96
#: Consecutive values of N that must stay below the tolerance.
WINDOW = 20


def running_half_width(values, axis: int = -1, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """Running mean and CI half-width ``h(N)`` for ``N = 1..n`` (Ospina (32)).

    Parameters
    ----------
    values : array_like
        The metric per scenario, scenarios on ``axis`` (in order).
    axis : int, default -1
    z : float, default 1.96

    Returns
    -------
    mean, half_width : numpy.ndarray
        Same shape as ``values`` (entry ``N - 1`` on ``axis`` is for the first N
        scenarios); ``half_width`` is NaN for ``N = 1``.
    """
    x = np.moveaxis(np.asarray(values, dtype=float), axis, -1)
    n = np.arange(1, x.shape[-1] + 1, dtype=float)
    shift = x[..., :1] if x.shape[-1] else 0.0  # variance is shift-invariant: less cancellation
    y = x - shift
    s1 = np.cumsum(y, axis=-1)
    s2 = np.cumsum(y * y, axis=-1)
    mean = s1 / n + shift
    with np.errstate(invalid="ignore", divide="ignore"):
        var = (s2 - s1 * s1 / n) / (n - 1)
    var = np.where(n > 1, np.maximum(var, 0.0), np.nan)
    h = z * np.sqrt(var) / np.sqrt(n)
    return np.moveaxis(mean, -1, axis), np.moveaxis(h, -1, axis)


def first_stable(below, window: int = WINDOW) -> np.ndarray:
    """Smallest N (1-based) with ``below[N-1 : N-1+window]`` all True; NaN if none.

    Parameters
    ----------
    below : array_like of bool
        ``h(N) < tol`` for N = 1..n on the last axis.
    window : int, default 20

    Returns
    -------
    numpy.ndarray of float
        Shape of ``below`` without its last axis.
    """
    b = np.asarray(below, dtype=bool)
    n = b.shape[-1]
    if window < 1:
        raise ModelError(f"window must be >= 1, got {window}")
    if n < window:
        return np.full(b.shape[:-1], np.nan)
    c = np.concatenate([np.zeros(b.shape[:-1] + (1,)), np.cumsum(b, axis=-1)], axis=-1)
    runs = c[..., window:] - c[..., :-window]  # number of True in [N-1, N-1+window)
    ok = runs == window
    first = np.argmax(ok, axis=-1).astype(float) + 1.0
    return np.where(ok.any(axis=-1), first, np.nan)


def _as_table(results, metrics: Sequence[str] | None) -> tuple[list[str], list[str], list]:
    if isinstance(results, xr.Dataset) and "key" in results.dims:
        results = {str(k): results.sel(key=k, drop=True) for k in results["key"].values}
    if isinstance(results, xr.Dataset):
        results = {"key": results}
    if not isinstance(results, Mapping) or not results:
        raise ModelError("results must be a Dataset or a non-empty {key: Dataset} mapping")
    keys = list(results)
    first = results[keys[0]]
    if metrics is None:
        metrics = [v for v in first.data_vars if first[v].dims == (SCENARIO,)]
    metrics = list(metrics)
    series = []
    for k in keys:
        row = []
        for m in metrics:
            if m not in results[k]:
                raise ModelError(f"key {k!r} has no metric {m!r}")
            da = results[k][m]
            if SCENARIO not in da.dims:
                raise ModelError(f"metric {m!r} of key {k!r} has no scenario dim")
            other = [d for d in da.dims if d != SCENARIO]
            # per-member metrics: every member is a series, N* is the worst one
            arr = da.transpose(*other, SCENARIO).values.reshape(-1, da.sizes[SCENARIO])
            row.append(arr)
        series.append(row)
    return keys, metrics, series


def convergence(
    results,
    tolerance: float | Mapping[str, float],
    *,
    metrics: Sequence[str] | None = None,
    window: int = WINDOW,
    relative: bool = False,
) -> xr.Dataset:
    """``N*`` per (key, metric) and overall, as Ospina defines it (§4.4.2, eq. (32)).

    Parameters
    ----------
    results : mapping of key name -> xarray.Dataset, or xarray.Dataset
        Per-scenario metrics of each key (e.g. :func:`recopt.metrics.evaluate`
        outputs on the same bootstrap), or one Dataset with a ``key`` dim. Variables
        with more dims than ``scenario`` (per member) count as one series per member
        (worst case).
    tolerance : float or mapping metric -> float
        Tolerance on ``h(N)`` in the metric's unit (or relative to the running mean
        with ``relative=True``).
    metrics : sequence of str, optional
        Metrics to use; default the tolerance mapping's metrics, or (scalar
        tolerance) every variable on (scenario,) only.
    window : int, default 20
        Consecutive values of N below the tolerance.
    relative : bool, default False

    Returns
    -------
    xarray.Dataset
        ``half_width`` and ``running_mean`` on (key, metric, n) (worst member for
        per-member metrics), ``n_star`` on (key, metric) (NaN: not converged within
        the scenarios given); attrs ``n_star`` (overall worst case, -1 when some
        series did not converge), ``binding_key``, ``binding_metric``, ``window``,
        ``relative``.
    """
    if metrics is None and isinstance(tolerance, Mapping):
        metrics = list(tolerance)
    keys, names, series = _as_table(results, metrics)
    n = series[0][0].shape[-1]
    if isinstance(tolerance, Mapping):
        missing = [m for m in names if m not in tolerance]
        if missing:
            raise ModelError(f"no tolerance for metric(s) {', '.join(missing)}")
        tol = {m: float(tolerance[m]) for m in names}
    else:
        tol = {m: float(tolerance) for m in names}
    h_out = np.full((len(keys), len(names), n), np.nan)
    mean_out = np.full((len(keys), len(names), n), np.nan)
    nstar = np.full((len(keys), len(names)), np.nan)
    for i, _ in enumerate(keys):
        for j, m in enumerate(names):
            arr = series[i][j]
            if arr.shape[-1] != n:
                raise ModelError("every key and metric must have the same scenarios")
            mean, h = running_half_width(arr, axis=-1)
            bound = tol[m] * np.abs(mean) if relative else tol[m]
            with np.errstate(invalid="ignore"):
                below = h < bound
            per_series = first_stable(below, window)
            worst = np.nan if np.isnan(per_series).any() else float(per_series.max())
            nstar[i, j] = worst
            # report the series with the widest final half-width
            k = int(np.nanargmax(h[:, -1])) if np.isfinite(h[:, -1]).any() else 0
            h_out[i, j], mean_out[i, j] = h[k], mean[k]
    ds = xr.Dataset(
        {
            "half_width": (("key", "metric", "n"), h_out,
                           {"long_name": "95% CI half-width of the running mean (Ospina 32)"}),
            "running_mean": (("key", "metric", "n"), mean_out),
            "n_star": (("key", "metric"), nstar,
                       {"long_name": f"smallest N with h < tol for {window} consecutive N"}),
            "tolerance": (("metric",), np.array([tol[m] for m in names])),
        },
        coords={"key": keys, "metric": names, "n": np.arange(1, n + 1)},
    )
    if np.isnan(nstar).any():
        overall, bk, bm = -1, "", ""
        miss = np.argwhere(np.isnan(nstar))[0]
        bk, bm = keys[miss[0]], names[miss[1]]
    else:
        worst_key, worst_metric = np.unravel_index(int(np.argmax(nstar)), nstar.shape)
        overall = int(nstar[worst_key, worst_metric])
        bk, bm = keys[worst_key], names[worst_metric]
    ds.attrs = {"n_star": overall, "binding_key": bk, "binding_metric": bm,
                "window": int(window), "relative": int(relative),
                "definition": "Ospina (32): h(N) = 1.96 sigma(N) / sqrt(N), sigma with ddof=1"}
    return ds
