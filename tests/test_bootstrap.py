"""Tests of the seasonal block bootstrap (recopt.generate.bootstrap, Ospina §4.4.2)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from recopt.data.instance import make_instance
from recopt.errors import InstanceError
from recopt.generate.bootstrap import (
    SEASON_DAYS,
    SEASONS,
    iter_scenario_chunks,
    season_blocks,
    seasonal_block_bootstrap,
)

PRICES = dict(price_grid_buy=0.2, price_grid_sell=0.05, price_community_buy=0.1,
              price_community_sell=0.08)


def _history(start, end, step_hours=1.0, u=3, offset=0.0):
    """Energies that encode their own timestamp: value = hours since 2000 + offset + u/10."""
    time = pd.date_range(start, end, freq=pd.Timedelta(hours=step_hours), inclusive="left")
    hours = (time - pd.Timestamp("2000-01-01")) / pd.Timedelta(hours=1)
    base = np.asarray(hours, dtype=float)[:, None] + offset + np.arange(u)[None, :] / 10
    return make_instance(base, base + 0.05, **PRICES, time=time, time_step_hours=step_hours,
                         subscription_fee=[1.0, 2.0, 3.0][:u])


@pytest.fixture(scope="module")
def hist():
    # leap year 2020 inside: DJF 2020 must drop Feb 29
    return _history("2018-12-01", "2021-12-01")


def test_season_blocks_lengths_and_feb29(hist):
    blocks = season_blocks(hist.time.values, 1.0)
    t = pd.DatetimeIndex(hist.time.values)
    for s, (years, index) in blocks.items():
        assert index.shape == (years.size, SEASON_DAYS[s] * 24)
        months = t[index.ravel()].month
        assert set(months) == set(SEASONS[s])
        assert not np.any((months == 2) & (t[index.ravel()].day == 29))
        assert np.all(np.diff(index, axis=1) >= 1)  # chronological within a block
    assert list(blocks["DJF"][0]) == [2019, 2020, 2021]
    assert list(blocks["SON"][0]) == [2019, 2020, 2021]
    # DJF 2020 = Dec 2019 .. Feb 28 2020: starts on 1 December of the preceding year
    assert t[blocks["DJF"][1][1, 0]] == pd.Timestamp("2019-12-01")
    assert t[blocks["DJF"][1][1, -1]] == pd.Timestamp("2020-02-28 23:00")


def test_incomplete_seasons_are_left_out():
    h = _history("2019-01-15", "2019-12-01")  # DJF 2019 starts mid-January: incomplete
    blocks = season_blocks(h.time.values, 1.0)
    assert blocks["DJF"][0].size == 0 and blocks["MAM"][0].size == 1
    with pytest.raises(InstanceError, match="DJF"):
        seasonal_block_bootstrap(h, 3, seed=0)


def test_shapes_time_axis_and_probabilities(hist):
    ds = seasonal_block_bootstrap(hist, 7, seed=1)
    assert ds.sizes == {"scenario": 7, "time": 8760, "member": 3, "season": 4}
    t = pd.DatetimeIndex(ds.time.values)
    assert t[0] == pd.Timestamp("2022-12-01") and t[-1] == pd.Timestamp("2023-11-30 23:00")
    assert np.allclose(ds.scenario_probability.values, 1 / 7)
    assert ds.attrs["bootstrap_seed"] == 1
    assert list(ds.subscription_fee.values) == [1.0, 2.0, 3.0]
    assert ds.price_grid_buy.item() == pytest.approx(0.2)


def test_blocks_are_whole_historical_seasons_with_all_members(hist):
    ds = seasonal_block_bootstrap(hist, 12, seed=5)
    blocks = season_blocks(hist.time.values, 1.0)
    hc = hist.consumption.values[0]
    hp = hist.production.values[0]
    start = 0
    for k, s in enumerate(SEASONS):
        years, index = blocks[s]
        length = index.shape[1]
        for i in range(ds.sizes["scenario"]):
            yc = int(ds.bootstrap_block_consumption.values[i, k])
            yp = int(ds.bootstrap_block_production.values[i, k])
            got_c = ds.consumption.values[i, start:start + length]
            got_p = ds.production.values[i, start:start + length]
            # every member of the synthetic season comes from the same historical block
            np.testing.assert_array_equal(got_c, hc[index[list(years).index(yc)]])
            np.testing.assert_array_equal(got_p, hp[index[list(years).index(yp)]])
        start += length
    assert start == 8760


def test_seeded_and_prefix_stable(hist):
    a = seasonal_block_bootstrap(hist, 30, seed=11)
    b = seasonal_block_bootstrap(hist, 30, seed=11)
    c = seasonal_block_bootstrap(hist, 30, seed=12)
    short = seasonal_block_bootstrap(hist, 10, seed=11)
    xr.testing.assert_identical(a, b)
    assert not np.array_equal(a.bootstrap_block_consumption, c.bootstrap_block_consumption)
    np.testing.assert_array_equal(short.consumption.values, a.consumption.values[:10])
    np.testing.assert_array_equal(short.production.values, a.production.values[:10])


def test_separate_pools_from_different_periods(hist):
    # production from another period (2010-2014) and independent draws
    prod = _history("2009-12-01", "2014-12-01", offset=0.5)["production"]
    ds = seasonal_block_bootstrap(hist, 400, seed=3, production_history=prod)
    yc = ds.bootstrap_block_consumption.values
    yp = ds.bootstrap_block_production.values
    assert yc.min() >= 2019 and yc.max() <= 2021
    assert yp.min() >= 2010 and yp.max() <= 2014
    # uniform with replacement: every block of every pool is drawn, about equally often
    for k in range(4):
        counts = np.unique(yp[:, k], return_counts=True)[1]
        assert counts.size == 5 and counts.min() > 400 / 5 * 0.6
    # draws independent across seasons and pools: not all the same year
    assert (yc[:, 0] != yc[:, 1]).any() and (yp[:, 0] != yp[:, 1]).any()


def test_quarter_hour_steps():
    h = _history("2019-12-01", "2020-12-01", step_hours=0.25, u=2)
    ds = seasonal_block_bootstrap(h, 2, seed=0)
    assert ds.sizes["time"] == 365 * 96
    assert ds.attrs["time_step_hours"] == 0.25


def test_dask_chunks_equal_eager_and_iterate(hist):
    pytest.importorskip("dask")
    eager = seasonal_block_bootstrap(hist, 9, seed=4)
    lazy = seasonal_block_bootstrap(hist, 9, seed=4, chunks=4)
    assert lazy.consumption.chunks is not None
    assert lazy.consumption.data.chunks[0] == (4, 4, 1)
    np.testing.assert_array_equal(lazy.consumption.values, eager.consumption.values)
    parts = list(iter_scenario_chunks(lazy, 4))
    assert [p.sizes["scenario"] for p in parts] == [4, 4, 1]
    assert all(abs(float(p.scenario_probability.sum()) - 1) < 1e-12 for p in parts)
    np.testing.assert_array_equal(
        np.concatenate([p.production.values for p in parts]), eager.production.values)


def test_refuses_bad_input(hist):
    with pytest.raises(InstanceError, match="leap"):
        seasonal_block_bootstrap(hist, 2, seed=0, year=2024)
    with pytest.raises(InstanceError, match="positive"):
        seasonal_block_bootstrap(hist, 0, seed=0)
    timed = hist.copy()
    timed["price_grid_buy"] = xr.DataArray(np.full(hist.sizes["time"], 0.2), dims="time",
                                           coords={"time": hist.time})
    with pytest.raises(InstanceError, match="price_grid_buy"):
        seasonal_block_bootstrap(timed, 2, seed=0)
