"""recopt.generate.synthetic: shape, determinism, physics, validation."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from recopt.data import validate
from recopt.generate.profiles import clear_sky_factor
from recopt.generate.synthetic import VILLENA_PRICES, synthetic_community


@pytest.fixture(scope="module")
def small():
    return synthetic_community(30, 4 * 96, n_producers=2, seed=7)


def test_shape_members_and_units(small):
    assert dict(small.sizes) == {"scenario": 1, "time": 384, "member": 30}
    cat = small["category"].values.tolist()
    assert cat.count("producer") == 2
    assert cat.count("household") >= 25  # mostly households, a few larger consumers
    producers = small["category"] == "producer"
    assert float(small["consumption"].where(producers).sum()) == 0.0
    assert float(small["production"].where(~producers).sum()) == 0.0
    # ~4 kWp per consumer in total
    np.testing.assert_allclose(float(small["installed_power"].sum()), 4.0 * 28, rtol=0.01)
    steps = np.diff(small["time"].values).astype("timedelta64[m]").astype(int)
    assert (steps == 15).all()
    assert small.attrs["time_step_hours"] == 0.25


def test_deterministic_by_seed(small):
    again = synthetic_community(30, 4 * 96, n_producers=2, seed=7)
    xr.testing.assert_identical(small, again)
    other = synthetic_community(30, 4 * 96, n_producers=2, seed=8)
    assert not np.array_equal(small["consumption"].values, other["consumption"].values)
    # the profiles do not depend on the price choice
    flat = synthetic_community(30, 4 * 96, n_producers=2, seed=7, prices="flat")
    np.testing.assert_array_equal(flat["consumption"].values, small["consumption"].values)
    np.testing.assert_array_equal(flat["production"].values, small["production"].values)
    for name, base in VILLENA_PRICES.items():
        assert (flat[name].values == base).all()


def test_pv_zero_at_night_and_exports_at_midday(small):
    night = clear_sky_factor(small.indexes["time"], 0.25) == 0
    assert night.any()
    assert (small["production"].values[:, night, :] == 0).all()
    net = (small["production"] - small["consumption"]).sum("member").isel(scenario=0)
    hour = small["time"].dt.hour.values
    assert (net.values[(hour >= 10) & (hour <= 13)] > 0).any()  # exports at midday
    assert (net.values[night] < 0).all()  # imports at night


def test_prices_around_villena_and_profitable(small):
    for name, base in VILLENA_PRICES.items():
        v = small[name].values
        assert small[name].dims == ("member",)
        assert np.all(np.abs(v / base - 1) <= 0.0501)
        assert np.unique(v).size > 1  # a per-member spread
    assert (small["price_grid_buy"] > small["price_community_buy"]).all()
    assert (small["price_community_sell"] > small["price_grid_sell"]).all()


def test_validates_and_rejects_bad_arguments(small):
    xr.testing.assert_identical(validate(small), small)
    with pytest.raises(ValueError):
        synthetic_community(1, 10)
    with pytest.raises(ValueError):
        synthetic_community(10, 10, prices="other")
