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
from recopt.metrics.style import PALETTE, figure, save, styled
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


#: Up to this many actors, the loop map names every actor.
MAX_NAMED_ACTORS = 20
#: Loops listed by name in the map's legend (the others are summed in one entry).
MAX_LEGEND_LOOPS = 10


def _power_steps(pmax: float) -> list[float]:
    """Two or three round installed powers (kW) for the marker-size legend."""
    if pmax <= 0:
        return []
    mag = 10 ** math.floor(math.log10(pmax))
    top = math.floor(pmax / mag) * mag
    steps = sorted({top, top / 2, top / 5} if top / 5 >= mag / 10 else {top, top / 2})
    return [v for v in steps if v > 0]


def plot_loops(instance: xr.Dataset, result: xr.Dataset, path, *, distance: str = "auto",
               disks: str | bool = "none", title: str | None = None):
    """Map of the actors and their loops (Chasseray et al. §4), PNG + PDF.

    Actors are drawn at ``x_km``/``y_km`` (or ``lon``/``lat`` with
    ``distance="haversine"``, projected locally to km): producers as triangles,
    consumers as circles, the marker's area proportional to the installed power
    (legend in kilowatts; consumers without a plant at a fixed small size); a loop's
    members in the loop's colour, joined to the loop's centre, its convex hull
    shaded; actors in no loop hollow. The legal distance is a scale bar of
    ``max_distance_km``; ``disks="loops"`` also shades, in its colour, the
    disk of diameter ``max_distance_km`` around each loop member (two actors may
    share a loop iff their disks meet), ``"all"`` outlines every actor's disk (the
    old map), ``"none"`` / False (default) draws no disk. Names are printed up to
    :data:`MAX_NAMED_ACTORS` actors. Fixed size (:mod:`recopt.metrics.style`).
    Returns the PNG path.
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import Circle, Polygon

    if disks is True:
        disks = "all"
    elif disks is False:
        disks = "none"
    if disks not in ("loops", "all", "none"):
        raise ValueError(f"disks must be 'loops', 'all' or 'none', got {disks!r}")
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
    loops = [k for k in range(x.shape[1]) if x[:, k].any()]
    labels = [str(v) for v in result["loop"].values]
    pmax = float(power.max()) if power.size and power.max() > 0 else 1.0

    shrink = min(1.0, math.sqrt(30.0 / max(1, len(names))))  # many actors: smaller marks

    def area(p):
        return (25.0 + 260.0 * np.asarray(p, float) / pmax) * shrink

    produced = stm(instance, "production").sum(axis=(0, 1))
    prod = produced > 0
    with styled():
        fig = figure("map")
        ax, ax_leg = fig.subplots(1, 2, width_ratios=[2.6, 1])
        ax_leg.axis("off")
        loop_colour = {k: PALETTE[j % len(PALETTE)] for j, k in enumerate(loops)}
        if disks == "all":
            for xi, yi in zip(xs, ys, strict=True):
                ax.add_patch(Circle((xi, yi), dmax / 2, fill=False, lw=0.4, ls=":",
                                    color="0.6"))
        handles = []
        for j, k in enumerate(loops):
            mem = np.nonzero(x[:, k])[0]
            c = loop_colour[k]
            cx, cy = xs[mem].mean(), ys[mem].mean()
            if disks == "loops":
                for i in mem:
                    ax.add_patch(Circle((xs[i], ys[i]), dmax / 2, facecolor=c, alpha=0.06,
                                        edgecolor="none"))
            if mem.size >= 3:
                pts = np.column_stack([xs[mem], ys[mem]])
                hull = _hull(pts)
                ax.add_patch(Polygon(hull, closed=True, facecolor=c, alpha=0.15,
                                     edgecolor=c, lw=0.8))
            for i in mem:
                ax.plot([cx, xs[i]], [cy, ys[i]], color=c, lw=0.9, alpha=0.8, zorder=2)
            if j < MAX_LEGEND_LOOPS:
                handles.append(Line2D([], [], color=c, marker="o", ls="-", lw=0.9,
                                      label=f"{labels[k]}: {mem.size} actors, "
                                            f"{_kw(power[mem].sum())} kW"))
        if len(loops) > MAX_LEGEND_LOOPS:
            rest = loops[MAX_LEGEND_LOOPS:]
            handles.append(Line2D([], [], color="0.5", ls="-",
                                  label=f"{len(rest)} more loops "
                                        f"({int(sum(x[:, k].sum() for k in rest))} actors)"))
        inloop = x.any(axis=1)
        face = np.array(["white"] * len(names), dtype=object)
        for k in loops:
            face[x[:, k]] = loop_colour[k]
        for mask, marker in ((prod, "^"), (~prod, "o")):
            if mask.any():
                ax.scatter(xs[mask], ys[mask],
                           s=np.where(power[mask] > 0, area(power[mask]), 22 * shrink),
                           c=list(face[mask]), marker=marker, edgecolors="0.15",
                           linewidths=0.7, zorder=3)
        if len(names) <= MAX_NAMED_ACTORS:
            for name, xi, yi in zip(names, xs, ys, strict=True):
                ax.annotate(name, (xi, yi), fontsize=6.5, xytext=(4, 3),
                            textcoords="offset points", color="0.25", zorder=4)
        handles.append(Line2D([], [], ls="none", marker="o", mfc="white", mec="0.15",
                              label=f"in no loop ({int((~inloop).sum())})"))
        handles.append(Line2D([], [], ls="none", marker="^", mfc="0.8", mec="0.15",
                              label="producer"))
        handles.append(Line2D([], [], ls="none", marker="o", mfc="0.8", mec="0.15", ms=4,
                              label="consumer"))
        for p in _power_steps(float(power.max()) if power.size else 0.0):
            handles.append(Line2D([], [], ls="none", marker="^", mfc="none", mec="0.3",
                                  ms=float(np.sqrt(area(p))), label=f"{_kw(p)} kW installed"))
        ax.set_aspect("equal", adjustable="datalim")  # the box fits the layout
        ax.margins(0.08)
        ax.set_xlabel("east (kilometres)")
        ax.set_ylabel("north (kilometres)")
        # the legal distance as a scale bar, bottom left
        x0, x1 = ax.get_xlim()
        y0, y1 = ax.get_ylim()
        y0 -= 0.12 * (y1 - y0)  # a free strip at the bottom for the bar
        x1 = max(x1, x0 + 1.1 * dmax)
        # the extent as data limits (not fixed limits: the equal aspect widens one of them
        # to fill the box, which fixed limits would forbid)
        ax.update_datalim([(x0, y0), (x1, y1)])
        ax.autoscale_view()
        bx, by = x0 + 0.04 * (x1 - x0), y0 + 0.04 * (y1 - y0)
        ax.plot([bx, bx + dmax], [by, by], color="black", lw=2.2, solid_capstyle="butt",
                zorder=5)
        ax.annotate(f"maximum distance {dmax:.3g} km", (bx, by), xytext=(0, 5),
                    textcoords="offset points", fontsize=7.5, zorder=5)
        ax_leg.legend(handles=handles, loc="upper left", fontsize=7, labelspacing=0.9,
                      borderpad=0.2, borderaxespad=0.0)
        model = result.attrs.get("model", "")
        ax.set_title(title or f"{model} loops: {len(loops)} loop(s), {int(inloop.sum())} of "
                     f"{len(names)} actors", loc="left")
        return save(fig, path)


def _kw(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"


def _hull(pts: np.ndarray) -> np.ndarray:
    """Convex hull of 2-D points (Andrew's monotone chain), counter-clockwise."""
    p = sorted(map(tuple, pts.tolist()))
    if len(p) <= 2:
        return np.asarray(p)

    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list = []
    for q in p:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], q) <= 0:
            lower.pop()
        lower.append(q)
    upper: list = []
    for q in reversed(p):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], q) <= 0:
            upper.pop()
        upper.append(q)
    return np.asarray(lower[:-1] + upper[:-1])
