"""Tests of the community battery pre-processing (recopt.generate.battery, Ospina (9)-(14))."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recopt.data.instance import make_instance
from recopt.errors import InstanceError, ModelError
from recopt.generate.battery import add_community_battery, dispatch
from recopt.metrics import evaluate, sharing_upper_bound
from recopt.settle import community_production, meter_flows, prorata_need, settle


def test_dispatch_hand_computed():
    g = np.array([5.0, 5.0, 0.0, 0.0, 3.0])
    need = np.array([1.0, 1.0, 4.0, 4.0, 3.0])
    r = dispatch(g, need, energy_kwh=6.0, power_kw=3.0, step_hours=1.0)
    assert r["charge"] == pytest.approx([3, 3, 0, 0, 0])  # power cap 3 kWh/step
    assert r["discharge"] == pytest.approx([0, 0, 3, 3, 0])
    assert r["soc"] == pytest.approx([3, 6, 3, 0, 0])
    assert r["g_aug"] == pytest.approx([2, 2, 3, 3, 3])
    # energy cap binds: 4 kWh
    r = dispatch(g, need, energy_kwh=4.0, power_kw=3.0, step_hours=1.0)
    assert r["charge"] == pytest.approx([3, 1, 0, 0, 0])
    assert r["discharge"] == pytest.approx([0, 0, 3, 1, 0])
    # 30-min steps: 3 kW = 1.5 kWh per step
    r = dispatch(g, need, energy_kwh=6.0, power_kw=3.0, step_hours=0.5)
    assert r["charge"] == pytest.approx([1.5, 1.5, 0, 0, 0])
    assert r["discharge"] == pytest.approx([0, 0, 1.5, 1.5, 0])
    # deficit smaller than the power cap and the SOC: discharge exactly the deficit
    r = dispatch([4.0, 0.0], [0.0, 0.5], energy_kwh=10.0, power_kw=10.0, step_hours=1.0)
    assert r["discharge"] == pytest.approx([0, 0.5])


def test_dispatch_per_scenario_starts_empty():
    g = np.array([[5.0, 0.0, 0.0], [0.0, 0.0, 5.0]])
    need = np.array([[0.0, 2.0, 2.0], [1.0, 1.0, 0.0]])
    r = dispatch(g, need, energy_kwh=10.0, power_kw=10.0, step_hours=1.0)
    for s in range(2):
        one = dispatch(g[s], need[s], energy_kwh=10.0, power_kw=10.0, step_hours=1.0)
        for k in r:
            assert r[k][s] == pytest.approx(one[k])
    assert r["discharge"][1] == pytest.approx([0, 0, 0])  # nothing stored yet


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(0, 20), st.floats(0, 10))
def test_dispatch_properties(seed, cap, power):
    rng = np.random.default_rng(seed)
    g = rng.uniform(0, 6, (3, 50)) * (rng.uniform(size=(3, 50)) < 0.5)
    need = rng.uniform(0, 4, (3, 50))
    r = dispatch(g, need, cap, power, 1.0)
    e_net = g - need
    assert np.all(r["soc"] >= -1e-12) and np.all(r["soc"] <= cap + 1e-12)
    assert np.all(r["charge"] * r["discharge"] == 0)  # mutually exclusive
    assert np.all(r["charge"] <= np.maximum(e_net, 0) + 1e-12)
    assert np.all(r["discharge"] <= np.maximum(-e_net, 0) + 1e-12)
    assert np.all(np.maximum(r["charge"], r["discharge"]) <= power + 1e-12)
    assert np.allclose(r["charge"].sum(-1) - r["discharge"].sum(-1), r["soc"][:, -1])
    # the battery only moves surplus into deficit: the sharing bound rises by the discharge
    before = np.minimum(g, need).sum(-1)
    after = np.minimum(r["g_aug"], need).sum(-1)
    assert np.allclose(after - before, r["discharge"].sum(-1))


def test_dispatch_refuses_bad_parameters():
    with pytest.raises(ModelError, match="energy_kwh"):
        dispatch([1.0], [0.0], -1.0, 1.0, 1.0)
    with pytest.raises(ModelError, match="soc_initial"):
        dispatch([1.0], [0.0], 1.0, 1.0, 1.0, soc_initial=2.0)


def _community(seed=0, s=2, t=72):
    rng = np.random.default_rng(seed)
    hours = np.arange(t) % 24
    sun = np.clip(np.sin((hours - 6) / 12 * np.pi), 0, None)
    c = rng.uniform(0.2, 1.5, (s, t, 4))
    c[..., 0] = 0.0  # a pure producer
    p = np.zeros((s, t, 4))
    p[..., 0] = 8.0 * sun * rng.uniform(0.5, 1.0, (s, t))
    p[..., 1] = 1.0 * sun  # a prosumer
    time = pd.date_range("2024-06-01", periods=t, freq="h")
    return make_instance(c, p, price_grid_buy=0.2, price_grid_sell=0.05,
                         price_community_buy={"m0": 0.1, "m1": 0.1, "m2": 0.11, "m3": 0.09},
                         price_community_sell=0.08, time=time, time_step_hours=1.0,
                         x_km=[0, 1, 2, 3], y_km=[0, 0, 0, 4], category=["pv", "h", "h", "h"],
                         investment=[100.0, 0, 0, 0], installed_power=[8.0, 1.0, 0, 0])


def test_augmented_instance_shares_g_aug():
    inst = _community()
    aug = add_community_battery(inst, 10.0, 5.0, investment=5000.0)
    assert list(aug.member.values) == ["m0", "m1", "m2", "m3", "community_battery"]
    assert aug.category.values[-1] == "battery"
    assert aug.installed_power.values[-1] == 5.0
    assert aug.investment.values[-1] == 5000.0
    assert aug.price_community_buy.values[-1] == pytest.approx(0.1)  # member mean
    assert aug.x_km.values[-1] == pytest.approx(1.5)
    cp0, _ = meter_flows(inst.consumption.values, inst.production.values)
    cp, pm = meter_flows(aug.consumption.values, aug.production.values)
    # nobody's withdrawal changes; the battery never withdraws
    assert np.allclose(cp[..., :-1], cp0) and np.all(cp[..., -1] == 0)
    g_aug = (aug.community_production_original - aug.battery_charge
             + aug.battery_discharge).values
    assert np.allclose(community_production(pm), g_aug)
    assert aug.battery_charge.values.sum() > 0 and aug.battery_discharge.values.sum() > 0
    assert np.all(aug.battery_soc.values <= 10.0 + 1e-12)


def test_battery_raises_prorata_sharing_by_the_discharge():
    inst = _community(seed=1)
    aug = add_community_battery(inst, 10.0, 5.0)
    out = {}
    for name, ds in (("base", inst), ("bess", aug)):
        cp, _ = meter_flows(ds.consumption.values, ds.production.values)
        res = settle(ds, keys=prorata_need(cp, None))
        m = evaluate(ds, res.community_intake, res.community_sales)
        out[name] = m
        # prorata of the need reaches the sharing bound, with and without BESS
        ub = sharing_upper_bound(cp, res.community_production.values).sum(-1)
        assert np.allclose(m.shared_energy.values, ub)
    gain = out["bess"].shared_energy.values - out["base"].shared_energy.values
    assert np.allclose(gain, aug.battery_discharge.values.sum(-1))
    assert np.all(out["bess"].self_sufficiency.values[:, 1:4]
                  >= out["base"].self_sufficiency.values[:, 1:4] - 1e-12)


def test_add_battery_refuses_existing_name():
    inst = _community()
    with pytest.raises(InstanceError, match="already exists"):
        add_community_battery(inst, 1.0, 1.0, name="m1")
