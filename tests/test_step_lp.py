"""The fast path of time-separable models equals the plain Pyomo path (issue 19).

LP1 with HiGHS is solved by compiling one block of its one-step LP once and
re-parameterising it per block (:class:`recopt.models.step_lp.StepLP`,
:class:`recopt.solvers.highs.HighsStepLP`, :func:`recopt.decomp.blocks.solve_step_blocks`).
The Pyomo model stays the source of truth: here the StepLP's numbers are checked
against the Pyomo model's own compiled matrix, and both paths are solved and
compared (objective, every variable where the optimum is unique, bills). The
start-up test checks that a plain LP1 solve loads none of the algorithm modules.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pyomo.repn.plugins.standard_form import LinearStandardFormCompiler

from recopt.models import build, get
from recopt.solve import solve
from tests.test_repartition_lps import random_instance

VILLENA = str(Path(__file__).resolve().parents[1] / "instances" / "villena_test_case_1.nc")


@pytest.mark.parametrize("seed", range(4))
def test_step_lp_is_the_pyomo_models_compiled_lp(seed):
    """Every cost, bound and row of the Pyomo LP1 is the StepLP's, cell by cell; the
    columns the builder leaves out are 0 in the StepLP too, and its constant is the
    objective's."""
    inst = random_instance(seed, T=30, U=6, S=2, beneficial=seed % 2 == 0)
    step = get("LP1").step_lp(inst)
    m = build("LP1", inst)
    sf = LinearStandardFormCompiler().write(m, mixed_form=True, set_sense=None)
    cost = sf.c.toarray().ravel()
    U = inst.sizes["member"]
    seen = np.zeros(step.col_upper.shape, dtype=bool)
    for j, v in enumerate(sf.columns):
        s, t, i = v.index()
        col = i if v.parent_component().local_name == "verified" else U + i
        seen[s, t, col] = True
        assert cost[j] == pytest.approx(step.cost[s, t, col], rel=1e-12, abs=1e-15)
        assert v.lb == step.col_lower[s, t, col] and v.ub == pytest.approx(
            step.col_upper[s, t, col], rel=1e-12)
    # a column the builder leaves out is fixed at 0 in an active step; in an inactive
    # step one side of (10) has only zero bounds, which forces the other side to 0
    active = seen.any(axis=2)
    assert (step.col_upper[active[:, :, None] & ~seen] == 0).all()
    idle = ~active
    no_intake = (step.col_upper[:, :, :U] == 0).all(axis=2)
    no_sales = (step.col_upper[:, :, U:] == 0).all(axis=2)
    assert (no_intake | no_sales)[idle].all()
    assert (step.col_lower == 0).all()
    assert float(sf.c_offset[0]) == pytest.approx(step.offset, rel=1e-12)
    A = sf.A.tocsr()
    for r, row in enumerate(sf.rows):  # (10): sum v - sum y = 0 on each active step
        assert row.constraint.parent_component().local_name == "sales_balance"
        cols = A.indices[A.indptr[r]:A.indptr[r + 1]]
        signs = {(sf.columns[c].parent_component().local_name, a)
                 for c, a in zip(cols, A.data[A.indptr[r]:A.indptr[r + 1]], strict=True)}
        assert signs <= {("verified", 1.0), ("local_sales", -1.0)}
        assert sf.rhs[r] == 0 and row.bound_type == 0
    np.testing.assert_array_equal(step.a_value, np.r_[np.ones(U), -np.ones(U)])


CASES = [(0, 1, None, 1), (1, 2, 7, 1), (2, 2, 5, 2), (3, 1, 1, 1), (4, 3, 11, 2)]
MODELS = [("LP1", {}), ("LP3", {}), ("LP3", {"initial_keys": "proportional", "tolerance": 0.2}),
          ("KoR8", {})]


@pytest.mark.parametrize("model, options", MODELS)
@pytest.mark.parametrize("seed, S, block_steps, workers", CASES)
def test_fast_path_equals_the_plain_path(model, options, seed, S, block_steps, workers):
    inst = random_instance(seed, T=37, U=7, S=S, beneficial=seed % 2 == 0)
    fast = solve(inst, model, workers=workers, block_steps=block_steps, **options)
    plain = solve(inst, model, workers=workers, block_steps=block_steps, fast=False,
                  **options)
    assert fast.attrs["fast_path"] == "step_lp" and "fast_path" not in plain.attrs
    assert fast.attrs["status"] == plain.attrs["status"] == "optimal"
    assert fast.attrs["objective"] == pytest.approx(plain.attrs["objective"], rel=1e-9,
                                                    abs=1e-9)
    # per-member prices: the optimum is unique, so every variable agrees
    assert set(fast.data_vars) == set(plain.data_vars)
    for name in plain.data_vars:  # flows, keys, bills, SSR, savings
        np.testing.assert_allclose(fast[name].values, plain[name].values, atol=1e-7,
                                   err_msg=name)
    if block_steps is not None:  # else LP3's fast path takes its own 10-step blocks
        assert fast.attrs["blocks"] == plain.attrs["blocks"]


def test_fast_path_on_the_villena_case():
    fast = solve(VILLENA, "LP1")
    plain = solve(VILLENA, "LP1", fast=False)
    assert fast.attrs["fast_path"] == "step_lp"
    assert fast.attrs["objective"] == pytest.approx(plain.attrs["objective"], rel=1e-9)
    np.testing.assert_allclose(fast["bill"].values, plain["bill"].values, atol=1e-9)


def test_options_the_step_lp_does_not_cover_take_the_plain_path():
    inst = random_instance(5, T=20, U=5)
    for opts in ({"formulation": "paper"}, {"producer_sales": "pro_rata"}):
        r = solve(inst, "LP1", **opts)
        assert "fast_path" not in r.attrs and r.attrs["status"] == "optimal"
    base = solve(inst, "LP1")
    paper = solve(inst, "LP1", formulation="paper")
    assert paper.attrs["objective"] == pytest.approx(base.attrs["objective"], rel=1e-9)
    # an extended Pyomo model is solved as is, on the plain path
    m = build("LP1", inst)
    own = solve(inst, "LP1", pyomo_model=m)
    assert "fast_path" not in own.attrs
    assert own.attrs["objective"] == pytest.approx(base.attrs["objective"], rel=1e-9)


def test_time_limit_reached_before_the_blocks_is_a_status():
    inst = random_instance(6, T=30, U=5)
    r = solve(inst, "LP1", time_limit=1e-6, block_steps=5, workers=1)
    assert r.attrs["status"] == "time_limit" and not int(r.attrs["has_solution"])


def test_an_lp1_solve_loads_no_algorithm_module():
    """Start-up: the registries import a model's or an algorithm's module on first use."""
    code = ("import sys; from recopt.cli.solve import main; "
            f"assert main([{VILLENA!r}, '--model', 'LP1']) == 0; "
            "print(','.join(sorted(m for m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip().splitlines()[-1].split(",")
    loaded = set(out)
    assert "recopt.models.repartition" in loaded
    never = {"recopt.decomp.benders", "recopt.decomp.loop_benders", "recopt.decomp.games",
             "recopt.decomp.column_generation", "recopt.decomp.ems", "recopt.models.loops",
             "recopt.models.ems", "recopt.models.kor", "recopt.solve.sharing",
             "recopt.ems", "tqdm", "matplotlib", "pvlib", "networkx", "distributed",
             "recopt.metrics.figures", "recopt.metrics.storage_plot",
             # xarray's Dask tests deferred (recopt.data.lazy_dask): no Dask, and so no
             # SciPy, nor the scipy.stats that Pyomo's import hook adds to SciPy
             "dask", "dask.array", "scipy", "scipy.sparse", "scipy.stats",
             # LP1 solves by the step LP, straight into HiGHS: Pyomo is never imported
             # (recopt.lazy)
             "pyomo", "pyomo.environ", "pyomo.core",
             # the CSV importers load on first use of recopt.data.read_csv
             "recopt.data.csv_import", "recopt.data.meter_import"}
    assert not never & loaded, sorted(never & loaded)


def test_the_lazy_tables_name_every_model_and_algorithm():
    from recopt.decomp import registry as algorithms
    from recopt.models import MODEL_MODULES, all_models

    specs = {s.name: s for s in all_models()}
    assert set(specs) == set(MODEL_MODULES)
    for spec in specs.values():
        if spec.algorithm:
            assert spec.algorithm in algorithms.ALGORITHM_MODULES
            assert algorithms.get_algorithm(spec.algorithm).__module__ == \
                algorithms.ALGORITHM_MODULES[spec.algorithm]
        if spec.diagnosis:
            assert algorithms.get_diagnosis(spec.diagnosis).__module__ == \
                algorithms.DIAGNOSIS_MODULES[spec.diagnosis]
