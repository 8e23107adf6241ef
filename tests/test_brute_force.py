"""Brute force: grid size, exactness against the settlement rule, ranking, upper bound."""

import numpy as np
import pytest

from recopt.errors import ModelError
from recopt.generate.synthetic import synthetic_community
from recopt.keys.brute_force import RANK_METRICS, brute_force, round_grid
from recopt.keys.catalogues import specific_shares
from recopt.keys.multiround import RoundSpec, multiround_plan
from recopt.keys.rules import KeyInputs, settle_plan
from recopt.metrics.community import MetricContext, evaluate_arrays


@pytest.fixture(scope="module")
def inst():
    return synthetic_community(5, 96 * 2, seed=3)


def test_optimce_grid_has_1782_candidates():
    grid = round_grid()
    assert len(grid) == 1782 == 66 * 27
    assert len(set(grid)) == 1782
    assert all(np.isclose(sum(s), 1.0) for s, _ in grid)
    assert len(round_grid(2, 0.25, ("equal", "prorata"))) == 5 * 4


@pytest.mark.parametrize("dtype,tol", [("float64", 1e-9), ("float32", 1e-4)])
def test_every_grid_candidate_equals_settle_rounds(inst, dtype, tol):
    res = brute_force(inst, "wallonia", step=0.25, dtype=dtype, settle_top=0, threads=2)
    inputs = KeyInputs.from_instance(inst)
    shares, _ = specific_shares(inputs)
    ctx = MetricContext(inst)
    grid = res.table[res.table["family"] == "multi-round"]
    assert len(grid) == 15 * 27
    for _, row in grid.iterrows():
        plan = multiround_plan(inputs, [RoundSpec(s, r) for s, r in
                                        zip(row["round_shares"], row["round_rules"],
                                            strict=True)], shares=shares)
        full = settle_plan(inputs, plan)
        want = evaluate_arrays(ctx, full["comm_in"], full["comm_out"])
        for name in ("self_consumption_rate", "self_sufficiency_mean", "bill_saving_mean",
                     "gini", "surplus_injected"):
            assert row[name] == pytest.approx(float(want[name][0]), rel=tol, abs=tol), name


def test_ranking_winner_and_upper_bound(inst):
    res = brute_force(inst, "wallonia", settle_top=1)
    scr = res.table["self_consumption_rate"].to_numpy()
    assert np.all(np.diff(scr) <= 1e-6 * scr.max())  # best first (6 significant digits)
    assert np.all(scr <= res.upper_bound * (1 + 1e-6))  # no key beats the bound (float32)
    assert len(res.table) == 3 + 1782
    # a grid key with a prorata last round reaches the bound
    assert scr[0] == pytest.approx(res.upper_bound, abs=1e-6)
    assert len(res.settlements) == 1
    for _, row in res.table.head(3).iterrows():  # winner kept, runners-up on demand
        settled = res.settle(row["candidate"])
        scr_settled = float(settled["community_intake"].sum()
                            / settled["community_production"].sum())
        assert scr_settled == pytest.approx(row["self_consumption_rate"], abs=1e-5)
    assert len(res.runners_up(2)) == 2
    ds = res.to_dataset()
    assert ds.sizes["candidate"] == len(res.ranking)


def test_equivalent_candidates_collapse_and_the_winner_is_unchanged(inst):
    res = brute_force(inst, "wallonia", step=0.25)
    full, ranking = res.table, res.ranking
    assert len(ranking) < len(full)
    assert ranking.iloc[0]["candidate"] == full.iloc[0]["candidate"]  # winner unchanged
    assert int(ranking["n_equivalent"].sum()) == len(full)
    # every listed alias is a candidate with the same figures as its row
    by_name = full.set_index("candidate")
    merged = 0
    for _, row in ranking.iterrows():
        names = [n for n in row["equivalent"].split("; ") if n]
        assert len(names) == row["n_equivalent"] - 1
        for n in names:
            for m in ("self_consumption_rate", "bill_saving_mean", "gini"):
                assert by_name.loc[n, m] == pytest.approx(row[m], rel=1e-6, abs=1e-9)
            merged += 1
    assert merged == len(full) - len(ranking)
    # no two rows of the ranking are the same allocation
    assert ranking["candidate"].is_unique
    # a share-0 first round: its rule cannot matter, so those names collapse
    zero_first = full[[s[0] == 0 for s in full["round_shares"]]]
    assert len(zero_first) and not set(zero_first["candidate"]) <= set(ranking["candidate"])
    # tidy CSV table: numbers in numeric columns, no tuple reprs
    tidy = res.tidy()
    assert "round_shares" not in tidy and tidy["round_1_share"].dtype.kind == "f"
    assert not any("(" in str(v) for v in tidy["round_1_rule"])


def test_optimce_reading_of_fixed_rounds(inst):
    keep = brute_force(inst, "wallonia", step=0.25, dtype="float64").table
    optimce = brute_force(inst, "wallonia", step=0.25, dtype="float64",
                          fixed_reading="optimce").table
    a = keep.set_index("candidate")["self_consumption_rate"]
    b = optimce.set_index("candidate")["self_consumption_rate"].loc[a.index]
    later_fixed = [n for n, rr in zip(keep["candidate"], keep["round_rules"], strict=True)
                   if "fixed" in rr[1:]]
    # only candidates with a fixed round after the first can differ, and some do
    others = a.index.difference(later_fixed)
    assert np.allclose(a.loc[others], b.loc[others], rtol=1e-12)
    assert (np.abs(b.loc[later_fixed] - a.loc[later_fixed]) > 1e-9).any()
    with pytest.raises(ModelError, match="fixed_reading"):
        brute_force(inst, "wallonia", step=0.25, fixed_reading="maybe")


def test_rank_by_other_metric_and_direction(inst):
    res = brute_force(inst, "flanders", metric="gini")
    g = res.table["gini"].to_numpy()
    assert np.all(np.diff(g) >= -1e-6 * np.abs(g).max())  # lower is better
    assert not RANK_METRICS["gini"]
    with pytest.raises(ModelError, match="cannot rank"):
        brute_force(inst, "flanders", metric="colour")
    with pytest.raises(ModelError, match="unknown region"):
        brute_force(inst, "atlantis")


def test_catalogues_by_region(inst):
    fl = brute_force(inst, "flanders", settle_top=0)
    assert len(fl.table) == 6 and "multi-round" not in set(fl.table["family"])
    br = brute_force(inst, "Bruxelles", grid=False, settle_top=0)
    assert set(br.table["candidate"]) >= {"prorata", "hybrid", "fixed multi-round specific"}
    scr = dict(zip(fl.table["candidate"], fl.table["self_consumption_rate"], strict=True))
    # redistribution never shares less than the fixed key it starts from
    assert scr["relatieve (specific)"] >= scr["vaste (specific)"] - 1e-12
    assert scr["optimale (specific)"] >= scr["relatieve (specific)"] - 1e-12
    assert scr["optimale (equal)"] == pytest.approx(fl.upper_bound)
