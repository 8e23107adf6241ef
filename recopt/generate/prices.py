"""Grid prices of the Chasseray test protocol (arXiv 2404.04428, §4.1.3, Tables 3-4).

* Selling price (Table 3, CRE 2024 feed-in tariffs for surplus), by installed power
  band, c€/kWh: <= 3 kWc 13.39, 3-9 kWc 13.39, 9-36 kWc 14.58, 36-100 kWc 12.68,
  > 100 kWc 13.12. A power on a band limit belongs to the lower band.
* Buying price (Table 4, regulated tariffs of July 2023, MTE 2023), by tariff
  category, peak/off-peak hours and season, c€/kWh:

  - household <= 36 kVA, all year: peak 20.40, off-peak 15.13;
  - pro <= 36 kVA, all year: peak 19.84, off-peak 16.07;
  - pro > 36 kVA, winter: peak 27.26, off-peak 15.16;
  - pro > 36 kVA, summer: peak 13.63, off-peak 7.58.

  The paper does not give the hours: off-peak is 22:00-06:00 local time (the most
  common French "heures creuses" window, 8 h a day) and winter is November-March
  (the regulated >36 kVA tariffs' high season); both are settings.

All prices returned in EUR/kWh.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = [
    "SELL_BAND_LIMITS_KW",
    "SELL_PRICES",
    "BUY_TARIFFS",
    "selling_price",
    "buying_price",
    "is_off_peak",
    "is_winter",
]

#: Upper limits (kW, inclusive) of the Table 3 installed-power bands.
SELL_BAND_LIMITS_KW = (3.0, 9.0, 36.0, 100.0)
#: Table 3 selling prices per band (EUR/kWh), one more than the limits.
SELL_PRICES = (0.1339, 0.1339, 0.1458, 0.1268, 0.1312)
#: Table 4 buying prices (EUR/kWh): tariff -> {season: (peak, off-peak)};
#: season "all" applies all year.
BUY_TARIFFS = {
    "household_le36kva": {"all": (0.2040, 0.1513)},
    "pro_le36kva": {"all": (0.1984, 0.1607)},
    "pro_gt36kva": {"winter": (0.2726, 0.1516), "summer": (0.1363, 0.0758)},
}


def selling_price(installed_kw) -> np.ndarray:
    """Table 3 selling price (EUR/kWh) of each installed power (kW)."""
    band = np.searchsorted(np.asarray(SELL_BAND_LIMITS_KW), np.asarray(installed_kw, float),
                           side="left")
    return np.asarray(SELL_PRICES)[band]


def is_off_peak(local_hour: np.ndarray, off_peak_hours=(22, 6)) -> np.ndarray:
    """Whether a local hour (0-23, may be fractional) is off-peak; the window may wrap."""
    start, end = off_peak_hours
    h = np.asarray(local_hour)
    if start <= end:
        return (h >= start) & (h < end)
    return (h >= start) | (h < end)


def is_winter(local_month: np.ndarray, winter_months=(11, 12, 1, 2, 3)) -> np.ndarray:
    """Whether a local month (1-12) is in the tariff winter season."""
    return np.isin(np.asarray(local_month), np.asarray(winter_months))


def buying_price(times_utc: pd.DatetimeIndex, tariffs, *, timezone: str = "Europe/Paris",
                 off_peak_hours=(22, 6), winter_months=(11, 12, 1, 2, 3)) -> np.ndarray:
    """Table 4 buying price (EUR/kWh) per step and actor.

    Parameters
    ----------
    times_utc : pandas.DatetimeIndex
        Step starts, tz-naive UTC; the tariff period is the one at the step start in
        local time.
    tariffs : sequence of str
        Each actor's key of :data:`BUY_TARIFFS`.

    Returns
    -------
    numpy.ndarray
        Shape ``(T, n)``.
    """
    local = times_utc.tz_localize("UTC").tz_convert(timezone)
    hour = local.hour.to_numpy() + local.minute.to_numpy() / 60.0
    off = is_off_peak(hour, off_peak_hours)
    winter = is_winter(local.month.to_numpy(), winter_months)
    tariffs = list(tariffs)
    out = np.empty((len(times_utc), len(tariffs)))
    cols: dict[str, np.ndarray] = {}
    for key in set(tariffs):
        table = BUY_TARIFFS[key]
        if "all" in table:
            peak = np.full(len(times_utc), table["all"][0])
            offp = np.full(len(times_utc), table["all"][1])
        else:
            peak = np.where(winter, table["winter"][0], table["summer"][0])
            offp = np.where(winter, table["winter"][1], table["summer"][1])
        cols[key] = np.where(off, offp, peak)
    for i, key in enumerate(tariffs):
        out[:, i] = cols[key]
    return out
