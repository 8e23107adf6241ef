"""Write the small instances shipped with recopt (deterministic, seeded, numpy only).

Run from anywhere::

    python instances/make_instances.py            # writes next to this script
    python instances/make_instances.py --out DIR  # writes into DIR

Files (see ``instances/README.md``):

``villena_test_case_1.nc``
    de Villena et al. (IEEE Access 2022), test case 1: Table 3 data, Table 2 prices.
``community_14_month.nc``
    14 members (12 households, 3 of them with rooftop PV, 1 small business, 1 PV
    producer of 60 kWp), April 2023, hourly, synthetic profiles, prices per member.
``community_24_year_15min.nc``
    23 consumers + 1 producer (1 MWp) as de Villena's test case 2, year 2023 at
    15 min, synthetic profiles, Table 2 prices; stored float32-compressed.

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
    """14 members, April 2023, hourly: 12 households (3 with PV), a shop, a 60 kWp plant."""
    rng = np.random.default_rng(seed)
    step = 1.0
    times = pd.date_range("2023-04-01", "2023-05-01", freq="h", inclusive="left")
    T = times.size
    members = [f"H{i:02d}" for i in range(1, 13)] + ["SHOP", "PV60"]
    U = len(members)
    category = ["household"] * 12 + ["business", "producer"]
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
        attrs={
            "title": "synthetic 14-member community, April 2023, hourly",
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


#: file name -> (builder, save as float32)
INSTANCES = {
    "villena_test_case_1.nc": (villena_test_case_1, False),
    "community_14_month.nc": (community_14_month, False),
    "community_24_year_15min.nc": (community_24_year_15min, True),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="output folder")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, (build, float32) in INSTANCES.items():
        path = args.out / name
        ds = build()
        save(ds, path, float32=float32)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        print(f"{name}: {path.stat().st_size / 1e6:.3f} MB, dims {dict(ds.sizes)}, "
              f"instance_hash {instance_hash(load(path))[:16]}, sha256 {digest[:16]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
