"""The fast paths of the key evaluation equal the checked paths (issue 3 speed).

The evaluation driver settles through ``settle_arrays(validated=True, outputs=...)``,
reuses a block's meter values and the first block's prices/fees (``MetricContext(like=)``),
water-fills equal weights by a plain sort and sums with einsum. Each is compared here
with the checked path (or with the definition) on random data that includes steps
without production, steps without consumption and members that never consume.
"""

from __future__ import annotations

import numpy as np
import pytest

from recopt.generate.synthetic import synthetic_community
from recopt.keys.evaluate import entitlement, evaluate_keys, settle_active
from recopt.keys.rules import KeyInputs, key_hybrid_rounds, make_plan, settle_plan, waterfill
from recopt.metrics.community import MetricContext, energy_to_shift, evaluate
from recopt.settle import (
    member_sum,
    meter_flows,
    settle,
    settle_arrays,
    step_product,
)


def _random_meter(seed: int, shape=(3, 50, 6)):
    """C+ and P- with zero-production steps, zero-consumption steps and a member that
    never consumes (the last one)."""
    rng = np.random.default_rng(seed)
    c = rng.gamma(0.8, 1.0, shape) * (rng.random(shape) > 0.3)
    p = rng.gamma(0.8, 2.0, shape) * (rng.random(shape) > 0.5)
    p[:, ::4] = 0.0  # no production at all
    c[:, 1::5] = 0.0  # no consumption at all
    c[..., -1] = 0.0
    return meter_flows(c, p)


@pytest.mark.parametrize("seed", range(5))
def test_validated_settlement_equals_checked(seed):
    c, p = _random_meter(seed)
    rng = np.random.default_rng(100 + seed)
    u = c.shape[-1]
    raw = rng.random(c.shape)
    keys_full = raw / raw.sum(axis=-1, keepdims=True) * rng.uniform(0.5, 1.0, c.shape[:-1] + (1,))
    keys_vec = rng.dirichlet(np.ones(u))
    g = p.sum(axis=-1)
    alloc = keys_full * g[..., None] * 0.9
    for kw in ({"keys": keys_full}, {"keys": keys_vec}, {"allocation": alloc}):
        checked = settle_arrays(c, p, **kw)
        fast = settle_arrays(c, p, validated=True, **kw)
        assert set(fast) == set(checked)
        for name in checked:
            np.testing.assert_array_equal(fast[name], checked[name], err_msg=name)
        part = settle_arrays(c, p, validated=True, outputs=("comm_in", "comm_out"),
                             community_production=p.sum(axis=-1), **kw)
        assert set(part) == {"comm_in", "comm_out"}
        for name in part:
            np.testing.assert_array_equal(part[name], checked[name], err_msg=name)
    # the checked path still refuses bad keys; the fast one trusts its caller
    with pytest.raises(Exception, match="sum to at most 1"):
        settle_arrays(c, p, keys=np.full(c.shape, 0.5))


@pytest.mark.parametrize("key", ["GS", "ES", "PR", "HEP", "CA", "KoR3", "KoR5",
                                 key_hybrid_rounds])
@pytest.mark.parametrize("seed", range(3))
def test_driver_settlement_equals_settle_plan(key, seed):
    c, p = _random_meter(seed)
    inputs = KeyInputs(c, p)
    kw = {"shares": [0.3, 0.2, 0.2, 0.1, 0.1, 0.1]} if key == "GS" else {}
    plan = make_plan(inputs, key, **kw)
    full = settle_plan(KeyInputs(c, p), plan)
    fast = settle_active(inputs, plan)
    np.testing.assert_allclose(fast["comm_in"], full["comm_in"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(fast["comm_out"], full["comm_out"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(fast["entitlement"], entitlement(full, plan), rtol=0,
                               atol=1e-12)
    if "taken" in fast:  # comm_in reused as min(entitlement, C+) by the energy to shift
        np.testing.assert_array_equal(fast["taken"], np.minimum(fast["entitlement"], c))


def _slow_waterfill(need, available, weights=None):
    """Oracle: bisection on the level L of sum_i min(need_i, w_i L) = available."""
    need = np.maximum(need, 0.0)
    w_all = np.ones(need.shape[-1]) if weights is None else np.asarray(weights, float)
    out = np.zeros_like(need)
    for idx in np.ndindex(need.shape[:-1]):
        n, g, w = need[idx], float(available[idx]), w_all
        if g >= n[w > 0].sum():
            out[idx] = np.where(w > 0, n, 0.0)
            continue
        lo, hi = 0.0, float(np.max(np.where(w > 0, n / np.where(w > 0, w, 1), 0))) + 1
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            if np.minimum(n, w * mid).sum() < g:
                lo = mid
            else:
                hi = mid
        out[idx] = np.minimum(n, w * hi)
    return out


@pytest.mark.parametrize("seed", range(4))
def test_equal_waterfill_sort_path(seed):
    c, p = _random_meter(seed)
    g = p.sum(axis=-1)
    fast = waterfill(c, g)  # sort of the needs only
    general = waterfill(c, g, weights=np.ones(c.shape[-1]))  # the weighted (argsort) path
    np.testing.assert_allclose(fast, general, rtol=0, atol=1e-12)
    np.testing.assert_allclose(fast, _slow_waterfill(c, g), rtol=0, atol=1e-9)
    assert np.all(fast <= c + 1e-12)
    np.testing.assert_allclose(fast.sum(axis=-1), np.minimum(g, c.sum(axis=-1)), atol=1e-9)


def test_sum_and_product_helpers():
    rng = np.random.default_rng(7)
    x = rng.random((4, 30, 9))
    s = rng.random((4, 30))
    np.testing.assert_allclose(member_sum(x), x.sum(axis=-1), rtol=1e-14)
    np.testing.assert_array_equal(step_product(x, s), x * s[..., None])
    v = rng.random(9)
    np.testing.assert_array_equal(step_product(v, s), v * s[..., None])
    c, p = rng.random((2, 40, 5)) * (rng.random((2, 2, 40, 5)) > 0.3)
    cp, pm = meter_flows(c, p)
    np.testing.assert_array_equal(cp, np.maximum(c - p, 0.0))
    np.testing.assert_array_equal(pm, np.maximum(p - c, 0.0))
    a = rng.random((2, 40, 5))
    starts = np.arange(0, 40, 8)
    np.testing.assert_allclose(energy_to_shift(cp, a, starts, taken=np.minimum(a, cp)),
                               energy_to_shift(cp, a, starts), rtol=1e-14)


@pytest.fixture(scope="module")
def inst():
    one = synthetic_community(5, 96 * 2, seed=4)
    rng = np.random.default_rng(3)
    ds = one.isel(scenario=[0] * 5).assign_coords(scenario=np.arange(5))
    dims = ds["consumption"].dims
    cons = ds["consumption"].values.copy()
    prod = ds["production"].values * rng.uniform(0.3, 3.0, (5, 1, 1))  # scaled production
    cons[rng.random(cons.shape[:2]) < 0.1] = 0.0  # some steps without consumption
    ds = ds.assign(consumption=(dims, cons), production=(dims, prod))
    ds["scenario_probability"] = ("scenario", np.full(5, 0.2))
    return ds.transpose("scenario", "time", "member", ...)


def test_metric_context_like_equals_fresh(inst):
    first = MetricContext(inst.isel(scenario=slice(0, 2)))
    block = inst.isel(scenario=slice(2, 5))  # another block size
    fresh, reused = MetricContext(block), MetricContext(block, like=first)
    for name in ("baseline_bill", "baseline_cost", "upper_bound", "daily_need"):
        np.testing.assert_allclose(getattr(reused, name), getattr(fresh, name), rtol=1e-12)
    np.testing.assert_array_equal(reused.aggregate, fresh.aggregate)


@pytest.mark.parametrize("chunk", [1, 2, None])
def test_evaluate_keys_equals_checked_settle_then_evaluate(inst, chunk):
    phi = 150.0 + 10.0 * np.arange(inst.sizes["time"]) % 70
    ds = evaluate_keys(inst, ["GS", "ES", "PR", "HEP", "CA"], co2_intensity=phi, metrics=None,
                       key_params={"GS": {"shares": [0.3, 0.3, 0.2, 0.1, 0.1]}},
                       chunk_scenarios=chunk, threads=2)
    for key in ("GS", "ES", "PR", "HEP", "CA"):
        kw = {"shares": [0.3, 0.3, 0.2, 0.1, 0.1]} if key == "GS" else {}
        inputs = KeyInputs.from_instance(inst)
        plan = make_plan(inputs, key, **kw)
        settled = settle(inst, **({"keys": np.broadcast_to(plan.keys, inputs.net_consumption.shape)}
                                  if plan.keys is not None else {"allocation": plan.allocation}))
        want = evaluate(inst, settled["community_intake"], settled["community_sales"],
                        allocation=entitlement(settle_plan(inputs, plan), plan),
                        co2_intensity=phi)
        for var in want.data_vars:
            np.testing.assert_allclose(ds[var].sel(key=key), want[var], rtol=1e-12,
                                       atol=1e-12, err_msg=f"{key} {var}")
    slow = evaluate_keys(inst, ["GS", "ES", "PR", "HEP", "CA"], co2_intensity=phi, metrics=None,
                         key_params={"GS": {"shares": [0.3, 0.3, 0.2, 0.1, 0.1]}},
                         chunk_scenarios=chunk, checked=True)
    for var in slow.data_vars:
        np.testing.assert_allclose(ds[var], slow[var], rtol=1e-12, atol=1e-12, err_msg=var)
