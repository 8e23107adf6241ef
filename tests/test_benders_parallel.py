"""Benders sub-problem parts in worker processes and on a Dask cluster (issue 19).

The sub-problem of SLExt / MLColExt is a sum of independent (scenario, step)
blocks given the master's point; with ``workers > 1`` its blocks are split into
parts, each kept in HiGHS in its own worker process
(:class:`recopt.decomp.parallel.StatefulWorkers`), and with a Dask scheduler the
parts are solved as tasks on the cluster's workers; the master stays in the
driver. The optimum must be the serial one.
"""

from __future__ import annotations

import numpy as np
import pytest

from recopt.decomp.benders import BendersOptions, SecondStage, solve_benders
from recopt.decomp.loop_benders import mlcolext_problem, slext_problem
from recopt.decomp.parallel import LocalWorkers, StatefulWorkers
from recopt.models.loops import loop_data, loop_set
from recopt.solve import solve
from recopt.solvers.status import Status
from tests.conftest import random_loop_instance

GAP = 1e-9


class _Counter:
    def __init__(self, start):
        self.value = start

    def add(self, k):
        self.value += k
        return self.value


def test_stateful_workers_keep_their_state_and_report_errors():
    with StatefulWorkers([(_Counter, (10,), {}), (_Counter, (20,), {})]) as w:
        assert w.call("add", [(1,), (2,)]) == [11, 22]
        assert w.call("add", [(1,), (2,)]) == [12, 24]
        with pytest.raises(TypeError):
            w.call("add", [("x",), (2,)])


def test_local_workers_keep_their_state_in_this_process():
    with LocalWorkers([(_Counter, (10,), {}), (_Counter, (20,), {})]) as w:
        assert len(w) == 2
        assert w.call("add", [(1,), (2,)]) == [11, 22]
        assert w.call("add", [(1,), (2,)]) == [12, 24]


@pytest.mark.parametrize("model", ["SLExt", "MLColExt"])
def test_parts_in_this_process_give_the_one_lp_optimum(model, monkeypatch):
    """The sub-problem as one LP and as independent parts kept in this process
    (``BendersOptions.parts``, and the automatic rule at a small row count) reach the
    same optimum; the parts are used (the one-LP object is never made)."""
    import recopt.decomp.benders as benders

    d = loop_data(random_loop_instance(5, n=6, T=24))

    def problem():
        return slext_problem(d) if model == "SLExt" else mlcolext_problem(d, loop_set(d))

    one = solve_benders(problem(), BendersOptions(gap=GAP, parts=1, progress=False))
    assert one.second_stage._lp is not None
    three = solve_benders(problem(), BendersOptions(gap=GAP, parts=3, progress=False))
    assert three.second_stage._lp is None and len(three.second_stage._parts) == 3
    monkeypatch.setattr(benders, "SUB_ROWS_PER_PART", 10)  # auto: many small parts
    auto = solve_benders(problem(), BendersOptions(gap=GAP, progress=False))
    assert len(auto.second_stage._parts) > 3
    for r in (one, three, auto):
        assert r.status == Status.OPTIMAL, r.message
        assert r.upper_bound == pytest.approx(one.upper_bound, rel=1e-9, abs=1e-9)
    np.testing.assert_allclose(three.best_point, one.best_point)


def test_workers_holding_several_parts_give_the_one_lp_optimum():
    """With ``workers=2`` and 5 parts, each worker keeps a run of consecutive parts."""
    d = loop_data(random_loop_instance(5, n=6, T=24))
    one = solve_benders(slext_problem(d), BendersOptions(gap=GAP, parts=1, progress=False))
    pooled = solve_benders(slext_problem(d), BendersOptions(gap=GAP, parts=5, workers=2,
                                                            progress=False))
    try:
        stage = pooled.second_stage
        assert len(stage._parts) == 5 and [len(g) for g in stage._groups] in ([2, 3], [3, 2])
        assert pooled.status == Status.OPTIMAL, pooled.message
        assert pooled.upper_bound == pytest.approx(one.upper_bound, rel=1e-9, abs=1e-9)
    finally:
        pooled.second_stage.close()


@pytest.mark.parametrize("n", [1, 2, 3, 7])
def test_parts_cover_the_rows_and_columns_once(n):
    inst = random_loop_instance(2, n=5, T=12)
    stage = SecondStage(slext_problem(loop_data(inst)))
    parts = stage.parts(n)
    rows = np.sort(np.concatenate([r for r, _ in parts]))
    cols = np.sort(np.concatenate([c for _, c in parts]))
    np.testing.assert_array_equal(rows, np.arange(len(stage.rows)))
    np.testing.assert_array_equal(cols, np.arange(len(stage.columns)))
    assert len(parts) <= n


@pytest.mark.parametrize("model, options", [("SLExt", {}),
                                            ("MLColExt", {"enumeration": "maximal"})])
def test_workers_give_the_serial_optimum(model, options):
    inst = random_loop_instance(3, n=6, T=24)
    serial = solve(inst, model, mip_gap=GAP, workers=1, **options)
    pooled = solve(inst, model, mip_gap=GAP, workers=2, **options)
    assert serial.attrs["status"] == pooled.attrs["status"] == "optimal"
    assert pooled.attrs["objective"] == pytest.approx(serial.attrs["objective"], rel=1e-7,
                                                      abs=1e-7)
    assert pooled.attrs["workers"] == 2


def test_a_local_dask_cluster_gives_the_serial_optimum():
    distributed = pytest.importorskip("distributed")
    inst = random_loop_instance(4, n=6, T=24)
    serial = solve(inst, "MLColExt", mip_gap=GAP, enumeration="maximal", workers=1)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster:
        r = solve(inst, "MLColExt", mip_gap=GAP, enumeration="maximal",
                  scheduler=cluster.scheduler_address)
    assert r.attrs["status"] == "optimal"
    assert r.attrs["objective"] == pytest.approx(serial.attrs["objective"], rel=1e-7,
                                                 abs=1e-7)


def test_a_scheduler_for_a_model_without_parts_is_bad_input():
    from recopt.errors import RecoptError

    inst = random_loop_instance(5, n=4, T=6)
    with pytest.raises(RecoptError, match="scheduler"):
        solve(inst, "MLCol", scheduler="tcp://127.0.0.1:1")
