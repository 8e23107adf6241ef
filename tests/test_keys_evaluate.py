"""Evaluation driver and CLI of recopt.keys."""

import numpy as np
import pytest
import xarray as xr

from recopt.cli.keys import main
from recopt.data.instance import load
from recopt.generate.synthetic import synthetic_community
from recopt.keys.evaluate import entitlement, evaluate_keys, settle_active, summarise
from recopt.keys.rules import KeyInputs, key_hybrid_rounds, make_plan, settle_key, settle_plan
from recopt.metrics.community import evaluate


@pytest.fixture(scope="module")
def inst():
    one = synthetic_community(6, 96 * 3, seed=2)
    # three scenarios: the same community with production scaled 0.5, 1, 2
    scen = [one.assign(production=one["production"] * f) for f in (0.5, 1.0, 2.0)]
    ds = xr.concat(scen, dim="scenario", data_vars="minimal", coords="minimal",
                   compat="override")
    ds = ds.assign_coords(scenario=[0, 1, 2])
    ds["consumption"] = xr.concat([one["consumption"]] * 3, dim="scenario").assign_coords(
        scenario=[0, 1, 2])
    ds["scenario_probability"] = ("scenario", np.full(3, 1 / 3))
    return ds.transpose("scenario", "time", "member", ...)


def test_evaluate_keys_equals_settle_then_evaluate(inst):
    ds = evaluate_keys(inst, ["ES", "PR", "HEP", "CA"], co2_intensity=300.0,
                       chunk_scenarios=2)
    assert ds.sizes["key"] == 4 and ds.sizes["scenario"] == 3
    for key in ("ES", "HEP"):
        settled = settle_key(inst, key)
        inputs = KeyInputs.from_instance(inst)
        plan = make_plan(inputs, key)
        ent = entitlement(settle_plan(inputs, plan), plan)
        want = evaluate(inst, settled["community_intake"], settled["community_sales"],
                        allocation=ent, co2_intensity=300.0)
        for var in ("self_consumption_rate", "gini", "energy_to_shift_total", "co2_avoided",
                    "bill_saving_mean"):
            np.testing.assert_allclose(ds[var].sel(key=key), want[var], rtol=1e-9)
    # every key's SCR <= the upper bound; PR and CA reach it
    full = evaluate_keys(inst, ["ES", "PR", "HEP", "CA", "KoR5", "KoR7"],
                         metrics=["self_consumption_rate", "sharing_upper_bound"])
    assert np.all(full["self_consumption_rate"] <= full["scr_upper_bound"] + 1e-12)
    np.testing.assert_allclose(ds["self_consumption_rate"].sel(key="PR"),
                               ds["self_consumption_rate"].sel(key="CA"))
    # cascade never offers beyond need: nothing to shift
    np.testing.assert_allclose(ds["energy_to_shift_total"].sel(key="CA"), 0.0, atol=1e-9)
    summ = summarise(ds)
    assert list(summ["stat"].values) == ["mean", "p10", "p90"]


def test_hybrid_entitlement_is_ospina_alpha():
    # one step, 4 members (D produces), G = 3: eps = 0.75; needs [0.5, 2, 3, 0]; round 1
    # [0.5, .75, .75, 0], leftover S = 1 pro rata of demand above eps r = [0, 1.25, 2.25, 0]
    # (Ospina A.5) -> alpha = [0.5, .75 + 1.25/3.5, .75 + 2.25/3.5, 0]
    inp = KeyInputs(np.array([[[0.5, 2.0, 3.0, 0.0]]]), np.array([[[0, 0, 0, 3.0]]]))
    want = [0.5, 0.75 + 1.25 / 3.5, 0.75 + 2.25 / 3.5, 0.0]
    plan = make_plan(inp, "HEP")
    np.testing.assert_allclose(entitlement(settle_plan(inp, plan), plan)[0, 0], want)
    rounds = key_hybrid_rounds(inp)  # the literal two rounds give the same entitlement
    np.testing.assert_allclose(entitlement(settle_plan(inp, rounds))[0, 0], want)


@pytest.mark.vector_copies
def test_cli_compare_and_brute_force(inst, tmp_path, capsys):
    path = tmp_path / "inst.nc"
    inst.to_netcdf(path)
    out = tmp_path / "out"
    assert main([str(path), "--keys", "ES,PR,CA", "--co2", "200", "--rounds",
                 "0.5:equal,0.5:prorata", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "self_consumption_rate" in text and "rounds(0.5:equal,0.5:prorata)" in text
    several = load(path).sizes["scenario"] > 1
    for name in ("metrics.nc", "summary.csv", "members.csv", "keys.png", "keys.pdf",
                 "members.png", "members.pdf"):
        assert (out / name).exists(), name
    assert (out / "bands.png").exists() == several  # no band for one scenario
    assert main([str(path), "--brute-force", "--region", "flanders", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "SCR upper bound" in text and (out / "ranking.csv").exists()
    assert main([str(path), "--keys", "NOPE"]) == 2
    assert "unknown key" in capsys.readouterr().err
    assert main(["--list-keys"]) == 0
    assert "wallonia" in capsys.readouterr().out


@pytest.mark.parametrize("key", ["GS", "ES", "PR", "HEP", "CA", "KoR3", "KoR5", "KoR7",
                                 key_hybrid_rounds])
def test_settle_active_equals_full_settlement(inst, key):
    inputs = KeyInputs.from_instance(inst)
    kw = {"shares": [0.1, 0.2, 0.3, 0.1, 0.2, 0.1]} if key == "GS" else {}
    plan = make_plan(inputs, key, **kw)
    full = settle_plan(inputs, plan)
    part = settle_active(inputs, plan)
    np.testing.assert_allclose(part["comm_in"], full["comm_in"], atol=1e-12)
    np.testing.assert_allclose(part["comm_out"], full["comm_out"], atol=1e-12)
    np.testing.assert_allclose(part["entitlement"], entitlement(full, plan), atol=1e-12)


def test_dask_backed_scenarios_equal_in_memory():
    from recopt.generate.bootstrap import seasonal_block_bootstrap

    hist = synthetic_community(4, 24 * (365 * 2 + 1), step_hours=1.0, start="2018-12-01",
                               seed=0)
    lazy = seasonal_block_bootstrap(hist, 4, seed=1, chunks=2)
    eager = seasonal_block_bootstrap(hist, 4, seed=1)
    assert hasattr(lazy["consumption"].data, "dask")
    a = evaluate_keys(lazy, "ES,CA", chunk_scenarios=2, threads=1)
    b = evaluate_keys(eager, "ES,CA", chunk_scenarios=None)
    for var in ("self_consumption_rate", "gini", "energy_to_shift_total"):
        np.testing.assert_allclose(a[var], b[var], rtol=1e-12)
