"""Benders as an object: its steps (master, evaluate, add cuts) driven one at a time.

The same SLExt problem (Chasseray et al., Models 3-5) is solved step by step and by
``run()``; both reach the compact SLCpct optimum, and every step does what its
docstring says (bounds bracket the optimum, cuts violated at θ̄ are added, cuts
already satisfied are not).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from recopt.data import make_instance
from recopt.decomp.benders import Benders, BendersOptions
from recopt.decomp.loop_benders import slext_problem
from recopt.models.loops import loop_data
from recopt.solve import solve
from recopt.solvers.status import Status


def _instance(seed: int = 3, n: int = 6, S: int = 2, T: int = 4):
    r = np.random.default_rng(seed)
    prod = np.arange(n) % 2 == 0
    C = np.round(r.uniform(0, 3, (S, T, n)), 3)
    P = np.round(r.uniform(0, 5, (S, T, n)) * prod, 3)
    return make_instance(
        C, P, price_grid_buy=0.25, price_grid_sell=0.05, price_community_buy=0.1,
        price_community_sell=0.1, scenario_probability=np.full(S, 1.0 / S),
        installed_power=np.where(prod, 2.0, 0.0), x_km=r.uniform(0, 2, n),
        y_km=r.uniform(0, 2, n), attrs={"max_distance_km": 2.5, "max_loop_power_kw": 5.0})


@pytest.fixture(scope="module")
def case():
    inst = _instance()
    ref = solve(inst, "SLCpct", mip_gap=1e-9)
    assert ref.attrs["status"] == "optimal"
    return inst, float(ref.attrs["objective"])


def _benders(inst):
    problem = slext_problem(loop_data(inst))
    assert len(problem.sub.STEPS) > 0, "the test instance must have second-stage blocks"
    return Benders(problem, BendersOptions(gap=1e-7, master_gap=0.0, progress=False))


def test_steps_one_at_a_time_reach_the_compact_optimum(case):
    inst, opt = case
    b = _benders(inst)
    res = b.result
    assert res.lower_bound <= opt + 1e-9 and math.isinf(res.upper_bound)

    b.initial_cuts()  # the initial point (no loop) gives the first UB and cuts
    assert math.isfinite(res.upper_bound) and res.upper_bound >= opt - 1e-9
    assert res.n_cuts >= 1 and res.best_point is not None
    first_cuts = res.n_cuts

    lbs, ubs = [res.lower_bound], [res.upper_bound]
    for it in range(1, 50):
        mo, x, theta = b.solve_master()
        assert mo.has_solution and x is not None
        assert res.lower_bound <= opt + 1e-6  # the master's bound is a lower bound
        phi = b.evaluate(x, theta)
        assert phi is not None
        assert float(phi.sum()) + b.constant >= opt - 1e-6  # any point's value is >= opt
        res.iterations = it
        lbs.append(res.lower_bound)
        ubs.append(res.upper_bound)
        if (res.upper_bound - res.lower_bound) / max(1.0, abs(res.upper_bound)) <= 1e-7:
            break
    assert res.n_cuts > first_cuts
    assert (np.diff(lbs) >= -1e-9).all() and (np.diff(ubs) <= 1e-9).all()
    assert res.upper_bound == pytest.approx(opt, rel=1e-6, abs=1e-6)
    assert res.lower_bound == pytest.approx(opt, rel=1e-6, abs=1e-6)

    final = b.finish(Status.OPTIMAL, "driven by hand")
    # initial_cuts() logs itself; the loop's iteration records are run()'s
    assert final.status == Status.OPTIMAL and [h["iteration"] for h in final.history] == [0]


def test_cuts_satisfied_at_theta_are_not_added(case):
    inst, _ = case
    b = _benders(inst)
    b.initial_cuts()
    mo, x, theta = b.solve_master()
    n = b.result.n_cuts
    phi = b.evaluate(x, np.full_like(theta, 1e9))  # θ̄ above every cut: none violated
    assert b.result.n_cuts == n
    # θ̄ = -inf: every block's cut is violated, so every group gets one
    b.evaluate(x, np.full_like(theta, -1e9))
    assert b.result.n_cuts == n + len(b.theta_keys)
    assert phi is not None


def test_run_equals_the_steps(case):
    inst, opt = case
    res = _benders(inst).run()
    assert res.status == Status.OPTIMAL
    assert res.upper_bound == pytest.approx(opt, rel=1e-6, abs=1e-6)
    assert res.history and res.history[0]["iteration"] == 0
