"""Instance construction and validation: make_instance, validate, helpers."""

from __future__ import annotations

import time as _time

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recopt.data import (
    ATTRIBUTES,
    DIMS,
    PRICE_VARIABLES,
    SCHEMA_VERSION,
    VARIABLES,
    billing_period_index,
    broadcast_price,
    instance_hash,
    make_instance,
    validate,
)
from recopt.errors import (
    DimensionError,
    InstanceError,
    MissingVariableError,
    NegativeEnergyError,
    NonFiniteError,
    ProbabilityError,
    SchemaVersionError,
    TimestampError,
    UnitError,
)

PRICES = dict(price_grid_buy=0.22, price_grid_sell=0.06, price_community_buy=0.10,
              price_community_sell=0.098)


def villena() -> xr.Dataset:
    """de Villena test case 1 (two 15-min steps, four users)."""
    net = np.array([[0.17, 0.21, -0.50, 0.08], [0.21, 0.23, -0.30, -0.02]])
    return make_instance(
        np.clip(net, 0, None), np.clip(-net, 0, None), **PRICES,
        time=["2017-03-01T00:00", "2017-03-01T00:15"],
        members=["User1", "User2", "User3", "User4"],
        category=["consumer", "consumer", "producer", "prosumer"],
        installed_power=[0.0, 0.0, 3.0, 1.0], x_km=[0.0, -1.0, 0.5, 0.2],
        y_km=[0.0, 0.3, -0.5, 0.1], investment=[0.0, 0.0, 4000.0, 1500.0],
    )


def two_scenarios(T: int = 6, U: int = 3) -> xr.Dataset:
    rng = np.random.default_rng(1)
    return make_instance(rng.random((2, T, U)), rng.random((2, T, U)), **PRICES,
                         time_step_hours=0.25)


# ======================================================================================
# make_instance
# ======================================================================================
def test_make_instance_defaults():
    ds = make_instance(np.ones((3, 2)), np.zeros((3, 2)), **PRICES)
    assert ds.sizes == {"scenario": 1, "time": 3, "member": 2}
    assert ds.member.values.tolist() == ["m0", "m1"]
    assert ds.scenario.values.tolist() == ["s0"]
    assert ds.time.dtype == np.dtype("datetime64[ns]")
    assert pd.Timestamp(ds.time.values[0]) == pd.Timestamp("2000-01-01")
    assert pd.Timestamp(ds.time.values[1]) == pd.Timestamp("2000-01-01T01:00")
    assert ds.attrs["time_step_hours"] == 1.0
    for name, spec in ATTRIBUTES.items():
        if spec.default is not None:
            assert ds.attrs[name] == spec.default
    assert ds.attrs["schema_version"] == SCHEMA_VERSION
    np.testing.assert_array_equal(ds.scenario_probability.values, [1.0])
    np.testing.assert_array_equal(ds.subscription_fee.values, [0.0, 0.0])
    for name in ds.data_vars:
        assert ds[name].attrs["units"] == VARIABLES[name].unit
    assert ds.consumption.dims == DIMS and ds.consumption.dtype == np.float64
    assert ds.price_grid_buy.dims == ()


def test_make_instance_time_and_step_from_time():
    ds = villena()
    assert ds.attrs["time_step_hours"] == 0.25
    assert ds.member.values.tolist() == ["User1", "User2", "User3", "User4"]
    np.testing.assert_allclose(ds.production.sel(member="User3").values.ravel(), [0.5, 0.3])
    assert ds.category.values.tolist() == ["consumer", "consumer", "producer", "prosumer"]


def test_make_instance_tz_aware_time_goes_to_utc():
    t = pd.date_range("2023-03-26 01:00", periods=4, freq="15min", tz="Europe/Brussels")
    ds = make_instance(np.ones((4, 1)), np.zeros((4, 1)), **PRICES, time=t)
    assert pd.Timestamp(ds.time.values[0]) == pd.Timestamp("2023-03-26 00:00")


def test_make_instance_scenarios_and_uniform_probability():
    ds = two_scenarios()
    assert ds.scenario.values.tolist() == ["s0", "s1"]
    np.testing.assert_allclose(ds.scenario_probability.values, [0.5, 0.5])


def test_make_instance_from_dataarrays_uses_their_coords():
    t = pd.date_range("2021-01-01", periods=4, freq="30min")
    da = xr.DataArray(np.ones((4, 2)), dims=("time", "member"),
                      coords={"time": t, "member": ["a", "b"]})
    ds = make_instance(da, da * 0, **PRICES)
    assert ds.member.values.tolist() == ["a", "b"]
    assert ds.attrs["time_step_hours"] == 0.5


def test_price_forms():
    T, U = 4, 3
    ds = make_instance(
        np.ones((T, U)), np.zeros((T, U)),
        price_grid_buy=np.array([0.2, 0.25, 0.3]),          # per member
        price_grid_sell=np.array([0.05, 0.06, 0.07, 0.08]),  # per step
        price_community_buy={"m0": 0.1, "m1": 0.11, "m2": 0.12},
        price_community_sell=xr.DataArray([0.09], dims=("scenario",)),
    )
    assert ds.price_grid_buy.dims == ("member",)
    assert ds.price_grid_sell.dims == ("time",)
    assert ds.price_community_buy.dims == ("member",)
    assert ds.price_community_sell.dims == ("scenario",)
    with pytest.raises(DimensionError, match="ambiguous|fits both"):
        make_instance(np.ones((3, 3)), np.zeros((3, 3)),
                      **{**PRICES, "price_grid_buy": np.array([0.1, 0.2, 0.3])})
    with pytest.raises(MissingVariableError, match="m2"):
        make_instance(np.ones((3, 3)), np.zeros((3, 3)),
                      **{**PRICES, "price_grid_buy": {"m0": 0.1, "m1": 0.2}})


def test_make_instance_shape_mismatch():
    with pytest.raises(DimensionError, match="production"):
        make_instance(np.ones((3, 2)), np.zeros((3, 3)), **PRICES)


# ======================================================================================
# validate: normalisation and purity
# ======================================================================================
def test_validate_normalises_a_hand_built_dataset():
    ds = xr.Dataset(
        {
            "consumption": (("member", "time", "scenario"), np.ones((2, 3, 1), dtype=int)),
            "production": (("scenario", "member", "time"), np.zeros((1, 2, 3), "f4")),
            "scenario_probability": ("scenario", [1]),
            **{p: ((), 0.1) for p in PRICE_VARIABLES},
            "price_grid_buy": (("member", "time"), np.full((2, 3), 0.2)),
        },
        coords={"time": pd.date_range("2020-01-01", periods=3, freq="h").values.astype(
            "datetime64[s]"), "member": [10, 11], "scenario": ["base"]},
        attrs={"time_step_hours": 1},
    )
    before = ds.copy(deep=True)
    out = validate(ds)
    xr.testing.assert_identical(ds, before)  # the caller's dataset is untouched
    assert "units" not in ds.consumption.attrs
    assert out.consumption.dims == DIMS and out.production.dims == DIMS
    assert out.consumption.dtype == np.float64 and out.production.dtype == np.float64
    assert out.price_grid_buy.dims == ("time", "member")
    assert out.time.dtype == np.dtype("datetime64[ns]")
    assert out.member.values.tolist() == ["10", "11"]
    assert out.attrs["schema_version"] == SCHEMA_VERSION
    assert out.attrs["time_step_hours"] == 1.0
    assert out.attrs["billing_period"] == "MS"
    assert all(out[v].attrs["units"] == VARIABLES[v].unit for v in out.data_vars)
    # idempotent
    again = validate(out)
    xr.testing.assert_identical(again, out)
    assert instance_hash(again) == instance_hash(out)


def test_validate_returns_copy_not_view():
    ds = villena()
    out = validate(ds)
    out["consumption"].values[0, 0, 0] = 99.0
    assert ds.consumption.values[0, 0, 0] == pytest.approx(0.17)


def test_unknown_variable_is_kept():
    ds = villena()
    ds["note"] = (("hour",), np.arange(3))
    ds["weather"] = (("time",), np.array([1.0, np.nan]))  # not checked
    out = validate(ds)
    xr.testing.assert_identical(out["note"], ds["note"])
    xr.testing.assert_identical(out["weather"], ds["weather"])


def test_not_a_dataset():
    with pytest.raises(InstanceError, match="xarray.Dataset"):
        validate(np.ones(3))


# ======================================================================================
# validate: one error class per problem
# ======================================================================================
@pytest.mark.parametrize(
    "name", ["consumption", "production", *PRICE_VARIABLES, "scenario_probability"]
)
def test_missing_required_variable(name):
    ds = villena().drop_vars(name)
    with pytest.raises(MissingVariableError, match=name) as info:
        validate(ds)
    assert info.value.variable == name


def test_missing_time_step_hours():
    ds = villena()
    del ds.attrs["time_step_hours"]
    with pytest.raises(MissingVariableError, match="time_step_hours") as info:
        validate(ds)
    assert info.value.variable == "time_step_hours"


@pytest.mark.parametrize("bad", [0, -0.25, float("nan"), "0.25", True])
def test_bad_time_step_hours(bad):
    ds = villena()
    ds.attrs["time_step_hours"] = bad
    with pytest.raises(TimestampError, match="time_step_hours"):
        validate(ds)


def test_consumption_without_member_dim():
    ds = villena()
    ds["consumption"] = ds.consumption.isel(member=0, drop=True)
    with pytest.raises(DimensionError, match="consumption.*missing member") as info:
        validate(ds)
    assert info.value.variable == "consumption"


def test_consumption_without_scenario_dim_says_how_to_fix():
    ds = villena()
    ds["production"] = ds.production.isel(scenario=0, drop=True)
    with pytest.raises(DimensionError, match="expand_dims"):
        validate(ds)


def test_price_with_unknown_dim():
    ds = villena()
    ds["price_grid_sell"] = xr.DataArray([0.05, 0.06], dims=("hour",))
    with pytest.raises(DimensionError, match="price_grid_sell.*hour"):
        validate(ds)


def test_member_variable_with_time():
    ds = villena()
    ds["installed_power"] = ds.consumption.isel(scenario=0, drop=True)
    with pytest.raises(DimensionError, match="installed_power.*unexpected time"):
        validate(ds)


def test_probability_with_member_dim():
    ds = villena()
    ds["scenario_probability"] = ("member", np.full(4, 0.25))
    with pytest.raises(DimensionError, match="scenario_probability"):
        validate(ds)


def test_nan_message_names_the_first_entry():
    ds = villena()
    values = ds.consumption.values.copy()
    values[0, 1, 1] = np.nan  # time 00:15, User2
    values[0, 1, 3] = np.nan
    values[0, 0, 3] = np.nan
    ds["consumption"] = (DIMS, values)
    with pytest.raises(NonFiniteError) as info:
        validate(ds)
    msg = str(info.value)
    assert "consumption has NaN at 3 entries" in msg
    assert "first: scenario=s0, time=2017-03-01T00:00, member=User4" in msg
    assert "fill or drop" in msg


@pytest.mark.parametrize("name", ["production", "price_grid_buy", "x_km", "investment",
                                  "scenario_probability"])
def test_non_finite_anywhere(name):
    ds = villena()
    values = np.array(ds[name].values, dtype=float, copy=True)
    values.flat[-1] = np.inf
    ds[name] = (ds[name].dims, values)
    with pytest.raises(NonFiniteError, match=name):
        validate(ds)


@pytest.mark.parametrize("name", ["consumption", "production", "installed_power",
                                  "subscription_fee", "investment"])
def test_negative_non_negative_variable(name):
    ds = villena()
    values = np.array(ds[name].values, dtype=float, copy=True)
    values.flat[0] = -0.5
    ds[name] = (ds[name].dims, values)
    with pytest.raises(NegativeEnergyError, match=f"{name} is negative at 1 entry"):
        validate(ds)


def test_negative_prices_and_coordinates_are_allowed():
    ds = villena()
    ds["price_grid_sell"] = ("time", np.array([-0.02, 0.01]))
    ds["x_km"] = ("member", np.array([-1.0, -2.0, 0.0, 1.0]))
    out = validate(ds)
    assert out.price_grid_sell.values[0] == -0.02


def test_duplicate_timestamps():
    ds = villena()
    ds = ds.assign_coords(time=[ds.time.values[0], ds.time.values[0]])
    with pytest.raises(TimestampError, match="duplicate"):
        validate(ds)


def test_unsorted_timestamps():
    ds = villena()
    ds = ds.isel(time=[1, 0])
    with pytest.raises(TimestampError, match="not sorted"):
        validate(ds)


def test_irregular_timestamps():
    ds = make_instance(np.ones((4, 1)), np.zeros((4, 1)), **PRICES, time_step_hours=0.25)
    t = ds.time.values.copy()
    t[3] = t[3] + np.timedelta64(5, "m")
    with pytest.raises(TimestampError, match="irregular"):
        validate(ds.assign_coords(time=t))


def test_spacing_differs_from_time_step_hours():
    ds = villena()
    ds.attrs["time_step_hours"] = 1.0
    with pytest.raises(TimestampError, match="time_step_hours to 0.25"):
        validate(ds)


@pytest.mark.parametrize("coord", [np.array([0, 1]), np.array(["a", "b"], dtype=object)])
def test_non_datetime_time(coord):
    ds = villena().assign_coords(time=coord)
    with pytest.raises(TimestampError, match="datetime64"):
        validate(ds)


def test_nat_in_time():
    ds = villena()
    t = ds.time.values.copy()
    t[1] = np.datetime64("NaT")
    with pytest.raises(TimestampError, match="NaT"):
        validate(ds.assign_coords(time=t))


def test_probabilities_negative_or_not_summing_to_one():
    ds = two_scenarios()
    with pytest.raises(ProbabilityError, match="sums to"):
        validate(ds.assign(scenario_probability=("scenario", [0.5, 0.6])))
    with pytest.raises(ProbabilityError, match="negative"):
        validate(ds.assign(scenario_probability=("scenario", [-0.5, 1.5])))
    ok = validate(ds.assign(scenario_probability=("scenario", [0.3, 0.7 + 1e-12])))
    assert ok.scenario_probability.values.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("version", ["2", "0.9", 99])
def test_unknown_schema_version(version):
    ds = villena()
    ds.attrs["schema_version"] = version
    with pytest.raises(SchemaVersionError, match="schema_version"):
        validate(ds)


def test_missing_schema_version_is_set():
    ds = villena()
    del ds.attrs["schema_version"]
    assert validate(ds).attrs["schema_version"] == SCHEMA_VERSION


def test_duplicate_member_and_scenario_names():
    ds = villena().assign_coords(member=["A", "B", "A", "C"])
    with pytest.raises(DimensionError, match="duplicate names: A"):
        validate(ds)
    ds2 = two_scenarios().assign_coords(scenario=["x", "x"])
    with pytest.raises(DimensionError, match="scenario"):
        validate(ds2)


def test_empty_member_dim():
    ds = villena().isel(member=slice(0, 0))
    with pytest.raises(DimensionError, match="empty"):
        validate(ds)


def test_missing_member_coordinate():
    ds = villena().drop_vars("member")
    with pytest.raises(MissingVariableError, match="member"):
        validate(ds)


def test_wrong_units_attribute():
    ds = villena()
    ds["consumption"].attrs["units"] = "Wh"
    with pytest.raises(UnitError, match="consumption.*Wh"):
        validate(ds)
    ds = villena()
    ds["price_grid_buy"].attrs["units"] = "€/kWh"  # same unit, other spelling
    assert validate(ds).price_grid_buy.attrs["units"] == "EUR/kWh"


def test_bad_billing_period_and_latitude():
    ds = villena()
    ds.attrs["billing_period"] = "fortnightly"
    with pytest.raises(InstanceError, match="billing_period"):
        validate(ds)
    ds = villena().assign(lat=("member", [50.0, 50.1, 95.0, 50.0]),
                          lon=("member", [5.0, 5.1, 5.2, 5.3]))
    with pytest.raises(InstanceError, match="lat"):
        validate(ds)


def test_non_numeric_energy():
    ds = villena()
    ds["consumption"] = (DIMS, ds.consumption.values.astype(str))
    with pytest.raises(InstanceError, match="numbers"):
        validate(ds)


def test_validate_is_fast_on_a_year_of_15_min_for_100_members():
    rng = np.random.default_rng(0)
    T, U = 35040, 100
    ds = make_instance(rng.random((T, U)), rng.random((T, U)), **PRICES,
                       time_step_hours=0.25)
    start = _time.perf_counter()
    validate(ds)
    elapsed = _time.perf_counter() - start
    assert elapsed < 1.0, f"validate took {elapsed:.2f} s"


# ======================================================================================
# helpers
# ======================================================================================
def test_broadcast_price():
    ds = make_instance(
        np.ones((2, 3, 4)), np.zeros((2, 3, 4)),
        price_grid_buy=0.2,
        price_grid_sell=np.array([0.01, 0.02, 0.03, 0.04]),
        price_community_buy=np.array([0.1, 0.11, 0.12]),
        price_community_sell=np.arange(24.0).reshape(2, 3, 4),
    )
    for name in PRICE_VARIABLES:
        b = broadcast_price(ds, name)
        assert b.dims == DIMS and b.shape == (2, 3, 4) and b.dtype == np.float64
    np.testing.assert_array_equal(broadcast_price(ds, "price_grid_buy"), 0.2)
    np.testing.assert_array_equal(broadcast_price(ds, "price_grid_sell")[1, 2],
                                  [0.01, 0.02, 0.03, 0.04])
    np.testing.assert_array_equal(broadcast_price(ds, "price_community_buy")[1, :, 3],
                                  [0.1, 0.11, 0.12])
    np.testing.assert_array_equal(broadcast_price(ds, "price_community_sell"),
                                  np.arange(24.0).reshape(2, 3, 4))
    with pytest.raises(MissingVariableError):
        broadcast_price(ds, "price_nope")


def test_billing_period_index_months_and_other_periods():
    t = pd.date_range("2023-03-30", "2023-05-02", freq="h", inclusive="left")
    ds = make_instance(np.ones((t.size, 1)), np.zeros((t.size, 1)), **PRICES, time=t)
    idx = billing_period_index(ds)
    assert idx.dtype == np.int64 and idx.shape == (t.size,)
    np.testing.assert_array_equal(np.bincount(idx), [48, 720, 24])
    assert (np.diff(idx) >= 0).all()
    ds.attrs["billing_period"] = "D"
    assert billing_period_index(ds).max() == 32
    ds.attrs["billing_period"] = "QS"
    np.testing.assert_array_equal(np.bincount(billing_period_index(ds)), [48, 744])


def test_billing_period_index_single_period():
    assert billing_period_index(villena()).tolist() == [0, 0]


# ======================================================================================
# property tests
# ======================================================================================
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    S=st.integers(1, 3), T=st.integers(1, 8), U=st.integers(1, 5),
    step=st.sampled_from([0.25, 0.5, 1.0]), seed=st.integers(0, 2**16),
)
def test_valid_instances_validate_idempotently(S, T, U, step, seed):
    rng = np.random.default_rng(seed)
    ds = make_instance(rng.random((S, T, U)), rng.random((S, T, U)),
                       price_grid_buy=xr.DataArray(rng.random(U), dims="member"),
                       price_grid_sell=-rng.random(),
                       price_community_buy=0.1, price_community_sell=0.09,
                       scenario_probability=rng.dirichlet(np.ones(S)),
                       time_step_hours=step)
    again = validate(ds)
    xr.testing.assert_identical(again, ds)
    assert instance_hash(again) == instance_hash(ds)


@settings(max_examples=25, deadline=None)
@given(T=st.integers(1, 6), U=st.integers(1, 4), data=st.data())
def test_any_nan_is_reported_with_its_position(T, U, data):
    ds = make_instance(np.ones((T, U)), np.zeros((T, U)), **PRICES)
    t = data.draw(st.integers(0, T - 1))
    u = data.draw(st.integers(0, U - 1))
    name = data.draw(st.sampled_from(["consumption", "production"]))
    values = ds[name].values.copy()
    values[0, t, u] = np.nan
    with pytest.raises(NonFiniteError) as info:
        validate(ds.assign({name: (DIMS, values)}))
    assert f"member=m{u}" in str(info.value) and info.value.variable == name
