"""Loop-design MILPs SLCpct, MLCpct, MLCol: the properties of the spec, hand-built cases.

Spec: ``docs/reconstruction/loop-design.md`` ("Properties every implementation must
keep"); model card ``models/SLCpct-MLCpct-MLCol.md``.
"""

from __future__ import annotations

import itertools

import numpy as np
import pyomo.environ as pyo
import pytest

from recopt.data import make_instance
from recopt.errors import ModelError
from recopt.models import build as build_model
from recopt.models.loops import (
    LoopData,
    check_solution,
    fixed_columns,
    fixed_single_loop,
    loop_data,
    objective_of,
)
from recopt.solve import load_result, solve
from recopt.solvers import solve_pyomo

TOL = 1e-6


def _solve_ok(inst, model, **opts):
    r = solve(inst, model, **opts)
    assert r.attrs["status"] == "optimal", r.attrs["message"]
    d = loop_data(inst, **{k: v for k, v in opts.items()
                           if k in ("self_consumption", "distance")})
    errs = check_solution(d, r)
    assert errs == [], f"{model}: {errs}"
    assert objective_of(d, r) == pytest.approx(r.attrs["objective"], abs=1e-6)
    return r, d


SEEDS = list(range(10))


@pytest.mark.parametrize("seed", SEEDS)
def test_decomposition_properties_on_random_instances(loop_instance, seed):
    """MLCol(all) = MLCpct (both (9d)/(9e) row forms); MLCol(maximal) >= it;
    MLCpct <= SLCpct <= no-loop cost;
    every returned solution passes the compact model's constraints."""
    self_consumption = seed % 3 != 2
    prices = "per_member" if seed % 2 else "per_step"
    inst = loop_instance(seed, prices=prices)
    opts = {"self_consumption": self_consumption}
    sl, d = _solve_ok(inst, "SLCpct", **opts)
    ml, _ = _solve_ok(inst, "MLCpct", **opts)
    col, _ = _solve_ok(inst, "MLCol", **opts)
    colmax, _ = _solve_ok(inst, "MLCol", enumeration="maximal", **opts)
    colpaper, _ = _solve_ok(inst, "MLCol", rows="per_loop", **opts)
    assert colpaper.attrs["objective"] == pytest.approx(col.attrs["objective"], abs=TOL)
    no_loop = d.no_loop_cost()
    assert col.attrs["objective"] == pytest.approx(ml.attrs["objective"], abs=TOL)
    assert colmax.attrs["objective"] >= col.attrs["objective"] - TOL
    assert ml.attrs["objective"] <= sl.attrs["objective"] + TOL
    assert sl.attrs["objective"] <= no_loop + TOL
    assert sl.attrs["no_loop_cost"] == pytest.approx(no_loop)
    # every loop is a clique of the neighbourhood graph within the cap
    for r in (sl, ml, col, colmax):
        x = r["membership"].values.astype(bool)
        for k in range(x.shape[1]):
            mem = np.nonzero(x[:, k])[0]
            assert d.power[mem].sum() <= d.wmax + 1e-9
            for i, j in itertools.combinations(mem, 2):
                assert d.distance[i, j] <= d.dmax + 1e-9
        # KPI (14): the total benefit is the saving against the zero-loop configuration
        assert r.attrs["benefit_total"] == pytest.approx(no_loop - r.attrs["objective"],
                                                         abs=1e-6)


@pytest.mark.parametrize("seed", [0, 3, 5])
def test_slcpct_equals_brute_force_over_loops(loop_instance, seed):
    """SLCpct's optimum = min over every feasible member set of the second-stage LP
    (Model 4, the builder the Benders decomposition uses) with u from the data."""
    inst = loop_instance(seed, n=5, S=2, T=3)
    d = LoopData.of(inst)
    best = d.no_loop_cost()
    for size in range(2, d.n + 1):
        for mem in itertools.combinations(range(d.n), size):
            if d.power[list(mem)].sum() > d.wmax or any(
                    not d.graph.has_edge(i, j) for i, j in itertools.combinations(mem, 2)):
                continue
            x = np.zeros(d.n)
            x[list(mem)] = 1
            u = ((d.P - d.C)[:, :, list(mem)].sum(axis=2) >= 0).astype(float)
            m = fixed_single_loop(d, x, u)
            out = solve_pyomo(m)
            assert out.status == "optimal"
            best = min(best, out.objective)
    r = solve(inst, "SLCpct")
    assert r.attrs["objective"] == pytest.approx(best, abs=TOL)


def test_second_stage_builders_reproduce_the_optimum(loop_instance):
    inst = loop_instance(4, n=6, S=2, T=4)
    d = LoopData.of(inst)
    m = build_model("SLCpct", inst)
    solve_pyomo(m)
    x = np.array([pyo.value(m.member[i]) for i in range(d.n)]).round()
    u = np.zeros(d.shape[:2])
    for (s, t), v in m.surplus.items():
        u[s, t] = round(pyo.value(v))
    sub = fixed_single_loop(d, x, u)
    assert solve_pyomo(sub).objective == pytest.approx(pyo.value(m.objective), abs=TOL)
    # per (scenario, step) blocks sum to the whole
    parts = sum(solve_pyomo(fixed_single_loop(d, x, u, steps=[st])).objective
                for st in d.steps)
    assert parts == pytest.approx(pyo.value(m.objective), abs=TOL)

    col = build_model("MLCol", inst)
    solve_pyomo(col)
    z = [round(pyo.value(col.choose[k])) for k in col.COLUMNS]
    sub = fixed_columns(d, col.recopt_loops, z)
    assert solve_pyomo(sub).objective == pytest.approx(pyo.value(col.objective), abs=TOL)
    paper = fixed_columns(d, col.recopt_loops, z, rows="per_loop")
    assert solve_pyomo(paper).objective == pytest.approx(pyo.value(col.objective), abs=TOL)
    # mutable first stage: no loop chosen gives the zero-loop cost
    for k in sub.choose:
        sub.choose[k] = 0.0
    assert solve_pyomo(sub).objective == pytest.approx(d.no_loop_cost(), abs=TOL)


def _binaries(m) -> int:
    return sum(1 for v in m.component_data_objects(pyo.Var) if v.is_binary())


@pytest.mark.parametrize("days", [1, 10])
def test_slcpct_integer_count_matches_table_7(loop_instance, days):
    """Table 7: 10 actors, hourly, one scenario: 34 integer variables (1 day), 250 (10 days)."""
    T = 24 * days
    inst = loop_instance(7, n=10, S=1, T=T)
    m = build_model("SLCpct", inst)
    assert _binaries(m) == 10 + T == {1: 34, 10: 250}[days]
    inst3 = loop_instance(7, n=10, S=3, T=24)
    assert _binaries(build_model("SLCpct", inst3)) == 10 + 3 * 24


# --------------------------------------------------------------------------------------
# hand-built cases
# --------------------------------------------------------------------------------------
def _hand(C, P, x, power, buy=0.2, sell=0.05, dmax=2.0, wmax=100.0, y=None):
    C = np.asarray(C, float)[None]
    P = np.asarray(P, float)[None]
    n = C.shape[2]
    return make_instance(
        C, P, price_grid_buy=buy, price_grid_sell=sell, price_community_buy=0.1,
        price_community_sell=0.1, members=[chr(65 + i) for i in range(n)],
        installed_power=power, x_km=x, y_km=y if y is not None else np.zeros(n),
        attrs={"max_distance_km": dmax, "max_loop_power_kw": wmax},
    )


ALL = ("SLCpct", "MLCpct", "MLCol")


@pytest.mark.parametrize("model", ALL)
def test_actors_out_of_range_never_share_a_loop(model):
    inst = _hand(C=[[0, 2]], P=[[3, 0]], x=[0, 3.0], power=[5, 0])  # 3 km > 2 km
    r, d = _solve_ok(inst, model)
    assert r.sizes["loop"] == 0 or r["membership"].sum() <= 1
    assert r.attrs["objective"] == pytest.approx(d.no_loop_cost())
    inst_near = _hand(C=[[0, 2]], P=[[3, 0]], x=[0, 1.5], power=[5, 0])
    r, d = _solve_ok(inst_near, model)
    assert list(r["loop_members"].values) == ["A,B"]
    # B's 2 kWh come from A: saving (0.2 - 0.05) * 2
    assert r.attrs["objective"] == pytest.approx(d.no_loop_cost() - 0.3)


@pytest.mark.parametrize("model", ALL)
def test_power_cap_forbids_the_pair(model):
    inst = _hand(C=[[0, 2]], P=[[3, 0]], x=[0, 0.5], power=[5, 6], wmax=10.0)  # 11 > 10
    r, d = _solve_ok(inst, model)
    assert int(r["membership"].sum()) <= 1
    assert r.attrs["objective"] == pytest.approx(d.no_loop_cost())
    assert len(d.edges) == 0


@pytest.mark.parametrize("model", ALL)
def test_producer_with_a_far_consumer(model):
    """A producer, a near small consumer and a far big one: only the near one joins."""
    inst = _hand(C=[[0, 1, 5]], P=[[4, 0, 0]], x=[0, 1.0, 4.0], power=[5, 0, 0])
    r, d = _solve_ok(inst, model)
    assert list(r["loop_members"].values) == ["A,B"]
    assert r.attrs["objective"] == pytest.approx(d.no_loop_cost() - 0.15)
    assert r.attrs["n_non_members"] == 1


@pytest.mark.parametrize("model", ALL)
def test_collective_rules_change_the_answer(model):
    """A (2 kWh surplus), B (needs 1, buys at 0.20), C (needs 1.5, buys at 0.02 < A's
    selling price 0.05). Without the collective rules the loop {A,B,C} would be as
    good as {A,B}; with them, {A,B,C} is in deficit so A must give C its second kWh
    (a 0.03 EUR loss): the optimum is {A,B} (saving 0.15), not {A,B,C} (0.12)."""
    inst = _hand(C=[[0, 1, 1.5]], P=[[2, 0, 0]], x=[0, 0.5, 1.0], power=[5, 0, 0],
                 buy={"A": 0.2, "B": 0.2, "C": 0.02}, sell={"A": 0.05, "B": 0.05, "C": 0.01})
    r, d = _solve_ok(inst, model)
    base = d.no_loop_cost()
    assert list(r["loop_members"].values) == ["A,B"]
    assert r.attrs["objective"] == pytest.approx(base - 0.15)
    m = fixed_single_loop(d, np.ones(3), np.zeros((1, 1)))  # {A,B,C} in deficit
    assert solve_pyomo(m).objective == pytest.approx(base - 0.12)


def test_options_and_errors(loop_instance):
    inst = loop_instance(1)
    with pytest.raises(ModelError, match="no option"):
        solve(inst, "SLCpct", enumeration="all")
    with pytest.raises(ModelError, match="max_loops"):
        solve(inst.assign_attrs(max_distance_km=100.0, max_loop_power_kw=1e6), "MLCol",
              max_loops=2)
    with pytest.raises(ModelError, match="lat and lon"):
        solve(inst, "MLCol", distance="haversine")
    # haversine on lat/lon gives the same answer as km on a local projection
    lat0 = 50.6
    ll = inst.drop_vars(["x_km", "y_km"]).assign(
        lat=("member", lat0 + inst["y_km"].values / 111.195),
        lon=("member", 5.5 + inst["x_km"].values / (111.195 * np.cos(np.radians(lat0)))))
    a = solve(inst, "MLCol")
    b = solve(ll, "MLCol", distance="haversine")
    assert b.attrs["objective"] == pytest.approx(a.attrs["objective"], abs=TOL)


def test_time_limit_status_and_bound_through_the_runner(loop_instance):
    inst = loop_instance(11, n=7, S=2, T=6)
    r = solve(inst, "MLCpct", time_limit=1e-4)
    assert r.attrs["status"] in ("time_limit", "optimal")
    if r.attrs["status"] == "time_limit" and r.attrs["has_solution"]:
        assert np.isfinite(r.attrs["gap"])
    r = solve(inst, "MLCpct", mip_gap=0.5)
    assert r.attrs["has_solution"] == 1
    assert r.attrs["bound"] <= r.attrs["objective"] + TOL
    assert r.attrs["gap"] <= 0.5 + 1e-9


def test_cli_summary(loop_instance, tmp_path, capsys):
    from recopt.cli.solve import main
    from recopt.data import save

    path = tmp_path / "loops.nc"
    save(loop_instance(2, n=6), path)
    res = tmp_path / "r.nc"
    assert main([str(path), "--model", "MLCol", "--option", "enumeration=maximal",
                 "--output", str(res)]) == 0
    out = capsys.readouterr().out
    assert "loops" in out and "benefit" in out and "enumerated loops (maximal)" in out
    r = load_result(res)
    assert r.attrs["model"] == "MLCol" and r.attrs["n_enumerated_loops"] >= 1
    assert {"membership", "loop_members", "flow", "grid_buy", "grid_sell", "benefit"} <= set(r)


def test_kpis_and_plot(loop_instance, tmp_path):
    from recopt.metrics import plot_loops

    inst = loop_instance(3, n=7, S=2, T=5)
    r, d = _solve_ok(inst, "MLCpct", internal_price=0.12)
    assert r.attrs["internal_price"] == 0.12
    for name in ("loop_collective_self_consumption_rate", "loop_self_production_rate",
                 "loop_collective_self_consumption_rate_gross",
                 "loop_self_production_rate_gross"):
        v = r[name].values
        assert ((v >= -1e-9) & (v <= 1 + 1e-9)).all(), name
    real = r["loop_n_members"].values >= 2
    assert r.attrs["n_loops"] == int(real.sum())
    assert r.attrs["n_non_members"] == d.n - int(r["membership"].sum())
    x = r["membership"].values.astype(bool)
    if x.any():
        assert r.attrs["benefit_max"] == pytest.approx(r["benefit"].values[x.any(1)].max())
    png = plot_loops(inst, r, tmp_path / "loops.png")
    assert png.stat().st_size > 1000
