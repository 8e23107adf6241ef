"""The Benders second stages of SLExt and MLColExt assembled as arrays.

``recopt.models.loops.arrays`` writes, with NumPy, the standard form that Pyomo's
compile of ``fixed_single_loop`` / ``fixed_columns`` gives
(``recopt.decomp.benders.SecondStage``); model card ``models/SLExt-MLColExt.md``
("The array-built second stage"). Checked here against that compile: the same rows in
the same order, the same columns (up to a permutation, matched by component and
index), the same ``A``, ``H``, ``h``, senses, costs, offset and blocks. Then SLExt and
MLColExt reach the same optimum on the arrays as on the compiled Pyomo model, and the
array route never builds the Pyomo second stage.
"""

from __future__ import annotations

import numpy as np
import pytest

from recopt.decomp.benders import BendersOptions, SecondStage, solve_benders
from recopt.decomp.loop_benders import mlcolext_problem, slext_problem
from recopt.errors import ModelError
from recopt.models.loops import loop_data, loop_set
from recopt.models.loops.solution import operation_arrays
from recopt.solvers.status import Status

GAP = 1e-7


def _key(component) -> tuple:
    idx = component.index()
    return (component.parent_component().local_name,
            tuple(idx) if isinstance(idx, tuple) else (idx,))


def _compiled_and_arrays(problem):
    """The compiled Pyomo second stage, the array-built one, and the permutation that
    puts the arrays' columns in the compile's order."""
    assert problem.matrix is not None
    compiled = SecondStage(problem)  # from the Pyomo model (built on first use)
    arrays = SecondStage(problem, problem.matrix())
    position = {k: p for p, k in enumerate(arrays.matrix.column_keys())}
    perm = np.array([position[_key(v)] for v in compiled.columns], dtype=np.int64)
    return compiled, arrays, perm


def _assert_same_standard_form(compiled, arrays, perm):
    assert arrays.model is None and arrays.rows is None
    assert [_key(c) for c in compiled.rows] == arrays.matrix.row_keys()
    assert sorted(perm.tolist()) == list(range(arrays.n_columns))  # every column once
    assert compiled.A.shape == arrays.A.shape and compiled.H.shape == arrays.H.shape
    assert abs(compiled.A - arrays.A[:, perm]).max() == 0
    assert compiled.H.nnz == arrays.H.nnz
    assert compiled.H.nnz == 0 or abs(compiled.H - arrays.H).max() == 0
    np.testing.assert_array_equal(compiled.h, arrays.h)
    np.testing.assert_array_equal(compiled.sense, arrays.sense)
    np.testing.assert_array_equal(compiled.cost, arrays.cost[perm])
    assert compiled.offset == arrays.offset
    assert compiled.blocks == arrays.blocks
    np.testing.assert_array_equal(compiled.row_block, arrays.row_block)
    np.testing.assert_array_equal(compiled.col_block, arrays.col_block[perm])


@pytest.mark.parametrize("seed", [0, 1, 2, 5])
@pytest.mark.parametrize("reduce", [True, False])
def test_slext_arrays_equal_the_compiled_second_stage(loop_instance, seed, reduce):
    inst = loop_instance(400 + seed, prices="per_member" if seed % 2 else "per_step")
    d = loop_data(inst, self_consumption=seed != 5)
    problem = slext_problem(d, reduce)
    assert not problem.sub_is_built  # nothing Pyomo until asked
    compiled, arrays, perm = _compiled_and_arrays(problem)
    assert compiled.n_rows > 0
    _assert_same_standard_form(compiled, arrays, perm)


@pytest.mark.parametrize("seed", [0, 3, 4])
@pytest.mark.parametrize("enumeration", ["all", "maximal"])
def test_mlcolext_arrays_equal_the_compiled_second_stage(loop_instance, seed, enumeration):
    inst = loop_instance(500 + seed, prices="per_step" if seed % 2 else "per_member")
    d = loop_data(inst, self_consumption=seed != 4)
    problem = mlcolext_problem(d, loop_set(d, enumeration), reduce=seed != 3)
    compiled, arrays, perm = _compiled_and_arrays(problem)
    assert compiled.n_rows > 0
    _assert_same_standard_form(compiled, arrays, perm)


def test_mlcolext_per_loop_rows_have_no_arrays(loop_instance):
    d = loop_data(loop_instance(501))
    assert mlcolext_problem(d, loop_set(d), rows="per_loop").matrix is None


def test_operation_read_from_the_arrays_equals_the_pyomo_model(loop_instance):
    """The flows and grid exchanges read off the array columns equal those read from
    the Pyomo model's Vars holding the same values."""
    d = loop_data(loop_instance(402))
    problem = slext_problem(d)
    compiled, arrays, perm = _compiled_and_arrays(problem)
    y = np.random.default_rng(0).uniform(0, 1, arrays.n_columns)
    for v, val in zip(compiled.columns, y[perm].tolist(), strict=True):
        v.set_value(val)
    expected = operation_arrays(problem.sub, d)
    for a, b in zip(arrays.matrix.operation(y, d), expected, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("model", ["SLExt", "MLColExt"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_array_route_reaches_the_compiled_routes_optimum(loop_instance, model, seed):
    """HiGHS on the arrays, HiGHS on the compiled Pyomo model, and the Pyomo model
    re-solved through its ``dual`` Suffix give the same optimum; the array route never
    builds the Pyomo second stage."""
    d = loop_data(loop_instance(600 + seed))

    def problem():
        return slext_problem(d) if model == "SLExt" else mlcolext_problem(d, loop_set(d))

    on_arrays = problem()
    a = solve_benders(on_arrays, BendersOptions(gap=GAP, progress=False))
    assert not on_arrays.sub_is_built and a.second_stage.model is None
    compiled = problem()
    compiled.matrix = None  # the compile, kept in HiGHS
    b = solve_benders(compiled, BendersOptions(gap=GAP, progress=False))
    assert b.second_stage.model is not None
    c = solve_benders(problem(), BendersOptions(gap=GAP, progress=False, persistent=False))
    assert c.second_stage.model is not None
    for r in (a, b, c):
        assert r.status == Status.OPTIMAL, r.message
    for r in (b, c):
        assert r.upper_bound == pytest.approx(a.upper_bound, rel=1e-6, abs=1e-6)
    np.testing.assert_allclose(a.best_point, b.best_point)
    assert a.iterations == b.iterations  # same LP, same rows: same cuts


def test_an_array_built_stage_refuses_other_solvers(loop_instance):
    d = loop_data(loop_instance(403))
    problem = slext_problem(d)
    stage = SecondStage(problem, problem.matrix())
    x = np.zeros(stage.n_first)
    with pytest.raises(ModelError, match="arrays"):
        stage.solve(x, BendersOptions(persistent=False), None)
    phi, lam, y, status, _ = stage.solve(x, BendersOptions(), None)
    assert status == Status.OPTIMAL and len(y) == stage.n_columns


@pytest.mark.parametrize("run", [1, 3])
def test_mlcolext_arrays_in_short_runs_of_loops_are_the_same(loop_instance, monkeypatch, run):
    """The (steps x loops) products taken ``run`` loops at a time (``LOOP_RUN``, 4096
    by default) give the same arrays as the compile."""
    from recopt.models.loops import arrays as arrays_module

    d = loop_data(loop_instance(502))
    loops = loop_set(d, "all")
    assert len(loops) > 3 * run
    monkeypatch.setattr(arrays_module, "LOOP_RUN", run)
    compiled, arrays, perm = _compiled_and_arrays(mlcolext_problem(d, loops))
    _assert_same_standard_form(compiled, arrays, perm)
