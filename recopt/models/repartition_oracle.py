"""An exact, solver-free oracle for LP1: per step, sort and match.

LP1 (de Villena eqs (8)-(16)) separates by step. Projecting out the keys (any
``v`` with ``sum v <= G`` has keys ``k = v / G`` satisfying (9), (12), (14)), one
step is

    max  sum_i g_i v_i + sum_j h_j y_j   s.t.  sum_i v_i = sum_j y_j,
         0 <= v_i <= C+_i,  0 <= y_j <= P-_j

with the consumer's gain ``g_i = b_i - cb_i`` and the producer's gain
``h_j = cs_j - s_j`` (EUR/kWh). Its optimum matches consumers by decreasing ``g``
with producers by decreasing ``h`` while ``g + h > 0``: a greedy exchange argument
on one balance row. The tests and benchmarks check LP1's optimum against it.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from recopt.data.view import price_cube, stm
from recopt.settle import meter_flows


def _match_step(gc, capc, hp, capp):
    """Greedy matching of one step; returns (value, v, y) with v, y in input order."""
    v = np.zeros_like(capc)
    y = np.zeros_like(capp)
    oc = np.argsort(-gc, kind="stable")
    op = np.argsort(-hp, kind="stable")
    i = j = 0
    rc = capc[oc[0]] if len(oc) else 0.0
    rp = capp[op[0]] if len(op) else 0.0
    value = 0.0
    while i < len(oc) and j < len(op):
        ci, pj = oc[i], op[j]
        gain = gc[ci] + hp[pj]
        if gain <= 0:
            break
        q = min(rc, rp)
        value += q * gain
        v[ci] += q
        y[pj] += q
        rc -= q
        rp -= q
        if rc <= 0:
            i += 1
            rc = capc[oc[i]] if i < len(oc) else 0.0
        if rp <= 0:
            j += 1
            rp = capp[op[j]] if j < len(op) else 0.0
    return value, v, y


def lp1_greedy(instance: xr.Dataset) -> dict:
    """LP1's optimum without a solver.

    Returns
    -------
    dict
        ``objective`` (expected collective energy bill, EUR, as LP1's objective),
        ``community_intake`` and ``local_sales`` (S, T, U) arrays in kWh (one
        optimal solution; LP1's may differ where the optimum is not unique).
    """
    c = stm(instance, "consumption")
    p = stm(instance, "production")
    cp, pm = meter_flows(c, p)
    price = price_cube(instance)
    g = price["price_grid_buy"] - price["price_community_buy"]
    h = price["price_community_sell"] - price["price_grid_sell"]
    prob = instance["scenario_probability"].values
    v = np.zeros_like(cp)
    y = np.zeros_like(pm)
    S, T, _ = cp.shape
    objective = 0.0
    for s in range(S):
        base = float((price["price_grid_buy"][s] * cp[s] - price["price_grid_sell"][s] * pm[s])
                     .sum())
        gained = 0.0
        for t in range(T):
            ic = np.flatnonzero(cp[s, t] > 0)
            ip = np.flatnonzero(pm[s, t] > 0)
            if not len(ic) or not len(ip):
                continue
            val, vv, yy = _match_step(g[s, t, ic], cp[s, t, ic], h[s, t, ip], pm[s, t, ip])
            gained += val
            v[s, t, ic] = vv
            y[s, t, ip] = yy
        objective += prob[s] * (base - gained)
    return {"objective": objective, "community_intake": v, "local_sales": y}
