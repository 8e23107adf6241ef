"""Write the small instances shipped with recopt (deterministic, seeded, numpy only).

Run from anywhere::

    python instances/make_instances.py            # writes next to this script
    python instances/make_instances.py --out DIR  # writes into DIR

Files (see ``instances/README.md``):

``villena_test_case_1.nc``
    de Villena et al. (IEEE Access 2022), test case 1: Table 3 data, Table 2 prices.
``community_14_month.nc``
    14 members (13 households, 3 of them with rooftop PV, 1 small business) and a
    community-owned 60 kWp plant (role ``plant``), April 2023, hourly, synthetic
    profiles, prices per member.
``community_24_year_15min.nc``
    23 consumers + 1 producer (1 MWp) as de Villena's test case 2, year 2023 at
    15 min, synthetic profiles, Table 2 prices; stored float32-compressed.
``le_cailar_march.nc``
    Mustika et al. (Applied Energy 2022) §4.1, Table 2: the 7 houses of the Le Cailar
    demonstrator (PV, batteries, one EV, subscribed power, per-member prices and fees,
    community prices), March 2021 at 30 min on a UTC axis (1488 steps); pvlib
    clear-sky PV near 43.7 N 4.2 E times a daily cloudiness, demandlib BDEW H25
    household loads (in local time), the EV schedule of §4.1 in Europe/Paris time.

Profiles (all synthetic, documented here, reproducible from the seeds):

* load: a mean-power shape per member type built from Gaussian bumps over the
  *local* hour (Europe/Brussels), a weekday/weekend switch and a seasonal factor
  ``1 + a cos(2 pi (doy - 15) / 365)``, scaled to the member's annual consumption,
  times i.i.d. lognormal step noise (sigma given per type, mean 1);
* PV: clear-sky-like output ``kWp * PR * max(0, sin(solar elevation))**1.2`` at
  Liege (50.63 N, 5.57 E) from the solar declination and hour angle at each step's
  midpoint, times a daily cloudiness factor ``0.15 + 0.85 * Beta(2, 1.2)`` drawn once
  per day (shared by all PV of the community) and a small per-step noise;
* all energies are kWh per step, rounded to 1 Wh like meter readings.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from recopt.data import instance_hash, load, make_instance, save
from recopt.generate.profiles import (
    daily_cloudiness,
    disc_positions,
    load_profile,
    pv_profile,
    to_meter_resolution,
)

HERE = Path(__file__).resolve().parent
SEED_14 = 20230401
SEED_24 = 20230101
SEED_LE_CAILAR = 20210301


# ======================================================================================
# the three instances
# ======================================================================================
def villena_test_case_1() -> xr.Dataset:
    """de Villena et al. 2022, test case 1 (Table 3 data, Table 2 prices in EUR/kWh).

    Table 3 gives net values (positive = consumption, negative = production) in kWh
    for two 15-min steps: User1/User2 consume, User3 produces 0.50 then 0.30, User4
    consumes 0.08 then produces 0.02.
    """
    members = ["User1", "User2", "User3", "User4"]
    net = np.array([[0.17, 0.21, -0.50, 0.08],
                    [0.21, 0.23, -0.30, -0.02]])
    return make_instance(
        np.clip(net, 0.0, None),
        np.clip(-net, 0.0, None),
        price_grid_buy=0.220,        # 220 EUR/MWh
        price_grid_sell=0.060,       # 60 EUR/MWh
        price_community_buy=0.100,   # 100 EUR/MWh (xi_l-)
        price_community_sell=0.098,  # 98 EUR/MWh (xi_l+)
        time=pd.DatetimeIndex(["2017-03-01T00:00", "2017-03-01T00:15"]),
        members=members,
        time_step_hours=0.25,
        category=["consumer", "consumer", "producer", "prosumer"],
        attrs={
            "title": "de Villena et al. (IEEE Access 2022) test case 1",
            "source": "Table 3 (inputs, kWh) and Table 2 (prices, EUR/MWh / 1000)",
        },
    )


def community_14_month(seed: int = SEED_14) -> xr.Dataset:
    """14 members + a community-owned 60 kWp plant, April 2023, hourly.

    The shape of Ospina Lopez's Guzmán community (14 members and a plant the
    community owns): 13 households (3 with rooftop PV), a shop, and ``PV60`` with
    role ``plant`` (no key share, no bill; its revenue is the community's account,
    :mod:`recopt.data.roles`). The first 12 households, the shop and the plant keep
    the draws of the earlier 14-entry file; household H13 is drawn after them.
    """
    rng = np.random.default_rng(seed)
    step = 1.0
    times = pd.date_range("2023-04-01", "2023-05-01", freq="h", inclusive="left")
    T = times.size
    members = [f"H{i:02d}" for i in range(1, 13)] + ["SHOP", "PV60"]
    U = len(members)
    category = ["household"] * 12 + ["business", "plant"]
    annual = np.round(rng.lognormal(np.log(3500.0), 0.3, size=12), 0)
    cons = np.zeros((T, U))
    prod = np.zeros((T, U))
    for u in range(12):
        cons[:, u] = load_profile(times, step, "household", annual[u], rng)
    cons[:, 12] = load_profile(times, step, "business", 30_000.0, rng)
    cloud = daily_cloudiness(times, rng)
    kwp = np.zeros(U)
    kwp[[2, 6, 9]] = [4.0, 5.5, 3.2]  # rooftop PV of three households
    kwp[13] = 60.0
    for u in np.flatnonzero(kwp):
        prod[:, u] = pv_profile(times, step, kwp[u], cloud, rng)
    x, y = disc_positions(rng, U, 1.2)
    x[12], y[12] = 0.6, -0.3
    x[13], y[13] = 0.2, 0.4
    grid_buy = np.round(rng.uniform(0.28, 0.34, size=U), 3)
    grid_buy[12] = 0.24
    grid_sell = np.round(rng.uniform(0.04, 0.06, size=U), 3)
    # household H13, drawn after everything above (inserted before the shop)
    annual13 = float(np.round(rng.lognormal(np.log(3500.0), 0.3), 0))
    c13 = load_profile(times, step, "household", annual13, rng)
    x13, y13 = disc_positions(rng, 1, 1.2)
    buy13 = float(np.round(rng.uniform(0.28, 0.34), 3))
    sell13 = float(np.round(rng.uniform(0.04, 0.06), 3))
    at = 12
    members.insert(at, "H13")
    category.insert(at, "household")
    cons = np.insert(cons, at, c13, axis=1)
    prod = np.insert(prod, at, 0.0, axis=1)
    kwp = np.insert(kwp, at, 0.0)
    x, y = np.insert(x, at, x13[0]), np.insert(y, at, y13[0])
    grid_buy, grid_sell = np.insert(grid_buy, at, buy13), np.insert(grid_sell, at, sell13)
    role = ["prosumer" if kwp[u] > 0 else "consumer" for u in range(len(members))]
    role[-1] = "plant"
    return make_instance(
        to_meter_resolution(cons),
        to_meter_resolution(prod),
        price_grid_buy=dict(zip(members, grid_buy.tolist(), strict=True)),
        price_grid_sell=dict(zip(members, grid_sell.tolist(), strict=True)),
        price_community_buy=dict.fromkeys(members, 0.18),
        price_community_sell=dict.fromkeys(members, 0.10),
        time=times,
        members=members,
        time_step_hours=step,
        installed_power=kwp,
        x_km=x,
        y_km=y,
        category=category,
        role=role,
        attrs={
            "title": "synthetic community of 14 members and a community-owned 60 kWp "
                     "plant, April 2023, hourly",
            "source": f"recopt instances/make_instances.py, seed {seed}",
        },
    )


def community_24_year_15min(seed: int = SEED_24) -> xr.Dataset:
    """23 consumers + 1 producer (SOLAR, 1 MWp), 2023 at 15 min, Table 2 prices.

    Sized like de Villena's test case 2 (consumers of about 43 MWh/year on average,
    a producer of about 1 MWp); the profiles are synthetic, not the paper's data.
    """
    rng = np.random.default_rng(seed)
    step = 0.25
    times = pd.date_range("2023-01-01", "2024-01-01", freq="15min", inclusive="left")
    T = times.size
    kinds = ["office"] * 10 + ["retail"] * 7 + ["residential"] * 6
    members = [f"User{i}" for i in range(1, 24)] + ["SOLAR"]
    U = len(members)
    annual = np.round(rng.lognormal(np.log(36_000.0), 0.55, size=23), -1)
    cons = np.zeros((T, U))
    prod = np.zeros((T, U))
    for u, kind in enumerate(kinds):
        cons[:, u] = load_profile(times, step, kind, annual[u], rng)
    cloud = daily_cloudiness(times, rng)
    kwp = np.zeros(U)
    kwp[23] = 1000.0
    prod[:, 23] = pv_profile(times, step, kwp[23], cloud, rng)
    x, y = disc_positions(rng, U, 1.5)
    x[23], y[23] = 0.0, 0.0
    return make_instance(
        to_meter_resolution(cons),
        to_meter_resolution(prod),
        price_grid_buy=0.220,
        price_grid_sell=0.060,
        price_community_buy=0.100,
        price_community_sell=0.098,
        time=times,
        members=members,
        time_step_hours=step,
        installed_power=kwp,
        x_km=x,
        y_km=y,
        category=kinds + ["producer"],
        attrs={
            "title": "synthetic 24-member community (23 consumers + 1 producer), 2023, 15 min",
            "source": f"recopt instances/make_instances.py, seed {seed}; sized like "
                      "de Villena et al. (IEEE Access 2022) test case 2",
        },
    )


def le_cailar_march(seed: int = SEED_LE_CAILAR) -> xr.Dataset:
    """Mustika et al. 2022 §4.1 / Table 2: 7 houses at Le Cailar, March 2021, 30 min.

    Table 2 as data: PV 3.2 / 6.12 / - / 3.2 / 3.2 / 3.2 / - kWp; batteries 5 kW /
    9.8 kWh at houses 1-3; an 11 kW / 40 kWh EV at house 1; subscribed power 6 / 36 /
    6 / 9 / 9 / 6 / 9 kVA (taken as kW), monthly fees 8.40 / 24.96 / 8.40 / 10.05 /
    10.05 / 8.40 / 10.05 EUR and grid prices 12.97 or 13.31 c/kWh with them; grid sell
    6.5, community sell 7.0, community buy 7.5 c/kWh for all. Storage round trip 95 %
    (so mu = sqrt(0.95) per leg). KoR4 investments: PV 1300 EUR/kW, batteries 1000
    EUR/kWh (EV left out): 13 960, 17 756, 9 800, 4 160, 4 160, 4 160, 0 EUR.

    Not in the paper (assumptions, flagged in the attrs): the measured profiles (only
    plotted there), the SoC bounds (battery 10 / 100 %, EV 20 / 100 %, both starting at
    50 %), the annual consumptions. PV: pvlib's Ineichen clear sky (its bundled Linke
    turbidity, no download) on a 30 deg south-facing plane, PVWatts with 14 % losses,
    times a seeded daily cloudiness; loads: demandlib's BDEW 2025 household profile H25
    evaluated at each step's Europe/Paris wall-clock time, scaled to an annual
    consumption per house, times seeded lognormal step noise.
    """
    import warnings

    import pvlib
    from demandlib import bdew

    rng = np.random.default_rng(seed)
    step = 0.5
    times = pd.date_range("2021-03-01", "2021-04-01", freq="30min", inclusive="left",
                          tz="UTC")
    T = times.size
    members = [f"house{i}" for i in range(1, 8)]
    kwp = np.array([3.2, 6.12, 0.0, 3.2, 3.2, 3.2, 0.0])
    # PV: clear sky at the step's midpoint on a tilted plane, PVWatts, daily cloudiness
    mid = times + pd.Timedelta(minutes=15)
    site = pvlib.location.Location(43.7, 4.2, altitude=10)
    solpos = site.get_solarposition(mid)
    clear = site.get_clearsky(mid, model="ineichen", solar_position=solpos)
    poa = pvlib.irradiance.get_total_irradiance(
        30.0, 180.0, solpos["apparent_zenith"], solpos["azimuth"], clear["dni"],
        clear["ghi"], clear["dhi"])["poa_global"].fillna(0.0).to_numpy()
    per_kwp = np.clip(pvlib.pvsystem.pvwatts_dc(poa, 25.0, 1.0, -0.004), 0.0, None) * 0.86
    cloud = daily_cloudiness(times.tz_convert(None), rng)
    prod = np.outer(per_kwp * cloud, kwp) * step
    # loads: BDEW H25 at local wall-clock time (15-min values, kW per 1e6 kWh/a)
    local = times.tz_convert("Europe/Paris").tz_localize(None)
    year = pd.date_range("2021-01-01", "2022-01-01", freq="15min", inclusive="left")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        h25 = pd.Series(np.asarray(bdew.H25(year), float), index=year)
    per_kwh_year = h25 / (h25.sum() * 0.25)  # kW per kWh of annual consumption
    half_hour = per_kwh_year.resample("30min").mean()
    shape = half_hour.reindex(local.floor("30min")).to_numpy()
    annual = np.array([9000.0, 5500.0, 9500.0, 5000.0, 8000.0, 4500.0, 9000.0])
    noise = rng.lognormal(-0.5 * 0.35 ** 2, 0.35, size=(T, kwp.size))
    cons = np.outer(shape, annual) * noise * step
    # EV at house 1: away Mon-Fri 08:00-18:00 and Sat 11:00-15:00 (local time)
    hour, dow = local.hour.to_numpy(), local.day_of_week.to_numpy()
    away = (((dow < 5) & (hour >= 8) & (hour < 18))
            | ((dow == 5) & (hour >= 11) & (hour < 15)))
    ev_available = np.ones((T, kwp.size), bool)
    ev_available[:, 0] = ~away
    grid_buy = np.array([12.97, 13.31, 12.97, 13.31, 13.31, 12.97, 13.31]) / 100
    fee = np.array([8.40, 24.96, 8.40, 10.05, 10.05, 8.40, 10.05])
    battery_kwh = np.array([9.8, 9.8, 9.8, 0, 0, 0, 0])
    return make_instance(
        to_meter_resolution(cons),
        to_meter_resolution(prod),
        price_grid_buy=dict(zip(members, grid_buy.tolist(), strict=True)),
        price_grid_sell=0.065,
        price_community_buy=0.075,
        price_community_sell=0.070,
        time=times,
        members=members,
        time_step_hours=step,
        subscription_fee=fee,
        installed_power=kwp,
        lat=[43.7] * 7,
        lon=[4.2] * 7,
        investment=1300.0 * kwp + 1000.0 * battery_kwh,
        category=["household"] * 7,
        battery={"power_kw": [5.0, 5.0, 5.0, 0, 0, 0, 0], "energy_kwh": battery_kwh,
                 "soc_min": 10.0, "soc_max": 100.0, "soc_init": 50.0, "efficiency": 0.95},
        ev={"power_kw": [11.0, 0, 0, 0, 0, 0, 0], "energy_kwh": [40.0, 0, 0, 0, 0, 0, 0],
            "soc_min": 20.0, "soc_max": 100.0, "soc_init": 50.0, "efficiency": 0.95},
        ev_available=ev_available,
        subscribed_power_kw=[6.0, 36.0, 6.0, 9.0, 9.0, 6.0, 9.0],
        attrs={
            "title": "Le Cailar-like community (Mustika et al. 2022, Table 2), March 2021",
            "source": f"recopt instances/make_instances.py, seed {seed}",
            "storage_efficiency_convention": "round_trip",
            "assumptions": "synthetic profiles (pvlib clear sky x daily cloudiness, "
                           "demandlib H25); SoC bounds 10/100 % (battery), 20/100 % (EV), "
                           "initial 50 %; annual loads 4500-9500 kWh",
        },
    )


#: file name -> (builder, save as float32)
INSTANCES = {
    "villena_test_case_1.nc": (villena_test_case_1, False),
    "community_14_month.nc": (community_14_month, False),
    "community_24_year_15min.nc": (community_24_year_15min, True),
    "le_cailar_march.nc": (le_cailar_march, False),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="output folder")
    parser.add_argument("--only", default=None, help="comma-separated file names to write")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, (build, float32) in INSTANCES.items():
        if args.only and name not in args.only.split(","):
            continue
        path = args.out / name
        ds = build()
        save(ds, path, float32=float32)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        print(f"{name}: {path.stat().st_size / 1e6:.3f} MB, dims {dict(ds.sizes)}, "
              f"instance_hash {instance_hash(load(path))[:16]}, sha256 {digest[:16]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
