"""Reading a loop-design solution onto the instance's dims, and re-checking it.

Every loop model's solution has the same shape (model card, "Result"):

=====================  ==============================  ==================================
``membership``         (member, loop), 0/1             actor i is in loop l (x / z)
``loop_members``       (loop,), text                   the loop's members, comma-separated
``loop_surplus``       (scenario, time, loop), 0/1     u: the loop is a net producer
``flow``               (scenario, time, member,        f: energy sent by member to
                       receiver), kWh                  receiver inside a loop
``grid_buy``           (scenario, time, member), kWh   g⁺
``grid_sell``          (scenario, time, member), kWh   g⁻
=====================  ==============================  ==================================

:func:`check_solution` re-checks such a solution against the constraints of the
compact models (1b)-(1l) / (7c)-(7k), whichever model produced it.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from recopt.data.schema import DIMS
from recopt.data.view import stm
from recopt.models.loops.build import surplus_of_loops
from recopt.models.loops.data import LoopData


def _val(v) -> float:
    x = v.value
    return 0.0 if x is None else float(x)


def solution_dataset(instance: xr.Dataset, d: LoopData, loops: list[tuple[int, ...]],
                     surplus: np.ndarray, flow: np.ndarray, grid_buy: np.ndarray,
                     grid_sell: np.ndarray) -> xr.Dataset:
    """The common solution Dataset (see the module docstring).

    ``surplus`` has shape (S, T, K) for the K ``loops``.
    """
    members = instance["member"].values
    K = len(loops)
    labels = [f"loop{k + 1}" for k in range(K)]
    membership = np.zeros((d.n, K), np.int8)
    for k, S in enumerate(loops):
        membership[list(S), k] = 1
    coords = {dim: instance[dim].values for dim in DIMS}
    coords["loop"] = np.array(labels, dtype=object) if K else np.array([], dtype=object)
    coords["receiver"] = members
    kwh = {"units": "kWh"}
    return xr.Dataset(
        {
            "membership": (("member", "loop"), membership,
                           {"units": "1", "long_name": "actor is a member of the loop (x, z)"}),
            "loop_members": (("loop",),
                             np.array([",".join(d.members[i] for i in S) for S in loops],
                                      dtype=object),
                             {"long_name": "members of each loop"}),
            "loop_surplus": (("scenario", "time", "loop"), surplus.astype(np.int8),
                             {"units": "1", "long_name": "loop is a net producer (u)"}),
            "flow": (("scenario", "time", "member", "receiver"), flow,
                     {**kwh, "long_name": "energy sent inside a loop (f)"}),
            "grid_buy": (DIMS, grid_buy, {**kwh, "long_name": "energy bought from the grid (g+)"}),
            "grid_sell": (DIMS, grid_sell, {**kwh, "long_name": "energy sold to the grid (g-)"}),
        },
        coords=coords,
    )


def operation_arrays(m, d: LoopData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``flow`` (S, T, n, n), ``grid_buy``, ``grid_sell`` (S, T, n) from a solved model."""
    S, T, n = d.shape
    f = np.zeros((S, T, n, n))
    gb = np.zeros((S, T, n))
    gs = np.zeros((S, T, n))
    for (s, t, i, j), v in m.flow.items():
        f[s, t, i, j] = _val(v)
    for (s, t, i), v in m.grid_buy.items():
        gb[s, t, i] = _val(v)
    for (s, t, i), v in m.grid_sell.items():
        gs[s, t, i] = _val(v)
    # clip solver noise to the bounds
    return np.maximum(f, 0.0), np.clip(gb, 0.0, d.C), np.clip(gs, 0.0, d.P)


def loops_of_compact(m, d: LoopData) -> tuple[list[tuple[int, ...]], np.ndarray]:
    """Loops (non-empty) and their surplus status (S, T, K) from SLCpct or MLCpct."""
    S, T, n = d.shape
    if m.name == "SLCpct":
        members = tuple(i for i in range(n) if _val(m.member[i]) > 0.5)
        if not members:
            return [], np.zeros((S, T, 0))
        u = np.zeros((S, T, 1))
        for (s, t), v in m.surplus.items():
            u[s, t, 0] = _val(v) > 0.5
        return [members], u
    loops, us = [], []
    for l in m.LOOPS:
        members = tuple(i for i in range(n) if _val(m.member[i, l]) > 0.5)
        if not members:
            continue
        u = np.zeros((S, T))
        for s, t in d.steps:
            u[s, t] = _val(m.surplus[l, s, t]) > 0.5
        loops.append(members)
        us.append(u)
    return loops, (np.stack(us, axis=-1) if us else np.zeros((S, T, 0)))


def loops_of_columns(m, d: LoopData) -> tuple[list[tuple[int, ...]], np.ndarray]:
    """Chosen loops and their (data-given) surplus status from MLCol."""
    z = np.array([_val(m.choose[k]) for k in range(len(m.recopt_loops))])
    return loops_of_choice(z, m.recopt_loops, d)


def loops_of_choice(z, loops, d: LoopData) -> tuple[list[tuple[int, ...]], np.ndarray]:
    """Chosen loops (``z[k] > 0.5``) of ``loops`` and their (data-given) surplus status
    (S, T, K)."""
    chosen = [S for k, S in enumerate(loops) if float(z[k]) > 0.5]
    S_, T, _ = d.shape
    if not chosen:
        return [], np.zeros((S_, T, 0))
    return chosen, np.moveaxis(surplus_of_loops(d, chosen), 0, -1).astype(float)


# --------------------------------------------------------------------------------------
# the checker
# --------------------------------------------------------------------------------------
def check_solution(d: LoopData, solution: xr.Dataset, tol: float = 1e-6) -> list[str]:
    """Violations of the compact models' constraints by ``solution`` (empty: feasible).

    Checks, with the data ``d`` (same options as the solve): one loop per actor
    (7k); every loop a clique of the neighbourhood graph (1k)/(7i) within the
    power cap (1l)/(7h); flows non-negative, within ``M``, only between two
    members of the same loop (1b)/(1c)/(7l); Kirchhoff (1d); no transit (1j);
    grid exchanges within ``[0, Ĉ]``/``[0, P̂]``; the collective rules (1e)/(1f)
    per loop with its ``u``; and ``u`` agreeing with the loop's net position
    (1g)/(1h). ``tol`` is in kWh (absolute).
    """
    errs: list[str] = []
    C, P = d.C, d.P
    S, T, n = d.shape
    x = solution["membership"].transpose("member", "loop").values.astype(float)
    u = solution["loop_surplus"].transpose("scenario", "time", "loop").values.astype(float)
    f = solution["flow"].transpose("scenario", "time", "member", "receiver").values
    gb = stm(solution, "grid_buy")
    gs = stm(solution, "grid_sell")
    K = x.shape[1]
    names = d.members
    if ((x != 0) & (x != 1)).any() or ((u != 0) & (u != 1)).any():
        errs.append("membership / loop_surplus not binary")
    per_actor = x.sum(axis=1)
    for i in np.nonzero(per_actor > 1)[0]:
        errs.append(f"(7k) actor {names[i]} is in {int(per_actor[i])} loops")
    loop_of = np.full(n, -1)
    for k in range(K):
        mem = np.nonzero(x[:, k] > 0.5)[0]
        loop_of[mem] = k
        for a in range(len(mem)):
            for b in range(a + 1, len(mem)):
                i, j = mem[a], mem[b]
                if not d.adjacency[int(i), int(j)]:
                    errs.append(f"(1k) loop {k + 1}: {names[i]} and {names[j]} are not "
                                f"neighbours (d = {d.distance[i, j]:.3f} km)")
        pw = d.power[mem].sum()
        if pw > d.wmax + 1e-6:
            errs.append(f"(1l) loop {k + 1}: installed power {pw:.3f} > Wmax {d.wmax}")
    if (f < -tol).any() or (gb < -tol).any() or (gs < -tol).any():
        errs.append("(1o) negative flow or grid exchange")
    M = np.minimum(P[:, :, :, None], C[:, :, None, :])
    if (f > M + tol).any():
        errs.append("flow above M = min(P̂_i, Ĉ_j)")
    same = (loop_of[:, None] == loop_of[None, :]) & (loop_of[:, None] >= 0)
    np.fill_diagonal(same, False)
    bad = (f > tol) & ~same[None, None]
    if bad.any():
        bs, bt, bi, bj = (int(a[0]) for a in np.nonzero(bad))
        errs.append(f"(1b)/(1c) flow {names[bi]}->{names[bj]} at ({bs},{bt}) outside a common "
                    "loop")
    if (gb > C + tol).any() or (gs > P + tol).any():
        errs.append("grid exchange above Ĉ / P̂")
    inflow = f.sum(axis=2)
    outflow = f.sum(axis=3)
    kir = P + inflow + gb - C - outflow - gs
    if (np.abs(kir) > tol).any():
        errs.append(f"(1d) Kirchhoff violated, max |residual| {np.abs(kir).max():.3g} kWh")
    if (outflow + gs > P + tol).any():
        errs.append("(1j) transit through an actor")
    net = P - C
    for k in range(K):
        in_loop = x[:, k] > 0.5
        pos = net[:, :, in_loop].sum(axis=2)
        uk = u[:, :, k]
        if ((pos > tol) & (uk < 0.5)).any():
            errs.append(f"(1g) loop {k + 1} has a surplus but u = 0")
        if ((pos < -tol) & (uk > 0.5)).any():
            errs.append(f"(1h) loop {k + 1} has a deficit but u = 1")
        if (gs[:, :, in_loop] > tol + P[:, :, in_loop] * uk[:, :, None]).any():
            errs.append(f"(1e) loop {k + 1}: a member sells to the grid while the loop is short")
        if (gb[:, :, in_loop] > tol + C[:, :, in_loop] * (1 - uk[:, :, None])).any():
            errs.append(f"(1f) loop {k + 1}: a member buys from the grid while the loop has "
                        "a surplus")
    return errs


def objective_of(d: LoopData, solution: xr.Dataset) -> float:
    """(1a) recomputed from a solution's grid exchanges, EUR."""
    gb = stm(solution, "grid_buy")
    gs = stm(solution, "grid_sell")
    return float((d.probability[:, None, None] * (d.buy * gb - d.sell * gs)).sum())


def first_stage_values(m) -> dict:
    """The first-stage values of a solved compact model (for warm starts / Benders)."""
    if m.name == "SLCpct":
        return {"member": {i: _val(v) for i, v in m.member.items()},
                "surplus": {k: _val(v) for k, v in m.surplus.items()}}
    if m.name == "MLCol":
        return {"choose": {k: _val(v) for k, v in m.choose.items()}}
    return {name: {k: _val(v) for k, v in getattr(m, name).items()}
            for name in ("member", "surplus")}


__all__ = ["check_solution", "objective_of", "solution_dataset", "operation_arrays",
           "loops_of_compact", "loops_of_columns", "loops_of_choice", "first_stage_values"]
