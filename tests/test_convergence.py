"""Tests of the Monte Carlo convergence N* (recopt.metrics.convergence, Ospina (32))."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from recopt.errors import ModelError
from recopt.metrics.convergence import convergence, first_stable, running_half_width


def _naive_nstar(x, tol, window, relative=False):
    """N* by the words of Ospina §4.4.2, with explicit loops."""
    n = len(x)
    h = [np.nan] + [1.96 * np.std(x[:k], ddof=1) / np.sqrt(k) for k in range(2, n + 1)]
    bound = [tol * abs(np.mean(x[:k])) if relative else tol for k in range(1, n + 1)]
    for start in range(1, n - window + 2):
        if all(h[k - 1] < bound[k - 1] for k in range(start, start + window)):
            return start
    return np.nan


def test_running_half_width_matches_loop():
    rng = np.random.default_rng(0)
    x = 1000.0 + rng.normal(0, 0.5, (3, 60))  # large mean, small spread: no cancellation
    mean, h = running_half_width(x)
    for k in range(2, 61):
        assert mean[:, k - 1] == pytest.approx(x[:, :k].mean(axis=1))
        assert h[:, k - 1] == pytest.approx(1.96 * x[:, :k].std(axis=1, ddof=1) / np.sqrt(k),
                                            rel=1e-7)
    assert np.all(np.isnan(h[:, 0]))
    _, h0 = running_half_width(x.T, axis=0)
    assert np.allclose(h0.T, h, equal_nan=True)


def test_first_stable_hand():
    b = np.array([False, True, True, False, True, True, True])
    assert first_stable(b, 3) == 5
    assert first_stable(b, 2) == 2
    assert np.isnan(first_stable(b, 4))
    assert np.isnan(first_stable(b[:2], 3))
    assert list(first_stable(np.array([b, ~b]), 1)) == [2, 1]


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(0.05, 0.6), st.integers(1, 25))
def test_nstar_matches_the_definition(seed, tol, window):
    x = np.random.default_rng(seed).normal(0, 1, 80)
    ds = convergence({"k": xr.Dataset({"m": ("scenario", x)})}, tol, window=window)
    expect = _naive_nstar(x, tol, window)
    got = ds.n_star.sel(key="k", metric="m").item()
    assert (np.isnan(got) and np.isnan(expect)) or got == expect


def test_constant_metric_converges_at_two():
    ds = convergence({"ES": xr.Dataset({"scr": ("scenario", np.full(30, 0.5))})}, 1e-6)
    assert ds.attrs["n_star"] == 2  # h(1) undefined; h(N) = 0 from N = 2


def test_worst_case_over_keys_and_metrics_and_members():
    rng = np.random.default_rng(4)
    n = 300
    calm = rng.normal(0.5, 0.01, n)
    wild = rng.normal(0.5, 0.2, n)
    per_member = np.stack([calm, wild * 0.5], axis=1)  # (scenario, member)
    res = {
        "ES": xr.Dataset({"scr": ("scenario", calm), "gini": ("scenario", calm)}),
        "PR": xr.Dataset({"scr": ("scenario", calm), "gini": ("scenario", wild),
                          "ssr": (("scenario", "member"), per_member)}),
    }
    with pytest.raises(ModelError, match="no metric"):
        convergence(res, 0.05, metrics=["scr", "gini", "ssr"])
    ds = convergence(res, 0.05)
    assert ds.attrs["binding_key"] == "PR" and ds.attrs["binding_metric"] == "gini"
    assert ds.attrs["n_star"] == int(ds.n_star.max())
    assert ds.attrs["n_star"] == _naive_nstar(wild, 0.05, 20)
    ssr = convergence({"PR": res["PR"]}, 0.05, metrics=["ssr"])
    assert ssr.n_star.item() == _naive_nstar(wild * 0.5, 0.05, 20)  # the worst member
    # tolerance per metric; relative tolerance; not converged
    per = convergence(res, {"scr": 0.05, "gini": 1.0})
    assert per.attrs["binding_metric"] == "scr"
    rel = convergence(res, 0.01, relative=True)
    assert rel.n_star.sel(key="ES", metric="scr").item() == _naive_nstar(calm, 0.01, 20, True)
    assert rel.attrs["n_star"] == -1  # PR's Gini does not settle within 1 % in 300 years
    none = convergence(res, 1e-9)
    assert none.attrs["n_star"] == -1 and np.isnan(none.n_star.values).all()


def test_dataset_with_key_dim():
    x = np.random.default_rng(1).normal(0, 1, (2, 50))
    ds = xr.Dataset({"m": (("key", "scenario"), x)}, coords={"key": ["A", "B"]})
    out = convergence(ds, 0.9)
    assert list(out.key.values) == ["A", "B"]
    for i, k in enumerate("AB"):
        got, expect = out.n_star.sel(key=k, metric="m").item(), _naive_nstar(x[i], 0.9, 20)
        assert got == expect or (np.isnan(got) and np.isnan(expect))
