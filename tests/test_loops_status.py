"""MILP statuses of the loop models through the runner (slow: a real branch and bound)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from recopt.models.loops import check_solution, loop_data
from recopt.solve import solve

pytestmark = pytest.mark.slow

_BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_loops.py"


def _clustered(n, days, seed):
    spec = importlib.util.spec_from_file_location("bench_loops", _BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.clustered_instance(n, days=days, seed=seed)


def test_node_limit_gives_feasible_with_bound_and_gap():
    inst = _clustered(15, 1, 1)
    exact = solve(inst, "MLCol")
    r = solve(inst, "MLCpct", solver_options={"mip_max_nodes": 1})
    assert r.attrs["status"] == "feasible" and r.attrs["has_solution"] == 1
    assert r.attrs["bound"] <= exact.attrs["objective"] + 1e-6 <= r.attrs["objective"] + 2e-6
    assert 0 < r.attrs["gap"] == pytest.approx(
        abs(r.attrs["objective"] - r.attrs["bound"]) / max(1, abs(r.attrs["objective"])))
    assert check_solution(loop_data(inst), r) == []


def test_time_limit_status():
    inst = _clustered(15, 1, 1)
    r = solve(inst, "MLCpct", time_limit=3.0)
    assert r.attrs["status"] in ("time_limit", "optimal")
    if r.attrs["status"] == "time_limit" and r.attrs["has_solution"]:
        assert np.isfinite(r.attrs["gap"])
        assert check_solution(loop_data(inst), r) == []
