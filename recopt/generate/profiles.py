"""Synthetic but realistic load and PV profiles (numpy only, seeded).

Building blocks shared by the shipped instances (``instances/make_instances.py``),
the benchmarks and, later, the instance generator (``recopt.generate``):

* load: a mean-power shape per member type built from Gaussian bumps over the
  *local* hour (Europe/Brussels), a weekday/weekend switch and a seasonal factor
  ``1 + a cos(2 pi (doy - 15) / 365)``, scaled to the member's annual consumption,
  times i.i.d. lognormal step noise (sigma given per type, mean 1);
* PV: clear-sky-like output ``kWp * PR * max(0, sin(solar elevation))**1.2`` at
  Liege (50.63 N, 5.57 E) from the solar declination and hour angle at each step's
  midpoint, times a daily cloudiness factor ``0.15 + 0.85 * Beta(2, 1.2)`` drawn once
  per day (shared by all PV of the community) and a small per-step noise.

All energies are kWh per step.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

LAT_DEG, LON_DEG = 50.63, 5.57  # Liege, Belgium
PERFORMANCE_RATIO = 0.85

#: Load shapes per member type: (base kW share, [(centre local hour, width h, height)],
#: weekend rule, seasonal amplitude, noise sigma). Heights are relative; every profile
#: is rescaled to its annual energy.
LOAD_TYPES: dict[str, dict[str, Any]] = {
    "household": dict(base=0.35, bumps=[(7.5, 1.0, 0.8), (12.5, 1.5, 0.3), (19.0, 1.8, 1.4)],
                      weekend=[(9.5, 1.8, 0.9), (13.0, 2.0, 0.6), (19.0, 2.0, 1.3)],
                      season=0.20, sigma=0.35),
    "business": dict(base=0.25, bumps=[(13.0, 3.2, 1.6)], weekend=[(12.0, 3.0, 0.15)],
                     season=0.12, sigma=0.20),
    "office": dict(base=0.30, bumps=[(10.0, 2.0, 1.0), (14.5, 2.2, 1.0)],
                   weekend=[(12.0, 3.0, 0.05)], season=0.18, sigma=0.15),
    "retail": dict(base=0.35, bumps=[(11.0, 2.5, 1.0), (16.0, 2.5, 1.1)],
                   weekend=[(13.0, 3.0, 0.9)], season=0.10, sigma=0.15),
    "residential": dict(base=0.40, bumps=[(7.5, 1.2, 0.6), (19.0, 2.2, 1.2)],
                        weekend=[(10.0, 2.0, 0.7), (19.0, 2.2, 1.2)], season=0.25, sigma=0.12),
}


# ======================================================================================
# profile building blocks
# ======================================================================================
def calendar(times: pd.DatetimeIndex, step_hours: float):
    """Local hour (Europe/Brussels) at step midpoints, weekend flag, day of year."""
    mid = times + pd.Timedelta(hours=step_hours / 2)
    local = mid.tz_localize("UTC").tz_convert("Europe/Brussels")
    hour = local.hour.to_numpy() + local.minute.to_numpy() / 60.0
    weekend = local.day_of_week.to_numpy() >= 5
    doy = local.day_of_year.to_numpy()
    return hour, weekend, doy


def bumps(hour: np.ndarray, bumps) -> np.ndarray:
    out = np.zeros_like(hour)
    for centre, width, height in bumps:
        d = np.abs(hour - centre)
        d = np.minimum(d, 24.0 - d)  # wrap around midnight
        out += height * np.exp(-0.5 * (d / width) ** 2)
    return out


def load_profile(times: pd.DatetimeIndex, step_hours: float, kind: str, annual_kwh: float,
                 rng: np.random.Generator) -> np.ndarray:
    """Energy per step (kWh) of one consumer.

    Parameters
    ----------
    times : pandas.DatetimeIndex
        Step starts (UTC, naive).
    step_hours : float
        Step length in h.
    kind : str
        A key of :data:`LOAD_TYPES`.
    annual_kwh : float
        Consumption over a year in kWh (the profile's mean power is
        ``annual_kwh / 8760`` kW before noise).
    rng : numpy.random.Generator
        Source of the lognormal step noise.

    Returns
    -------
    numpy.ndarray
        Shape ``(T,)``, kWh per step.
    """
    p = LOAD_TYPES[kind]
    hour, weekend, doy = calendar(times, step_hours)
    shape = p["base"] + np.where(weekend, bumps(hour, p["weekend"]), bumps(hour, p["bumps"]))
    shape = shape * (1.0 + p["season"] * np.cos(2 * np.pi * (doy - 15) / 365.0))
    # normalise over a full reference year so a one-month slice keeps its season
    ref = pd.date_range("2023-01-01", "2024-01-01", freq="h", inclusive="left")
    rh, rw, rd = calendar(ref, 1.0)
    ref_shape = p["base"] + np.where(rw, bumps(rh, p["weekend"]), bumps(rh, p["bumps"]))
    ref_shape = ref_shape * (1.0 + p["season"] * np.cos(2 * np.pi * (rd - 15) / 365.0))
    mean_kw = annual_kwh / 8760.0
    power = shape / ref_shape.mean() * mean_kw
    sigma = p["sigma"]
    noise = rng.lognormal(-0.5 * sigma**2, sigma, size=power.size)
    return power * noise * step_hours


def clear_sky_factor(times: pd.DatetimeIndex, step_hours: float) -> np.ndarray:
    """Clear-sky PV output per kWp (kW/kWp) at step midpoints, Liege.

    ``PR * max(0, sin(elevation))**1.2`` with the declination
    ``23.44 deg * sin(2 pi (284 + doy) / 365)`` and the hour angle from UTC plus the
    longitude correction (no equation of time).
    """
    mid = times + pd.Timedelta(hours=step_hours / 2)
    doy = mid.day_of_year.to_numpy()
    hour_utc = mid.hour.to_numpy() + mid.minute.to_numpy() / 60.0
    decl = np.deg2rad(23.44) * np.sin(2 * np.pi * (284 + doy) / 365.0)
    hour_angle = np.deg2rad(15.0 * (hour_utc + LON_DEG / 15.0 - 12.0))
    lat = np.deg2rad(LAT_DEG)
    sin_elev = np.sin(lat) * np.sin(decl) + np.cos(lat) * np.cos(decl) * np.cos(hour_angle)
    return PERFORMANCE_RATIO * np.clip(sin_elev, 0.0, None) ** 1.2


def daily_cloudiness(times: pd.DatetimeIndex, rng: np.random.Generator) -> np.ndarray:
    """A cloudiness factor in [0.15, 1] per step, constant over each UTC day."""
    days = times.normalize()
    uniq, inverse = np.unique(days.values, return_inverse=True)
    factor = 0.15 + 0.85 * rng.beta(2.0, 1.2, size=uniq.size)
    return factor[inverse]


def pv_profile(times: pd.DatetimeIndex, step_hours: float, kwp: float, cloud: np.ndarray,
               rng: np.random.Generator) -> np.ndarray:
    """Energy per step (kWh) of a PV system of ``kwp`` kWp."""
    clear = clear_sky_factor(times, step_hours)
    noise = np.clip(rng.normal(1.0, 0.08, size=clear.size), 0.6, 1.4)
    return kwp * clear * cloud * noise * step_hours


def to_meter_resolution(x: np.ndarray) -> np.ndarray:
    """Round kWh to whole Wh (meter resolution), never negative."""
    return np.round(np.clip(x, 0.0, None), 3)


def disc_positions(rng: np.random.Generator, n: int, radius_km: float) -> tuple[np.ndarray, ...]:
    r = radius_km * np.sqrt(rng.random(n))
    a = 2 * np.pi * rng.random(n)
    return np.round(r * np.cos(a), 3), np.round(r * np.sin(a), 3)


