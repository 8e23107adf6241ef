"""LOGAAS-style multi-round static keys: round LP vs its exact fast path, searches."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recopt.data import make_instance
from recopt.decomp.logaas import solve_round
from recopt.errors import ModelError
from recopt.keys.logaas import (
    Evaluator,
    ga_search,
    grid_search,
    lattice,
    niche_centres,
    niche_of,
    round_split,
    round_surplus,
    rounds_for,
    search,
)
from recopt.models.logaas import build_round
from recopt.settle import meter_flows, settle


def random_round(seed, S=2, T=20, U=5):
    rng = np.random.default_rng(seed)
    A = rng.uniform(0, 3, (S, T)) * (rng.uniform(size=(S, T)) > 0.3)
    N = rng.uniform(0, 1, (S, T, U)) * (rng.uniform(size=(S, T, U)) > 0.3)
    return A, N, rng.dirichlet(np.ones(S))


def community(seed, T=48, U=6):
    rng = np.random.default_rng(seed)
    C = rng.uniform(0, 1.2, (T, U)) * (rng.uniform(size=(T, U)) > 0.2)
    C[:, 0] = 0.0
    sun = np.clip(np.sin((np.arange(T) % 24 - 6) / 12 * np.pi), 0, None)
    P = np.zeros((T, U))
    P[:, 0] = rng.uniform(2, 5) * sun * rng.uniform(0.3, 1.0, T)
    P[:, 1] = rng.uniform(0.5, 1.5) * sun
    b = rng.uniform(0.18, 0.3, U)
    return make_instance(C, P, price_grid_buy=b, price_grid_sell=0.05,
                         price_community_buy=b - 0.08, price_community_sell=0.08,
                         subscription_fee=10.0, time_step_hours=1.0)


# --------------------------------------------------------------------------------------
# the per-round LP against its exact fast path
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(10))
def test_round_lp_matches_fast_path(seed):
    A, N, w = random_round(seed, S=1 + seed % 3)
    split, taken = round_split(A, N, w)
    lp_split, lp_surplus = solve_round(A, N, w)
    total = float((w[:, None] * A).sum())
    assert lp_surplus == pytest.approx(total - taken, abs=1e-8)
    assert round_surplus(split, A, N, w) == pytest.approx(lp_surplus, abs=1e-8)
    assert round_surplus(lp_split, A, N, w) == pytest.approx(lp_surplus, abs=1e-7)
    assert (split >= 0).all() and split.sum() <= 1 + 1e-12


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 4), st.integers(1, 6))
def test_fast_path_beats_random_splits(seed, T, U):
    """No split (random, or concentrated on one member) leaves less surplus."""
    rng = np.random.default_rng(seed)
    A = rng.uniform(0, 2, (1, T))
    N = rng.uniform(0, 1, (1, T, U)) * (rng.uniform(size=(1, T, U)) > 0.3)
    split, _ = round_split(A, N)
    best = round_surplus(split, A, N)
    candidates = [rng.dirichlet(np.ones(U)) for _ in range(20)] + list(np.eye(U))
    for lam in candidates:
        assert best <= round_surplus(lam, A, N) + 1e-9


def test_round_lp_is_named_as_the_card():
    A, N, w = random_round(3)
    m = build_round(A, N, w)
    for name in ("split", "take", "take_le_offer", "split_sum", "round_surplus"):
        assert hasattr(m, name)


# --------------------------------------------------------------------------------------
# rounds settle through the one settlement rule
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("carry", [True, False])
def test_rounds_settle_as_computed(carry):
    inst = community(1)
    cp, pm = meter_flows(inst["consumption"].values, inst["production"].values)
    shares = (0.5, 0.3, 0.2)
    rounds = rounds_for(shares, cp, pm, carry=carry)
    assert len(rounds) == 3
    st_ = settle(inst, rounds=rounds)
    # each round's split is the round LP's optimum for what that round had
    for r in range(len(rounds)):
        avail = st_["round_available"].values[r]
        need = cp - st_["round_take"].values[:r].sum(axis=0)
        _, lp_surplus = solve_round(avail, need)
        got = float((avail - st_["round_take"].values[r].sum(-1)).sum())
        assert got == pytest.approx(lp_surplus, abs=1e-7)
    ev = Evaluator(inst, "surplus", carry)
    assert ev(shares) == pytest.approx(float(st_["surplus"].sum()), abs=1e-12)
    # without carry a zero share is no round; with carry it redistributes what is left
    one = rounds_for((1.0, 0.0, 0.0), cp, pm, carry=carry)
    assert len(one) == (3 if carry else 1)


def test_share_zero_round_keeps_redistributing_and_the_objective_is_continuous():
    inst = community(3)
    ev = Evaluator(inst, "surplus")
    edge = ev((1.0, 0.0, 0.0))
    inside = ev((1.0 - 2e-9, 1e-9, 1e-9))
    single = Evaluator(inst, "surplus", carry=False)((1.0, 0.0, 0.0))
    assert abs(edge - inside) <= 1e-6 * max(1.0, edge)  # no jump at the simplex edge
    assert edge < single - 1e-9  # the share-0 rounds re-share the first round's leftover
    st_ = ev.settlement((1.0, 0.0, 0.0))
    assert st_["round_take"].values[1].sum() > 0  # round 2 (share 0) took energy


def test_refinement_never_worse_than_the_lattice_and_leaves_it():
    from recopt.keys.logaas import refine_shares
    for seed in (4, 5):
        inst = community(seed, T=72)
        lat = search(inst, "grid", resolution=5, metrics=False, refine=False)
        ref = search(inst, "grid", resolution=5, metrics=False)
        assert ref.method == "grid+refine" and ref.ranking["refined"].all()
        assert ref.ranking["objective"].iloc[0] <= lat.ranking["objective"].iloc[0] + 1e-12
        # every refined niche best is no worse than its lattice start
        lat_by = lat.ranking.set_index("niche")["objective"]
        for _, row in ref.ranking.iterrows():
            assert row["objective"] <= lat_by[row["niche"]] + 1e-12
            assert sum(row["shares"]) == pytest.approx(1.0, abs=1e-12)
            assert min(row["shares"]) >= 0.0
    ev = Evaluator(community(6), "surplus")
    start = (0.4, 0.4, 0.2)
    shares, value = refine_shares(ev, start, 0.2)
    assert value <= ev(start) and value == pytest.approx(ev(shares))


def test_round_split_budget_survives_tiny_pools():
    # steps with a tiny leftover pool give huge breakpoints after normal ones: the
    # budget (sum of the split = 1 when needs exceed it) must be spent exactly
    A = np.array([[1.0, 1.0, 1e-13, 1e-13]])
    N = np.array([[[0.3, 0.2, 0.1], [0.3, 0.25, 0.1], [0.5, 0.6, 0.7], [0.5, 0.6, 0.7]]])
    split, _ = round_split(A, N)
    assert split.sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(split, [0.65, 0.25, 0.1], atol=1e-12)


def test_more_rounds_never_hurt_with_carry():
    inst = community(2)
    ev = Evaluator(inst, "surplus")
    single = ev((1.0, 0.0, 0.0))
    res = grid_search(inst, n_rounds=3, resolution=10, evaluator=ev)
    assert res.ranking["objective"].iloc[0] <= single + 1e-12


# --------------------------------------------------------------------------------------
# searches
# --------------------------------------------------------------------------------------
def test_lattice_and_niches():
    pts = lattice(3, 10)
    assert len(pts) == 66 and (pts.sum(1) == 10).all()
    centres = niche_centres(3)
    assert len(centres) == 6
    niches = niche_of(pts / 10, centres)
    assert set(niches.tolist()) == set(range(6))
    with pytest.raises(ModelError):
        lattice(0, 5)


@pytest.mark.parametrize(("seed", "objective", "resolution"),
                         [(0, "surplus", 12), (1, "surplus", 12), (2, "surplus", 16),
                          (3, "collective_bill", 5), (4, "min_saving_ratio", 4)])
def test_deterministic_search_never_worse_than_ga(seed, objective, resolution):
    inst = community(10 + seed)
    grid = grid_search(inst, resolution=resolution, objective=objective)
    ga = ga_search(inst, resolution=resolution, objective=objective, seed=seed,
                   population=4, generations=6)
    assert grid.ranking["objective"].iloc[0] <= ga.ranking["objective"].iloc[0] + 1e-12
    g = dict(zip(grid.ranking["niche"], grid.ranking["objective"], strict=True))
    for niche, value in zip(ga.ranking["niche"], ga.ranking["objective"], strict=True):
        assert g[niche] <= value + 1e-12


def test_ga_is_seeded():
    inst = community(5)
    a = ga_search(inst, resolution=10, seed=7, population=3, generations=4)
    b = ga_search(inst, resolution=10, seed=7, population=3, generations=4)
    assert a.ranking.equals(b.ranking)


def test_search_reports_ranked_niches_with_metrics():
    inst = community(6)
    res = search(inst, "grid", resolution=4, objective="self_consumption_rate")
    df = res.ranking
    assert list(df["rank"]) == list(range(1, len(df) + 1))
    assert (np.diff(df["objective"].values) >= -1e-12).all()
    # maximised metric: the objective is its negative
    np.testing.assert_allclose(df["objective"], -df["self_consumption_rate"], atol=1e-12)
    for col in ("surplus", "collective_bill", "gini", "min_saving_ratio", "splits"):
        assert col in df
    best = res.settlement(1)
    assert float(best["surplus"].sum()) == pytest.approx(df["surplus"].iloc[0], abs=1e-9)
    with pytest.raises(ModelError, match="objective"):
        grid_search(inst, objective="nope")


def test_cli(tmp_path, capsys):
    from recopt.cli.logaas import main
    from recopt.data import save

    path = tmp_path / "c.nc"
    save(community(8), path)
    assert main([str(path), "--resolution", "4", "--rounds", "2"]) == 0
    out = capsys.readouterr().out
    assert "rank" in out and "niche" in out


def test_registered_model_result_settles_back():
    from recopt.settle import Round
    from recopt.solve import solve

    inst = community(9)
    r = solve(inst, "LOGAAS", resolution=6)
    assert r.attrs["status"] == "optimal"
    rounds = [Round(float(s), np.broadcast_to(r["round_split"].values[k],
                                              r["allocation"].shape))
              for k, s in enumerate(r["round_share"].values)]
    st_ = settle(inst, rounds=rounds)
    np.testing.assert_allclose(st_["bill"], r["bill"], atol=1e-12)
    assert float(st_["surplus"].sum()) == pytest.approx(r.attrs["objective"], abs=1e-9)
    for name in ("saving_ratio", "gini", "collective_bill", "community_intake"):
        assert name in r
