"""PV production of the Chasseray test protocol (arXiv 2404.04428, §4.1.2).

The paper computes production from installed power, tilt, orientation and
PVGIS irradiance, with the solar position computed once per 10 km² tile. PVGIS cannot
be queried at run time, so irradiance here is built offline with pvlib:

1. per tile (centre latitude/longitude) and time axis, at each step's midpoint:
   solar position (NREL SPA), Ineichen clear-sky GHI with the Linke turbidity
   climatology shipped with pvlib, and extraterrestrial DNI (:func:`tile_geometry`,
   cached: it does not depend on any seed);
2. a seeded stochastic clear-sky index ``k`` (:func:`clear_sky_index`): a regional
   daily index drawn from a Beta distribution whose mean is the month's
   :data:`MONTHLY_CLEAR_SKY_INDEX`, plus a per-tile AR(1) intra-day fluctuation, so
   days differ and neighbouring tiles are correlated; ``GHI = k * GHI_clear``;
3. Erbs decomposition of GHI into DNI and DHI, Hay-Davies transposition to the plane
   of the array (tilt, azimuth: 180 = South, 0 = North), ground albedo 0.2
   (:func:`plane_of_array`);
4. ``P = kWp * PR * POA / 1000 W/m²`` with a performance ratio ``PR`` (0.85, the
   same as :data:`recopt.generate.profiles.PERFORMANCE_RATIO`), energy per step
   ``P * step_hours`` (:func:`actor_production`).

The sun below the horizon gives exactly zero production.
"""

from __future__ import annotations

import warnings
from functools import lru_cache

import numpy as np
import pandas as pd

__all__ = [
    "MONTHLY_CLEAR_SKY_INDEX",
    "tile_geometry",
    "clear_sky_index",
    "plane_of_array",
    "actor_production",
]

#: Mean daily clear-sky index (measured / clear-sky global irradiation) per month,
#: January..December: an assumption for central France (about 0.55 in winter, 0.75
#: in summer, giving an annual global horizontal irradiation near the 1250-1300
#: kWh/m² usual there), not a measurement; see ``models/generator.md``.
MONTHLY_CLEAR_SKY_INDEX = (0.59, 0.64, 0.70, 0.73, 0.75, 0.79,
                           0.83, 0.81, 0.77, 0.68, 0.59, 0.56)


def _midpoints(start_ns: int, n_steps: int, step_minutes: int) -> pd.DatetimeIndex:
    step = pd.Timedelta(minutes=step_minutes)
    return pd.date_range(pd.Timestamp(start_ns, unit="ns", tz="UTC") + step / 2,
                         periods=n_steps, freq=step)


@lru_cache(maxsize=64)
def _time_axis_terms(start_ns: int, n_steps: int, step_minutes: int):
    """Extraterrestrial DNI (W/m²) and day of year at the step midpoints (cached)."""
    from pvlib.irradiance import get_extra_radiation

    mid = _midpoints(start_ns, n_steps, step_minutes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas deprecation notes from inside pvlib
        dni_extra = np.asarray(get_extra_radiation(mid), dtype=float)
    doy = mid.day_of_year.to_numpy().astype(float)
    return dni_extra, doy


_LINKE_CACHE: dict[tuple, np.ndarray] = {}


def _linke(lat: float, lon: float, start_ns: int, n_steps: int, step_minutes: int):
    """Linke turbidity from pvlib's climatology, cached per cell of its 1/12-degree grid.

    Exactly what ``lookup_linke_turbidity(times, lat, lon)`` returns; tiles in one
    grid cell share the lookup (the file read is the slow part).
    """
    try:
        from pvlib.tools import _degrees_to_index  # the cell pvlib will read

        key: tuple[float, ...] = (int(_degrees_to_index(lat, "latitude")),
               int(_degrees_to_index(lon, "longitude")))
    except (ImportError, TypeError, ValueError):  # pragma: no cover - pvlib internals
        key = (lat, lon)
    key = (*key, start_ns, n_steps, step_minutes)
    tl = _LINKE_CACHE.get(key)
    if tl is None:
        from pvlib.clearsky import lookup_linke_turbidity

        mid = _midpoints(start_ns, n_steps, step_minutes)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tl = np.asarray(lookup_linke_turbidity(mid, lat, lon), dtype=float)
        tl.setflags(write=False)
        if len(_LINKE_CACHE) > 4096:
            _LINKE_CACHE.clear()
        _LINKE_CACHE[key] = tl
    return tl


@lru_cache(maxsize=512)
def tile_geometry(lat: float, lon: float, start_ns: int, n_steps: int, step_minutes: int,
                  altitude_m: float = 150.0) -> dict[str, np.ndarray]:
    """Solar geometry and clear-sky irradiance of one tile at the step midpoints.

    Returns a dict of read-only arrays of shape ``(n_steps,)``: ``zenith`` (apparent,
    degrees), ``azimuth`` (degrees), ``ghi_clear`` (W/m², Ineichen-Perez with the
    Linke turbidity climatology shipped with pvlib), ``dni_extra`` (W/m²), ``doy``
    (day of year). Cached per (tile, time axis): nothing here depends on a seed.
    """
    from pvlib import atmosphere, clearsky, solarposition

    mid = _midpoints(start_ns, n_steps, step_minutes)
    dni_extra, doy = _time_axis_terms(start_ns, n_steps, step_minutes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pressure = atmosphere.alt2pres(altitude_m)
        sp = solarposition.get_solarposition(mid, lat, lon, altitude=altitude_m,
                                             pressure=pressure)
    zen = sp["apparent_zenith"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        am_abs = atmosphere.get_absolute_airmass(atmosphere.get_relative_airmass(zen),
                                                 pressure)
        tl = _linke(lat, lon, start_ns, n_steps, step_minutes)
        cs = clearsky.ineichen(zen, am_abs, tl, altitude=altitude_m, dni_extra=dni_extra)
    out = {
        "zenith": zen,
        "azimuth": sp["azimuth"].to_numpy(dtype=float),
        "ghi_clear": np.clip(np.nan_to_num(np.asarray(cs["ghi"], dtype=float)), 0.0, None),
        "dni_extra": dni_extra,
        "doy": doy,
    }
    for v in out.values():
        v.setflags(write=False)
    return out


def clear_sky_index(day: np.ndarray, month: np.ndarray, n_tiles: int, step_hours: float,
                    rng: np.random.Generator, *, concentration: float = 4.0,
                    sigma: float = 0.10, tau_hours: float = 3.0,
                    monthly=MONTHLY_CLEAR_SKY_INDEX) -> np.ndarray:
    """Seeded clear-sky index per step and tile, in [0.02, 1].

    ``k[t, j] = clip(K[day(t)] + x[t, j], 0.02, 1)`` where the regional daily index
    ``K ~ Beta(m c, (1 - m) c)`` with ``m`` the month's mean index and ``c`` the
    ``concentration``, and ``x`` a stationary AR(1) per tile with standard deviation
    ``sigma`` and correlation ``exp(-step_hours / tau_hours)`` between steps.

    Parameters
    ----------
    day : numpy.ndarray of int
        Shape ``(T,)``: index of each step's (local) day, 0-based and non-decreasing.
    month : numpy.ndarray of int
        Shape ``(T,)``: month (1-12) of each step.
    n_tiles : int
        Number of tiles.
    step_hours : float
        Step length, h.
    rng : numpy.random.Generator
        Source of every draw.

    Returns
    -------
    numpy.ndarray
        Shape ``(T, n_tiles)``.
    """
    T = day.size
    n_days = int(day.max()) + 1 if T else 0
    first = np.searchsorted(day, np.arange(n_days))
    m = np.asarray(monthly, dtype=float)[np.asarray(month)[first] - 1]
    K = rng.beta(m * concentration, (1.0 - m) * concentration)
    rho = float(np.exp(-step_hours / tau_hours))
    eps = rng.standard_normal((T, n_tiles)) * sigma
    x = np.empty((T, n_tiles))
    if T:
        x[0] = eps[0]
        innov = np.sqrt(1.0 - rho * rho)
        for t in range(1, T):
            x[t] = rho * x[t - 1] + innov * eps[t]
    return np.clip(K[day][:, None] + x, 0.02, 1.0)


def plane_of_array(geometry: dict[str, np.ndarray], k: np.ndarray, tilt: float,
                   azimuth: float, albedo: float = 0.2) -> np.ndarray:
    """Plane-of-array irradiance (W/m²) for clear-sky index ``k``.

    Parameters
    ----------
    geometry : dict
        :func:`tile_geometry` arrays stacked to shape ``(T, n_tiles)``.
    k : numpy.ndarray
        Shape ``(T, n_tiles)``, clear-sky index.
    tilt, azimuth : float
        Surface tilt from horizontal and azimuth (degrees, 180 = South, 0 = North).
    albedo : float
        Ground reflectance.

    Returns
    -------
    numpy.ndarray
        Shape ``(T, n_tiles)``, W/m², >= 0, exactly 0 when the sun is below the horizon.
    """
    from pvlib import irradiance

    zen = geometry["zenith"]
    ghi = k * geometry["ghi_clear"]
    dec = irradiance.erbs(ghi, zen, geometry["doy"])
    with np.errstate(invalid="ignore", divide="ignore"):
        poa = irradiance.get_total_irradiance(
            tilt, azimuth, zen, geometry["azimuth"], dec["dni"], ghi, dec["dhi"],
            dni_extra=geometry["dni_extra"], model="haydavies", albedo=albedo,
        )["poa_global"]
    poa = np.nan_to_num(np.asarray(poa, dtype=float), nan=0.0)
    return np.where((zen < 90.0) & (ghi > 0.0), np.clip(poa, 0.0, None), 0.0)


def actor_production(poa: np.ndarray, tile_of_actor: np.ndarray, kwp: np.ndarray,
                     step_hours: float, performance_ratio: float = 0.85) -> np.ndarray:
    """Energy per step (kWh) of each actor's PV: ``kWp * PR * POA / 1000 * step_hours``.

    Parameters
    ----------
    poa : numpy.ndarray
        Shape ``(T, n_tiles)``, W/m².
    tile_of_actor : numpy.ndarray of int
        Shape ``(n,)``: column of ``poa`` for each actor.
    kwp : numpy.ndarray
        Shape ``(n,)``: installed power, kWp.
    """
    return poa[:, tile_of_actor] * (np.asarray(kwp, dtype=float) * performance_ratio
                                    * step_hours / 1000.0)
