"""Member roles (a community-owned plant) and the local billing calendar.

The figures are computed by hand in the comments (Ospina Lopez 2026, eq. (16),
Algorithms A.3 and A.5; Mustika (13)-(16)); every assertion could fail if the plant
were counted as a member.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recopt.data import (
    billing_period_index,
    load,
    make_instance,
    member_mask,
    member_roles,
    validate,
    with_roles,
)
from recopt.errors import InstanceError, ModelError
from recopt.keys.evaluate import evaluate_keys
from recopt.keys.rules import KeyInputs, make_plan, settle_key
from recopt.settle import bills

B, S, CB, CS = 0.30, 0.05, 0.20, 0.10  # EUR/kWh
FEE = 1.0  # EUR per member and billing period


def plant_community(fee: float = FEE):
    """Members A (C = 2), B (C = 0.5), C (C = 3) and a plant (P = 3) over 4 steps."""
    T = 4
    cons = np.tile([2.0, 0.5, 3.0, 0.0], (T, 1))
    prod = np.tile([0.0, 0.0, 0.0, 3.0], (T, 1))
    return make_instance(cons, prod, price_grid_buy=B, price_grid_sell=S,
                         price_community_buy=CB, price_community_sell=CS,
                         members=["A", "B", "C", "plant"], time_step_hours=1.0,
                         subscription_fee=fee,
                         role=["consumer", "consumer", "consumer", "plant"])


def test_roles_default_and_validation():
    inst = plant_community()
    assert member_roles(inst).tolist() == ["consumer"] * 3 + ["plant"]
    assert member_mask(inst).tolist() == [True, True, True, False]
    plain = inst.drop_vars("role")
    assert member_roles(plain).tolist() == ["consumer"] * 3 + ["producer"]
    assert with_roles(plain, {"plant": "plant"})["role"].values.tolist()[-1] == "plant"
    with pytest.raises(InstanceError, match="role of member 'B'"):
        validate(with_roles(plain, ["consumer", "boss", "consumer", "plant"]))
    with pytest.raises(InstanceError, match="at least one member"):
        with_roles(plain, "plant")


def test_equal_sharing_divides_among_members_only():
    inst = plant_community()
    st = settle_key(inst, "ES")
    # G = 3 kWh per step, M = 3 members: ES key 1/3 each, 0 for the plant (eq. 16)
    np.testing.assert_allclose(st["keys"].isel(scenario=0, time=0).values,
                               [1 / 3, 1 / 3, 1 / 3, 0.0])
    np.testing.assert_allclose(st["allocation"].isel(scenario=0, time=0).values,
                               [1.0, 1.0, 1.0, 0.0])
    # taken: A 1, B 0.5 (its need), C 1; surplus 0.5 to the grid, all from the plant
    np.testing.assert_allclose(st["community_intake"].isel(scenario=0, time=0).values,
                               [1.0, 0.5, 1.0, 0.0])
    np.testing.assert_allclose(st["surplus"].values, 0.5)


def test_hybrid_equal_prorata_among_members_only():
    inst = plant_community()
    st = settle_key(inst, "HEP")
    # round 1: eps = G/M = 1 -> A 1, B 0.5, C 1; left 0.5 pro rata of remaining need
    # (A 1, C 2): A + 1/6, C + 1/3 (Ospina A.5); the plant takes nothing
    np.testing.assert_allclose(st["community_intake"].isel(scenario=0, time=0).values,
                               [1 + 1 / 6, 0.5, 1 + 1 / 3, 0.0])


def test_gs_shares_per_member_and_refusal():
    inst = plant_community()
    inp = KeyInputs.from_instance(inst)
    plan = make_plan(inp, "GS", shares=[0.5, 0.2, 0.3])  # one per member, plant left out
    np.testing.assert_allclose(plan.keys[0, 0], [0.5, 0.2, 0.3, 0.0])
    with pytest.raises(ModelError, match="--shares"):
        make_plan(inp, "GS")
    with pytest.raises(ModelError, match="plant"):
        make_plan(inp, "GS", shares=[0.4, 0.2, 0.2, 0.2])


def test_bills_and_community_account_by_hand():
    inst = plant_community()
    st = settle_key(inst, "ES")
    b = st.isel(scenario=0)
    # per step: A buys 1 from the grid and 1 from the community: 0.3 + 0.2 = 0.5;
    # B 0.5 from the community: 0.1; C 2 from the grid + 1 community: 0.8; 4 steps + fee
    np.testing.assert_allclose(b["bill"].values, [4 * 0.5 + FEE, 4 * 0.1 + FEE,
                                                  4 * 0.8 + FEE, 0.0])
    np.testing.assert_allclose(b["baseline_bill"].values, [4 * 0.6 + FEE, 4 * 0.15 + FEE,
                                                           4 * 0.9 + FEE, 0.0])
    # the plant sells 2.5 to the community (0.25) and 0.5 to the grid (0.025) per
    # step, minus its fee: that is the community's account, not a bill
    assert float(b["community_account"]) == pytest.approx(4 * 0.275 - FEE)
    assert float(b["baseline_community_account"]) == pytest.approx(4 * 3 * S - FEE)
    members_bill = 4 * (0.5 + 0.1 + 0.8) + 3 * FEE
    assert float(b["collective_bill"]) == pytest.approx(members_bill - (4 * 0.275 - FEE))
    # per billing period too
    assert float(b["community_account_by_period"].sum()) == pytest.approx(4 * 0.275 - FEE)


def test_metrics_over_members_only():
    inst = plant_community(fee=0.0)
    ds = evaluate_keys(inst, ["ES"], metrics=["bill_saving", "gini", "collective_bill",
                                              "self_sufficiency"]).sel(key="ES", scenario="s0")
    # savings: A 4 * 0.1 = 0.4, B 4 * 0.05 = 0.2, C 4 * 0.1 = 0.4 (plant: no bill)
    np.testing.assert_allclose(ds["bill_saving"].values, [0.4, 0.2, 0.4, 0.0], atol=1e-12)
    assert float(ds["bill_saving_mean"]) == pytest.approx(1.0 / 3.0)
    x = np.array([0.4, 0.2, 0.4])  # Ospina (22) by hand over the 3 members
    want = np.abs(x[:, None] - x[None, :]).sum() / (2 * 3 * x.sum())
    assert float(ds["gini"]) == pytest.approx(want)
    assert float(ds["community_account"]) == pytest.approx(4 * 0.275)
    # the same collective bill as the settlement's
    st = settle_key(inst, "ES")
    assert float(ds["collective_bill"]) == pytest.approx(float(st["collective_bill"][0]))


def test_shipped_month_is_14_members_and_a_plant():
    from pathlib import Path
    inst = load(Path(__file__).resolve().parents[1] / "instances" / "community_14_month.nc")
    assert int(member_mask(inst).sum()) == 14 and member_roles(inst)[-1] == "plant"
    st = settle_key(inst, "ES")
    g = st["community_production"].values[0]
    alloc = st["allocation"].values[0]
    np.testing.assert_allclose(alloc[:, :14], np.repeat(g[:, None] / 14, 14, axis=1))
    assert np.all(alloc[:, 14] == 0.0)


def test_kor8_and_lp1_give_the_plant_nothing():
    from recopt.solve import solve
    inst = plant_community()
    for model in ("KoR8", "LP1", "KoR9"):
        res = solve(inst, model)
        assert float(np.abs(res["community_intake"].sel(member="plant")).max()) == 0.0
        assert float(res["bill"].sel(member="plant").max()) == 0.0


# ======================================================================================
# billing calendar
# ======================================================================================
def brussels_instance(tz: str | None = "Europe/Brussels"):
    # 25 Feb - 5 Nov 2023 local time, hourly, stored in UTC: spans both DST changes
    local = pd.date_range("2023-02-25", "2023-11-05", freq="h", inclusive="left",
                          tz="Europe/Brussels")
    utc = local.tz_convert("UTC").tz_localize(None)
    T = utc.size
    cons = np.ones((T, 2))
    prod = np.zeros((T, 2))
    prod[:, 1] = 0.5
    attrs = {"billing_timezone": tz} if tz else {}
    return make_instance(cons, prod, price_grid_buy=0.3, price_grid_sell=0.05,
                         price_community_buy=0.2, price_community_sell=0.1,
                         time=utc, subscription_fee=2.0, attrs=attrs)


def test_billing_periods_start_at_local_midnight_of_the_first():
    inst = brussels_instance()
    idx = billing_period_index(inst)
    assert idx.max() + 1 == 10  # Feb (stub), Mar ... Oct, Nov (stub)
    times = pd.DatetimeIndex(inst.time.values).tz_localize("UTC").tz_convert(
        "Europe/Brussels")
    firsts = times[np.r_[0, np.flatnonzero(np.diff(idx)) + 1]]
    for t in firsts[1:]:
        assert (t.day, t.hour, t.minute) == (1, 0, 0)
    # March starts 23:00 UTC (CET), May 22:00 UTC (CEST), November 23:00 UTC again
    starts = pd.DatetimeIndex(inst.time.values)[np.r_[0, np.flatnonzero(np.diff(idx)) + 1]]
    assert starts[1] == pd.Timestamp("2023-02-28 23:00")
    assert starts[3] == pd.Timestamp("2023-04-30 22:00")
    assert starts[9] == pd.Timestamp("2023-10-31 23:00")
    # March has 743 hours locally (spring forward), October 745 (fall back)
    counts = np.bincount(idx)
    assert counts[1] == 31 * 24 - 1 and counts[8] == 31 * 24 + 1
    # UTC months would cut the same data elsewhere
    utc = billing_period_index(brussels_instance(None))
    assert not np.array_equal(utc, idx)


def test_subscription_fee_once_per_local_period():
    inst = brussels_instance()
    b = bills(inst, np.zeros((inst.sizes["time"], 2)), np.zeros((inst.sizes["time"], 2)))
    assert b.sizes["period"] == 10
    assert b["bill_by_period"].sizes["period"] == 10
    energy = float((inst.consumption.values[0, :, 0]).sum() * 0.3)
    assert float(b["baseline_bill"].isel(scenario=0, member=0)) == pytest.approx(
        energy + 10 * 2.0)
    period_start = pd.DatetimeIndex(b["period_start"].values)
    assert period_start[5] == pd.Timestamp("2023-06-30 22:00")  # July, local midnight


def test_bad_billing_timezone_is_refused():
    with pytest.raises(InstanceError, match="billing_timezone"):
        brussels_instance("Mars/Olympus")


# ======================================================================================
# the keys command on any member count
# ======================================================================================
def test_keys_command_default_comparison_any_member_count(tmp_path, capsys):
    from recopt.cli.keys import main as keys_main
    from recopt.data import save
    from recopt.generate.synthetic import synthetic_community
    path = tmp_path / "own.nc"
    save(synthetic_community(11, 48, seed=2), path)
    assert keys_main([str(path), "--no-plots", "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr()
    assert "GS left out" in out.err and "ES" in out.out and "[EUR]" in out.out
    summary = pd.read_csv(tmp_path / "o" / "summary.csv")
    assert {"key", "stat", "self_consumption_rate"} <= set(summary.columns)
    assert summary["self_consumption_rate"].dtype.kind == "f"
    # GS asked for without shares: refused, naming --shares and GS
    assert keys_main([str(path), "--keys", "GS,ES", "--no-plots"]) == 2
    err = capsys.readouterr().err
    assert "GS" in err and "--shares" in err


def test_ets_convention_ospina_gives_pr_zero():
    from recopt.generate.synthetic import synthetic_community
    inst = synthetic_community(6, 96, seed=4)
    offer = evaluate_keys(inst, ["PR", "ES"], metrics=["energy_to_shift"])
    ospina = evaluate_keys(inst, ["PR", "ES"], metrics=["energy_to_shift"],
                           ets_convention="ospina")
    assert float(offer["energy_to_shift_total"].sel(key="PR").max()) > 0.0
    assert float(ospina["energy_to_shift_total"].sel(key="PR").max()) == 0.0
    np.testing.assert_allclose(ospina["energy_to_shift_total"].sel(key="ES"),
                               offer["energy_to_shift_total"].sel(key="ES"))


def test_kor9_is_solved_per_local_billing_period():
    from recopt.solve import solve
    local = pd.date_range("2023-03-30 12:00", "2023-04-01 12:00", freq="h",
                          inclusive="left", tz="Europe/Brussels")
    T = local.size
    rng = np.random.default_rng(3)
    cons = rng.uniform(0.2, 1.0, (T, 3))
    prod = np.zeros((T, 3))
    prod[:, 2] = np.clip(np.sin((local.hour.to_numpy() - 6) / 12 * np.pi), 0, None) * 2
    cons[:, 2] = 0.0
    inst = make_instance(cons, prod, price_grid_buy=0.3, price_grid_sell=0.05,
                         price_community_buy=0.2, price_community_sell=0.1,
                         time=local.tz_convert("UTC").tz_localize(None),
                         subscription_fee=1.0, attrs={"billing_timezone": "Europe/Brussels"})
    r = solve(inst, "KoR9")
    assert r.attrs["status"] == "optimal" and r.sizes["period"] == 2
    # April starts at local midnight = 22:00 UTC on 31 March (summer time)
    assert pd.Timestamp(r["period_start"].values[1]) == pd.Timestamp("2023-03-31 22:00")
    assert r.attrs["blocks"] == 2


def test_keys_command_reads_shares_csv_without_the_plant(tmp_path, capsys):
    from recopt.cli.keys import main as keys_main
    from recopt.data import save
    path = tmp_path / "p.nc"
    save(plant_community(), path)
    csv = tmp_path / "shares.csv"
    csv.write_text("member,share\nA,0.5\nB,0.2\nC,0.3\n")
    assert keys_main([str(path), "--keys", "GS,ES", "--shares", str(csv), "--no-plots"]) == 0
    csv.write_text("member,share\nA,0.5\nB,0.2\nC,0.2\nplant,0.1\n")
    assert keys_main([str(path), "--keys", "GS", "--shares", str(csv), "--no-plots"]) == 2
    assert "plant" in capsys.readouterr().err


def test_a_plant_with_its_own_consumption_gets_no_key_in_the_lps():
    from recopt.solve import solve
    T = 4
    cons = np.tile([2.0, 0.5, 3.0, 0.2], (T, 1))  # the plant's auxiliary load 0.2 kWh
    prod = np.tile([0.0, 0.0, 0.0, 3.2], (T, 1))
    inst = make_instance(cons, prod, price_grid_buy=B, price_grid_sell=S,
                         price_community_buy=CB, price_community_sell=CS,
                         members=["A", "B", "C", "plant"], time_step_hours=1.0,
                         role=["consumer", "consumer", "consumer", "plant"])
    for model, opts in (("LP1", {}), ("LP3", {"tolerance": 0.5}), ("KoR8", {})):
        r = solve(inst, model, **opts)
        assert r.attrs["status"] == "optimal", model
        assert float(r["community_intake"].sel(member="plant").max()) == 0.0, model
        if "key" in r:
            assert float(r["key"].sel(member="plant").max()) == 0.0, model
    for key in ("ES", "PR", "HEP", "CA", "KoR5"):
        st = settle_key(inst, key)
        assert float(st["community_intake"].sel(member="plant").max()) == 0.0, key


def test_keys_command_per_member_table_and_figure_leave_the_plant_out(tmp_path):
    """members.csv / members.png hold the 14 members of the shipped month, not its plant
    (a plant has no key share and no bill of its own: a row of zeros would read as a
    member who saves nothing)."""
    from pathlib import Path

    from recopt.cli.keys import main as keys_main
    month = Path(__file__).resolve().parents[1] / "instances" / "community_14_month.nc"
    out = tmp_path / "o"
    assert keys_main([str(month), "--keys", "ES,PR", "--no-plots", "--out", str(out)]) == 0
    table = pd.read_csv(out / "members.csv")
    assert "PV60" not in set(table["member"]) and table["member"].nunique() == 14
