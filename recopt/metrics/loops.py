"""Loop-design KPIs (Chasseray et al., arXiv 2404.04428, §4.3) and the loop map.

Every KPI is an expectation over scenarios (weights ``scenario_probability``)
of sums over the horizon. A solution is the common loop-model solution
(:mod:`recopt.models.loops.solution`: ``membership``, ``flow``, ``grid_buy``,
``grid_sell``); ``Ĉ``/``P̂`` are net of individual self-consumption when it is
forced (the default), raw otherwise.

Rates, per loop and in total (all loops together):

* ``collective_self_consumption_rate``: internal flows / members' ``P̂``;
  ``self_production_rate``: internal flows / members' ``Ĉ`` — the collective part
  only (individually self-consumed energy excluded);
* ``..._gross``: ``(ΣP - Σg⁻) / ΣP`` and ``(ΣC - Σg⁺) / ΣC`` on the raw meter
  values — individually self-consumed energy included.

Benefits (13a), (13b), (14): each actor's expected cost outside every loop minus
its cost in the solution, internal flows priced at ``internal_price`` (EUR/kWh;
the receiver pays the sender); internal payments cancel in the total, which is
therefore the no-loop cost minus the objective.
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr

from recopt.data.view import price, stm
from recopt.settle import meter_flows


def standalone_cost(C, P, buy, sell) -> np.ndarray:
    """Cost of an actor outside every loop, EUR per (scenario, step, member).

    The optimum of (1a) with ``x = 0``: ``g⁺ - g⁻ = Ĉ - P̂``, ``0 <= g⁺ <= Ĉ``,
    ``0 <= g⁻ <= P̂``; that is ``b (Ĉ-P̂)⁺ - s (P̂-Ĉ)⁺`` when ``b >= s``, else
    ``b Ĉ - s P̂``. With individual self-consumption forced (``Ĉ P̂ = 0``) this
    is ``b Ĉ - s P̂``, the spec's no-loop cost.
    """
    C, P, buy, sell = (np.asarray(a, float) for a in (C, P, buy, sell))
    netted = buy * np.maximum(C - P, 0.0) - sell * np.maximum(P - C, 0.0)
    return np.where(buy >= sell, netted, buy * C - sell * P)


def _net_values(instance: xr.Dataset, self_consumption: bool):
    c = stm(instance, "consumption").astype(float)
    p = stm(instance, "production").astype(float)
    if self_consumption:
        cn, pn = meter_flows(c, p)
        return c, p, cn, pn
    return c, p, c, p


def _ratio(a, b) -> float:
    return float(a / b) if b > 0 else math.nan


def loop_kpis(instance: xr.Dataset, solution: xr.Dataset, *, self_consumption: bool = True,
              internal_price: float | None = None) -> xr.Dataset:
    """KPIs of §4.3 for a loop-design solution.

    Parameters
    ----------
    instance : xarray.Dataset
    solution : xarray.Dataset
        ``membership`` (member, loop), ``flow`` (scenario, time, member, receiver),
        ``grid_buy``, ``grid_sell`` (scenario, time, member), kWh.
    self_consumption : bool
        Whether individual self-consumption was forced in the solve.
    internal_price : float, optional
        Price of internal flows, EUR/kWh, for the per-actor benefits. Default: the
        midpoint of the mean grid buying and selling prices.

    Returns
    -------
    xarray.Dataset
        Per loop: ``loop_n_members``, ``loop_installed_power`` (kW),
        ``loop_internal_flow`` (kWh), ``loop_collective_self_consumption_rate``,
        ``loop_self_production_rate`` and their ``_gross`` forms; per member:
        ``benefit`` (EUR, vs the zero-loop configuration), ``standalone_cost``,
        ``loop_cost`` (EUR); scalars in ``attrs`` and as 0-d variables:
        ``n_loops`` (12: loops with >= 2 members), ``n_non_members``,
        ``mean_members_per_loop``, ``mean_installed_power_per_loop`` (kW),
        ``max_loop_power_kw``, ``benefit_max`` (13a), ``benefit_min`` (13b) among
        members, ``benefit_total`` (14), ``no_loop_cost``, the total rates.
    """
    c, p, cn, pn = _net_values(instance, self_consumption)
    w = np.asarray(instance["scenario_probability"].values, float)
    buy = price(instance, "price_grid_buy")
    sell = price(instance, "price_grid_sell")
    x = solution["membership"].transpose("member", "loop").values.astype(bool)
    f = solution["flow"].transpose("scenario", "time", "member", "receiver").values
    gb = stm(solution, "grid_buy")
    gs = stm(solution, "grid_sell")
    if "installed_power" in instance:
        power = np.asarray(instance["installed_power"].values, float)
    else:
        power = p.max(axis=(0, 1)) / float(instance.attrs["time_step_hours"])

    def expect(a):  # (S, T, ...) -> expected horizon sum
        return np.tensordot(w, a.sum(axis=1), axes=1)

    e_c, e_p, e_cn, e_pn = expect(c), expect(p), expect(cn), expect(pn)  # (n,)
    e_gb, e_gs = expect(gb), expect(gs)
    e_f = expect(f)  # (n, n)
    K = x.shape[1]
    n_mem = x.sum(axis=0)
    internal = np.array([e_f[np.ix_(x[:, k], x[:, k])].sum() for k in range(K)])
    rates = {
        "loop_collective_self_consumption_rate":
            [_ratio(internal[k], e_pn[x[:, k]].sum()) for k in range(K)],
        "loop_self_production_rate": [_ratio(internal[k], e_cn[x[:, k]].sum()) for k in range(K)],
        "loop_collective_self_consumption_rate_gross":
            [_ratio(e_p[x[:, k]].sum() - e_gs[x[:, k]].sum(), e_p[x[:, k]].sum())
             for k in range(K)],
        "loop_self_production_rate_gross":
            [_ratio(e_c[x[:, k]].sum() - e_gb[x[:, k]].sum(), e_c[x[:, k]].sum())
             for k in range(K)],
    }
    inloop = x.any(axis=1)
    if internal_price is None or (isinstance(internal_price, float) and math.isnan(internal_price)):
        internal_price = 0.5 * (float(buy.mean()) + float(sell.mean()))
    base = expect(standalone_cost(cn, pn, buy, sell))  # (n,)
    paid = expect(buy * gb - sell * gs) + internal_price * (e_f.sum(axis=0) - e_f.sum(axis=1))
    benefit = base - paid
    real = n_mem >= 2
    tot_int = float(internal.sum())
    scalars = {
        "n_loops": int(real.sum()),
        "n_non_members": int((~inloop).sum()),
        "mean_members_per_loop": float(n_mem[real].mean()) if real.any() else math.nan,
        "mean_installed_power_per_loop":
            float(np.mean([power[x[:, k]].sum() for k in range(K) if real[k]]))
            if real.any() else math.nan,
        "max_loop_power_kw": float(instance.attrs["max_loop_power_kw"]),
        "internal_price": float(internal_price),
        "benefit_max": float(benefit[inloop].max()) if inloop.any() else math.nan,
        "benefit_min": float(benefit[inloop].min()) if inloop.any() else math.nan,
        "benefit_total": float(benefit.sum()),
        "no_loop_cost": float(base.sum()),
        "internal_flow": tot_int,
        "collective_self_consumption_rate": _ratio(tot_int, e_pn[inloop].sum()),
        "self_production_rate": _ratio(tot_int, e_cn[inloop].sum()),
        "collective_self_consumption_rate_gross":
            _ratio(e_p[inloop].sum() - e_gs[inloop].sum(), e_p[inloop].sum()),
        "self_production_rate_gross":
            _ratio(e_c[inloop].sum() - e_gb[inloop].sum(), e_c[inloop].sum()),
    }
    coords = {"loop": solution["loop"].values, "member": solution["member"].values}
    out = xr.Dataset(
        {
            "loop_n_members": (("loop",), n_mem.astype(int), {"units": "1"}),
            "loop_installed_power": (("loop",), np.array([power[x[:, k]].sum()
                                                          for k in range(K)]),
                                     {"units": "kW"}),
            "loop_internal_flow": (("loop",), internal,
                                   {"units": "kWh", "long_name": "expected internal flows"}),
            **{k: (("loop",), np.asarray(v, float), {"units": "1"}) for k, v in rates.items()},
            "benefit": (("member",), benefit,
                        {"units": "EUR", "long_name": "expected benefit vs no loop "
                         "(internal flows at internal_price)"}),
            "standalone_cost": (("member",), base, {"units": "EUR"}),
            "loop_cost": (("member",), paid, {"units": "EUR"}),
        },
        coords=coords,
    )
    for k, v in scalars.items():
        out[k] = ((), v)
    out.attrs.update(scalars)
    return out


def kpi_summary(kpis: xr.Dataset) -> str:
    """A few lines for the CLI summary."""
    a = kpis.attrs
    lines = [
        f"loops      {a['n_loops']} loop(s) of >= 2 members, {a['n_non_members']} non-member(s)"
        + (f"; {a['mean_members_per_loop']:.2f} members and "
           f"{a['mean_installed_power_per_loop']:.1f} kW per loop (cap "
           f"{a['max_loop_power_kw']:g} kW)" if a["n_loops"] else ""),
    ]
    if "loop_members" in kpis:
        for lab, mem in zip(kpis["loop"].values, kpis["loop_members"].values, strict=True):
            lines.append(f"           {lab}: {mem}")
    if not math.isfinite(a["collective_self_consumption_rate"]):
        lines.append(f"benefit    no loop formed; cost {a['no_loop_cost']:,.2f} EUR")
        return "\n".join(lines)
    lines.append(
        f"sharing    collective self-consumption {a['collective_self_consumption_rate']:.1%}, "
        f"self-production {a['self_production_rate']:.1%} (gross "
        f"{a['collective_self_consumption_rate_gross']:.1%} / "
        f"{a['self_production_rate_gross']:.1%})")
    lines.append(
        f"benefit    total {a['benefit_total']:,.2f} EUR vs no loop ({a['no_loop_cost']:,.2f} "
        f"EUR); per member max {a['benefit_max']:,.2f}, min {a['benefit_min']:,.2f} EUR "
        f"at internal price {a['internal_price']:.4f} EUR/kWh")
    return "\n".join(lines)


def plot_loops(instance: xr.Dataset, result: xr.Dataset, path, *, distance: str = "auto",
               disks: bool = True, title: str | None = None):
    """Map of the actors, their loops and the distance disks, written to a PNG.

    Actors are drawn at ``x_km``/``y_km`` (or ``lon``/``lat`` with
    ``distance="haversine"``, projected locally to km); marker size grows with the
    installed power, producers are triangles. Each loop's members are joined
    (a star from the loop's first member) in the loop's colour; disks of diameter
    ``max_distance_km`` around each actor show the neighbourhood graph (two
    actors are neighbours iff their disks meet). Returns the path.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Circle

    if distance in ("auto", "km") and "x_km" in instance:
        xs = np.asarray(instance["x_km"].values, float)
        ys = np.asarray(instance["y_km"].values, float)
    else:
        lat = np.asarray(instance["lat"].values, float)
        lon = np.asarray(instance["lon"].values, float)
        lat0 = np.radians(lat.mean())
        xs = (lon - lon.mean()) * 111.195 * np.cos(lat0)
        ys = (lat - lat.mean()) * 111.195
    names = [str(m) for m in instance["member"].values]
    power = (np.asarray(instance["installed_power"].values, float)
             if "installed_power" in instance else np.zeros(len(names)))
    dmax = float(instance.attrs["max_distance_km"])
    x = result["membership"].transpose("member", "loop").values.astype(bool)
    fig, ax = plt.subplots(figsize=(7, 7))
    cmap = plt.get_cmap("tab10")
    if disks:
        for xi, yi in zip(xs, ys, strict=True):
            ax.add_patch(Circle((xi, yi), dmax / 2, fill=False, lw=0.5, ls=":", color="grey"))
    for k in range(x.shape[1]):
        mem = np.nonzero(x[:, k])[0]
        col = cmap(k % 10)
        for j in mem[1:]:
            ax.plot([xs[mem[0]], xs[j]], [ys[mem[0]], ys[j]], color=col, lw=1.5)
        ax.scatter(xs[mem], ys[mem], s=80, color=col, zorder=3,
                   label=f"{result['loop'].values[k]} ({len(mem)})")
    outside = ~x.any(axis=1)
    ax.scatter(xs[outside], ys[outside], s=40, facecolor="white", edgecolor="black", zorder=3,
               label="no loop")
    prod = power > 0
    ax.scatter(xs[prod], ys[prod], s=30 + 120 * power[prod] / max(power.max(), 1e-9),
               marker="^", facecolor="none", edgecolor="black", zorder=4, label="producer")
    for name, xi, yi in zip(names, xs, ys, strict=True):
        ax.annotate(name, (xi, yi), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_aspect("equal")
    ax.set_xlabel("x (km)")
    ax.set_ylabel("y (km)")
    ax.set_title(title or f"{result.attrs.get('model', '')} loops (disks: diameter "
                 f"{dmax:g} km)")
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
