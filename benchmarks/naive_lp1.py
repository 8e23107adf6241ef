"""The naive Pyomo formulation of de Villena's LP1, as a researcher would first write it.

This is the baseline of ``benchmarks/bench_lp.py``: M. M. de Villena et al., IEEE Access
2022, DOI 10.1109/ACCESS.2022.3191804 (``docs/references.md``), Linear program 1, eqs (7)-(16),
transcribed literally:

* dense index sets ``T`` (every step) x ``J`` (every member), with no reduction;
* the decision vector ``z = (k, y, a, v)``: one variable of each for every ``(t, i)``,
  with the domains (15) ``k in [0, 1]`` and (16) ``y, a, v >= 0``;
* constraints (9)-(14) as rule-based Pyomo constraints, one per row of the paper
  ((11) and (13) are rows, not variable bounds; (9) keeps ``a`` as a variable);
* the bill (7) as an indexed Expression ``B[t, i]`` and the objective (8) its sum;
* solved through Pyomo's own HiGHS interface ``SolverFactory("appsi_highs")``.

The data are Pyomo Params built from plain dicts. The one concession to speed is the
community production ``G_t = sum_j P^n_{t,j}`` of (9), a Param over ``T`` (computed
once per step from the ``Pn`` Param) instead of a sum written inside every row of (9).

Units: energies in kWh per step, prices in EUR/kWh, the objective in EUR. The model
has one scenario (``instance.isel(scenario=0)``); the instance's prices are
broadcast to (time, member).

Use::

    model = build_naive_lp1(instance)   # timed by the caller
    objective = solve_naive(model)      # timed by the caller
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo
import xarray as xr

from recopt.data import broadcast_price


def build_naive_lp1(instance: xr.Dataset) -> pyo.ConcreteModel:
    """Build de Villena's LP1 (eqs (7)-(16)) densely over every (step, member).

    Parameters
    ----------
    instance : xarray.Dataset
        A recopt instance; only its first scenario is used.

    Returns
    -------
    pyomo.environ.ConcreteModel
        ``T * J`` variables of each of ``k``, ``y``, ``a``, ``v`` and the rows (9),
        (11), (12), (13) per ``(t, i)`` and (10), (14) per ``t``; objective ``obj``
        (EUR).
    """
    inst = instance.isel(scenario=0)
    C = inst["consumption"].transpose("time", "member").values
    P = inst["production"].transpose("time", "member").values
    Cn = np.maximum(0.0, C - P)  # (1) net consumption, kWh
    Pn = np.maximum(0.0, P - C)  # (2) net injection, kWh
    n_t, n_j = C.shape

    def price(name):
        return broadcast_price(instance, name).isel(scenario=0).transpose(
            "time", "member").values

    xb, xs = price("price_grid_buy"), price("price_grid_sell")
    xlm, xlp = price("price_community_buy"), price("price_community_sell")

    def table(a):
        return {(t, i): float(a[t, i]) for t in range(n_t) for i in range(n_j)}

    m = pyo.ConcreteModel(name="naive LP1")
    m.T = pyo.Set(initialize=range(n_t), ordered=True, doc="metering periods")
    m.J = pyo.Set(initialize=range(n_j), ordered=True, doc="REC members")

    m.Cn = pyo.Param(m.T, m.J, initialize=table(Cn), doc="C^n net consumption (1), kWh")
    m.Pn = pyo.Param(m.T, m.J, initialize=table(Pn), doc="P^n net injection (2), kWh")
    m.xi_b = pyo.Param(m.T, m.J, initialize=table(xb), doc="grid buy price, EUR/kWh")
    m.xi_s = pyo.Param(m.T, m.J, initialize=table(xs), doc="grid sell price, EUR/kWh")
    m.xi_lm = pyo.Param(m.T, m.J, initialize=table(xlm), doc="community buy price, EUR/kWh")
    m.xi_lp = pyo.Param(m.T, m.J, initialize=table(xlp), doc="community sell price, EUR/kWh")
    m.G = pyo.Param(m.T, initialize=lambda m, t: sum(m.Pn[t, j] for j in m.J),
                    doc="sum_j P^n_{t,j}, kWh (the factor of (9))")

    # z = (k, y, a, v): (15), (16)
    m.k = pyo.Var(m.T, m.J, bounds=(0.0, 1.0), doc="repartition key (15)")
    m.y = pyo.Var(m.T, m.J, within=pyo.NonNegativeReals, doc="local sales, kWh (16)")
    m.a = pyo.Var(m.T, m.J, within=pyo.NonNegativeReals, doc="allocated production, kWh (16)")
    m.v = pyo.Var(m.T, m.J, within=pyo.NonNegativeReals, doc="verified allocation, kWh (16)")

    # (7) the bill of member i at t, EUR
    def bill(m, t, i):
        return (m.xi_b[t, i] * (m.Cn[t, i] - m.v[t, i]) + m.xi_lm[t, i] * m.v[t, i]
                - m.xi_lp[t, i] * m.y[t, i] - m.xi_s[t, i] * (m.Pn[t, i] - m.y[t, i]))

    m.B = pyo.Expression(m.T, m.J, rule=bill)
    # (8)
    m.obj = pyo.Objective(expr=sum(m.B[t, i] for t in m.T for i in m.J), sense=pyo.minimize)

    # (9) a = k * sum_j P^n
    m.c9 = pyo.Constraint(m.T, m.J, rule=lambda m, t, i: m.a[t, i] == m.k[t, i] * m.G[t])
    # (10) sum_i v = sum_i y
    m.c10 = pyo.Constraint(
        m.T, rule=lambda m, t: sum(m.v[t, i] for i in m.J) == sum(m.y[t, i] for i in m.J))
    # (11) y <= P^n
    m.c11 = pyo.Constraint(m.T, m.J, rule=lambda m, t, i: m.y[t, i] <= m.Pn[t, i])
    # (12) v <= a
    m.c12 = pyo.Constraint(m.T, m.J, rule=lambda m, t, i: m.v[t, i] <= m.a[t, i])
    # (13) v <= C^n
    m.c13 = pyo.Constraint(m.T, m.J, rule=lambda m, t, i: m.v[t, i] <= m.Cn[t, i])
    # (14) sum_i k <= 1
    m.c14 = pyo.Constraint(m.T, rule=lambda m, t: sum(m.k[t, i] for i in m.J) <= 1)
    return m


def solve_naive(model: pyo.ConcreteModel, timings: dict | None = None) -> float:
    """Solve the naive model with ``SolverFactory("appsi_highs")``; return (8) in EUR.

    Parameters
    ----------
    model : pyomo.environ.ConcreteModel
        From :func:`build_naive_lp1`.
    timings : dict, optional
        Filled with the seconds of the solve's stages, from the appsi timer:
        ``set_instance`` (Pyomo walks the model and passes it to HiGHS),
        ``optimize`` (HiGHS itself) and ``load_solution`` (values back into Pyomo).

    Raises
    ------
    RuntimeError
        If HiGHS does not report an optimal solution.

    Notes
    -----
    ``SolverFactory("appsi_highs").solve(model)`` is a thin wrapper that translates
    the appsi results into legacy ones around the appsi ``Highs.solve``; this calls
    the latter directly (same work) so that its stage timer can be read.
    """
    from pyomo.common.timing import HierarchicalTimer
    from pyomo.contrib.appsi.solvers.highs import Highs

    opt = pyo.SolverFactory("appsi_highs")
    timer = HierarchicalTimer()
    res = Highs.solve(opt, model, timer=timer)
    if timings is not None:
        for stage in ("set_instance", "optimize", "load solution"):
            try:
                timings[stage.replace(" ", "_")] = timer.get_total_time(stage)
            except (KeyError, RuntimeError):
                pass
    tc = res.termination_condition
    if tc.name != "optimal":
        raise RuntimeError(f"appsi_highs ended with {tc}")
    return float(pyo.value(model.obj))
