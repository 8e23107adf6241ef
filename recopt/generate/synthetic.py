"""Synthetic renewable energy communities of any size, for benchmarks and tests.

:func:`synthetic_community` assembles a validated instance (:func:`recopt.data.make_instance`)
from the profile building blocks of :mod:`recopt.generate.profiles`: mostly households,
one or a few larger consumers (business, office, retail), and ``n_producers`` ground-mounted
PV plants sized like de Villena et al.'s test case 2 (IEEE Access 2022, §IV-B: 23 consumers
and one producer), about 40 kWp per 10 consumers, so that the community exports at midday
on sunny days and imports at night and on cloudy days.

All energies are kWh per step, prices EUR/kWh, installed power kWp, coordinates km.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from recopt.data import make_instance
from recopt.generate.profiles import (
    daily_cloudiness,
    disc_positions,
    load_profile,
    pv_profile,
    to_meter_resolution,
)

__all__ = ["synthetic_community", "VILLENA_PRICES", "KWP_PER_CONSUMER"]

#: de Villena et al. (2022) Table 2, converted from EUR/MWh to EUR/kWh.
VILLENA_PRICES = {
    "price_grid_buy": 0.220,
    "price_grid_sell": 0.060,
    "price_community_buy": 0.100,
    "price_community_sell": 0.098,
}
#: Relative half-width of the seeded per-member price spread (``prices="villena"``).
PRICE_SPREAD = 0.05
#: Installed PV per consumer, kWp (de Villena test case 2 scale: ~40 kWp per 10 consumers).
KWP_PER_CONSUMER = 4.0
#: Kinds of the larger consumers, used in turn.
LARGE_KINDS = ("business", "office", "retail")


def synthetic_community(
    n_members: int,
    n_steps: int,
    *,
    step_hours: float = 0.25,
    start: str = "2023-04-01",
    n_producers: int = 1,
    seed: int = 0,
    prices: str = "villena",
) -> xr.Dataset:
    """A synthetic community: households, a few larger consumers and PV plants.

    Parameters
    ----------
    n_members : int
        Number of members ``U`` (consumers plus producers); at least ``n_producers + 1``.
    n_steps : int
        Number of time steps ``T``.
    step_hours : float, default 0.25
        Step length in h (0.25 = 15 min, the metering period of de Villena's Table 6).
    start : str, default "2023-04-01"
        Start of the first step, UTC (anything :func:`pandas.Timestamp` reads).
    n_producers : int, default 1
        Number of PV plants (pure producers: no consumption). Together they have
        ``KWP_PER_CONSUMER`` (4 kWp) per consumer, split unevenly among them.
    seed : int, default 0
        Seed of every random draw; the instance is a deterministic function of the
        arguments.
    prices : {"villena", "flat"}, default "villena"
        ``"villena"``: per-member prices drawn uniformly within +/- 5 % around
        de Villena's Table 2 (grid buy 0.22, grid sell 0.06, community buy 0.10,
        community sell 0.098 EUR/kWh), rounded to 0.1 mEUR/kWh; the community trade
        stays profitable for every member (buy spread >= 0.099, sell spread >= 0.036
        EUR/kWh). ``"flat"``: exactly Table 2 for every member.

    Returns
    -------
    xarray.Dataset
        A validated instance (one scenario) with members ``H001...`` (households,
        about 3.5 MWh/year each), ``L01...`` (larger consumers, 15-60 MWh/year; one per
        25 consumers, at least one) and ``PV1...`` (producers), ``consumption`` and
        ``production`` in kWh per step rounded to 1 Wh, the four prices per member in
        EUR/kWh, ``installed_power`` in kWp, ``x_km``/``y_km`` in km and ``category``.

    Notes
    -----
    Loads follow :func:`recopt.generate.profiles.load_profile` (local-time shapes,
    weekday/weekend, season, lognormal noise); PV follows
    :func:`~recopt.generate.profiles.pv_profile` at Liege with one daily cloudiness
    shared by all plants (:func:`~recopt.generate.profiles.daily_cloudiness`), so PV is
    exactly zero at night. Loads, PV, prices and positions use independent random
    streams spawned from ``seed``: the profiles do not depend on ``prices``.

    Examples
    --------
    >>> ds = synthetic_community(24, 96, seed=1)
    >>> ds.sizes["member"], ds.sizes["time"]
    (24, 96)
    """
    n_members = int(n_members)
    n_steps = int(n_steps)
    n_producers = int(n_producers)
    if n_producers < 1:
        raise ValueError("n_producers must be >= 1")
    if n_members < n_producers + 1:
        raise ValueError(
            f"n_members={n_members} leaves no consumer beside {n_producers} producer(s)"
        )
    if n_steps < 1:
        raise ValueError("n_steps must be >= 1")
    if not step_hours > 0:
        raise ValueError("step_hours must be > 0")
    if prices not in ("villena", "flat"):
        raise ValueError(f"prices must be 'villena' or 'flat', not {prices!r}")

    r_load, r_pv, r_price, r_pos = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4)
    )
    times = pd.date_range(pd.Timestamp(start), periods=n_steps,
                          freq=pd.Timedelta(hours=step_hours))

    n_cons = n_members - n_producers
    n_large = max(1, round(n_cons / 25))
    n_house = n_cons - n_large
    members = ([f"H{i:03d}" for i in range(1, n_house + 1)]
               + [f"L{i:02d}" for i in range(1, n_large + 1)]
               + [f"PV{i}" for i in range(1, n_producers + 1)])
    large_kinds = [LARGE_KINDS[i % len(LARGE_KINDS)] for i in range(n_large)]
    category = ["household"] * n_house + large_kinds + ["producer"] * n_producers

    # ---- consumption (kWh per step) ----------------------------------------------------
    cons = np.zeros((n_steps, n_members))
    annual_house = r_load.lognormal(np.log(3500.0), 0.3, size=n_house)
    annual_large = r_load.uniform(15_000.0, 60_000.0, size=n_large)
    for u in range(n_house):
        cons[:, u] = load_profile(times, step_hours, "household", annual_house[u], r_load)
    for j, kind in enumerate(large_kinds):
        cons[:, n_house + j] = load_profile(times, step_hours, kind, annual_large[j], r_load)

    # ---- production (kWh per step) -----------------------------------------------------
    prod = np.zeros((n_steps, n_members))
    cloud = daily_cloudiness(times, r_pv)
    share = r_pv.uniform(0.5, 1.5, size=n_producers)
    kwp_plants = np.round(KWP_PER_CONSUMER * n_cons * share / share.sum(), 1)
    kwp = np.zeros(n_members)
    kwp[n_cons:] = kwp_plants
    for j in range(n_producers):
        prod[:, n_cons + j] = pv_profile(times, step_hours, kwp_plants[j], cloud, r_pv)

    # ---- prices (EUR/kWh, per member) --------------------------------------------------
    price_kw = {}
    for name, base in VILLENA_PRICES.items():
        if prices == "flat":
            price_kw[name] = dict.fromkeys(members, base)
        else:
            rel = r_price.uniform(-PRICE_SPREAD, PRICE_SPREAD, size=n_members)
            values = np.round(base * (1.0 + rel), 4)
            price_kw[name] = dict(zip(members, values.tolist(), strict=True))

    x, y = disc_positions(r_pos, n_members, 1.0)
    return make_instance(
        to_meter_resolution(cons),
        to_meter_resolution(prod),
        **price_kw,
        time=times,
        members=members,
        time_step_hours=step_hours,
        installed_power=kwp,
        x_km=x,
        y_km=y,
        category=category,
        attrs={
            "title": f"synthetic community: {n_cons} consumers + {n_producers} PV producer(s), "
                     f"{n_steps} steps of {step_hours:g} h from {times[0]}",
            "source": f"recopt.generate.synthetic.synthetic_community(seed={seed}, "
                      f"prices={prices!r}); sized like de Villena et al. (IEEE Access 2022) "
                      "test case 2",
        },
    )
