"""Column generation for MLCol (recopt.decomp.column_generation): the spec's properties.

Card ``models/MLCol-column-generation.md`` ("Properties"): exact pricing = brute-force
minimum reduced cost over every enumerated loop; the final LP = MLCol(all)'s LP
relaxation; LB <= MLCol(all) <= price-and-branch; branch-and-price = MLCol(all); every
design passes ``check_solution``; time limits return the incumbent and the bound.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pyomo.environ as pyo
import pytest
from conftest import random_loop_instance as random_instance

from recopt.decomp.column_generation import (
    CGOptions,
    ReducedCostError,
    RestrictedMaster,
    exact_pricing,
    reduced_cost,
    solve_column_generation,
)
from recopt.errors import ModelError
from recopt.generate.chasseray import generate
from recopt.models.loops import check_solution, loop_data, objective_of
from recopt.models.loops.build import build_mlcol, loop_set
from recopt.solve import solve
from recopt.solvers import solve_pyomo

TOL = 1e-6


def _mlcol_all(d, relax=False):
    m = build_mlcol(d, loop_set(d))
    if relax:
        for v in m.choose.values():
            v.domain = pyo.NonNegativeReals
            v.setub(1.0)
    out = solve_pyomo(m, mip_gap=1e-10)
    assert out.status == "optimal"
    return out.objective


def _tiny(seed):
    """Uniform (random_instance, 3-6 actors on a 3 km square) or clustered (generator)."""
    if seed % 2 == 0:
        return random_instance(seed, n=int(3 + seed % 4), T=int(2 + seed % 3))
    inst = generate("10_act_1_d", actors=8, days=1, seed=seed)
    return inst.isel(time=slice(8, 16))  # 8 daylight hours


def _respects(S, together, apart):
    s = set(S)
    return (all((i in s) == (j in s) for i, j in together)
            and not any(i in s and j in s for i, j in apart))


@pytest.mark.parametrize("seed", [0, 2, 5, 9])
def test_exact_pricing_equals_brute_force(seed):
    """At the duals of several restricted masters (empty, after a few loops, and with
    Ryan-Foster decisions), the pricing MILP's minimum = min over every enumerated loop
    of the formula's c̄ (min(0, ·): the empty set is feasible)."""
    inst = random_instance(seed, n=6, T=3)
    d = loop_data(inst)
    loops = loop_set(d)
    assert loops
    master = RestrictedMaster(d)
    opts = CGOptions(progress=False)
    rng = np.random.default_rng(seed)
    pairs = [(i, j) for i, j in d.edges]
    for _round in range(3):
        _, _, _, _, col_dual, row_dual, _ = master.lp.solve()
        duals = master.duals(row_dual)
        master.check(duals, col_dual, 1e-6)
        decisions = [((), ())]
        if pairs:
            p = pairs[int(rng.integers(len(pairs)))]
            decisions += [((p,), ()), ((), (p,))]
        for together, apart in decisions:
            brute = min([0.0] + [reduced_cost(d, duals, S) for S in loops
                                 if _respects(S, together, apart)])
            S, cbar, bound = exact_pricing(d, duals, opts, together, apart)
            assert bound == pytest.approx(brute, abs=1e-6)
            if S is not None:
                assert cbar == pytest.approx(brute, abs=1e-6)
                assert _respects(S, together, apart)
        master.add([loops[int(k)] for k in rng.choice(len(loops), min(3, len(loops)),
                                                      replace=False)])


@pytest.mark.parametrize("seed", [0, 2, 5])
def test_shifted_pricing_and_its_bound(seed):
    """CG5': the pricing MILP with every α shifted by λ <= 0 returns
    min(0, min_S c̄(S) − λ|S|) (brute force), and base + λ|N'| + κ·that bound is a lower
    bound on MLCol(all)'s LP relaxation at the duals of every master on the way; at
    the master's own optimal duals the base (b·π with the implied column bounds) is the
    master's value."""
    inst = random_instance(seed, n=6, T=3)
    d = loop_data(inst)
    loops = loop_set(d)
    lp_all = _mlcol_all(d, relax=True)
    master = RestrictedMaster(d)
    opts = CGOptions(progress=False)
    kappa = master.n_members // 2
    for _round in range(3):
        _, _, value, _, _, row_dual, _ = master.lp.solve()
        duals = master.duals(row_dual)
        base = master.lagrangian_base(duals, 1e-7)
        assert base == pytest.approx(value, abs=1e-6)
        cbars = np.array([reduced_cost(d, duals, S) for S in loops])
        sizes = np.array([len(S) for S in loops])
        ratio = min(0.0, float((cbars / sizes).min()))
        for lam in (0.0, ratio, ratio / 2):
            S, cbar, bound = exact_pricing(d, duals, opts, shift=lam)
            brute = min(0.0, float((cbars - lam * sizes).min()))
            assert bound == pytest.approx(brute, abs=1e-6)
            assert base + lam * master.n_members + kappa * bound <= lp_all + 1e-6
        master.add(loops[_round::3][:3])
    with pytest.raises(ModelError, match="shift"):
        exact_pricing(d, duals, opts, shift=0.5)


@pytest.mark.parametrize("seed", [1, 4, 6])
def test_final_lp_equals_mlcol_all_relaxation(seed):
    inst = random_instance(seed)
    d = loop_data(inst)
    res = solve_column_generation(d, CGOptions(progress=False, lp_gap=0.0))
    lp_all = _mlcol_all(d, relax=True)
    assert res.lp_value == pytest.approx(lp_all, abs=1e-6)
    assert res.lp_bound <= lp_all + 1e-6
    # every lower bound of the history is valid
    assert max(h["bound"] for h in res.history) <= lp_all + 1e-6
    # Wentges smoothing does not change the final LP value
    st = solve_column_generation(d, CGOptions(progress=False, lp_gap=0.0, stabilisation=0.5))
    assert st.lp_value == pytest.approx(lp_all, abs=1e-6)


def _check_design(d, res, inst):
    """The best design through the same Result path as the runner, re-checked."""
    from recopt.models.loops.build import surplus_of_loops
    from recopt.models.loops.solution import solution_dataset

    f, gb, gs = res.master.operation(res.col_value)
    u = (np.moveaxis(surplus_of_loops(d, res.chosen), 0, -1).astype(float) if res.chosen
         else np.zeros(d.shape[:2] + (0,)))
    sol = solution_dataset(inst, d, res.chosen, u, f, gb, gs)
    assert check_solution(d, sol) == []
    assert objective_of(d, sol) == pytest.approx(res.objective, abs=1e-6)


def _bounds_and_branch_and_price(seed):
    inst = _tiny(seed)
    d = loop_data(inst)
    opt = _mlcol_all(d)
    pb = solve_column_generation(d, CGOptions(progress=False))
    assert pb.bound <= opt + TOL
    assert pb.objective >= opt - TOL
    _check_design(d, pb, inst)
    bp = solve_column_generation(d, CGOptions(progress=False, branch_and_price=True,
                                              gap=1e-9))
    assert bp.status == "optimal"
    assert bp.objective == pytest.approx(opt, abs=1e-6)
    assert bp.bound <= opt + TOL
    _check_design(d, bp, inst)
    return pb, bp, opt


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 9, 17])
def test_bounds_and_branch_and_price(seed):
    """LB <= MLCol(all) <= price-and-branch; branch-and-price = MLCol(all). Seeds 9
    (uniform) and 17 (clustered) have a fractional root LP: there branch-and-price must
    branch to reach the optimum."""
    pb, bp, opt = _bounds_and_branch_and_price(seed)
    if seed in (9, 17):
        assert pb.lp_value < opt - 1e-4
        assert bp.nodes > 1


@pytest.mark.slow
@pytest.mark.parametrize("seed", [s for s in range(4, 30) if s not in (9, 17)])
def test_bounds_and_branch_and_price_many(seed):
    """The same on 24 more seeds (half uniform, half clustered)."""
    _bounds_and_branch_and_price(seed)


def test_reduced_cost_certificate_catches_a_sign_error():
    d = loop_data(random_instance(3))
    master = RestrictedMaster(d)
    master.add(loop_set(d)[:5])
    _, _, _, _, col_dual, row_dual, _ = master.lp.solve()
    master.check(master.duals(row_dual), col_dual, 1e-6)
    master.one_sign = -master.one_sign  # a wrong row orientation
    with pytest.raises(ReducedCostError):
        master.check(master.duals(row_dual), col_dual, 1e-6)


def test_runner_options_and_mlcolext():
    inst = random_instance(3)
    d = loop_data(inst)
    opt = _mlcol_all(d)
    r = solve(inst, "MLCol", enumeration="generate", branch_and_price=True, mip_gap=1e-9)
    assert r.attrs["status"] == "optimal", r.attrs["message"]
    assert r.attrs["objective"] == pytest.approx(opt, abs=1e-6)
    assert check_solution(d, r) == []
    assert r.attrs["bound"] <= opt + TOL
    assert "cg_value" in r and r.attrs["n_generated_loops"] >= 1
    ext = solve(inst, "MLColExt", enumeration="generate")
    assert ext.attrs["has_solution"] == 1
    assert check_solution(d, ext) == []
    assert ext.attrs["bound"] <= opt + TOL <= ext.attrs["objective"] + 2 * TOL
    split = solve(inst, "MLColExt", enumeration="generate", master_solver="split")
    assert check_solution(d, split) == []
    assert split.attrs["bound"] <= opt + TOL <= split.attrs["objective"] + 2 * TOL
    with pytest.raises(ModelError, match="master_solver"):
        solve(inst, "MLColExt", enumeration="generate", master_solver="halves")
    with pytest.raises(ModelError, match="stabilisation"):
        solve(inst, "MLCol", enumeration="generate", stabilisation=1.5)


def test_time_limit_returns_incumbent_and_bound():
    inst = generate("dens_2", actors=20, days=2, seed=0)
    d = loop_data(inst)
    res = solve_column_generation(d, CGOptions(progress=False, time_limit=1.5, gap=1e-9))
    assert res.status in ("time_limit", "feasible", "optimal")
    assert res.has_solution and math.isfinite(res.bound)
    assert res.bound <= res.objective + TOL
    _check_design(d, res, inst)


def test_stress_presets():
    """Uniform high-density and complete-graph presets."""
    inst = generate("complete", actors=8, days=1, seed=0)
    d = loop_data(inst)
    assert len(d.edges) == 8 * 7 // 2
    assert generate("dens_5_uniform", actors=10, days=1, seed=0).attrs["generator_preset"] \
        == "dens_5_uniform"
    assert '"placement": "uniform"' in generate("dens_2_uniform", actors=6, days=1,
                                                 seed=0).attrs["generator_settings"]


def test_no_time_at_all_returns_the_no_loop_design():
    """time_limit=0: no master solve; the incumbent is the no-loop design (always
    feasible, value = the no-loop cost) and the bound the everyone-sells bound."""
    inst = random_instance(5)
    d = loop_data(inst)
    res = solve_column_generation(d, CGOptions(progress=False, time_limit=0.0))
    assert res.has_solution and res.chosen == []
    assert res.objective == pytest.approx(d.no_loop_cost(), abs=1e-6)
    assert math.isfinite(res.bound) and res.bound <= _mlcol_all(d) + TOL
    assert res.status == "time_limit"
    _check_design(d, res, inst)


def test_deadline():
    """The decomposition deadline: remaining time, expiry, shares, bad input."""
    from recopt.decomp.phase_clock import PhaseClock

    assert PhaseClock(None).remaining() is None and not PhaseClock(None).expired()
    assert PhaseClock(None).share(0.5).remaining() is None
    dl = PhaseClock(100.0)
    assert 99.0 < dl.remaining() <= 100.0 and not dl.expired()
    assert 49.0 < dl.share(0.5).remaining() <= 50.0
    assert dl.share(0.5).end == pytest.approx(dl.start + 50.0)
    assert PhaseClock(0.0).expired() and PhaseClock(0.0).remaining() == 0.0
    assert PhaseClock.until(dl.end).end == pytest.approx(dl.end)
    for bad in (-1.0, math.inf, math.nan):
        with pytest.raises(ModelError, match="time_limit"):
            PhaseClock(bad)
    with pytest.raises(ModelError, match="share"):
        dl.share(1.5)


@pytest.mark.parametrize("model", ["MLCol", "MLColExt"])
@pytest.mark.parametrize("limit", [1e-3, 0.5, 2.0])  # 0 itself is refused as a limit
def test_tiny_time_limits_are_honoured(model, limit):
    """Every phase reads the time left from one deadline: with a tiny limit the run
    ends near it with status time_limit, a design that passes the checks and a bound
    below it (issue 15: a 900 s limit was overrun by 100 s)."""
    inst = generate("dens_2", actors=20, days=2, seed=0)
    d = loop_data(inst)
    r = solve(inst, model, enumeration="generate", time_limit=limit, mip_gap=1e-9)
    a = r.attrs
    assert a["status"] == "time_limit", a["message"]
    assert a["has_solution"] == 1 and math.isfinite(a["bound"])
    assert a["bound"] <= a["objective"] + TOL
    assert check_solution(d, r) == []
    # the un-interruptible pieces (data, one master build, one solution write-up) take
    # well under a second here; 3 s of slack for the shared machine
    assert a["wall_seconds"] <= limit + 3.0, a["wall_seconds"]


@pytest.mark.parametrize("seed", [9, 17])
def test_pricing_resumed_after_benders(seed):
    """MLColExt with ``enumeration=generate`` goes back to pricing when Benders leaves
    time: column generation stopped after one round, Benders on its loops, then
    resumed pricing and Benders again. Every bound stays valid (<= MLCol(all)'s LP),
    the resumed run reaches MLCol(all)'s LP value, the incumbent is no worse than the
    first Benders run's and no better than MLCol(all)'s optimum, and the master left
    out steps the design cannot change (CG1') without changing the LP."""
    from recopt.decomp.benders import BendersOptions, solve_benders
    from recopt.decomp.column_generation import resume_column_generation
    from recopt.decomp.loop_benders import _price_again, mlcolext_problem
    from recopt.decomp.phase_clock import PhaseClock

    inst = _tiny(seed)
    d = loop_data(inst)
    lp_all, opt = _mlcol_all(d, relax=True), _mlcol_all(d)
    for reduce in (True, False):  # CG1': the left-out steps do not change the LP
        master = RestrictedMaster(d, reduce=reduce)
        assert len(master.model.STEPS) == (len(d.decision_steps()) if reduce else len(d.steps))
        master.add(loop_set(d))
        assert master.lp.solve()[2] == pytest.approx(lp_all, abs=1e-6)
    opts = CGOptions(progress=False, integer=False, max_rounds=1, lp_gap=0.0)
    cg = solve_column_generation(d, opts)
    assert not cg.converged and cg.bound <= lp_all + TOL
    k0 = len(cg.loops)
    problem = mlcolext_problem(d, cg.loops)
    bopts = BendersOptions(gap=1e-9, master_options={})
    first = solve_benders(problem, bopts)
    assert first.has_solution
    cg.solver.opts.max_rounds = 10_000
    first_ub = first.upper_bound
    res, _, loops = _price_again(d, cg, {"res": first, "problem": problem}, bopts,
                                 PhaseClock(600.0), "aggregated", True, "aggregated",
                                 time.perf_counter() - 1.0)
    assert cg.converged and len(cg.loops) > k0 and loops == cg.loops
    assert cg.lp_value == pytest.approx(lp_all, abs=1e-6)
    assert cg.bound <= lp_all + TOL
    assert opt - TOL <= res.upper_bound <= first_ub + TOL
    assert min(cg.bound, res.lower_bound) <= opt + TOL
    if res.second_stage is not None:
        res.second_stage.close()
    assert resume_column_generation(cg, PhaseClock(10.0)) == 0  # converged: nothing to do


@pytest.mark.parametrize("seed", [1, 9])
def test_master_restart_reaches_the_same_lp(seed):
    """A cold re-solve of the full restricted master (``master_start``; the split master
    of the default has no single LP to restart) reaches the LP value
    of MLCol(all)'s relaxation as the warm one does, and the bounds stay valid; with a
    zero cap the ``auto`` mode must actually restart."""
    inst = random_instance(seed)
    d = loop_data(inst)
    lp_all = _mlcol_all(d, relax=True)
    for kw in ({"master_start": "warm"}, {"master_start": "cold"},
               {"master_start": "auto", "restart_factor": 0.0, "restart_floor": 0.0}):
        res = solve_column_generation(d, CGOptions(progress=False, lp_gap=0.0,
                                                   master_solver="full", **kw))
        assert res.converged, kw
        assert res.lp_value == pytest.approx(lp_all, abs=1e-6), kw
        assert max(h["bound"] for h in res.history) <= lp_all + 1e-6, kw
        if kw["master_start"] == "auto" and res.rounds > 1:
            assert res.solver.restarts > 0
    with pytest.raises(ModelError, match="master_start"):
        solve_column_generation(d, CGOptions(progress=False, master_start="hot"))


@pytest.mark.parametrize("seed", [1, 4, 6, 9, 17])
def test_split_master_reaches_mlcol_all(seed):
    """The time-block Benders split of the restricted master (``master_solver="split"``,
    two steps per step LP so that there are several) reaches MLCol(all)'s LP value, its
    duals pass the reduced-cost certificate (checked inside every round), every bound
    of the history is valid, and price-and-branch on top keeps LB <= MLCol(all) <= UB."""
    inst = random_instance(seed) if seed < 9 else _tiny(seed)
    d = loop_data(inst)
    lp_all = _mlcol_all(d, relax=True)
    opt = _mlcol_all(d)
    kw = dict(progress=False, lp_gap=0.0, master_solver="split", split_steps=2,
              split_gap=1e-10)
    res = solve_column_generation(d, CGOptions(integer=False, **kw))
    assert res.converged
    assert res.solver.split.iterations >= res.rounds
    assert res.lp_value == pytest.approx(lp_all, abs=1e-6)
    assert max(h["bound"] for h in res.history) <= lp_all + 1e-6
    assert res.bound <= lp_all + 1e-6
    pb = solve_column_generation(d, CGOptions(**kw))
    assert pb.bound <= opt + TOL
    assert pb.objective >= opt - TOL
    _check_design(d, pb, inst)
    with pytest.raises(ModelError, match="master_solver"):
        solve_column_generation(d, CGOptions(progress=False, master_solver="halves"))


@pytest.mark.parametrize("model", ["MLCol", "MLColExt"])
def test_split_master_honours_a_tiny_time_limit(model):
    """The split master stops with the deadline too (inside its Benders iterations):
    status time_limit, a checked design, a valid bound, the wall time near the limit."""
    inst = generate("dens_2", actors=20, days=2, seed=0)
    d = loop_data(inst)
    r = solve(inst, model, enumeration="generate", time_limit=1.0, mip_gap=1e-9,
              master_solver="split")
    a = r.attrs
    assert a["status"] == "time_limit", a["message"]
    assert a["has_solution"] == 1 and math.isfinite(a["bound"])
    assert a["bound"] <= a["objective"] + TOL
    assert check_solution(d, r) == []
    assert a["wall_seconds"] <= 1.0 + 3.0, a["wall_seconds"]
