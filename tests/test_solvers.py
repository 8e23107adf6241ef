"""The solver back-ends on small Pyomo models: statuses, bounds, duals, time limits."""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo
import pytest

from recopt.errors import SolverOptionError, SolverUnavailableError
from recopt.solve import Status, solve_pyomo, solver_available


def lp():
    m = pyo.ConcreteModel()
    m.x = pyo.Var(bounds=(0, 4))
    m.y = pyo.Var(bounds=(0, None))
    m.cap = pyo.Constraint(expr=m.x + 2 * m.y <= 6)
    m.ranged = pyo.Constraint(expr=pyo.inequality(1, m.x - m.y, 3))
    m.obj = pyo.Objective(expr=-m.x - m.y + 10)
    return m


def test_lp_optimum_values_and_duals():
    m = lp()
    m.dual = pyo.Suffix(direction=pyo.Suffix.IMPORT)
    out = solve_pyomo(m)
    assert out.status == Status.OPTIMAL and out.has_solution
    # optimum x = 4, y = 1: objective 10 - 5 = 5 (ranged row active at x - y = 3)
    assert out.objective == pytest.approx(5.0)
    assert (m.x.value, m.y.value) == pytest.approx((4.0, 1.0))
    assert out.gap == 0
    # duals: d obj / d rhs of the active rows (min problem, Pyomo's sign convention)
    assert m.dual[m.cap] == pytest.approx(-0.5)
    assert m.dual[m.ranged] == pytest.approx(0.0) or m.dual[m.ranged] == pytest.approx(-0.5)


def test_maximisation_keeps_the_sense():
    m = lp()
    m.obj.sense = pyo.maximize
    out = solve_pyomo(m)
    assert out.objective == pytest.approx(10 - 1.0)  # x = 1, y = 0


def test_infeasible_and_unbounded():
    m = lp()
    m.bad = pyo.Constraint(expr=m.x >= 5)
    assert solve_pyomo(m).status == Status.INFEASIBLE
    u = pyo.ConcreteModel()
    u.x = pyo.Var(bounds=(0, None))
    u.obj = pyo.Objective(expr=-u.x)
    out = solve_pyomo(u)
    assert out.status == Status.UNBOUNDED and not out.has_solution


def market_split(m_rows=4, n=32, seed=0):
    """Cornuejols-Dawande market split: tiny and very hard for branch and bound."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 100, (m_rows, n))
    d = a.sum(axis=1) // 2
    mdl = pyo.ConcreteModel()
    mdl.x = pyo.Var(range(n), within=pyo.Binary)
    mdl.s = pyo.Var(range(m_rows), bounds=(None, None))
    mdl.sp = pyo.Var(range(m_rows), bounds=(0, None))
    mdl.sm = pyo.Var(range(m_rows), bounds=(0, None))
    mdl.row = pyo.Constraint(range(m_rows), rule=lambda mm, i: sum(
        int(a[i, j]) * mm.x[j] for j in range(n)) + mdl.sp[i] - mdl.sm[i] == int(d[i]))
    mdl.obj = pyo.Objective(expr=sum(mdl.sp[i] + mdl.sm[i] for i in range(m_rows)))
    return mdl


def test_mip_time_limit_is_reported_with_bounds():
    out = solve_pyomo(market_split(), time_limit=0.5)
    assert out.status in (Status.TIME_LIMIT, Status.OPTIMAL)
    assert out.n_integer == 32
    if out.status == Status.TIME_LIMIT and out.has_solution:
        assert out.bound <= out.objective + 1e-9


def test_mip_gap_and_bound():
    m = pyo.ConcreteModel()
    m.x = pyo.Var(range(5), within=pyo.Binary)
    w = [3, 4, 5, 6, 7]
    m.cap = pyo.Constraint(expr=sum(w[i] * m.x[i] for i in range(5)) <= 12)
    m.obj = pyo.Objective(expr=sum((i + 1) * m.x[i] for i in range(5)), sense=pyo.maximize)
    out = solve_pyomo(m)
    assert out.status == Status.OPTIMAL and out.objective == pytest.approx(8.0)  # {5, 7}
    assert out.bound == pytest.approx(8.0, abs=1e-6)


def test_options_errors_and_unavailable():
    with pytest.raises(SolverOptionError, match="no_such_option"):
        solve_pyomo(lp(), options={"no_such_option": 1})
    with pytest.raises(SolverUnavailableError, match="not available"):
        solve_pyomo(lp(), solver="cplex")  # a known solver, not installed here
    with pytest.raises(SolverOptionError, match="no_such_solver_xyz.*RECOPT_ALLOW_SOLVERS"):
        solve_pyomo(lp(), solver="no_such_solver_xyz")  # not a known solver: refused
    assert solver_available("highs")
    assert not solver_available("no_such_solver_xyz")
    assert not solver_available("cplex")


def test_highs_thread_count_can_change_within_a_process():
    """HiGHS keeps one scheduler per process; a later solve with another thread count
    used to fail with status error ("Not Set")."""
    from recopt.generate.chasseray import generate

    inst = generate(actors=5, days=1, seed=0)
    from recopt.solve import solve

    statuses = [solve(inst, "SLCpct", threads=t).attrs["status"] for t in (None, 1, 2, 1)]
    assert statuses == ["optimal"] * 4


@pytest.mark.parametrize("seed", range(6))
def test_staged_lp_optimal_face_equals_the_kept_row(seed):
    """:meth:`HighsStagedLP.restrict_to_optimal_face` (the bounds that stage 1's
    optimal duals hold, fixed) leaves exactly the optimal set: a second cost reaches over
    it what it reaches with the kept row ``c1 x <= c1*``, and the first cost stays at
    its optimum. Random LPs with many zero costs, so the optimal face is large."""
    import numpy as np
    import scipy.sparse as sp

    from recopt.solvers.highs import HighsStagedLP

    rng = np.random.default_rng(seed)
    n, m = 40, 25
    A = sp.random(m, n, density=0.3, random_state=seed, format="csr")
    x0 = rng.uniform(0.2, 0.8, n)
    act = A @ x0
    row_lo = np.where(rng.random(m) < 0.5, act - rng.uniform(0, 0.3, m), -np.inf)
    row_up = np.where(np.isinf(row_lo), act + rng.uniform(0, 0.3, m), np.inf)
    c1 = np.where(rng.random(n) < 0.5, 0.0, rng.normal(size=n))
    c2 = rng.normal(size=n)
    col_lo, col_up = np.zeros(n), np.where(rng.random(n) < 0.2, np.inf, 1.0)
    col_up[c1 < 0] = 1.0  # bounded
    values = []
    for way in ("face", "row"):
        lp = HighsStagedLP(A, c1, col_lo, col_up, row_lo, row_up)
        out, x = lp.solve("simplex")
        assert out.status.value == "optimal"
        f1 = float(c1 @ x)
        if way == "face":
            n_c, n_r = lp.restrict_to_optimal_face()
            assert n_c + n_r > 0
        else:
            lp.keep(c1, f1)  # exactly: any slack buys c2 (a reduced cost 6e-5 here)
        lp.set_cost(c2)
        out, x2 = lp.solve("ipm")
        assert out.status.value == "optimal"
        assert float(c1 @ x2) == pytest.approx(f1, abs=1e-7)
        values.append(float(c2 @ x2))
    assert values[0] == pytest.approx(values[1], abs=1e-6)
