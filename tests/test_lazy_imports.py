"""Start-up deferrals: xarray's Dask tests until Dask is imported
(recopt.data.lazy_dask); Pyomo imported on first use, and its SciPy hook without
scipy.stats (recopt.lazy).

Each check runs in a fresh interpreter: the deferral is a process-wide state.
"""

from __future__ import annotations

import subprocess
import sys

import pytest


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.strip()


def test_xarray_makes_variables_without_importing_dask():
    got = _run("import sys, numpy as np, recopt.data, xarray as xr; "
               "d = xr.Dataset({'a': ('x', np.arange(3.0))}); d = (d + 1).mean(); "
               "print(float(d['a']), 'dask' in sys.modules, 'dask.array' in sys.modules, "
               "'scipy' in sys.modules)")
    assert got == "2.0 False False False"


def test_dask_arrays_are_recognised_once_dask_is_imported():
    pytest.importorskip("dask.array")
    got = _run("import numpy as np, recopt.data, xarray as xr; "
               "before = xr.DataArray(np.arange(4.0)); "
               "import dask.array as da; "
               "from xarray.namedarray.pycompat import array_type, is_chunked_array; "
               "c = xr.DataArray(da.arange(4.0, chunks=2)); "
               "print(array_type('dask') == (da.Array,), is_chunked_array(c.data), "
               "c.chunks, float((c + before).sum().compute()), "
               "xr.DataArray(np.zeros(2)).chunk(1).chunks)")
    assert got == "True True ((2, 2),) 12.0 ((1, 1),)"


def test_chunking_first_imports_dask_through_xarray():
    pytest.importorskip("dask.array")
    got = _run("import sys, numpy as np, recopt.data, xarray as xr; "
               "c = xr.DataArray(np.arange(4.0)).chunk(2); "
               "print('dask.array' in sys.modules, c.chunks, float(c.sum()))")
    assert got == "True ((2, 2),) 6.0"


@pytest.mark.parametrize("scipy_first", [False, True])
def test_pyomo_through_recopt_imports_no_scipy_stats_and_stats_still_loads(scipy_first):
    """Either order: SciPy imported before Pyomo's first use (the loop arrays do) or
    after it; Pyomo still resolves SciPy, and scipy.stats loads when used."""
    first = "import scipy.sparse; " if scipy_first else ""
    got = _run(f"import sys; {first}from recopt.solvers import highs; "
               "before = 'pyomo' in sys.modules; m = highs.pyo.ConcreteModel(); "
               "import scipy.sparse; import pyomo.common.dependencies as d; "
               "stats = 'scipy.stats' in sys.modules; ok = bool(d.scipy_available); "
               "from pyomo.common.dependencies import scipy; "
               "print(before, stats, ok, scipy.sparse.eye(2).sum(), "
               "scipy.stats.norm.cdf(0.0))")
    assert got == "False False True 2.0 0.5"


def test_the_pyomo_standard_form_compiler_works_after_the_deferral():
    got = _run("import sys; from recopt.solvers.highs import compile_standard_form, pyo; "
               "m = pyo.ConcreteModel(); m.x = pyo.Var([0, 1], bounds=(0, 1)); "
               "m.c = pyo.Constraint(expr=m.x[0] + 2 * m.x[1] >= 1); "
               "m.o = pyo.Objective(expr=m.x[0] + m.x[1]); "
               "sf = compile_standard_form(m); "
               "print(sf.A.toarray().tolist(), 'scipy.stats' in sys.modules)")
    assert got == "[[1.0, 2.0]] False"


def test_a_lazy_module_reads_and_writes_the_real_one():
    """Attribute reads and writes reach the real module once loaded; nothing is cached
    but the module, so a reader always sees the current value."""
    got = _run("import sys; from recopt.lazy import lazy_module, LazyModule; "
               "m = lazy_module('colorsys'); lazy = isinstance(m, LazyModule); "
               "before = 'colorsys' in sys.modules; m.ONE_THIRD = 0.5; "
               "import colorsys; print(lazy, before, m.loaded, colorsys.ONE_THIRD, "
               "m.rgb_to_hsv(1.0, 0.0, 0.0), lazy_module('colorsys') is colorsys)")
    assert got == "True False True 0.5 (0.0, 1.0, 1.0) True"


def test_pyomo_module_refuses_other_packages():
    from recopt.lazy import pyomo_module

    with pytest.raises(ValueError, match="numpy"):
        pyomo_module("numpy")


def test_the_loop_data_and_slext_arcs_need_no_networkx():
    """LoopData keeps the neighbourhood graph as a matrix; networkx loads only when the
    graph itself is asked for (enumeration, column generation, games)."""
    got = _run("import sys, numpy as np; from recopt.data import make_instance; "
               "from recopt.models.loops import loop_data; "
               "inst = make_instance(np.ones((1, 2, 3)), np.array([[[2.0, 0, 0]] * 2]), "
               "price_grid_buy=0.2, price_grid_sell=0.05, price_community_buy=0.1, "
               "price_community_sell=0.1, scenario_probability=[1.0], "
               "installed_power=[2.0, 0, 0], x_km=[0, 1, 5], y_km=[0, 0, 0], "
               "attrs={'max_distance_km': 2.0, 'max_loop_power_kw': 5.0}); "
               "d = loop_data(inst); print(d.arcs, d.edges, 'networkx' in sys.modules); "
               "g = d.graph; print(sorted(g.edges), 'networkx' in sys.modules)")
    assert got == "[(0, 1), (1, 0)] [(0, 1)] False\n[(0, 1)] True"
