"""Storage in the instance schema: batteries, EVs, EV availability, subscribed power."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from recopt.data import instance_hash, load, make_instance, one_way_efficiency, save, validate
from recopt.errors import InstanceError, MissingVariableError

T, U = 48, 3
TIME = pd.date_range("2021-03-01", periods=T, freq="30min")


def _inst(**kw):
    return make_instance(np.ones((T, U)), np.zeros((T, U)), price_grid_buy=0.13,
                         price_grid_sell=0.065, price_community_buy=0.075,
                         price_community_sell=0.07, time=TIME, **kw)


def _storage_inst(**extra):
    away = np.ones((T, U), bool)
    away[16:36, 0] = False
    kw = dict(battery={"power_kw": [5, 0, 5], "energy_kwh": [9.8, 0, 9.8], "soc_min": 10},
              ev={"power_kw": [11, 0, 0], "energy_kwh": [40, 0, 0], "soc_min": 20},
              ev_available=away, subscribed_power_kw=[6, 9, 6])
    kw.update(extra)
    return _inst(**kw)


def test_instances_without_storage_need_nothing():
    ds = _inst()
    assert not any(n.startswith(("battery_", "ev_")) for n in ds.data_vars)


def test_storage_defaults_and_units():
    ds = _storage_inst()
    assert ds["battery_soc_min"].values.tolist() == [10.0] * 3
    assert ds["battery_soc_max"].values.tolist() == [100.0] * 3
    assert ds["battery_soc_init"].values.tolist() == [50.0] * 3
    assert ds["battery_efficiency"].values.tolist() == [1.0] * 3
    assert ds["ev_available"].dtype == bool and ds["ev_available"].dims == ("time", "member")
    assert ds["battery_soc_min"].attrs["units"] == "%"
    assert ds["subscribed_power_kw"].attrs["units"] == "kW"
    # EV availability defaults to "always plugged in"
    assert bool(_storage_inst(ev_available=None)["ev_available"].all())


def test_netcdf_round_trip_with_storage(tmp_path):
    ds = _storage_inst(attrs={"storage_efficiency_convention": "round_trip"})
    save(ds, tmp_path / "s.nc")
    back = load(tmp_path / "s.nc")
    xr.testing.assert_identical(ds, back)
    assert back["ev_available"].dtype == bool
    assert instance_hash(back) == instance_hash(ds)


def test_efficiency_conventions():
    one = _storage_inst(battery={"power_kw": 5, "energy_kwh": 9.8, "efficiency": 0.95})
    rt = _storage_inst(battery={"power_kw": 5, "energy_kwh": 9.8, "efficiency": 0.95},
                       attrs={"storage_efficiency_convention": "round_trip"})
    np.testing.assert_allclose(one_way_efficiency(one, "battery"), 0.95)
    np.testing.assert_allclose(one_way_efficiency(rt, "battery") ** 2, 0.95)
    with pytest.raises(InstanceError, match="storage_efficiency_convention"):
        _storage_inst(attrs={"storage_efficiency_convention": "both"})


@pytest.mark.parametrize("kw, variable, text", [
    (dict(battery={"power_kw": [5, 0, 5]}), "battery_energy_kwh", "missing"),
    (dict(battery={"power_kw": [5, 0, 5], "energy_kwh": [0, 0, 1]}), "battery_energy_kwh",
     "member m0"),
    (dict(battery={"power_kw": 5, "energy_kwh": 5, "soc_min": 10, "soc_init": [50, 5, 50]}),
     "battery_soc_init", "member m1"),
    (dict(battery={"power_kw": 5, "energy_kwh": 5, "soc_max": [100, 100, 120]}),
     "battery_soc_max", "member m2"),
    (dict(battery={"power_kw": 5, "energy_kwh": 5, "soc_min": 60, "soc_max": 50,
                   "soc_init": 55}), "battery_soc_min", "member m0"),
    (dict(ev={"power_kw": 5, "energy_kwh": 5, "efficiency": [1, 1.2, 1]}), "ev_efficiency",
     "member m1"),
    (dict(battery={"power_kw": [5, -1, 0], "energy_kwh": 5}), "battery_power_kw", "negative"),
    (dict(subscribed_power_kw=[6, 0, 6]), "subscribed_power_kw", "member m1"),
    (dict(ev_available=np.full((T, U), 2)), "ev_available", "boolean"),
    (dict(battery={"power_kw": 5, "energy_kwh": 5, "soc_min": np.nan}), "battery_soc_min",
     "NaN"),
])
def test_bad_storage_gets_one_clear_error(kw, variable, text):
    with pytest.raises(InstanceError, match=text) as err:
        _inst(**kw)
    assert err.value.variable == variable


def test_validate_names_missing_group_member():
    ds = _storage_inst().drop_vars("ev_energy_kwh")
    with pytest.raises(MissingVariableError, match="ev_energy_kwh"):
        validate(ds)
