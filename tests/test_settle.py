"""Tests of the settlement rule (recopt.settle): Mustika Table 1, a hand-computed bill,
property tests (hypothesis) and error cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from recopt.errors import DimensionError, ModelError
from recopt.settle import (
    Round,
    bill_components,
    bills,
    community_production,
    meter_flows,
    prorata_need,
    settle,
    settle_arrays,
    settle_rounds,
)

FLOWS = ("alloc", "comm_in", "grid_in", "surplus", "grid_out", "comm_out",
         "community_production")
PRICES0 = dict(price_grid_buy=0.25, price_grid_sell=0.05, price_community_buy=0.15,
               price_community_sell=0.10)


# --------------------------------------------------------------------------------------
# Mustika et al. 2022, Table 1: one step, H1 5 and H2 15 consumers, H3 2 and H4 8 producers
# --------------------------------------------------------------------------------------
TABLE1_C = np.array([[[5.0, 15.0, 0.0, 0.0]]])
TABLE1_P = np.array([[[0.0, 0.0, 2.0, 8.0]]])
TABLE1 = [
    # keys H1,H2 | alloc H1,H2 | comm_in H1,H2 | grid_in H1,H2 | surplus | grid_out H3,H4
    #   | comm_out H3,H4
    ((0.5, 0.5), (5, 5), (5, 5), (0, 10), 0, (0, 0), (2, 8)),
    ((0.25, 0.75), (2.5, 7.5), (2.5, 7.5), (2.5, 7.5), 0, (0, 0), (2, 8)),
    ((0.6, 0.4), (6, 4), (5, 4), (0, 11), 1, (0.2, 0.8), (1.8, 7.2)),
]


def _check_table1_row(res, row):
    _, alloc, comm_in, grid_in, surplus, grid_out, comm_out = row
    exact = dict(rtol=0, atol=1e-12)
    np.testing.assert_allclose(res["alloc"][0, 0], [*alloc, 0, 0], **exact)
    np.testing.assert_allclose(res["comm_in"][0, 0], [*comm_in, 0, 0], **exact)
    np.testing.assert_allclose(res["grid_in"][0, 0], [*grid_in, 0, 0], **exact)
    np.testing.assert_allclose(res["surplus"][0, 0], surplus, **exact)
    np.testing.assert_allclose(res["grid_out"][0, 0], [0, 0, *grid_out], **exact)
    np.testing.assert_allclose(res["comm_out"][0, 0], [0, 0, *comm_out], **exact)
    np.testing.assert_allclose(res["community_production"][0, 0], 10.0, **exact)


@pytest.mark.parametrize("row", TABLE1, ids=["equal", "prorata", "over-allocation"])
def test_mustika_table1_keys(row):
    keys = np.array([[[*row[0], 0.0, 0.0]]])
    _check_table1_row(settle_arrays(TABLE1_C, TABLE1_P, keys=keys), row)


@pytest.mark.parametrize("row", TABLE1, ids=["equal", "prorata", "over-allocation"])
def test_mustika_table1_allocation_energies(row):
    alloc = np.array([[[*row[1], 0.0, 0.0]]], dtype=float)
    _check_table1_row(settle_arrays(TABLE1_C, TABLE1_P, allocation=alloc), row)


@pytest.mark.parametrize("row", TABLE1, ids=["equal", "prorata", "over-allocation"])
def test_mustika_table1_through_settle(hourly_instance, row):
    ds = hourly_instance(TABLE1_C, TABLE1_P, prices=PRICES0, members=["H1", "H2", "H3", "H4"])
    keys = xr.DataArray([*row[0], 0.0, 0.0], dims="member",
                        coords={"member": ["H1", "H2", "H3", "H4"]})
    out = settle(ds, keys=keys)
    res = {
        "alloc": out["allocation"].values, "comm_in": out["community_intake"].values,
        "grid_in": out["grid_in"].values, "surplus": out["surplus"].values,
        "grid_out": out["grid_out"].values, "comm_out": out["community_sales"].values,
        "community_production": out["community_production"].values,
    }
    _check_table1_row(res, row)
    assert out["keys"].dims == ("scenario", "time", "member")
    assert out["community_intake"].attrs["units"] == "kWh"
    assert out["bill"].attrs["units"] == "EUR"


def test_meter_flows_and_community_production():
    c = np.array([[[3.0, 0.0, 2.0]], [[1.0, 1.0, 0.0]]])
    p = np.array([[[1.0, 4.0, 2.0]], [[0.0, 3.5, 0.5]]])
    cp, pm = meter_flows(c, p)
    np.testing.assert_array_equal(cp, [[[2, 0, 0]], [[1, 0, 0]]])
    np.testing.assert_array_equal(pm, [[[0, 4, 0]], [[0, 2.5, 0.5]]])
    np.testing.assert_array_equal(community_production(pm), [[4.0], [3.0]])


# --------------------------------------------------------------------------------------
# a bill computed by hand: fees, two billing periods, per-member and per-time prices
# --------------------------------------------------------------------------------------
def _bill_case(hourly_instance):
    time = pd.date_range("2024-01-31T22:00", periods=4, freq="h")  # 2 steps Jan, 2 Feb
    #          A: consumer (injects 1 at t3)   B: producer (consumes 1 at t0)
    c = np.array([[2.0, 1.0], [1.0, 0.0], [3.0, 0.0], [0.0, 0.0]])
    p = np.array([[0.0, 3.0], [0.0, 2.0], [0.0, 1.0], [1.0, 0.0]])
    member = ["A", "B"]
    prices = {
        "price_grid_buy": xr.DataArray([0.30, 0.25], dims="member", coords={"member": member}),
        "price_grid_sell": xr.DataArray([0.05, 0.04], dims="member", coords={"member": member}),
        "price_community_buy": xr.DataArray(0.20),
        "price_community_sell": xr.DataArray([0.10, 0.10, 0.12, 0.12], dims="time",
                                             coords={"time": time}),
    }
    return hourly_instance(c, p, time=time, prices=prices, fee=[10.0, 4.0], members=member)


def test_hand_computed_bill_two_periods(hourly_instance):
    ds = _bill_case(hourly_instance)
    out = settle(ds, keys=np.array([[1.0, 0.0]] * 4))  # all to A, keys given as (T, U)
    # G = [2, 2, 1, 1]; comm_in A = [2, 1, 1, 0]; surplus = [0, 1, 0, 1]
    np.testing.assert_allclose(out["community_production"][0], [2, 2, 1, 1])
    np.testing.assert_allclose(out["community_intake"][0, :, 0], [2, 1, 1, 0])
    np.testing.assert_allclose(out["surplus"][0], [0, 1, 0, 1])
    np.testing.assert_allclose(out["grid_out"][0], [[0, 0], [0, 1], [0, 0], [1, 0]])
    np.testing.assert_allclose(out["community_sales"][0], [[0, 2], [0, 1], [0, 1], [0, 0]])
    np.testing.assert_allclose(out["grid_in"][0], [[0, 0], [0, 0], [2, 0], [0, 0]])
    # A per step: 0.4, 0.2, 0.6 + 0.2, -0.05; B: -0.2, -0.04 - 0.10, -0.12, 0
    assert out.sizes["period"] == 2
    np.testing.assert_allclose(out["bill_by_period"][0], [[10.6, 3.66], [10.75, 3.88]])
    np.testing.assert_allclose(out["bill"][0], [21.35, 7.54])
    np.testing.assert_allclose(out["baseline_bill_by_period"][0], [[10.9, 3.84], [10.85, 3.96]])
    np.testing.assert_allclose(out["baseline_bill"][0], [21.75, 7.80])
    np.testing.assert_allclose(out["collective_bill"], [28.89])
    np.testing.assert_allclose(out["baseline_collective_bill"], [29.55])
    np.testing.assert_allclose(out["grid_bill"][0], [20.55, 8 - 0.04])
    np.testing.assert_allclose(out["community_bill"][0], [0.8, -0.42])
    assert out["period_start"].values[1] == np.datetime64("2024-02-01")
    # bills() directly from the flows gives the same thing
    b = bills(ds, out["community_intake"], out["community_sales"])
    xr.testing.assert_allclose(b["bill"], out["bill"])


def test_bill_components_formula():
    cp = np.array([[[2.0, 0.0]]])
    pm = np.array([[[0.0, 3.0]]])
    prices = dict(price_grid_buy=np.array([0.3, 0.2]), price_grid_sell=0.05,
                  price_community_buy=0.2, price_community_sell=0.1)
    comp = bill_components(cp, pm, [[[1.5, 0.0]]], [[[0.0, 1.5]]], prices)
    np.testing.assert_allclose(comp["grid_in"], [[[0.5, 0.0]]])
    np.testing.assert_allclose(comp["grid_out"], [[[0.0, 1.5]]])
    np.testing.assert_allclose(comp["cost"], [[[0.3 * 0.5 + 0.2 * 1.5, -0.05 * 1.5 - 0.1 * 1.5]]])
    with pytest.raises(ModelError, match="comm_in"):
        bill_components(cp, pm, [[[2.5, 0.0]]], [[[0.0, 0.0]]], prices)


# --------------------------------------------------------------------------------------
# multi-round allocation, by hand
# --------------------------------------------------------------------------------------
def test_rounds_equal_then_prorata_by_hand():
    c = np.array([[[3.0, 15.0, 0.0, 0.0]]])
    rounds = [Round(1.0, np.array([0.5, 0.5, 0, 0])), Round(0.0, prorata_need)]
    res = settle_rounds(c, TABLE1_P, rounds)
    np.testing.assert_allclose(res["round_take"][:, 0, 0], [[3, 5, 0, 0], [0, 2, 0, 0]])
    np.testing.assert_allclose(res["comm_in"][0, 0], [3, 7, 0, 0])
    np.testing.assert_allclose(res["surplus"][0, 0], 0.0)
    np.testing.assert_allclose(res["round_available"][:, 0, 0], [10, 2])


@pytest.mark.parametrize("carry, comm_in, surplus", [(True, [3, 7], 0.0),
                                                     (False, [3, 2.5], 4.5)])
def test_rounds_carry_by_hand(carry, comm_in, surplus):
    c = np.array([[[3.0, 15.0, 0.0, 0.0]]])
    rounds = [Round(0.5, np.array([0.5, 0.5, 0, 0])),
              Round(0.5, np.array([1.0, 0.0, 0, 0]), carry=False),  # H1 takes 0.5 of 5
              Round(0.0, prorata_need, carry=carry)]                 # 4.5 left in the pool
    res = settle_rounds(c, TABLE1_P, rounds)
    np.testing.assert_allclose(res["comm_in"][0, 0, :2], comm_in)
    np.testing.assert_allclose(res["surplus"][0, 0], surplus)
    np.testing.assert_allclose(res["grid_out"][0, 0, 2:], [0.2 * surplus, 0.8 * surplus])


def test_settle_with_rounds_dataset(hourly_instance):
    ds = hourly_instance(TABLE1_C, TABLE1_P, prices=PRICES0)
    out = settle(ds, rounds=[Round(1.0, xr.DataArray([0.6, 0.4, 0, 0], dims="member")),
                             Round(0.0, prorata_need)])
    np.testing.assert_allclose(out["community_intake"][0, 0], [5, 5, 0, 0])
    assert out["round_take"].dims == ("round", "scenario", "time", "member")
    np.testing.assert_allclose(out["surplus"], [[0.0]])


# --------------------------------------------------------------------------------------
# property tests
# --------------------------------------------------------------------------------------
energy = st.one_of(st.just(0.0), st.floats(0.0, 10.0, allow_subnormal=False))


@st.composite
def settlement_data(draw):
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 6)), draw(st.integers(1, 5)))
    c = draw(hnp.arrays(float, shape, elements=energy))
    p = draw(hnp.arrays(float, shape, elements=energy))
    raw = draw(hnp.arrays(float, shape, elements=st.one_of(st.just(0.0), st.floats(0.0, 1.0))))
    frac = draw(hnp.arrays(float, shape[:2], elements=st.floats(0.0, 1.0)))
    total = raw.sum(axis=-1, keepdims=True)
    keys = np.divide(raw, total, out=np.zeros(shape), where=total > 0) * frac[..., None]
    return c, p, keys


def _assert_conserves(res, cp, pm, atol=1e-9):
    g = pm.sum(axis=-1)
    np.testing.assert_allclose(res["comm_in"].sum(-1) + res["surplus"], g, atol=atol)
    np.testing.assert_allclose(res["comm_out"].sum(-1), res["comm_in"].sum(-1), atol=atol)
    np.testing.assert_allclose(res["grid_in"] + res["comm_in"], cp, atol=atol)
    np.testing.assert_allclose(res["grid_out"] + res["comm_out"], pm, atol=atol)
    for k in ("comm_in", "grid_in", "grid_out", "comm_out", "surplus"):
        assert np.all(res[k] >= 0), k
        assert np.all(np.isfinite(res[k])), k


PROPS = settings(max_examples=50, deadline=None)


@PROPS
@given(settlement_data())
def test_property_conservation_and_bounds(data):
    c, p, keys = data
    cp, pm = meter_flows(c, p)
    res = settle_arrays(cp, pm, keys=keys)
    _assert_conserves(res, cp, pm)
    assert np.all(res["comm_in"] <= np.minimum(res["alloc"], cp))
    g = pm.sum(-1)
    assert np.all(res["alloc"].sum(-1) <= g * (1 + 1e-12) + 1e-12)  # no allocation beyond G
    assert np.all(res["surplus"] <= g * (1 + 1e-12) + 1e-12)


@PROPS
@given(settlement_data())
def test_property_zero_keys_give_baseline_bills(hourly_instance, data):
    c, p, _ = data
    out = settle(hourly_instance(c, p, prices=PRICES0, fee=np.arange(c.shape[-1], dtype=float)),
                 keys=np.zeros(c.shape))
    np.testing.assert_array_equal(out["bill"].values, out["baseline_bill"].values)
    np.testing.assert_array_equal(out["bill_by_period"].values,
                                  out["baseline_bill_by_period"].values)
    np.testing.assert_array_equal(out["community_intake"].values, 0.0)
    np.testing.assert_array_equal(out["community_sales"].values, 0.0)


@PROPS
@given(settlement_data())
def test_property_keys_equal_allocation_energies(data):
    c, p, keys = data
    cp, pm = meter_flows(c, p)
    by_keys = settle_arrays(cp, pm, keys=keys)
    by_energy = settle_arrays(cp, pm, allocation=keys * pm.sum(-1)[..., None])
    for k in FLOWS:
        np.testing.assert_array_equal(by_keys[k], by_energy[k], err_msg=k)


@PROPS
@given(settlement_data())
def test_property_single_round_equals_single_settlement(data):
    c, p, keys = data
    cp, pm = meter_flows(c, p)
    single = settle_arrays(cp, pm, keys=keys)
    rounds = settle_rounds(cp, pm, [Round(1.0, keys)])
    for k in FLOWS:
        np.testing.assert_array_equal(single[k], rounds[k], err_msg=k)
    np.testing.assert_array_equal(rounds["round_take"][0], single["comm_in"])


@PROPS
@given(settlement_data(), st.lists(st.tuples(st.floats(0.0, 1.0), st.booleans(),
                                             st.booleans()), min_size=1, max_size=3))
def test_property_rounds_never_exceed_remaining_need(data, spec):
    c, p, keys = data
    cp, pm = meter_flows(c, p)
    total = sum(s for s, _, _ in spec)
    rounds = [Round(s / max(total, 1.0), prorata_need if dynamic else keys, carry=carry)
              for s, dynamic, carry in spec]
    res = settle_rounds(cp, pm, rounds)
    need = cp.copy()
    for r, take in enumerate(res["round_take"]):
        assert np.all(take <= need + 1e-12), f"round {r} takes more than the remaining need"
        assert np.all(take <= res["round_offer"][r])
        assert np.all(res["round_offer"][r].sum(-1)
                      <= res["round_available"][r] * (1 + 1e-12) + 1e-12)
        need = need - take
    _assert_conserves(res, cp, pm)
    assert np.all(res["comm_in"].sum(-1) <= pm.sum(-1) * (1 + 1e-12) + 1e-12)


# --------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------
def test_error_keys_sum_above_one_names_the_step(hourly_instance):
    ds = hourly_instance(np.ones((1, 3, 2)), np.ones((1, 3, 2)) * [0, 2], prices=PRICES0)
    keys = np.array([[0.5, 0.5], [0.7, 0.4], [0.9, 0.9]])
    with pytest.raises(ModelError, match=r"sum to 1\.1.*2024-01-01T01:00:00.*index 1"):
        settle(ds, keys=keys)
    with pytest.raises(ModelError, match=r"time index 1"):
        settle_arrays(np.ones((1, 3, 2)), np.ones((1, 3, 2)), keys=keys[None])


def test_keys_sum_within_tolerance_accepted():
    res = settle_arrays(TABLE1_C, TABLE1_P, keys=np.array([0.5 + 5e-10, 0.5, 0, 0]))
    assert res["alloc"].sum() <= 10.0


def test_error_negative_keys():
    with pytest.raises(ModelError, match=r">= 0.*member index 1"):
        settle_arrays(TABLE1_C, TABLE1_P, keys=np.array([0.5, -0.1, 0, 0]))


def test_error_negative_or_excess_allocation():
    with pytest.raises(ModelError, match=">= 0"):
        settle_arrays(TABLE1_C, TABLE1_P, allocation=np.array([5.0, -1.0, 0, 0]))
    with pytest.raises(ModelError, match="exceeds the community production"):
        settle_arrays(TABLE1_C, TABLE1_P, allocation=np.array([6.0, 5.0, 0, 0]))


def test_error_both_or_neither(hourly_instance):
    with pytest.raises(ModelError, match="exactly one"):
        settle_arrays(TABLE1_C, TABLE1_P, keys=np.zeros(4), allocation=np.zeros(4))
    with pytest.raises(ModelError, match="exactly one"):
        settle_arrays(TABLE1_C, TABLE1_P)
    ds = hourly_instance(TABLE1_C, TABLE1_P, prices=PRICES0)
    with pytest.raises(ModelError, match="exactly one"):
        settle(ds, keys=np.zeros((1, 4)), allocation=np.zeros((1, 4)))
    with pytest.raises(ModelError, match="exactly one"):
        settle(ds, keys=np.zeros((1, 4)), rounds=[Round(1.0, np.zeros(4))])


def test_error_round_shares_above_one():
    with pytest.raises(ModelError, match="shares"):
        settle_rounds(TABLE1_C, TABLE1_P, [Round(0.7, np.zeros(4)), Round(0.4, np.zeros(4))])
    with pytest.raises(ModelError, match="round 1"):
        settle_rounds(TABLE1_C, TABLE1_P, [Round(0.5, np.zeros(4)),
                                           Round(0.5, np.array([0.8, 0.8, 0, 0]))])


def test_error_keys_with_wrong_dims_or_coords(hourly_instance):
    ds = hourly_instance(TABLE1_C, TABLE1_P, prices=PRICES0)
    with pytest.raises(DimensionError, match="coordinate"):
        settle(ds, keys=xr.DataArray([0.5, 0.5, 0, 0], dims="member",
                                     coords={"member": ["a", "b", "c", "d"]}))
    with pytest.raises(DimensionError, match="site"):
        settle(ds, keys=xr.DataArray([0.5, 0.5], dims="site"))
    with pytest.raises(DimensionError):
        settle(ds, keys=np.zeros(4))
