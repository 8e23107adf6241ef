"""Benders decompositions SLExt and MLColExt (recopt.decomp.benders).

Spec: ``docs/reconstruction/loop-design.md`` (SLExt, MLColExt, properties 1, 2, 5);
model card ``models/SLExt-MLColExt.md``. The decompositions must reach their compact
model's optimum; every cut is checked tight at its generating point inside the
algorithm (a failure raises), and a sign error is shown to be caught.
"""

from __future__ import annotations

import numpy as np
import pytest

from recopt.decomp.benders import BendersOptions, CutError, SecondStage, solve_benders
from recopt.decomp.loop_benders import (
    COUPLED_COMPILE_MIN_LOOPS,
    MLCOLEXT_COUPLING_ROWS,
    mlcolext_problem,
    slext_problem,
)
from recopt.models.loops import check_solution, loop_data, loop_set, objective_of
from recopt.solve import solve
from recopt.solvers.status import Status

GAP = 1e-7  # Benders gap asked in the equality tests (relative, max(1, |UB|))


def _close(a, b):
    return abs(a - b) <= 1e-5 * max(1.0, abs(b))


def _variant(seed):
    """Vary cut form, Pareto cuts and individual self-consumption over the seeds."""
    return dict(cuts=("multi", "daily", "aggregated")[seed % 3], pareto=seed % 4 == 1,
                self_consumption=seed % 5 != 4, reduce=seed % 7 != 6)


def _assert_reaches(inst, r, ref, self_consumption):
    """The decomposition ``r`` is optimal at the compact model's optimum ``ref``, its
    bound below it, its solution feasible for the compact model with the (1a) it reports."""
    assert r.attrs["status"] == "optimal", r.attrs["message"]
    assert _close(r.attrs["objective"], ref.attrs["objective"])
    assert r.attrs["bound"] <= ref.attrs["objective"] + 1e-6
    d = loop_data(inst, self_consumption=self_consumption)
    assert check_solution(d, r) == []
    assert objective_of(d, r) == pytest.approx(r.attrs["objective"], abs=1e-6)


@pytest.mark.parametrize("seed", range(20))
def test_slext_reaches_slcpct_optimum(loop_instance, seed):
    inst = loop_instance(100 + seed)
    v = _variant(seed)
    ref = solve(inst, "SLCpct", mip_gap=1e-9, self_consumption=v["self_consumption"])
    r = solve(inst, "SLExt", mip_gap=GAP, **v)
    assert ref.attrs["status"] == "optimal"
    _assert_reaches(inst, r, ref, v["self_consumption"])
    if r.attrs["blocks"]:  # else no step can carry a flow: nothing to decide
        assert r.attrs["benders_cuts"] >= 1 and r.attrs["benders_iterations"] >= 1
    if v["pareto"] and r.attrs["blocks"]:
        assert r.attrs["benders_pareto_cuts"] >= 1


@pytest.mark.parametrize("seed", range(20))
def test_mlcolext_reaches_mlcol_optimum(loop_instance, seed):
    inst = loop_instance(200 + seed)
    v = _variant(seed)
    enumeration = "maximal" if seed % 6 == 5 else "all"
    ref = solve(inst, "MLCol", mip_gap=1e-9, enumeration=enumeration,
                self_consumption=v["self_consumption"])
    r = solve(inst, "MLColExt", mip_gap=GAP, enumeration=enumeration, **v)
    _assert_reaches(inst, r, ref, v["self_consumption"])
    assert r.attrs["n_enumerated_loops"] == ref.attrs["n_enumerated_loops"]


@pytest.mark.parametrize("cuts", ["multi", "daily", "aggregated"])
def test_history_bounds_are_monotone_and_bracket_the_optimum(loop_instance, cuts):
    inst = loop_instance(7, n=7, S=3, T=6)
    ref = solve(inst, "SLCpct", mip_gap=1e-9).attrs["objective"]
    r = solve(inst, "SLExt", mip_gap=GAP, cuts=cuts)
    lb = r["benders_lower_bound"].values
    ub = r["benders_upper_bound"].values
    assert (np.diff(lb) >= -1e-9).all() and (np.diff(ub) <= 1e-9).all()
    assert (lb <= ref + 1e-6).all() and (ub >= ref - 1e-6).all()
    assert r.attrs["benders_master_seconds"] > 0 and r.attrs["benders_sub_seconds"] > 0


def test_pyomo_route_equals_persistent_highs(loop_instance):
    """The sub-problem solved through the Pyomo model (duals from its Suffix) and kept
    in HiGHS (only rhs change) give the same iterations and optimum."""
    inst = loop_instance(5, n=6, S=2, T=5)
    d = loop_data(inst)
    a = solve_benders(slext_problem(d), BendersOptions(gap=GAP, persistent=True))
    b = solve_benders(slext_problem(d), BendersOptions(gap=GAP, persistent=False))
    assert a.status == b.status == Status.OPTIMAL
    assert _close(a.upper_bound, b.upper_bound)
    assert a.iterations == b.iterations


@pytest.mark.parametrize("persistent", [True, False])
def test_wrong_dual_sign_is_caught(loop_instance, monkeypatch, persistent):
    """Flip the sign of the duals: the tightness check must raise, not warn."""
    inst = loop_instance(3, n=5, S=2, T=4)
    d = loop_data(inst)
    original = SecondStage.solve

    def flipped(self, x, opts, time_limit):
        phi, lam, y, status, message = original(self, x, opts, time_limit)
        return phi, -lam, y, status, message

    monkeypatch.setattr(SecondStage, "solve", flipped)
    with pytest.raises(CutError, match="not tight"):
        solve_benders(mlcolext_problem(d, loop_set(d)),
                      BendersOptions(persistent=persistent))


def test_every_cut_is_tight_where_it_was_made(loop_instance):
    """Independent of the built-in check: each cut of the master, evaluated at the
    first stage that generated it, equals the sub-problem value there."""
    inst = loop_instance(9, n=6, S=2, T=4)
    d = loop_data(inst)
    problem = slext_problem(d)
    seen = []
    original = SecondStage.solve

    def spy(self, x, opts, time_limit):
        out = original(self, x, opts, time_limit)
        seen.append((x.copy(), out[0].copy()))
        return out

    SecondStage.solve = spy
    try:
        res = solve_benders(problem, BendersOptions(gap=GAP))
    finally:
        SecondStage.solve = original
    assert res.status == Status.OPTIMAL
    m = problem.master
    cuts = list(m.benders_cuts.values())
    assert len(cuts) == res.n_cuts > 0
    # every master cut is tight at one of the evaluated points, for its own block
    xs = problem.first_stage
    thetas = list(m.theta.values())
    blocks = res.second_stage.blocks
    for cut in cuts:
        ok = False
        for x, phi in seen:
            for v, val in zip(xs, x, strict=True):
                v.set_value(val, skip_validation=True)
            for k, th in enumerate(thetas):
                th.set_value(float(phi[k]), skip_validation=True)
            body = cut.body()
            if abs(body - cut.lower) <= 1e-6 * (1 + abs(cut.lower)):
                ok = True
                break
        assert ok, f"cut {cut.name} is tight at no generating point"
    assert len(blocks) == len(thetas)


def test_time_limit_returns_bounds(loop_instance):
    inst = loop_instance(4, n=7, S=3, T=6)
    d = loop_data(inst)
    ref = solve(inst, "SLCpct", mip_gap=1e-9).attrs["objective"]
    res = solve_benders(slext_problem(d), BendersOptions(time_limit=1e-9))
    assert res.status == Status.TIME_LIMIT
    assert np.isfinite(res.lower_bound) and np.isfinite(res.upper_bound)
    assert res.lower_bound <= ref + 1e-6 <= res.upper_bound + 2e-6
    r = solve(inst, "MLColExt", max_iterations=1)
    assert r.attrs["status"] in ("feasible", "optimal")
    assert r.attrs["bound"] <= r.attrs["objective"] + 1e-6
    assert r.attrs["has_solution"]


def test_gurobi_agrees_with_highs(loop_instance):
    pytest.importorskip("gurobipy")
    from recopt.solvers import solver_available

    if not solver_available("gurobi"):
        pytest.skip("gurobi is installed but has no usable licence here")
    inst = loop_instance(6, n=5, S=2, T=3)
    for model in ("SLExt", "MLColExt"):
        h = solve(inst, model, mip_gap=GAP)
        g = solve(inst, model, mip_gap=GAP, solver="gurobi")
        assert g.attrs["status"] == "optimal", g.attrs["message"]
        assert _close(g.attrs["objective"], h.attrs["objective"])


def test_cli_runs_mlcolext(loop_instance, tmp_path, capsys):
    from recopt.cli.solve import main
    from recopt.data import save

    path = tmp_path / "loops.nc"
    save(loop_instance(2, n=6), path)
    assert main([str(path), "--model", "MLColExt", "--option", "pareto=true"]) == 0
    out = capsys.readouterr().out
    assert "benders" in out and "iterations" in out
    assert main([str(path), "--model", "SLExt", "--option", "cuts=bogus"]) == 2
    assert main([str(path), "--model", "SLExt", "--option", "cuts=daily"]) == 0


def test_bad_options_are_refused(loop_instance):
    from recopt.errors import ModelError

    d = loop_data(loop_instance(1))
    with pytest.raises(ModelError, match="cuts"):
        solve_benders(slext_problem(d), BendersOptions(cuts="single"))


@pytest.mark.parametrize("model", ["SLExt", "MLColExt"])
def test_leaving_out_steps_without_possible_flow_is_exact(loop_instance, model):
    """Steps with no possible flow (nights, isolated producers) hold no decision:
    with and without ``reduce`` the optimum is the compact model's."""
    inst = loop_instance(31, n=6, S=2, T=6)
    inst["production"].values[:, :2, :] = 0.0  # two nights per scenario
    compact = "SLCpct" if model == "SLExt" else "MLCol"
    ref = solve(inst, compact, mip_gap=1e-9).attrs["objective"]
    d = loop_data(inst)
    assert len(d.decision_steps()) < len(d.steps)
    for reduce in (True, False):
        r = solve(inst, model, mip_gap=GAP, reduce=reduce)
        assert r.attrs["status"] == "optimal"
        assert _close(r.attrs["objective"], ref)
        assert check_solution(d, r) == []
        assert r.attrs["blocks"] == (len(d.decision_steps()) if reduce else len(d.steps)) \
            or model == "MLColExt"


def test_a_cut_error_is_a_status_through_the_runner(loop_instance, monkeypatch):
    """solve() never raises for solver trouble: a failed tightness check is status
    'error' with the check's message; a missing solver is 'solver_unavailable'."""
    original = SecondStage.solve

    def flipped(self, x, opts, time_limit):
        phi, lam, y, status, message = original(self, x, opts, time_limit)
        return phi, -lam, y, status, message

    inst = loop_instance(3, n=5, S=2, T=4)
    monkeypatch.setattr(SecondStage, "solve", flipped)
    r = solve(inst, "SLExt")
    assert r.attrs["status"] == "error" and "not tight" in r.attrs["message"]
    monkeypatch.setattr(SecondStage, "solve", original)
    r = solve(inst, "MLColExt", solver="cplex")  # known, not installed here
    assert r.attrs["status"] == "solver_unavailable"


def test_grouped_cuts_reach_the_optimum(loop_instance):
    """cuts='grouped': one θ per group of blocks (here pairs of steps), each cut the sum
    of its blocks' cuts; same optimum as SLCpct, fewer θ than blocks."""
    inst = loop_instance(8, n=6, S=2, T=6)
    d = loop_data(inst)
    ref = solve(inst, "SLCpct", mip_gap=1e-9).attrs["objective"]
    problem = slext_problem(d, reduce=False)
    problem.group_of = lambda block: (block[0], block[1] // 2)
    res = solve_benders(problem, BendersOptions(gap=GAP, cuts="grouped"))
    assert res.status == Status.OPTIMAL
    assert _close(res.upper_bound, ref)
    assert len(problem.master.theta) == 2 * 3 < res.n_blocks
    with pytest.raises(Exception, match="group_of"):
        solve_benders(slext_problem(d), BendersOptions(cuts="grouped"))


@pytest.mark.parametrize("rows", ["aggregated", "per_loop"])
@pytest.mark.parametrize("seed", [3, 11])
def test_coupling_rows_give_the_compiled_second_stage(loop_instance, rows, seed):
    """MLColExt's ``coupling_rows`` (the compile with the first stage fixed, ``H`` read
    row by row) gives exactly the rows, ``h``, ``A``, ``H`` and costs of the compile with
    the first stage unfixed; a row outside the listed components reads as no coupling.
    From ``COUPLED_COMPILE_MIN_LOOPS`` loops on it is MLColExt's default."""
    d = loop_data(loop_instance(300 + seed))
    loops = loop_set(d, "all")
    fast = mlcolext_problem(d, loops, rows, coupled_compile=True)
    assert fast.coupling_rows
    plain = mlcolext_problem(d, loops, rows, coupled_compile=False)
    assert plain.coupling_rows is None
    a, b = SecondStage(fast), SecondStage(plain)
    assert [c.name for c in a.rows] == [c.name for c in b.rows]
    assert [v.name for v in a.columns] == [v.name for v in b.columns]
    assert a.H.nnz == b.H.nnz > 0
    assert abs(a.H - b.H).max() == 0 and abs(a.A - b.A).max() == 0
    np.testing.assert_array_equal(a.h, b.h)
    np.testing.assert_array_equal(a.cost, b.cost)
    np.testing.assert_array_equal(a.sense, b.sense)
    assert [v.value for v in fast.sub_first_stage] == [v.value for v in plain.sub_first_stage]
    assert all(v.fixed for v in fast.sub_first_stage)
    partial = mlcolext_problem(d, loops, rows, coupled_compile=True)
    partial.coupling_rows = ("loop_flow",)
    assert SecondStage(partial).H.nnz < b.H.nnz
    assert mlcolext_problem(d, loops, rows).coupling_rows is None  # few loops: plain
    many = [loops[k % len(loops)] for k in range(COUPLED_COMPILE_MIN_LOOPS)]
    assert mlcolext_problem(d, many, rows).coupling_rows == MLCOLEXT_COUPLING_ROWS


def _old_cuts(sub, lam):
    """The cuts as computed before ``SecondStage.cut_coefficients``: per block,
    ``−B (λ ∘ H)`` (the reference of the tests below)."""
    const = np.bincount(sub.row_block, weights=lam * sub.h, minlength=len(sub.blocks))
    return const, -(sub.B @ sub.H.multiply(lam[:, None])).tocsr()


def test_cut_coefficients_equal_the_per_block_products(loop_instance):
    """``cut_coefficients`` (grouped or not, some groups kept) and the Pareto mix of
    two duals per block equal the products over ``λ ∘ H``."""
    import scipy.sparse as sp

    d = loop_data(loop_instance(12, n=6, S=2, T=6))
    problem = mlcolext_problem(d, loop_set(d))
    sub = SecondStage(problem, problem.matrix())
    rng = np.random.default_rng(0)
    lam, lam_e = rng.normal(size=(2, sub.n_rows))
    lam[rng.random(sub.n_rows) < 0.3] = 0.0
    const, coef = _old_cuts(sub, lam)
    assert coef.nnz > 0
    new_const, new_coef = sub.cuts(lam)
    np.testing.assert_array_equal(new_const, const)
    assert abs(new_coef - coef).max() == 0
    nb = len(sub.blocks)
    group = np.arange(nb) % 3
    to_group = sp.csr_matrix((np.ones(nb), (group, np.arange(nb))), shape=(3, nb))
    keep = np.array([True, False, True])
    grouped = sub.cut_coefficients(lam, group, 3, keep).toarray()
    expected = (to_group @ coef).toarray()
    np.testing.assert_allclose(grouped[keep], expected[keep], rtol=1e-12, atol=1e-12)
    assert not grouped[~keep].any()
    use = rng.random(nb) < 0.5  # Pareto: per block, the cut of lam_e or of lam
    _, coef_e = _old_cuts(sub, lam_e)
    mixed = (sp.diags(use.astype(float)) @ coef_e
             + sp.diags((~use).astype(float)) @ coef).toarray()
    lam_mix = np.where(use[sub.row_block], lam_e, lam)
    np.testing.assert_array_equal(sub.cut_coefficients(lam_mix).toarray(), mixed)


@pytest.mark.parametrize("cuts,pareto", [("multi", False), ("aggregated", False),
                                         ("grouped", True), ("multi", True)])
def test_cuts_from_duals_give_the_same_run_as_per_block_cuts(loop_instance, monkeypatch,
                                                             cuts, pareto):
    """Benders with the cuts computed from the duals (``add_dual_cuts``) and with the
    per-block cuts of ``λ ∘ H`` (as before) on MLColExt: same cuts, iterations and
    optimum."""
    from recopt.decomp.benders import Benders

    d = loop_data(loop_instance(13, n=6, S=2, T=6))

    def run():
        problem = mlcolext_problem(d, loop_set(d))
        problem.group_of = lambda block: (block[0], block[1] // 2)
        res = solve_benders(problem, BendersOptions(gap=GAP, cuts=cuts, pareto=pareto))
        bodies = [(c.lower, str(c.body)) for c in problem.master.benders_cuts.values()]
        return res, bodies

    new, new_cuts = run()

    def per_block(self, lam, phi, theta_bar, pareto_used=None):
        const, coef = _old_cuts(self.sub, lam)
        return self.add_cuts(const, coef, phi, theta_bar, pareto_used)

    monkeypatch.setattr(Benders, "add_dual_cuts", per_block)
    old, old_cuts = run()
    assert new.status == old.status == Status.OPTIMAL
    assert new.iterations == old.iterations and new.n_cuts == old.n_cuts > 0
    assert new.pareto_cuts == old.pareto_cuts
    assert new.upper_bound == pytest.approx(old.upper_bound, rel=1e-12)
    np.testing.assert_array_equal(new.best_point, old.best_point)
    assert len(new_cuts) == len(old_cuts)
    for (lo_n, _), (lo_o, _) in zip(new_cuts, old_cuts, strict=True):
        assert lo_n == pytest.approx(lo_o, rel=1e-9, abs=1e-9)
