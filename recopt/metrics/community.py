"""Community metrics shared by every model and key family.

Definitions (the model card ``models/metrics-and-uncertainty.md`` numbers them):

=========================  =====================================================  ==========
code name                  definition                                             source
=========================  =====================================================  ==========
``self_consumption_rate``  ``sum_{t,i} comm_in / sum_t G``                         Ospina 19
``self_sufficiency``       ``sum_t (min(P, C) + comm_in) / sum_t C`` per member    Villena 17
``baseline_bills``         bill without community (``recopt.settle.bills``)         Mustika 15
``bill_savings``           ``B0_i - B_i`` per member                                Mustika 46
``saving_ratio``           ``(B0_i - B_i) / |B0_i|`` per member                     Mustika 46
``gini``                   ``sum_i sum_k |x_i - x_k| / (2 M sum_i x_i)``            Ospina 22
``energy_to_shift``        ``sum_d [min(A_d, D_d) - sum_{t in d} min(alloc, C+)]``  Ospina 24
``co2_avoided``            ``1e-6 sum_t phi(t) sum_i comm_in`` (t CO2eq)            Ospina 25
``collective_bill``        ``sum_i B_i``                                            Mustika 16
``surplus_injected``       ``sum_t (G - sum_i comm_in)``                            Mustika 10
``sharing_upper_bound``    per step ``min(G, sum_i C+_i)``                          issue 3
=========================  =====================================================  ==========

``C``/``P`` are consumption/production, ``C+ = max(0, C - P)`` and ``P- = max(0, P - C)``
the meter values, ``G = sum_i P-_i`` the community production, ``comm_in`` the energy a
member takes from the community (Mustika's ``Pcomm+``) and ``alloc`` the energy the key
offers it (``lambda * G``), all in kWh per step.

Two layers, as in :mod:`recopt.settle`:

* a NumPy core on arrays shaped ``(scenario, time, member)`` (member always last; any
  leading axes are allowed where stated), fully vectorised -- no Python loop over time
  or scenario;
* thin xarray wrappers on an instance: :func:`self_sufficiency`, :func:`baseline_bills`,
  :func:`bill_savings`, :func:`collective_bill`, :func:`evaluate` and
  :func:`across_scenarios`.

Every money figure comes from the one bill function, :func:`recopt.settle.bills` (or
its NumPy core :func:`recopt.settle.bill_components`); there is no second bill formula
here.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import xarray as xr

from recopt.data.schema import DIMS, MEMBER, SCENARIO, TIME
from recopt.errors import DimensionError, ModelError
from recopt.settle import _stm_array, bills, community_production, meter_flows

__all__ = [
    "METRICS",
    "covered_consumption",
    "self_sufficiency_rate",
    "self_sufficiency",
    "self_consumption_rate",
    "sharing_upper_bound",
    "surplus_injected",
    "gini",
    "saving_ratio",
    "day_starts",
    "energy_to_shift",
    "co2_avoided",
    "baseline_bills",
    "bill_savings",
    "collective_bill",
    "evaluate",
    "across_scenarios",
]

#: Metric names accepted by :func:`evaluate` (``metrics=``), in report order.
METRICS = (
    "self_consumption_rate",
    "self_sufficiency",
    "bill_saving",
    "saving_ratio",
    "gini",
    "energy_to_shift",
    "co2_avoided",
    "collective_bill",
    "surplus_injected",
    "sharing_upper_bound",
)

ArrayLike = Any


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` with NaN where ``den == 0`` (no warning)."""
    num = np.asarray(num, dtype=float)
    den = np.asarray(den, dtype=float)
    out = np.full(np.broadcast_shapes(num.shape, den.shape), np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out


# ---------------------------------------------------------------------------------
# NumPy core
# ---------------------------------------------------------------------------------
def covered_consumption(consumption, production, comm_in) -> np.ndarray:
    """Consumption covered locally per step: ``min(P, C) + v`` (kWh per step).

    de Villena eq. (17) numerator in its linearised form (eq. (20), proven equal in
    the paper's Appendix B): own production used behind the meter plus the
    verified community allocation ``v``.
    """
    return np.minimum(np.asarray(production), np.asarray(consumption)) + np.asarray(comm_in)


def self_sufficiency_rate(consumption, production, comm_in) -> np.ndarray:
    """Self-sufficiency rate per member, de Villena eq. (17) (NumPy core).

    ``ssr_i = sum_t (min(P_i, C_i) + comm_in_i) / sum_t C_i`` (dimensionless, 0..1):
    own production consumed behind the meter plus energy taken from the community,
    over total consumption. For members without own production this is Ospina's (20).

    Parameters
    ----------
    consumption, production, comm_in : array_like
        kWh per step, shape ``(..., time, member)``.

    Returns
    -------
    numpy.ndarray
        Shape ``(..., member)``; NaN for a member that consumes nothing.
    """
    c = np.asarray(consumption, dtype=float)
    num = covered_consumption(c, production, comm_in).sum(axis=-2)
    return _ratio(num, c.sum(axis=-2))


def self_consumption_rate(comm_in, community_production_) -> np.ndarray:
    """Community self-consumption rate (SCR), Ospina eq. (19).

    ``SCR = sum_{t,i} comm_in / sum_t G``: the share of the community production ``G``
    (kWh) taken by members. Ospina's ``min(G_alloc, C)`` is ``comm_in`` (Mustika (7)).
    Individual (behind-the-meter) self-consumption is *not* included: ``G`` is what
    members inject after their own consumption (for Ospina's shared plant without
    member PV the two coincide).

    Parameters
    ----------
    comm_in : array_like
        Energy taken from the community, kWh per step, shape ``(..., time, member)``.
    community_production_ : array_like
        ``G`` in kWh per step, shape ``(..., time)``.

    Returns
    -------
    numpy.ndarray
        Shape ``(...)`` (e.g. per scenario); NaN where the community produced nothing.
    """
    shared = np.asarray(comm_in, dtype=float).sum(axis=(-2, -1))
    return _ratio(shared, np.asarray(community_production_, dtype=float).sum(axis=-1))


def sharing_upper_bound(net_consumption, community_production_) -> np.ndarray:
    """The most any key can share per step: ``min(G, sum_i C+_i)`` (kWh per step).

    Every key settles to ``comm_in <= C+`` and ``sum_i comm_in <= G`` (Mustika (6)-(7)),
    so ``sum_i comm_in <= min(G, sum_i C+)``; prorata of the need reaches it in one
    round. Dividing its sum by ``sum_t G`` gives the SCR upper bound.

    Parameters
    ----------
    net_consumption : array_like
        ``C+``, kWh per step, shape ``(..., time, member)``.
    community_production_ : array_like
        ``G``, kWh per step, shape ``(..., time)``.

    Returns
    -------
    numpy.ndarray
        Shape ``(..., time)``, kWh per step.
    """
    need = np.maximum(np.asarray(net_consumption, dtype=float), 0.0).sum(axis=-1)
    return np.minimum(np.asarray(community_production_, dtype=float), need)


def surplus_injected(comm_in, community_production_) -> np.ndarray:
    """Community production not taken by members, summed over time (kWh).

    ``sum_t (G - sum_i comm_in)`` (Mustika (9)-(10)): the surplus the settlement
    credits pro rata to injection at the grid sell price.

    Returns
    -------
    numpy.ndarray
        Shape ``(...)`` (per scenario), kWh.
    """
    g = np.asarray(community_production_, dtype=float)
    taken = np.asarray(comm_in, dtype=float).sum(axis=-1)
    return np.maximum(g - taken, 0.0).sum(axis=-1)


def gini(values, axis: int = -1) -> np.ndarray:
    """Gini coefficient, Ospina eq. (22): ``sum_i sum_k |x_i - x_k| / (2 M sum_i x_i)``.

    Computed in O(M log M) from the sorted values:
    ``sum_i sum_k |x_i - x_k| = 2 sum_j (2j - M - 1) x_(j)`` (``j = 1..M`` ascending).

    Parameters
    ----------
    values : array_like
        E.g. bill savings (EUR) with members on ``axis``.
    axis : int, default -1
        The member axis.

    Returns
    -------
    numpy.ndarray
        The other axes. 0 when all values are equal (including all zero); NaN when
        the values differ but their sum is <= 0 (the Gini is undefined then, e.g. when
        the community loses money overall), or when a value is NaN. It may exceed 1
        when some values are negative.
    """
    x = np.moveaxis(np.asarray(values, dtype=float), axis, -1)
    m = x.shape[-1]
    xs = np.sort(x, axis=-1)
    w = 2.0 * np.arange(1, m + 1) - m - 1.0
    num = (xs * w).sum(axis=-1)  # half of sum_i sum_k |x_i - x_k|
    total = x.sum(axis=-1)
    out = np.full(num.shape, np.nan)
    ok = total > 0
    np.divide(num, m * total, out=out, where=ok)
    if m == 0:
        return out
    equal = xs[..., -1] - xs[..., 0] <= 1e-12 * np.abs(xs[..., -1])
    return np.where(equal & np.isfinite(total), 0.0, out)


def saving_ratio(savings, baseline_bill) -> np.ndarray:
    """Bill-saving ratio ``(B0 - B) / |B0|`` (Mustika (46)-(47)), dimensionless.

    Mustika divide by ``B0``; for a net earner (``B0 < 0``) that flips the sign, so
    the ratio is taken on ``|B0|``: positive means the member is better off. NaN
    where ``B0 == 0``.
    """
    return _ratio(savings, np.abs(np.asarray(baseline_bill, dtype=float)))


def day_starts(time) -> np.ndarray:
    """Index of the first step of each calendar day (UTC) of a sorted time axis."""
    days = np.asarray(time).astype("datetime64[D]")
    if days.size == 0:
        return np.zeros(0, dtype=np.intp)
    return np.flatnonzero(np.r_[True, days[1:] != days[:-1]])


def energy_to_shift(net_consumption, allocation, starts) -> np.ndarray:
    """Energy to Shift per member, Ospina eqs (23)-(24) (kWh over the horizon).

    For each member and calendar day ``d`` the consumption is rescheduled within the
    day (daily total preserved, (23)) so that the member takes as much of its
    allocation as it can; ETS is the upward movement (24) of the *minimal* such
    rescheduling. With ``A_d = sum_{t in d} alloc``, ``D_d = sum_{t in d} C+`` and
    ``E_d = sum_{t in d} min(alloc, C+)`` (energy already taken), the most the member
    can take is ``min(A_d, D_d)``; each kWh moved raises the take by at most 1 kWh,
    and moving uncovered load into the hours of highest spare allocation (Ospina's
    descending order) raises it by exactly 1 kWh, so

    ``ETS_i = sum_d (min(A_d, D_d) - E_d)``.

    It is 0 for keys that never offer more than the need (prorata, cascade).

    Parameters
    ----------
    net_consumption : array_like
        ``C+`` (the shiftable withdrawal), kWh per step, shape ``(..., time, member)``.
    allocation : array_like
        Energy offered by the key (``lambda * G``, :func:`recopt.settle.settle_arrays`
        ``alloc``), kWh per step, same shape.
    starts : array_like of int
        First step of each day (:func:`day_starts`).

    Returns
    -------
    numpy.ndarray
        Shape ``(..., member)``, kWh.
    """
    c = np.maximum(np.asarray(net_consumption, dtype=float), 0.0)
    a = np.maximum(np.asarray(allocation, dtype=float), 0.0)
    c, a = np.broadcast_arrays(c, a)
    starts = np.asarray(starts, dtype=np.intp)
    if c.shape[-2] == 0:
        return np.zeros(c.shape[:-2] + c.shape[-1:])
    ax = c.ndim - 2
    a_d = np.add.reduceat(a, starts, axis=ax)
    d_d = np.add.reduceat(c, starts, axis=ax)
    e_d = np.add.reduceat(np.minimum(a, c), starts, axis=ax)
    return np.maximum(np.minimum(a_d, d_d) - e_d, 0.0).sum(axis=ax)


def co2_avoided(comm_in, intensity) -> np.ndarray:
    """CO2 avoided by community self-consumption, Ospina eq. (25), in t CO2eq.

    ``1e-6 * sum_t phi(t) * sum_i comm_in`` with ``phi`` the grid carbon intensity in
    **g CO2eq/kWh** (Ospina uses Electricity Maps' hourly series for zone ES). Only
    energy taken from the community counts (behind-the-meter self-consumption happens
    with or without the community).

    Parameters
    ----------
    comm_in : array_like
        kWh per step, shape ``(..., time, member)``.
    intensity : array_like
        g CO2eq/kWh, broadcastable to ``(..., time)`` (a scalar, a ``(time,)`` series
        applied to every scenario, or ``(scenario, time)``).

    Returns
    -------
    numpy.ndarray
        Shape ``(...)``, t CO2eq.
    """
    shared = np.asarray(comm_in, dtype=float).sum(axis=-1)
    phi = np.asarray(intensity, dtype=float)
    if phi.ndim and phi.shape[-1] not in (1, shared.shape[-1]):
        raise DimensionError(
            f"co2_intensity has {phi.shape[-1]} steps; the flows have {shared.shape[-1]}",
            variable="co2_intensity",
        )
    return 1e-6 * (shared * phi).sum(axis=-1)


# ---------------------------------------------------------------------------------
# xarray wrappers
# ---------------------------------------------------------------------------------
def _sm_coords(instance: xr.Dataset) -> dict[str, Any]:
    return {d: instance[d].values for d in (SCENARIO, MEMBER) if d in instance.coords}


def _cube(instance: xr.Dataset, name: str) -> np.ndarray:
    return np.asarray(instance[name].transpose(*DIMS).values, dtype=float)


def self_sufficiency(instance: xr.Dataset, comm_in) -> xr.DataArray:
    """Self-sufficiency rate per (scenario, member), de Villena eq. (17).

    See :func:`self_sufficiency_rate`; NaN for a member that consumes nothing over the
    horizon. Dimensionless (0..1). ``comm_in``: kWh per step, NumPy ``(S, T, U)`` /
    ``(T, U)`` or a DataArray on the instance dims.
    """
    cin = _stm_array(instance, "comm_in", comm_in)
    ssr = self_sufficiency_rate(_cube(instance, "consumption"), _cube(instance, "production"),
                                cin)
    return xr.DataArray(
        ssr,
        dims=(SCENARIO, MEMBER),
        coords=_sm_coords(instance),
        attrs={"units": "1", "long_name": "self-sufficiency rate (de Villena eq. 17)"},
    )


def baseline_bills(instance: xr.Dataset) -> xr.DataArray:
    """Bill of each member without the community, EUR per (scenario, member).

    ``fee + sum_t (b * C+ - s * P-)`` through :func:`recopt.settle.bills` with
    ``comm_in = comm_out = 0``.
    """
    zero = xr.DataArray(0.0)
    return bills(instance, zero, zero)["baseline_bill"]


def bill_savings(instance: xr.Dataset, comm_in, comm_out) -> xr.DataArray:
    """Bill saving per member ``B0_i - B_i`` (EUR per (scenario, member)).

    Both bills from :func:`recopt.settle.bills` (Mustika (15)); positive = the member
    pays less than without the community.
    """
    b = bills(instance, comm_in, comm_out)
    out = b["baseline_bill"] - b["bill"]
    out.attrs = {"units": "EUR", "long_name": "bill saving B0 - B"}
    return out


def collective_bill(instance: xr.Dataset, comm_in, comm_out) -> xr.DataArray:
    """Collective bill ``sum_i B_i`` per scenario (Mustika (16)), EUR."""
    return bills(instance, comm_in, comm_out)["collective_bill"]


def _select(metrics: Iterable[str] | None) -> set[str]:
    if metrics is None:
        return set(METRICS)
    if isinstance(metrics, str):
        metrics = [m.strip() for m in metrics.split(",") if m.strip()]
    chosen = set(metrics)
    unknown = sorted(chosen - set(METRICS))
    if unknown:
        raise ModelError(
            f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(METRICS)}"
        )
    return chosen


def evaluate(
    instance: xr.Dataset,
    comm_in,
    comm_out,
    *,
    metrics: Sequence[str] | str | None = None,
    co2_intensity=None,
    allocation=None,
) -> xr.Dataset:
    """All metrics of one settled key on an instance, per scenario (and member).

    Parameters
    ----------
    instance : xarray.Dataset
        A recopt instance (with a community battery: the augmented instance of
        :func:`recopt.generate.battery.add_community_battery`).
    comm_in, comm_out : xarray.DataArray or numpy.ndarray
        Energy taken from / sold to the community (the settlement's
        ``community_intake`` / ``community_sales``), kWh per step, NumPy ``(S, T, U)``
        or ``(T, U)`` or a DataArray on the instance dims.
    metrics : sequence of str or comma-separated str, optional
        Subset of :data:`METRICS`; default all (``energy_to_shift`` needs
        ``allocation``, ``co2_avoided`` needs ``co2_intensity``; without them they are
        skipped when ``metrics`` is None and refused when asked for).
    co2_intensity : scalar, array_like or xarray.DataArray, optional
        Grid carbon intensity in g CO2eq/kWh, a scalar, per time ``(T,)``, or
        ``(S, T)`` / a DataArray on (a subset of) (scenario, time).
    allocation : xarray.DataArray or numpy.ndarray, optional
        Energy offered by the key (settlement ``allocation``), kWh per step; needed
        for ``energy_to_shift`` (a key offering more than the need leaves energy a
        member could take by shifting load).

    Returns
    -------
    xarray.Dataset
        Per scenario: ``self_consumption_rate``, ``scr_upper_bound``,
        ``shared_energy``, ``sharing_upper_bound`` (kWh, summed over time),
        ``community_production`` (kWh), ``self_sufficiency_mean`` (mean over members
        that consume), ``bill_saving_mean`` (EUR per member), ``gini`` (of savings),
        ``collective_bill``, ``baseline_collective_bill``,
        ``collective_saving_ratio``, ``energy_to_shift_total`` (kWh),
        ``co2_avoided`` (t CO2eq), ``surplus_injected`` (kWh);
        per (scenario, member): ``self_sufficiency``, ``bill``, ``baseline_bill``,
        ``bill_saving`` (EUR), ``saving_ratio``, ``energy_to_shift`` (kWh).
        Only the selected metrics (and what they need) are present.

    Raises
    ------
    recopt.errors.ModelError
        Unknown metric, or ``energy_to_shift``/``co2_avoided`` asked for without
        ``allocation``/``co2_intensity``.
    """
    chosen = _select(metrics)
    explicit = metrics is not None
    if "energy_to_shift" in chosen and allocation is None:
        if explicit:
            raise ModelError("energy_to_shift needs the key's allocation (allocation=...)")
        chosen.discard("energy_to_shift")
    if "co2_avoided" in chosen and co2_intensity is None:
        if explicit:
            raise ModelError("co2_avoided needs a carbon-intensity series (co2_intensity=...)")
        chosen.discard("co2_avoided")

    cons = _cube(instance, "consumption")
    prod = _cube(instance, "production")
    c_plus, p_minus = meter_flows(cons, prod)
    g = community_production(p_minus)
    cin = np.asarray(_stm_array(instance, "comm_in", comm_in))
    coords = _sm_coords(instance)
    s_dim, sm = (SCENARIO,), (SCENARIO, MEMBER)
    data: dict[str, tuple] = {}
    kwh = {"units": "kWh"}

    if chosen & {"self_consumption_rate", "sharing_upper_bound", "surplus_injected"}:
        g_sum = g.sum(axis=-1)
        shared = cin.sum(axis=(-2, -1))
        data["community_production"] = (s_dim, g_sum, {**kwh, "long_name": "sum_t G"})
        data["shared_energy"] = (s_dim, shared, {**kwh, "long_name": "sum_{t,i} comm_in"})
    if "self_consumption_rate" in chosen:
        data["self_consumption_rate"] = (
            s_dim, self_consumption_rate(cin, g),
            {"units": "1", "long_name": "community self-consumption rate (Ospina 19)"})
    if "sharing_upper_bound" in chosen:
        ub = sharing_upper_bound(c_plus, g).sum(axis=-1)
        data["sharing_upper_bound"] = (
            s_dim, ub, {**kwh, "long_name": "sum_t min(G, sum_i C+): most any key shares"})
        data["scr_upper_bound"] = (
            s_dim, _ratio(ub, g.sum(axis=-1)), {"units": "1", "long_name": "SCR upper bound"})
    if "surplus_injected" in chosen:
        data["surplus_injected"] = (
            s_dim, surplus_injected(cin, g), {**kwh, "long_name": "community surplus to grid"})
    if "self_sufficiency" in chosen:
        ssr = self_sufficiency_rate(cons, prod, cin)
        data["self_sufficiency"] = (
            sm, ssr, {"units": "1", "long_name": "self-sufficiency rate (de Villena 17)"})
        n_ok = (~np.isnan(ssr)).sum(axis=-1)
        mean = _ratio(np.nansum(ssr, axis=-1), n_ok)
        data["self_sufficiency_mean"] = (
            s_dim, mean, {"units": "1", "long_name": "mean SSR over consuming members"})
    if chosen & {"bill_saving", "saving_ratio", "gini", "collective_bill"}:
        b = bills(instance, comm_in, comm_out)
        bill = b["bill"].transpose(*sm).values
        base = b["baseline_bill"].transpose(*sm).values
        saving = base - bill
        eur = {"units": "EUR"}
        if chosen & {"bill_saving", "gini"}:
            data["bill"] = (sm, bill, {**eur, "long_name": "bill (Mustika 15)"})
            data["baseline_bill"] = (sm, base, {**eur, "long_name": "bill without community"})
            data["bill_saving"] = (sm, saving, {**eur, "long_name": "bill saving B0 - B"})
            data["bill_saving_mean"] = (
                s_dim, saving.mean(axis=-1), {**eur, "long_name": "mean saving per member"})
        if "saving_ratio" in chosen:
            data["saving_ratio"] = (
                sm, saving_ratio(saving, base),
                {"units": "1", "long_name": "saving ratio (B0 - B) / |B0| (Mustika 46)"})
        if "gini" in chosen:
            data["gini"] = (s_dim, gini(saving),
                            {"units": "1", "long_name": "Gini of bill savings (Ospina 22)"})
        if "collective_bill" in chosen:
            cb = bill.sum(axis=-1)
            cb0 = base.sum(axis=-1)
            data["collective_bill"] = (s_dim, cb, {**eur, "long_name": "sum_i B_i (Mustika 16)"})
            data["baseline_collective_bill"] = (s_dim, cb0, {**eur, "long_name": "sum_i B0_i"})
            data["collective_saving_ratio"] = (
                s_dim, saving_ratio(cb0 - cb, cb0),
                {"units": "1", "long_name": "(sum B0 - sum B) / |sum B0|"})
    if "energy_to_shift" in chosen:
        alloc = np.asarray(_stm_array(instance, "allocation", allocation))
        ets = energy_to_shift(c_plus, alloc, day_starts(instance[TIME].values))
        data["energy_to_shift"] = (sm, ets, {**kwh, "long_name": "energy to shift (Ospina 24)"})
        data["energy_to_shift_total"] = (
            s_dim, ets.sum(axis=-1), {**kwh, "long_name": "community energy to shift"})
    if "co2_avoided" in chosen:
        phi = co2_intensity
        if isinstance(phi, xr.DataArray):
            extra = set(phi.dims) - {SCENARIO, TIME}
            if extra:
                raise DimensionError(
                    f"co2_intensity has dims {sorted(extra)}; allowed: scenario, time",
                    variable="co2_intensity")
            phi = phi.broadcast_like(instance["consumption"].isel(member=0, drop=True))
            phi = phi.transpose(SCENARIO, TIME).values
        data["co2_avoided"] = (
            s_dim, co2_avoided(cin, phi),
            {"units": "tCO2eq", "long_name": "CO2 avoided (Ospina 25), intensity in g/kWh"})
    ds = xr.Dataset(data, coords=coords)
    ds.attrs = {"description": "metrics of a settled key (models/metrics-and-uncertainty.md)"}
    return ds


def across_scenarios(ds: xr.Dataset, weights: xr.DataArray | None = None) -> xr.Dataset:
    """Mean, P10 and P90 of every per-scenario variable (Ospina §5: mean and P10-P90).

    Parameters
    ----------
    ds : xarray.Dataset
        E.g. the output of :func:`evaluate` (variables with a ``scenario`` dim; others
        are dropped).
    weights : xarray.DataArray, optional
        Scenario probabilities (dim ``scenario``); default equal weights (the bootstrap
        years are equiprobable). With weights, the mean and the quantiles are
        weighted.

    Returns
    -------
    xarray.Dataset
        Each variable with the ``scenario`` dim replaced by ``stat`` =
        ``["mean", "p10", "p90"]``. NaN scenarios (e.g. a member without
        consumption) are skipped.
    """
    keep = [v for v in ds.data_vars if SCENARIO in ds[v].dims]
    sub = ds[keep]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN members
        if weights is None:
            mean = sub.mean(SCENARIO, skipna=True)
            q = sub.quantile([0.1, 0.9], dim=SCENARIO, skipna=True)
        else:
            wtd = sub.weighted(weights)
            mean = wtd.mean(SCENARIO, skipna=True)
            q = wtd.quantile([0.1, 0.9], dim=SCENARIO, skipna=True)
    p10 = q.sel(quantile=0.1, drop=True)
    p90 = q.sel(quantile=0.9, drop=True)
    out = xr.concat([mean, p10, p90], dim="stat", coords="minimal", compat="override")
    out = out.assign_coords(stat=["mean", "p10", "p90"])
    for v in keep:
        out[v].attrs = dict(ds[v].attrs)
    out.attrs = dict(ds.attrs)
    return out
