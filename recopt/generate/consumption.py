"""Consumption of the Chasseray test protocol (arXiv 2404.04428, §4.1.1).

The paper takes the Enedis average half-hourly profiles of two categories
("Household" and "Pro") for a reference year (2022), applies a rolling mean over a
3-step window, and adds to each actor a uniform random variation of ±30 %. The Enedis
references cannot be downloaded at run time, so the reference shapes here are the
BDEW 2025 standard load profiles shipped with demandlib (``H25`` for households,
``G25`` for professionals; see ``models/generator.md`` for the justification),
evaluated in local time (Europe/Paris by default) with French public holidays.

A BDEW 2025 profile is a power in kW scaled to 1 GWh per year; it is rescaled to the
category's annual consumption. Energies are kWh per step.
"""

from __future__ import annotations

import datetime as _dt
import warnings
from functools import lru_cache

import numpy as np
import pandas as pd
from dateutil.easter import easter

__all__ = [
    "REFERENCE_PROFILES",
    "BDEW_ANNUAL_KWH",
    "french_holidays",
    "reference_profile",
    "actor_consumption",
]

#: Reference category -> demandlib BDEW 2025 profile class name.
REFERENCE_PROFILES = {"household": "H25", "professional": "G25"}
#: Annual energy of a BDEW 2025 profile as demandlib scales it (kWh per year).
BDEW_ANNUAL_KWH = 1.0e6
_QUARTER = pd.Timedelta(minutes=15)


def french_holidays(years) -> list[_dt.date]:
    """French public holidays (metropolitan France) of the given years.

    New Year, Easter Monday, 1 May, 8 May, Ascension, Whit Monday, 14 July,
    15 August, 1 November, 11 November, Christmas.
    """
    out = []
    for y in sorted(set(int(v) for v in years)):
        e = easter(y)
        out += [_dt.date(y, 1, 1), e + _dt.timedelta(days=1), _dt.date(y, 5, 1),
                _dt.date(y, 5, 8), e + _dt.timedelta(days=39), e + _dt.timedelta(days=50),
                _dt.date(y, 7, 14), _dt.date(y, 8, 15), _dt.date(y, 11, 1),
                _dt.date(y, 11, 11), _dt.date(y, 12, 25)]
    return out


@lru_cache(maxsize=64)
def reference_profile(reference: str, start_ns: int, n_steps: int, step_minutes: int,
                      timezone: str = "Europe/Paris", window: int = 3) -> np.ndarray:
    """Mean power (kW) per step of a category's reference profile, for 1 GWh per year.

    Parameters
    ----------
    reference : {"household", "professional"}
        Reference category (:data:`REFERENCE_PROFILES`).
    start_ns : int
        Start of the first step, UTC, in ns since the epoch.
    n_steps : int
        Number of steps.
    step_minutes : int
        Step length in minutes, a multiple of 15 (the BDEW resolution).
    timezone : str
        Time zone of the profiles' wall-clock time (DST handled).
    window : int, default 3
        Centred rolling-mean window in steps (§4.1.1: 3); 1 disables it. The mean is
        taken over the profile extended by ``window // 2`` steps on each side, so the
        first and last steps are smoothed like the others.

    Returns
    -------
    numpy.ndarray
        Shape ``(n_steps,)``, kW, read-only (the result is cached: it does not depend
        on any seed).
    """
    if reference not in REFERENCE_PROFILES:
        raise ValueError(f"unknown reference profile {reference!r}; "
                         f"known: {sorted(REFERENCE_PROFILES)}")
    if step_minutes % 15:
        raise ValueError(f"step_minutes must be a multiple of 15, got {step_minutes}")
    from demandlib import bdew

    pad = max(int(window), 1) // 2
    q = step_minutes // 15
    start = pd.Timestamp(start_ns, unit="ns", tz="UTC") - pad * pd.Timedelta(
        minutes=step_minutes)
    n_quarters = (n_steps + 2 * pad) * q
    idx = pd.date_range(start, periods=n_quarters, freq=_QUARTER).tz_convert(timezone)
    holidays = french_holidays(range(idx[0].year, idx[-1].year + 1))
    cls = getattr(bdew, REFERENCE_PROFILES[reference])
    with warnings.catch_warnings():  # pandas deprecation notes from inside demandlib
        warnings.simplefilter("ignore")
        values = np.asarray(cls(idx, holidays=holidays), dtype=float)
    kw = values.reshape(-1, q).mean(axis=1)
    if window > 1:
        kw = np.convolve(kw, np.full(window, 1.0 / window), mode="valid")
        # 'valid' drops window - 1 <= 2 * pad steps: step t averages t - pad ... t + pad
    out = np.ascontiguousarray(kw[:n_steps])
    out.setflags(write=False)
    return out


def actor_consumption(reference_kw: np.ndarray, annual_kwh: np.ndarray, step_hours: float,
                      variation: float, rng: np.random.Generator) -> np.ndarray:
    """Consumption (kWh per step) of actors around their reference profiles (§4.1.1).

    ``C[t, i] = ref_i[t] * annual_i / 1 GWh * (1 + variation * U[t, i]) * step_hours``
    with ``U`` i.i.d. uniform on [-1, 1].

    Parameters
    ----------
    reference_kw : numpy.ndarray
        Shape ``(T, n)``: each actor's reference mean power (kW for 1 GWh/year).
    annual_kwh : numpy.ndarray
        Shape ``(n,)``: annual consumption of each actor's category, kWh.
    step_hours : float
        Step length, h.
    variation : float
        Relative half-width of the uniform variation (0.3 in the paper).
    rng : numpy.random.Generator
        Source of ``U``.

    Returns
    -------
    numpy.ndarray
        Shape ``(T, n)``, kWh per step, >= 0.
    """
    base = reference_kw * (np.asarray(annual_kwh, dtype=float) / BDEW_ANNUAL_KWH)
    noise = 1.0 + variation * rng.uniform(-1.0, 1.0, size=base.shape)
    return np.clip(base * noise, 0.0, None) * step_hours
