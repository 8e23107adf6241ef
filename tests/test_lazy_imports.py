"""Start-up deferrals: xarray's Dask tests until Dask is imported
(recopt.data.lazy_dask), and Pyomo's SciPy hook without scipy.stats
(recopt.solvers.pyomo_scipy).

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


def test_scipy_after_pyomo_imports_no_scipy_stats_and_stats_still_loads():
    got = _run("import sys, recopt.solvers, pyomo.environ, scipy.sparse; "
               "import pyomo.common.dependencies as d; "
               "before = 'scipy.stats' in sys.modules; "
               "ok = bool(d.scipy_available); "
               "from pyomo.common.dependencies import scipy; "
               "print(before, ok, scipy.sparse.eye(2).sum(), scipy.stats.norm.cdf(0.0))")
    assert got == "False True 2.0 0.5"


def test_the_pyomo_standard_form_compiler_works_after_the_deferral():
    got = _run("import sys, recopt.solvers, pyomo.environ as pyo; "
               "from pyomo.repn.plugins.standard_form import LinearStandardFormCompiler; "
               "m = pyo.ConcreteModel(); m.x = pyo.Var([0, 1], bounds=(0, 1)); "
               "m.c = pyo.Constraint(expr=m.x[0] + 2 * m.x[1] >= 1); "
               "m.o = pyo.Objective(expr=m.x[0] + m.x[1]); "
               "sf = LinearStandardFormCompiler().write(m, mixed_form=True); "
               "print(sf.A.toarray().tolist(), 'scipy.stats' in sys.modules)")
    assert got == "[[1.0, 2.0]] False"


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
