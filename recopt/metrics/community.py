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

from recopt.data.roles import aggregate_mask, plant_mask
from recopt.data.schema import MEMBER, PRICE_VARIABLES, SCENARIO, TIME
from recopt.data.view import price_cube, stm
from recopt.errors import DimensionError, ModelError
from recopt.settle import (
    bill_components,
    bills,
    member_sum,
    meter_flows,
    stm_input,
)

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
    "MetricContext",
    "evaluate_arrays",
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
    need = member_sum(np.maximum(np.asarray(net_consumption, dtype=float), 0.0))
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


def _day_sum(x: np.ndarray, starts: np.ndarray, axis: int) -> np.ndarray:
    """Sums over the days starting at ``starts`` along ``axis`` (reshape when regular)."""
    n = x.shape[axis]
    if starts.size > 1:
        length = int(starts[1] - starts[0])
        if n % length == 0 and starts.size == n // length and np.array_equal(
                starts, np.arange(0, n, length)):
            shape = x.shape[:axis] + (starts.size, length) + x.shape[axis + 1:]
            if axis == x.ndim - 2:  # (..., time, member): einsum is ~3x faster than sum
                return np.einsum("...dhu->...du", x.reshape(shape))
            return x.reshape(shape).sum(axis=axis + 1)
    return np.add.reduceat(x, starts, axis=axis)


def energy_to_shift(net_consumption, allocation, starts, *, daily_need=None,
                    taken=None) -> np.ndarray:
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

    It is 0 when the allocation never exceeds the need: Ospina's PR/HEP/CA allocations
    are capped at the demand (appendix A.4-A.6), hence her ETS = 0 for them. The
    settlement's uncapped offer ``lambda * G`` of prorata exceeds the need at steps
    where ``G > sum_i C+``; a member could take that surplus by shifting load into
    those steps, so ETS > 0 there. Pass ``min(alloc, C+)`` to follow Ospina's capped
    convention.

    Parameters
    ----------
    net_consumption : array_like
        ``C+`` (the shiftable withdrawal), kWh per step, shape ``(..., time, member)``.
    allocation : array_like
        Energy offered by the key (``lambda * G``, :func:`recopt.settle.settle_arrays`
        ``alloc``), kWh per step, same shape.
    starts : array_like of int
        First step of each day (:func:`day_starts`).
    daily_need : array_like, optional
        ``D_d`` if already known (shape ``(..., day, member)``), to save a pass.
    taken : array_like, optional
        ``min(allocation, C+)`` per step if already known, to save a pass: the
        settlement's ``comm_in`` when ``allocation`` is the settled ``alloc``
        (Mustika (7)).

    Returns
    -------
    numpy.ndarray
        Shape ``(..., member)``, kWh.
    """
    c = np.asarray(net_consumption, dtype=float)
    a = np.asarray(allocation, dtype=float)
    c, a = np.broadcast_arrays(c, a)
    starts = np.asarray(starts, dtype=np.intp)
    if c.shape[-2] == 0:
        return np.zeros(c.shape[:-2] + c.shape[-1:])
    ax = c.ndim - 2
    a_d = _day_sum(a, starts, ax)
    d_d = _day_sum(c, starts, ax) if daily_need is None else daily_need
    e_d = _day_sum(np.minimum(a, c) if taken is None else np.asarray(taken, dtype=float),
                   starts, ax)
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
    cin = np.asarray(comm_in, dtype=float)
    phi = np.asarray(intensity, dtype=float)
    n_t = cin.shape[-2]
    if phi.ndim and phi.shape[-1] not in (1, n_t):
        raise DimensionError(
            f"co2_intensity has {phi.shape[-1]} steps; the flows have {n_t}",
            variable="co2_intensity",
        )
    if phi.ndim <= 1:  # one series for every scenario (einsum: no threaded BLAS)
        return 1e-6 * np.einsum("...tu,t->...", cin, np.broadcast_to(phi, (n_t,)))
    return 1e-6 * (np.einsum("...tu->...t", cin) * phi).sum(axis=-1)


# ---------------------------------------------------------------------------------
# xarray wrappers
# ---------------------------------------------------------------------------------
def _sm_coords(instance: xr.Dataset) -> dict[str, Any]:
    return {d: instance[d].values for d in (SCENARIO, MEMBER) if d in instance.coords}


def _cube(instance: xr.Dataset, name: str) -> np.ndarray:
    return stm(instance, name).astype(float)


def self_sufficiency(instance: xr.Dataset, comm_in) -> xr.DataArray:
    """Self-sufficiency rate per (scenario, member), de Villena eq. (17).

    See :func:`self_sufficiency_rate`; NaN for a member that consumes nothing over the
    horizon. Dimensionless (0..1). ``comm_in``: kWh per step, NumPy ``(S, T, U)`` /
    ``(T, U)`` or a DataArray on the instance dims.
    """
    cin = stm_input(instance, "comm_in", comm_in)
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


def _select(metrics: Iterable[str] | str | None) -> set[str]:
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


def _prices_vary_in_time(instance: xr.Dataset) -> bool:
    return any(TIME in instance[name].dims for name in PRICE_VARIABLES if name in instance)


def _reusable(like: MetricContext, instance: xr.Dataset) -> bool:
    """Whether ``like`` (a context of another block of scenarios of the same instance)
    holds the prices, fees, day boundaries and aggregate members of ``instance``:
    same time axis and members, and no price or fee varying over scenarios."""
    other = like.instance
    if SCENARIO in instance.dims and any(
            SCENARIO in instance[v].dims for v in (*PRICE_VARIABLES, "subscription_fee")
            if v in instance):
        return False
    for dim in (TIME, MEMBER):
        if not np.array_equal(np.asarray(other[dim].values), np.asarray(instance[dim].values)):
            return False
    same = ("billing_period", "billing_timezone", "battery_member")
    if not np.array_equal(plant_mask(other), plant_mask(instance)):
        return False
    return all(other.attrs.get(a) == instance.attrs.get(a) for a in same)


class MetricContext:
    """What every key's metrics share on one instance, computed once.

    Build it once per instance and pass it to :func:`evaluate` (``context=``) or
    :func:`evaluate_arrays` when many keys are evaluated on the same instance (brute
    force, the five Ospina keys over 500 bootstrap years): the meter values, the
    community production, the baseline bills (through :func:`recopt.settle.bills`),
    the per-step sharing upper bound and the day boundaries are not recomputed.

    Attributes
    ----------
    net_consumption : numpy.ndarray
        ``C+``, kWh per step, (S, T, U).
    community_production : numpy.ndarray
        ``G``, kWh per step, (S, T).
    baseline_bill : numpy.ndarray
        ``B0`` (fees included), EUR, (S, U).
    aggregate : numpy.ndarray of bool
        (U,) members counted in the member aggregates (``gini``,
        ``bill_saving_mean``, ``self_sufficiency_mean``).

    Parameters
    ----------
    instance : xarray.Dataset
    aggregate_members : sequence of str, optional
        Members counted in the member aggregates. Default: every member except a
        community battery added by :func:`recopt.generate.battery.add_community_battery`
        (``attrs["battery_member"]``): a shared asset is not a member whose savings
        Ospina's Gini compares.
    like : MetricContext, optional
        The context of another block of scenarios of the same instance: its prices,
        fees, day boundaries and aggregate members are reused (skipping the xarray
        work) when the time axis and members match and no price or fee varies over
        scenarios; otherwise ignored.
    """

    starts: np.ndarray
    time_varying_prices: bool
    prices: dict[str, np.ndarray]
    _fixed: np.ndarray
    aggregate: np.ndarray
    plant: np.ndarray

    def __init__(self, instance: xr.Dataset, aggregate_members: Sequence[str] | None = None,
                 *, like: MetricContext | None = None):
        cons = _cube(instance, "consumption")
        prod = _cube(instance, "production")
        self.instance = instance
        self.net_consumption, p_minus = meter_flows(cons, prod)
        #: ``P-``, kWh per step, (S, T, U) (the keys of a block reuse it).
        self.net_production = p_minus
        self.community_production = p_minus.sum(axis=-1)  # G (Mustika (4)); P- >= 0 here
        self.consumption_total = np.einsum("stu->su", cons)  # (S, U)
        self.own_use_total = np.einsum("stu->su", np.minimum(cons, prod))  # (S, U), (17)
        del cons, prod
        # sharing_upper_bound() without its clip (C+ >= 0 here): min(G, sum_i C+) summed
        self.upper_bound = np.minimum(self.community_production,
                                      member_sum(self.net_consumption)).sum(axis=-1)
        if like is not None and not _reusable(like, instance):
            like = None
        if like is not None:  # a block of the same instance: time, members, prices, fees
            self.starts = like.starts
            self.time_varying_prices = like.time_varying_prices
            self.prices = like.prices
        else:
            self.starts = day_starts(instance[TIME].values)
            self.time_varying_prices = _prices_vary_in_time(instance)
            self.prices = price_cube(instance)
            if not self.time_varying_prices:  # keep one step: costs are linear in the flows
                self.prices = {k: v[:, :1, :] for k, v in self.prices.items()}
            if not any(SCENARIO in instance[v].dims for v in PRICE_VARIABLES if v in instance):
                self.prices = {k: v[:1] for k, v in self.prices.items()}  # any block size
        self._p_minus = p_minus if self.time_varying_prices else None  # memory
        self._net_sums = (np.einsum("stu->su", self.net_consumption)[:, None, :],
                          np.einsum("stu->su", p_minus)[:, None, :])
        self.daily_need = _day_sum(self.net_consumption, self.starts, 1) \
            if self.starts.size else np.zeros(self.net_consumption.shape)
        zero = np.zeros((1, 1, 1))
        self.baseline_cost = self._energy_cost(zero, zero)  # (S, U)
        # Fees over the billing periods do not depend on the flows nor on the
        # scenario: take them from THE bill function on the first scenario.
        if like is not None:
            self._fixed = like._fixed
        else:
            first = bills(instance.isel({SCENARIO: [0]}), xr.DataArray(0.0),
                          xr.DataArray(0.0))
            # a plant's row: its own money (minus its revenue), so that fees count
            raw = first["baseline_bill"] - first["baseline_plant_revenue_by_period"].sum(
                "period")
            self._fixed = (raw.transpose(SCENARIO, MEMBER).values - self.baseline_cost[:1])
        self.baseline_bill = self.baseline_cost + self._fixed
        self.coords = _sm_coords(instance)
        names = [str(m) for m in instance[MEMBER].values]
        if like is not None and aggregate_members is None:
            self.aggregate = like.aggregate
        elif aggregate_members is None:  # members: no plant, no community battery
            self.aggregate = aggregate_mask(instance)
        else:
            wanted = [str(m) for m in aggregate_members]
            unknown = sorted(set(wanted) - set(names))
            if unknown:
                raise ModelError(f"aggregate_members names unknown member(s) {unknown}")
            self.aggregate = np.isin(names, wanted)
        if not self.aggregate.any():
            raise ModelError("no member left to aggregate over (aggregate_members)")
        #: (U,) community-owned plants (role ``plant``): no bill, revenue to the
        #: community account (:func:`recopt.settle.bills`).
        self.plant = like.plant if like is not None else plant_mask(instance)

    def _energy_cost(self, comm_in: np.ndarray, comm_out: np.ndarray,
                     summed: bool = False) -> np.ndarray:
        """``sum_t cost`` per (S, U) from :func:`recopt.settle.bill_components`.

        With prices constant over time the flows are summed over time first (exact:
        the cost is linear in the flows), which makes it ~T times cheaper; pass
        ``summed=True`` when ``comm_in``/``comm_out`` are already such sums (S, 1, U).
        """
        if self.time_varying_prices:
            c_plus, p_minus = self.net_consumption, self._p_minus
            if summed:
                raise ValueError("summed flows need time-invariant prices")
        else:
            c_plus, p_minus = self._net_sums
            if not summed:
                comm_in = np.asarray(comm_in).sum(axis=1, keepdims=True)
                comm_out = np.asarray(comm_out).sum(axis=1, keepdims=True)
        shape = c_plus.shape
        comp = bill_components(c_plus, p_minus, np.broadcast_to(comm_in, shape),
                               np.broadcast_to(comm_out, shape), self.prices)
        return comp["cost"].sum(axis=1)

    def bill(self, comm_in: np.ndarray, comm_out: np.ndarray, summed: bool = False
             ) -> np.ndarray:
        """Bill ``B`` per (S, U), EUR: ``B0 - (sum_t base cost - sum_t cost)``.

        Fees and billing periods are the same with and without the community, so
        ``B - B0`` is the difference of the time-summed energy costs of
        :func:`recopt.settle.bill_components`; equal to :func:`recopt.settle.bills`
        (tested). ``summed``: the flows are time sums shaped (S, 1, U) (only with
        time-invariant prices).
        """
        return self.baseline_bill - (
            self.baseline_cost - self._energy_cost(comm_in, comm_out, summed))


def evaluate_arrays(
    context: MetricContext,
    comm_in: np.ndarray,
    comm_out: np.ndarray | None = None,
    *,
    allocation: np.ndarray | None = None,
    metrics: Sequence[str] | str | None = None,
    co2_intensity=None,
    taken: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """NumPy core of :func:`evaluate`: a dict of arrays (per scenario, or (S, U)).

    ``comm_in``, ``comm_out``, ``allocation`` are NumPy arrays (S, T, U) in kWh per
    step; ``comm_out`` is needed only for the money metrics; ``co2_intensity`` in
    g CO2eq/kWh broadcastable to (S, T). Same names and meaning as :func:`evaluate`.
    ``taken``: ``min(allocation, C+)`` if known (see :func:`energy_to_shift`); pass
    ``comm_in`` when ``allocation`` is the settled ``alloc`` of one round.
    """
    chosen = _select(metrics)
    explicit = metrics is not None
    for name, given, what in (("energy_to_shift", allocation, "the key's allocation"),
                              ("co2_avoided", co2_intensity, "a carbon-intensity series"),
                              ("bill_saving", comm_out, "comm_out"),
                              ("saving_ratio", comm_out, "comm_out"),
                              ("gini", comm_out, "comm_out"),
                              ("collective_bill", comm_out, "comm_out")):
        if name in chosen and given is None:
            if explicit:
                raise ModelError(f"{name} needs {what}")
            chosen.discard(name)
    ctx = context
    cin = np.asarray(comm_in, dtype=float)
    g = ctx.community_production
    out: dict[str, np.ndarray] = {}
    g_sum = g.sum(axis=-1)
    cin_t = np.einsum("stu->su", cin)
    shared = cin_t.sum(axis=-1)
    if chosen & {"self_consumption_rate", "sharing_upper_bound", "surplus_injected"}:
        out["community_production"] = g_sum
        out["shared_energy"] = shared
    if "self_consumption_rate" in chosen:
        out["self_consumption_rate"] = _ratio(shared, g_sum)  # = self_consumption_rate()
    if "sharing_upper_bound" in chosen:
        out["sharing_upper_bound"] = ctx.upper_bound
        out["scr_upper_bound"] = _ratio(ctx.upper_bound, g_sum)
    if "surplus_injected" in chosen:
        out["surplus_injected"] = np.maximum(g_sum - shared, 0.0)
    if "self_sufficiency" in chosen:
        ssr = _ratio(ctx.own_use_total + cin_t, ctx.consumption_total)
        out["self_sufficiency"] = ssr
        agg = ssr[..., ctx.aggregate]
        out["self_sufficiency_mean"] = _ratio(np.nansum(agg, axis=-1),
                                              (~np.isnan(agg)).sum(axis=-1))
    if chosen & {"bill_saving", "saving_ratio", "gini", "collective_bill"}:
        if ctx.time_varying_prices:
            bill = ctx.bill(cin, np.asarray(comm_out, dtype=float))
        else:
            cout_t = np.einsum("stu->su", np.asarray(comm_out, dtype=float))[:, None, :]
            bill = ctx.bill(cin_t[:, None, :], cout_t, summed=True)
        base = ctx.baseline_bill
        account = base0 = None
        if ctx.plant.any():  # the plants' money is the community account, not a bill
            account = -bill[..., ctx.plant].sum(axis=-1)
            base0 = -base[..., ctx.plant].sum(axis=-1)
            bill = np.where(ctx.plant, 0.0, bill)
            base = np.where(ctx.plant, 0.0, base)
        saving = base - bill
        if chosen & {"bill_saving", "gini"}:
            out["bill"] = bill
            out["baseline_bill"] = base
            out["bill_saving"] = saving
            out["bill_saving_mean"] = saving[..., ctx.aggregate].mean(axis=-1)
        if "saving_ratio" in chosen:
            out["saving_ratio"] = saving_ratio(saving, base)
        if "gini" in chosen:
            out["gini"] = gini(saving[..., ctx.aggregate])
        if "collective_bill" in chosen:
            cb, cb0 = bill.sum(axis=-1), base.sum(axis=-1)
            if account is not None and base0 is not None:  # members minus the account
                cb, cb0 = cb - account, cb0 - base0
                out["community_account"] = account
                out["baseline_community_account"] = base0
            out["collective_bill"] = cb
            out["baseline_collective_bill"] = cb0
            out["collective_saving_ratio"] = saving_ratio(cb0 - cb, cb0)
    if "energy_to_shift" in chosen:
        ets = energy_to_shift(ctx.net_consumption, allocation, ctx.starts,
                              daily_need=ctx.daily_need, taken=taken)
        out["energy_to_shift"] = ets
        out["energy_to_shift_total"] = ets.sum(axis=-1)
    if "co2_avoided" in chosen:
        out["co2_avoided"] = co2_avoided(cin, co2_intensity)
    return out


METRIC_ATTRS = {
    "community_production": ("kWh", "sum_t G"),
    "shared_energy": ("kWh", "sum_{t,i} comm_in"),
    "self_consumption_rate": ("1", "community self-consumption rate (Ospina 19)"),
    "sharing_upper_bound": ("kWh", "sum_t min(G, sum_i C+): the most any key shares"),
    "scr_upper_bound": ("1", "SCR upper bound"),
    "surplus_injected": ("kWh", "community surplus to the grid"),
    "self_sufficiency": ("1", "self-sufficiency rate (de Villena 17)"),
    "self_sufficiency_mean": ("1", "mean SSR over consuming members"),
    "bill": ("EUR", "bill (Mustika 15)"),
    "baseline_bill": ("EUR", "bill without community"),
    "bill_saving": ("EUR", "bill saving B0 - B"),
    "bill_saving_mean": ("EUR", "mean bill saving per member"),
    "saving_ratio": ("1", "saving ratio (B0 - B) / |B0| (Mustika 46)"),
    "gini": ("1", "Gini of bill savings (Ospina 22)"),
    "collective_bill": ("EUR", "sum_i B_i (Mustika 16) minus the community account"),
    "community_account": ("EUR", "revenue of the community-owned plants"),
    "baseline_community_account": ("EUR", "plant revenue without sharing"),
    "baseline_collective_bill": ("EUR", "sum_i B0_i"),
    "collective_saving_ratio": ("1", "(sum B0 - sum B) / |sum B0|"),
    "energy_to_shift": ("kWh", "energy to shift (Ospina 24)"),
    "energy_to_shift_total": ("kWh", "community energy to shift (Ospina 24)"),
    "co2_avoided": ("tCO2eq", "CO2 avoided (Ospina 25), intensity in gCO2eq/kWh"),
}


def _intensity(instance: xr.Dataset, phi) -> np.ndarray:
    if isinstance(phi, xr.DataArray):
        extra = {str(d) for d in phi.dims} - {SCENARIO, TIME}
        if extra:
            raise DimensionError(
                f"co2_intensity has dims {sorted(extra)}; allowed: scenario, time",
                variable="co2_intensity")
        if TIME in phi.dims and phi.sizes[TIME] != instance.sizes[TIME]:
            raise DimensionError(
                f"co2_intensity has {phi.sizes[TIME]} steps; the instance has "
                f"{instance.sizes[TIME]}", variable="co2_intensity")
        phi = phi.drop_vars([d for d in (SCENARIO, TIME) if d in phi.coords])
        if SCENARIO not in phi.dims:  # one series for every scenario (fast path)
            return np.asarray(phi.values, dtype=float)
        tmpl = instance["consumption"].isel(member=0, drop=True).drop_vars(
            [SCENARIO, TIME])
        return np.asarray(phi.broadcast_like(tmpl).transpose(SCENARIO, TIME).values, float)
    return np.asarray(phi, dtype=float)


def evaluate(
    instance: xr.Dataset,
    comm_in,
    comm_out,
    *,
    metrics: Sequence[str] | str | None = None,
    co2_intensity=None,
    allocation=None,
    context: MetricContext | None = None,
    aggregate_members: Sequence[str] | None = None,
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
    context : MetricContext, optional
        Precomputed per-instance data (build once with ``MetricContext(instance)``
        when evaluating many keys on one instance).
    aggregate_members : sequence of str, optional
        Members counted in ``gini``, ``bill_saving_mean`` and
        ``self_sufficiency_mean`` (ignored when ``context`` is given; see
        :class:`MetricContext`). Default: all but a community battery.

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
    ctx = context if context is not None else MetricContext(instance, aggregate_members)
    cin = np.asarray(stm_input(instance, "comm_in", comm_in))
    cout = None if comm_out is None else np.asarray(stm_input(instance, "comm_out", comm_out))
    alloc = (None if allocation is None
             else np.asarray(stm_input(instance, "allocation", allocation)))
    phi = None if co2_intensity is None else _intensity(instance, co2_intensity)
    res = evaluate_arrays(ctx, cin, cout, allocation=alloc, metrics=metrics,
                          co2_intensity=phi)
    data = {}
    for name, value in res.items():
        dims = (SCENARIO, MEMBER) if value.ndim == 2 else (SCENARIO,)
        unit, long_name = METRIC_ATTRS[name]
        data[name] = (dims, value, {"units": unit, "long_name": long_name})
    ds = xr.Dataset(data, coords=ctx.coords)
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
