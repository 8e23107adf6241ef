"""Seasonal block bootstrap: N synthetic years from a multi-year history.

Ospina Lopez (2026), section 4.4.2 and appendix Algorithm A.1:

* the year is cut into the four meteorological seasons of the Northern Hemisphere,
  DJF (December of the preceding year, January, February; 90 days), MAM (92 days),
  JJA (92 days) and SON (91 days); February 29 is dropped from every year so the
  season lengths are fixed (2,160 / 2,208 / 2,208 / 2,184 hours);
* every *complete* season of the history is one block of a pool (one pool per
  season); a block holds **all members** over that season (so the inter-member
  correlation of a season is kept);
* a synthetic year draws, independently for each season, one block uniformly with
  replacement and concatenates them in DJF-MAM-JJA-SON order (8,760 h);
* consumption and production are drawn from **separate** pools (independent draws;
  they may come from different historical periods, e.g. 21 years of modelled PV and
  6 years of metered consumption).

The output is a recopt instance with a ``scenario`` dim of N equiprobable years
(``y0000``, ``y0001``, ...). Its time axis runs from 1 December of ``year - 1`` to
30 November of ``year`` (a non-leap ``year``), in the concatenation order. The
draws are recorded in ``bootstrap_block_consumption`` / ``bootstrap_block_production``
(scenario, season): the season-year of the block drawn (the year of its January for
DJF). Draws are prefix-stable: the first K years of an N-year bootstrap equal a
K-year bootstrap with the same seed (what the running means of the convergence
analysis need).

For large N the energies can be built lazily as Dask arrays chunked along
``scenario`` (``chunks=``), so a scenario set larger than memory is evaluated chunk
by chunk (:func:`iter_scenario_chunks`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from recopt.data.instance import validate
from recopt.data.schema import DIMS, MEMBER, SCENARIO, TIME
from recopt.errors import DimensionError, InstanceError, TimestampError

__all__ = [
    "SEASONS",
    "SEASON_DAYS",
    "season_blocks",
    "seasonal_block_bootstrap",
    "iter_scenario_chunks",
]

#: Seasons in concatenation order, with their months.
SEASONS: dict[str, tuple[int, ...]] = {
    "DJF": (12, 1, 2),
    "MAM": (3, 4, 5),
    "JJA": (6, 7, 8),
    "SON": (9, 10, 11),
}
#: Days per season once February 29 is dropped (sum 365).
SEASON_DAYS = {"DJF": 90, "MAM": 92, "JJA": 92, "SON": 91}

_MONTH_SEASON = {m: s for s, months in SEASONS.items() for m in months}


def _steps_per_day(step_hours: float) -> int:
    n = 24.0 / float(step_hours)
    if abs(n - round(n)) > 1e-9 or n < 1:
        raise TimestampError(
            f"time_step_hours = {step_hours} does not divide a day; the seasonal "
            "bootstrap needs a whole number of steps per day", "time_step_hours")
    return int(round(n))


def season_blocks(time, step_hours: float) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The pools of complete seasonal blocks of a history's time axis.

    Parameters
    ----------
    time : array_like of datetime64
        Sorted, regular step start times (UTC) of the history.
    step_hours : float
        Step length in hours (24 must be a multiple of it).

    Returns
    -------
    dict
        ``{season: (years, index)}`` with ``years`` (n_blocks,) the season-year of
        each block (the year of January for DJF) and ``index`` (n_blocks, L) the
        positions in ``time`` of the block's steps, February 29 excluded, where
        ``L = SEASON_DAYS[season] * steps per day``. Incomplete seasons (at the ends
        of the history, or with missing steps) are left out.
    """
    t = pd.DatetimeIndex(np.asarray(time))
    per_day = _steps_per_day(step_hours)
    keep = ~((t.month == 2) & (t.day == 29))
    pos = np.flatnonzero(keep)
    tk = t[keep]
    lookup = np.array([""] + [_MONTH_SEASON[m] for m in range(1, 13)])
    season = lookup[np.asarray(tk.month, dtype=int)]
    syear = np.asarray(tk.year) + (np.asarray(tk.month) == 12)
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for s in SEASONS:
        length = SEASON_DAYS[s] * per_day
        mask = season == s
        years, idx = [], []
        for y in np.unique(syear[mask]):
            sel = pos[mask & (syear == y)]
            if sel.size == length:
                years.append(int(y))
                idx.append(sel)
        out[s] = (np.asarray(years, dtype=int),
                  np.asarray(idx, dtype=np.intp).reshape(len(idx), length))
    return out


def _history_array(src, name: str, members: np.ndarray | None) -> xr.DataArray:
    da = src[name] if isinstance(src, xr.Dataset) else src
    if not isinstance(da, xr.DataArray):
        raise InstanceError(f"{name} history must be an xarray Dataset or DataArray", name)
    if SCENARIO in da.dims:
        if da.sizes[SCENARIO] != 1:
            raise DimensionError(
                f"the {name} history has {da.sizes[SCENARIO]} scenarios; give one "
                "observed history (scenario dim of length 1 or none)", name)
        da = da.isel({SCENARIO: 0}, drop=True)
    if set(da.dims) != {TIME, MEMBER}:
        raise DimensionError(f"the {name} history must have dims (time, member); got "
                             f"{da.dims}", name)
    da = da.transpose(TIME, MEMBER)
    if members is not None and not np.array_equal(da[MEMBER].values, members):
        try:
            da = da.sel({MEMBER: members})
        except KeyError:
            raise DimensionError(
                f"the {name} history does not have the members {list(members)}", name
            ) from None
    return da


def _pools(da: xr.DataArray, step_hours: float, name: str):
    blocks = season_blocks(da[TIME].values, step_hours)
    empty = [s for s, (years, _) in blocks.items() if years.size == 0]
    if empty:
        raise InstanceError(
            f"the {name} history has no complete {', '.join(empty)} season; the "
            "bootstrap needs at least one complete block of every season "
            "(DJF needs December of the preceding year)", name)
    return blocks


def _gather(hist: np.ndarray, index: list[np.ndarray], draws: np.ndarray) -> np.ndarray:
    """(n, T_year, U) = the drawn blocks of every season, concatenated in time."""
    parts = [hist[index[s][draws[:, s]]] for s in range(len(index))]
    return np.concatenate(parts, axis=1)


def seasonal_block_bootstrap(
    history: xr.Dataset,
    n_scenarios: int,
    *,
    seed: int,
    production_history: xr.Dataset | xr.DataArray | None = None,
    year: int = 2023,
    chunks: int | None = None,
) -> xr.Dataset:
    """N synthetic years by seasonal block bootstrap (Ospina §4.4.2, Algorithm A.1).

    Parameters
    ----------
    history : xarray.Dataset
        An instance (scenario dim of length 1) covering several years: its
        ``consumption`` is the consumption pool, its ``production`` the production pool
        unless ``production_history`` is given; every variable without a ``time`` dim
        (prices, fees, coordinates, ...) and the attributes are copied.
    n_scenarios : int
        Number N of synthetic years (>= 1).
    seed : int
        Seed of the draws (``numpy.random.default_rng``).
    production_history : xarray.Dataset or DataArray, optional
        Production on (time, member) over its own period (e.g. 21 years of modelled
        PV), same members as ``history``.
    year : int, default 2023
        Calendar year of the synthetic years' January; must not be a leap year. The
        time axis runs from 1 December ``year - 1`` to 30 November ``year``.
    chunks : int, optional
        Build consumption and production lazily as Dask arrays with this many
        scenarios per chunk (for scenario sets larger than memory). The energies are
        copies of the (validated) history, so the result is not re-validated.

    Returns
    -------
    xarray.Dataset
        An instance with dims (scenario: N, time: 365 days, member), equal
        ``scenario_probability`` 1/N, ``bootstrap_block_consumption`` and
        ``bootstrap_block_production`` on (scenario, season), and attrs
        ``bootstrap_seed``, ``bootstrap_method``.

    Raises
    ------
    InstanceError
        Not enough history (a season without any complete block), a time-varying
        price (cannot be bootstrapped; give prices without a time dim), bad N or year.
    """
    if int(n_scenarios) != n_scenarios or n_scenarios < 1:
        raise InstanceError(f"n_scenarios must be a positive integer, got {n_scenarios!r}")
    n = int(n_scenarios)
    if pd.Timestamp(year=year, month=1, day=1).is_leap_year:
        raise InstanceError(f"year {year} is a leap year; give a non-leap year")
    if not isinstance(history, xr.Dataset):
        raise InstanceError("history must be a recopt instance (xarray.Dataset)")
    step_hours = float(history.attrs.get("time_step_hours", np.nan))
    if not np.isfinite(step_hours):
        raise InstanceError("the history has no time_step_hours attribute",
                            "time_step_hours")
    timed = [str(v) for v in history.data_vars
             if TIME in history[v].dims and v not in ("consumption", "production")]
    if timed:
        raise InstanceError(
            f"{', '.join(timed)} vary in time; the bootstrap resamples only consumption "
            "and production; give these without a time dim", timed[0])
    cons = _history_array(history, "consumption", None)
    members = cons[MEMBER].values
    prod_src = history if production_history is None else production_history
    prod = _history_array(prod_src, "production", members)
    c_pools = _pools(cons, step_hours, "consumption")
    p_pools = _pools(prod, step_hours, "production")

    seasons = list(SEASONS)
    highs = np.array([c_pools[s][0].size for s in seasons]
                     + [p_pools[s][0].size for s in seasons])
    rng = np.random.default_rng(seed)
    # one row of 8 draws per scenario, generated row by row: prefix-stable in N
    draws = rng.integers(0, highs, size=(n, 2 * len(seasons)))
    draws_c, draws_p = draws[:, :4], draws[:, 4:]
    c_index = [c_pools[s][1] for s in seasons]
    p_index = [p_pools[s][1] for s in seasons]

    per_day = _steps_per_day(step_hours)
    n_steps = 365 * per_day
    times = pd.date_range(f"{year - 1}-12-01", periods=n_steps,
                          freq=pd.Timedelta(hours=step_hours)).values
    u = members.size
    c_hist = np.asarray(cons.values, dtype=float)
    p_hist = np.asarray(prod.values, dtype=float)
    if chunks is None:
        c_data = _gather(c_hist, c_index, draws_c)
        p_data = _gather(p_hist, p_index, draws_p)
    else:
        c_data = _lazy(c_hist, c_index, draws_c, n_steps, u, int(chunks))
        p_data = _lazy(p_hist, p_index, draws_p, n_steps, u, int(chunks))

    scen = np.array([f"y{i:04d}" for i in range(n)])
    ds = xr.Dataset(coords={SCENARIO: scen, TIME: times, MEMBER: members})
    ds["consumption"] = (DIMS, c_data, {"units": "kWh"})
    ds["production"] = (DIMS, p_data, {"units": "kWh"})
    for v in history.data_vars:
        if v in ("consumption", "production", "scenario_probability"):
            continue
        da = history[v]
        if SCENARIO in da.dims:
            da = da.isel({SCENARIO: 0}, drop=True)
        ds[v] = da.drop_vars([c for c in da.coords if c not in da.dims])
    ds["scenario_probability"] = (SCENARIO, np.full(n, 1.0 / n), {"units": "1"})
    years_c = np.stack([c_pools[s][0][draws_c[:, k]] for k, s in enumerate(seasons)], axis=1)
    years_p = np.stack([p_pools[s][0][draws_p[:, k]] for k, s in enumerate(seasons)], axis=1)
    ds["bootstrap_block_consumption"] = ((SCENARIO, "season"), years_c,
                                         {"long_name": "season-year of the consumption block"})
    ds["bootstrap_block_production"] = ((SCENARIO, "season"), years_p,
                                        {"long_name": "season-year of the production block"})
    ds = ds.assign_coords(season=seasons)
    attrs: dict[str, Any] = dict(history.attrs)
    attrs.update(bootstrap_seed=int(seed), bootstrap_method=(
        "seasonal block bootstrap (Ospina 2026, 4.4.2): DJF/MAM/JJA/SON, Feb 29 dropped, "
        "all members from the same block, separate consumption and production pools"))
    ds.attrs = attrs
    return validate(ds) if chunks is None else ds


def _lazy(hist, index, draws, n_steps, u, chunk):
    import dask
    import dask.array as dsa

    if chunk < 1:
        raise InstanceError(f"chunks must be >= 1 scenarios, got {chunk}")
    h = dask.delayed(hist, pure=True)
    ix = dask.delayed(index, pure=True)
    parts = []
    for a in range(0, draws.shape[0], chunk):
        d = draws[a:a + chunk]
        parts.append(dsa.from_delayed(dask.delayed(_gather, pure=True)(h, ix, d),
                                      shape=(d.shape[0], n_steps, u), dtype=float))
    return dsa.concatenate(parts, axis=0)


def iter_scenario_chunks(instance: xr.Dataset, size: int) -> Iterator[xr.Dataset]:
    """Yield the instance ``size`` scenarios at a time, loaded in memory.

    For a Dask-backed bootstrap: evaluate keys and metrics chunk by chunk, and
    concatenate the per-scenario metrics along ``scenario``. The probabilities of a
    chunk are renormalised to sum to 1 (so each chunk is a valid instance).
    """
    n = instance.sizes[SCENARIO]
    for a in range(0, n, size):
        part = instance.isel({SCENARIO: slice(a, a + size)}).load()
        p = part["scenario_probability"]
        part["scenario_probability"] = p / p.sum()
        yield part
