"""Shared test fixtures: the instance factories more than one test module uses.

Factories are fixtures that return a function (``loop_instance(seed, ...)``), so a test
asks for the factory by name and calls it with its own parameters; nothing here is
imported by a test module. Module-specific instances stay in their module.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from recopt.data import load, make_instance

ROOT = Path(__file__).resolve().parents[1]
INSTANCES = ROOT / "instances"


def random_loop_instance(seed: int, n: int | None = None, S: int | None = None,
                         T: int | None = None, prices: str = "per_member") -> xr.Dataset:
    """A loop-design instance: 3-7 actors, 1-3 scenarios, 2-6 steps, on a 3 km square.

    Some actors produce (at least one), distances and installed powers are drawn so
    that the neighbourhood graph is neither empty nor complete. ``prices`` is
    ``"per_member"`` (grid prices per actor) or anything else for per (step, actor).
    """
    r = np.random.default_rng(seed)
    n = n or int(r.integers(3, 8))
    S = S or int(r.integers(1, 4))
    T = T or int(r.integers(2, 7))
    prod = r.random(n) < 0.45
    prod[r.integers(n)] = True
    C = np.round(r.uniform(0, 3, (S, T, n)) * (r.random((S, T, n)) < 0.8), 3)
    P = np.round(r.uniform(0, 5, (S, T, n)) * prod * (r.random((S, T, n)) < 0.9), 3)
    if prices == "per_member":
        buy = {f"m{i}": float(v) for i, v in enumerate(r.uniform(0.15, 0.3, n))}
        sell = {f"m{i}": float(v) for i, v in enumerate(r.uniform(0.02, 0.1, n))}
    else:  # per step and member
        buy = r.uniform(0.1, 0.3, (T, n))
        sell = r.uniform(0.0, 0.1, (T, n))
    prob = r.dirichlet(np.ones(S))
    return make_instance(
        C, P, price_grid_buy=buy, price_grid_sell=sell, price_community_buy=0.1,
        price_community_sell=0.1, scenario_probability=prob,
        installed_power=np.round(np.where(prod, r.uniform(1, 5, n), 0.0), 2),
        x_km=r.uniform(0, 3, n), y_km=r.uniform(0, 3, n),
        attrs={"max_distance_km": float(r.uniform(1.0, 2.5)),
               "max_loop_power_kw": float(r.uniform(4, 10))},
    )


def hourly(consumption, production, *, prices: dict, fee=None, time=None,
           start: str = "2024-01-01", members=None) -> xr.Dataset:
    """A validated instance with hourly steps (from ``start`` unless ``time`` is given).

    ``consumption`` / ``production`` in kWh per step, shaped ``(time, member)`` or
    ``(scenario, time, member)``; ``prices`` the four price variables (EUR/kWh);
    ``fee`` the subscription fee per member and billing period (EUR).
    """
    c = np.asarray(consumption, dtype=float)
    if time is None:
        time = pd.date_range(start, periods=c.shape[-2], freq="h")
    return make_instance(c, np.asarray(production, dtype=float), **prices, time=time,
                         members=members, time_step_hours=1.0, subscription_fee=fee)


@pytest.fixture(scope="session")
def loop_instance():
    """Factory ``loop_instance(seed, n=None, S=None, T=None, prices="per_member")``."""
    return random_loop_instance


@pytest.fixture(scope="session")
def hourly_instance():
    """Factory ``hourly_instance(c, p, *, prices, fee=None, time=None, start=, members=)``."""
    return hourly


@pytest.fixture
def villena_case1() -> xr.Dataset:
    """de Villena et al. 2022, test case 1 (two 15-min steps, four users), as shipped."""
    return load(INSTANCES / "villena_test_case_1.nc")


# ------------------------------------------------------------------ figure vector copies
@pytest.fixture(autouse=True)
def _png_only_unless_checked(request, monkeypatch):
    """Figures are written as PNG only, except in tests marked ``vector_copies``:
    the PDF copy is the product's default and those tests check it; elsewhere it
    only costs time (font subsetting). Applies to subprocesses too (environment)."""
    from recopt.metrics.style import VECTOR_ENV

    if request.node.get_closest_marker("vector_copies") is None:
        monkeypatch.setenv(VECTOR_ENV, "none")
    else:
        monkeypatch.delenv(VECTOR_ENV, raising=False)
