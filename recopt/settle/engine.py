"""The settlement rule: keys -> energy flows -> bills.

This module is the *one* place where a repartition key (a vector of coefficients
``lambda`` or of allocated energies) is turned into energy flows and money. Every key
family (rule-based, optimised, typed in by a user) and every model's result goes
through it, so that their bills are comparable.

The rule is the DSO's rule of Mustika et al. (Applied Energy 2022), eqs (4)-(16),
with the meter values of de Villena et al. (IEEE Access 2022), eqs (1)-(2), and the
bill of de Villena eq. (7) / Mustika eqs (13)-(15). See
``docs/reconstruction/allocation-keys.md`` ("Settlement") for the interpretations fixed
by the project; full citations with DOIs in ``docs/references.md``.

Two layers:

* a pure-NumPy core (:func:`meter_flows`, :func:`community_production`,
  :func:`settle_arrays`, :func:`settle_rounds`, :func:`bill_components`, on the
  round kernels of :mod:`recopt.settle.kernels` that the brute force, LOGAAS and
  the KoR extraction call too instead of re-deriving the rule) working on
  arrays shaped ``(scenario, time, member)`` -- the member axis is always the *last*
  axis, and every operation is vectorised (loops only over allocation rounds);
* thin xarray wrappers on an instance (:func:`bills`, :func:`settle`).

Units: energies in kWh per time step (never power, so no ``Delta t`` factor as in
Mustika (13)-(14)), prices in EUR/kWh, fees in EUR per billing period, money in EUR.

Numerical conventions: tiny negative round-off is clipped to 0, the pro-rata credit
of the surplus (Mustika (11)) is 0 where the community production is 0 (no NaN, no
division warning), allocations that exceed what is available by round-off are
scaled back so that energy is conserved.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from recopt.data.instance import billing_period_index
from recopt.data.roles import plant_mask
from recopt.data.schema import DIMS, MEMBER, PRICE_VARIABLES, SCENARIO, TIME
from recopt.data.view import price_cube, stm
from recopt.errors import DimensionError, MissingVariableError, ModelError, NonFiniteError
from recopt.settle.kernels import (
    cap_offer,
    member_sum,
    round_leftover,
    round_step,
    step_product,
)

#: Tolerance on ``sum_i lambda_i <= 1`` (Mustika (6)) and on ``sum of shares <= 1``.
KEY_SUM_TOL = 1e-9
#: Absolute tolerance (kWh) on given energies (allocations, community flows), so
#: that solver output slightly outside its bounds is accepted and clipped.
ENERGY_ATOL = 1e-6

ArrayLike = Any
KeyRule = Callable[[np.ndarray, np.ndarray], ArrayLike]


# ---------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------
def _as_float(name: str, x: ArrayLike) -> np.ndarray:
    a = np.asarray(x, dtype=float)
    if not np.all(np.isfinite(a)):
        raise NonFiniteError(f"{name} holds NaN or infinite values", variable=name)
    return a


def _broadcast(name: str, x: ArrayLike, shape: tuple[int, ...]) -> np.ndarray:
    a = _as_float(name, x)
    try:
        return np.broadcast_to(a, shape)
    except ValueError:
        raise DimensionError(
            f"{name} of shape {a.shape} cannot be broadcast to (scenario, time, member) "
            f"= {shape}",
            variable=name,
        ) from None


def _step_name(index: tuple[int, ...], labels: Mapping[str, Sequence | np.ndarray] | None) -> str:
    """Human-readable name of the step ``index`` = (..., scenario, time)."""
    if len(index) < 2:
        return f"step {index}"
    s, t = int(index[-2]), int(index[-1])
    labels = labels or {}
    parts = []
    for dim, i in ((SCENARIO, s), (TIME, t)):
        lab = labels.get(dim)
        if lab is not None and len(lab) > i:
            value = lab[i]
            if isinstance(value, np.datetime64):
                value = np.datetime_as_string(value, unit="s")
            parts.append(f"{dim} {value!s} (index {i})")
        else:
            parts.append(f"{dim} index {i}")
    return ", ".join(parts)


def _member_name(i: int, labels: Mapping[str, Sequence | np.ndarray] | None) -> str:
    lab = (labels or {}).get(MEMBER)
    if lab is not None and len(lab) > i:
        return f"member {lab[i]!s} (index {i})"
    return f"member index {i}"


def _first(mask: np.ndarray) -> tuple[int, ...]:
    return tuple(int(v) for v in np.argwhere(mask)[0])


def _check_keys(
    keys: np.ndarray, labels: Mapping[str, Sequence | np.ndarray] | None, what: str = "keys"
) -> np.ndarray:
    """Check ``keys >= 0`` and ``sum_i keys <= 1 + KEY_SUM_TOL`` (Mustika (6)).

    Returns the keys with tiny negative values clipped to 0.
    """
    neg = keys < -KEY_SUM_TOL
    if np.any(neg):
        idx = _first(neg)
        raise ModelError(
            f"{what} must be >= 0; got {keys[idx]:.6g} at {_step_name(idx[:-1], labels)}, "
            f"{_member_name(idx[-1], labels)}"
        )
    keys = np.maximum(keys, 0.0)
    total = member_sum(keys)
    over = total > 1.0 + KEY_SUM_TOL
    if np.any(over):
        idx = _first(over)
        raise ModelError(
            f"{what} of a step must sum to at most 1 (Mustika eq. (6)); they sum to "
            f"{total[idx]:.9g} at {_step_name(idx, labels)}"
            + (f" and at {int(over.sum()) - 1} other step(s)" if over.sum() > 1 else "")
        )
    return keys


def _offer(keys: np.ndarray, available: np.ndarray, labels, what: str = "keys") -> np.ndarray:
    """Allocated energy ``lambda * available`` (Mustika (5)), checked and capped."""
    keys = _check_keys(keys, labels, what)
    return cap_offer(step_product(keys, available), available, inplace=True)


#: What :func:`_finish` can compute (Mustika (8)-(12)).
FLOW_OUTPUTS = ("grid_in", "surplus", "grid_out", "comm_out")


def _finish(
    net_consumption: np.ndarray,
    net_production: np.ndarray,
    production_total: np.ndarray,
    comm_in: np.ndarray,
    outputs: Sequence[str] = FLOW_OUTPUTS,
) -> dict[str, np.ndarray]:
    """Flows that follow from the community intake (Mustika (8)-(12)).

    ``outputs``: the subset of :data:`FLOW_OUTPUTS` wanted (the others are not
    computed, so a caller that needs only ``comm_out`` makes no ``grid_in``).
    """
    out = {}
    if "grid_in" in outputs:
        grid_in = np.subtract(net_consumption, comm_in)
        out["grid_in"] = np.maximum(grid_in, 0.0, out=grid_in)  # (8)
    surplus = np.subtract(production_total, member_sum(comm_in))
    np.maximum(surplus, 0.0, out=surplus)  # (9)-(10)
    if "surplus" in outputs:
        out["surplus"] = surplus
    if "grid_out" in outputs or "comm_out" in outputs:
        # (11): surplus credited pro rata to injection; ratio in [0, 1], 0 where G == 0
        ratio = np.zeros_like(production_total)
        np.divide(surplus, production_total, out=ratio, where=production_total > 0)
        np.clip(ratio, 0.0, 1.0, out=ratio)
        grid_out = step_product(net_production, ratio)
        if "grid_out" in outputs:
            out["grid_out"] = grid_out
        if "comm_out" in outputs:
            buf = np.empty_like(grid_out) if "grid_out" in outputs else grid_out
            # (12); >= 0 without clipping: P- >= 0 and ratio <= 1 give fl(P- * ratio) <= P-
            out["comm_out"] = np.subtract(net_production, grid_out, out=buf)
    return out


def _net_pair(net_consumption: ArrayLike, net_production: ArrayLike):
    c = _as_float("net_consumption", net_consumption)
    p = _as_float("net_production", net_production)
    if c.shape != p.shape:
        c, p = np.broadcast_arrays(c, p)
    if c.ndim < 1:
        raise DimensionError("net_consumption must have a member axis (the last one)")
    # round-off guard: meter values are non-negative by definition
    return np.maximum(c, 0.0), np.maximum(p, 0.0)


# ---------------------------------------------------------------------------------
# NumPy core
# ---------------------------------------------------------------------------------
def meter_flows(consumption: ArrayLike, production: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Meter values after individual self-consumption.

    ``C+ = max(0, C - P)`` (withdrawal) and ``P- = max(0, P - C)`` (injection):
    de Villena eqs (1)-(2), Mustika's ``Pmeter+`` and ``Pmeter-``.

    Parameters
    ----------
    consumption, production : array_like
        Energy consumed / produced per step, kWh; any broadcastable shapes
        (typically ``(scenario, time, member)``).

    Returns
    -------
    net_consumption, net_production : numpy.ndarray
        ``C+`` and ``P-`` in kWh per step, both >= 0 and never both > 0.
    """
    c = _as_float("consumption", consumption)
    p = _as_float("production", production)
    diff = np.subtract(c, p)
    c_plus = np.maximum(diff, 0.0)
    # p - c == -(c - p) exactly in IEEE arithmetic: reuse the difference in place
    p_minus = np.maximum(np.negative(diff, out=diff), 0.0, out=diff)
    return c_plus, p_minus


def community_production(net_production: ArrayLike) -> np.ndarray:
    """Community production available for sharing, ``G = sum_i P-_i`` (Mustika (4)).

    Parameters
    ----------
    net_production : array_like
        Injections ``P-``, kWh per step, member on the last axis.

    Returns
    -------
    numpy.ndarray
        ``G`` in kWh per step, shape of ``net_production`` without its last axis.
    """
    return np.maximum(_as_float("net_production", net_production), 0.0).sum(axis=-1)


def settle_arrays(
    net_consumption: ArrayLike,
    net_production: ArrayLike,
    keys: ArrayLike | None = None,
    allocation: ArrayLike | None = None,
    *,
    labels: Mapping[str, Sequence | np.ndarray] | None = None,
    validated: bool = False,
    outputs: Sequence[str] | None = None,
    community_production: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Settle one step-wise repartition key (Mustika eqs (4)-(12)).

    Exactly one of ``keys`` and ``allocation`` is given.

    Parameters
    ----------
    net_consumption, net_production : array_like
        ``C+`` and ``P-`` (see :func:`meter_flows`), kWh per step, shape
        ``(..., member)``, typically ``(scenario, time, member)``.
    keys : array_like, optional
        Key coefficients ``lambda >= 0`` (dimensionless), broadcastable to the
        shape of ``net_consumption``, with ``sum_i lambda <= 1 + KEY_SUM_TOL`` per
        step (Mustika (6)). Allocation ``alloc = lambda * G`` (Mustika (5)).
    allocation : array_like, optional
        Allocated energies ``alloc >= 0`` in kWh per step, with
        ``sum_i alloc <= G`` per step (up to ``ENERGY_ATOL`` kWh).
    labels : mapping, optional
        Coordinate labels by dim name (``scenario``, ``time``, ``member``), used
        only to name the offending step in error messages.
    validated : bool, default False
        Fast entry for arrays the library made itself (the evaluation driver, the
        brute force): the caller guarantees ``net_consumption`` and
        ``net_production`` are finite float arrays ``>= 0`` of one shape, keys
        ``>= 0`` summing to at most 1 per step (or allocations ``>= 0`` summing to at
        most ``G`` up to round-off). Nothing is checked, clipped or copied; the rule
        applied is the same (the offer is still scaled back by :func:`_cap_offer`),
        so the results are identical to the checked path on valid input (tested).
    outputs : sequence of str, optional
        Only these entries of the result are computed and returned (e.g.
        ``("alloc", "comm_in", "comm_out")`` for the metrics); default all.
    community_production : numpy.ndarray, optional
        ``G = sum_i P-_i`` if already known (only used with ``validated=True``).

    Returns
    -------
    dict of numpy.ndarray
        ``alloc`` (kWh, ``Palloc``, (5)); ``comm_in`` energy taken from the
        community (``Pcomm+ = min(alloc, C+)``, (7)); ``grid_in`` energy bought
        from the grid (``Pgd+ = C+ - Pcomm+``, (8)); ``surplus`` per step
        (``G - sum_i Pcomm+``, (9)-(10)), shape without the member axis;
        ``grid_out`` energy sold to the grid (``Pgd- = P-/G * surplus``, 0 where
        ``G == 0``, (11)); ``comm_out`` energy sold to the community
        (``Pcomm- = P- - Pgd-``, (12)); ``community_production`` ``G`` ((4)).
        All in kWh per step.

    Raises
    ------
    recopt.errors.ModelError
        Neither or both of ``keys``/``allocation`` given; negative keys or
        allocations; keys summing above 1 or allocations above ``G`` (the message
        names the first offending step).
    """
    if (keys is None) == (allocation is None):
        raise ModelError(
            "give exactly one of keys (coefficients) or allocation (energies) to settle"
        )
    wanted: tuple[str, ...] = ("alloc", "comm_in", "community_production") + FLOW_OUTPUTS
    if outputs is not None:
        unknown = sorted(set(outputs) - set(wanted))
        if unknown:
            raise ModelError(f"unknown settlement output(s) {unknown}; known: {wanted}")
        wanted = tuple(outputs)
    if validated:  # trusted arrays: same rule, no checks and no defensive copies
        c_plus = np.asarray(net_consumption, dtype=float)
        p_minus = np.asarray(net_production, dtype=float)
        shape = c_plus.shape
        g = p_minus.sum(axis=-1) if community_production is None else community_production
        if keys is not None:
            lam = np.asarray(keys, dtype=float)
            alloc = cap_offer(step_product(lam, g), g, inplace=True)  # (5)
        else:
            alloc = cap_offer(np.asarray(allocation, dtype=float), g)
        alloc = np.broadcast_to(alloc, shape) if alloc.shape != shape else alloc
    else:
        c_plus, p_minus = _net_pair(net_consumption, net_production)
        shape = c_plus.shape
        g = p_minus.sum(axis=-1)
        if keys is not None:
            alloc = _offer(_broadcast("keys", keys, shape), g, labels)
        else:
            alloc = _broadcast("allocation", allocation, shape)
            neg = alloc < -ENERGY_ATOL
            if np.any(neg):
                idx = _first(neg)
                raise ModelError(
                    f"allocation must be >= 0 kWh; got {alloc[idx]:.6g} at "
                    f"{_step_name(idx[:-1], labels)}, {_member_name(idx[-1], labels)}"
                )
            alloc = np.maximum(alloc, 0.0)
            total = member_sum(alloc)
            over = total > g + ENERGY_ATOL + KEY_SUM_TOL * g
            if np.any(over):
                idx = _first(over)
                raise ModelError(
                    f"allocation exceeds the community production: {total[idx]:.9g} kWh "
                    f"allocated but G = {g[idx]:.9g} kWh at {_step_name(idx, labels)}"
                )
            alloc = cap_offer(alloc, g, inplace=True)
    comm_in = np.minimum(alloc, c_plus)  # (7)
    out = {"alloc": alloc, "comm_in": comm_in}
    out.update(_finish(c_plus, p_minus, g, comm_in, [w for w in FLOW_OUTPUTS if w in wanted]))
    out["community_production"] = g
    return {k: out[k] for k in wanted}


@dataclass(frozen=True)
class Round:
    """One round of a multi-round (iterative) allocation.

    Attributes
    ----------
    share : float
        Fraction of the community production ``G`` put on the table in this round
        (``0 <= share``; the shares of all rounds sum to at most 1).
    keys : array_like or callable
        Key coefficients of the round, broadcastable to ``(scenario, time,
        member)``, or a rule ``keys(remaining_need, available) -> lambda`` with
        ``remaining_need`` (kWh, shape ``(..., member)``) and ``available`` (kWh,
        shape ``(...)``), so that dynamic rules (e.g. :func:`prorata_need`) plug in.
    carry : bool
        If True, the energy that earlier rounds did not hand out (unallocated or
        allocated beyond the need) and that no round has reused yet is added to
        this round's available energy. If False, it stays in the pool for a later
        carrying round, or ends up in the final surplus.
    name : str, optional
        Label of the round (for reports).
    """

    share: float
    keys: ArrayLike | KeyRule
    carry: bool = True
    name: str | None = None


def settle_rounds(
    net_consumption: ArrayLike,
    net_production: ArrayLike,
    rounds: Sequence[Round],
    *,
    labels: Mapping[str, Sequence | np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Settle a multi-round (iterative) allocation, as Wallonia and Brussels allow.

    Round ``r`` puts ``available_r = share_r * G`` (plus, when ``carry``, what
    earlier rounds left unallocated or unused) on the table, offers
    ``lambda_r * available_r`` to each member (Mustika (5) per round) and each
    member takes ``take_r = min(lambda_r * available_r, remaining_need)`` (Mustika
    (7) per round); ``remaining_need -= take_r``. The final surplus
    ``G - sum_r sum_i take_r`` is credited pro rata to injection (Mustika (11)).
    A single round with share 1 equals :func:`settle_arrays` exactly.

    Parameters
    ----------
    net_consumption, net_production : array_like
        ``C+`` and ``P-`` in kWh per step, shape ``(..., member)``.
    rounds : sequence of Round
        The rounds, in order; ``sum_r share_r <= 1 + KEY_SUM_TOL``.
    labels : mapping, optional
        Coordinate labels by dim, for error messages only.

    Returns
    -------
    dict of numpy.ndarray
        The keys of :func:`settle_arrays` (``alloc`` is the total offered energy
        ``sum_r lambda_r * available_r``; ``comm_in = sum_r take_r``), plus
        ``round_keys``, ``round_offer``, ``round_take`` (shape ``(round, ...,
        member)``) and ``round_available`` (shape ``(round, ...)``), kWh per step.

    Raises
    ------
    recopt.errors.ModelError
        No rounds, negative shares, shares summing above 1, or invalid keys in a
        round (the message names the round and the step).
    """
    rounds = list(rounds)
    if not rounds:
        raise ModelError("settle_rounds needs at least one Round")
    for r, rnd in enumerate(rounds):
        if not isinstance(rnd, Round):
            raise ModelError(f"round {r} is {type(rnd).__name__}, expected recopt.settle.Round")
        if not np.isfinite(rnd.share) or rnd.share < 0:
            raise ModelError(f"round {r} has share {rnd.share!r}; shares must be >= 0")
    share_sum = float(sum(rnd.share for rnd in rounds))
    if share_sum > 1.0 + KEY_SUM_TOL:
        raise ModelError(
            f"the shares of the rounds sum to {share_sum:.9g} > 1; at most the whole "
            "community production can be shared"
        )
    c_plus, p_minus = _net_pair(net_consumption, net_production)
    shape = c_plus.shape
    g = p_minus.sum(axis=-1)
    need = c_plus.copy()
    comm_in = np.zeros(shape)
    alloc = np.zeros(shape)
    pool = np.zeros(g.shape)  # energy left by earlier rounds, not yet carried
    keys_r, offers, takes, avails = [], [], [], []
    for r, rnd in enumerate(rounds):
        available = rnd.share * g
        if rnd.carry:
            available = available + pool
            pool = np.zeros(g.shape)
        what = f"keys of round {r}" + (f" ({rnd.name})" if rnd.name else "")
        raw = rnd.keys(need.copy(), available.copy()) if callable(rnd.keys) else rnd.keys
        lam = _check_keys(_broadcast(what, raw, shape), labels, what)
        offer, take, need = round_step(lam, available, need)
        comm_in = comm_in + take
        alloc = alloc + offer
        pool = pool + round_leftover(available, member_sum(take))
        keys_r.append(np.array(lam))
        offers.append(offer)
        takes.append(take)
        avails.append(available)
    out = {"alloc": alloc, "comm_in": comm_in}
    out.update(_finish(c_plus, p_minus, g, comm_in))
    out["community_production"] = g
    out["round_keys"] = np.stack(keys_r)
    out["round_offer"] = np.stack(offers)
    out["round_take"] = np.stack(takes)
    out["round_available"] = np.stack(avails)
    return out


def bill_components(
    net_consumption: ArrayLike,
    net_production: ArrayLike,
    comm_in: ArrayLike,
    comm_out: ArrayLike,
    prices: Mapping[str, ArrayLike],
) -> dict[str, np.ndarray]:
    """Money per member and step (Mustika (13)-(14) without the fee, de Villena (7)).

    ``grid_in = C+ - comm_in``, ``grid_out = P- - comm_out`` and
    ``cost = b * grid_in - s * grid_out + cb * comm_in - cs * comm_out``.

    Parameters
    ----------
    net_consumption, net_production : array_like
        ``C+`` and ``P-``, kWh per step, shape ``(scenario, time, member)``.
    comm_in, comm_out : array_like
        Energy bought from / sold to the community, kWh per step, broadcastable to
        that shape; ``0 <= comm_in <= C+`` and ``0 <= comm_out <= P-`` (values
        outside by at most ``ENERGY_ATOL`` kWh are clipped).
    prices : mapping
        ``price_grid_buy`` (b), ``price_grid_sell`` (s), ``price_community_buy``
        (cb), ``price_community_sell`` (cs), in EUR/kWh, each broadcastable to
        ``(scenario, time, member)``.

    Returns
    -------
    dict of numpy.ndarray, shape (scenario, time, member)
        ``grid_in``, ``grid_out`` (kWh); ``grid_cost = b*grid_in - s*grid_out``,
        ``community_cost = cb*comm_in - cs*comm_out`` and ``cost`` (their sum), EUR.
    """
    c_plus, p_minus = _net_pair(net_consumption, net_production)
    shape = c_plus.shape
    flows = {}
    for name, x, cap in (("comm_in", comm_in, c_plus), ("comm_out", comm_out, p_minus)):
        a = _broadcast(name, x, shape)
        bad = (a < -ENERGY_ATOL) | (a > cap + ENERGY_ATOL + KEY_SUM_TOL * cap)
        if np.any(bad):
            idx = _first(bad)
            limit = "C+ (net consumption)" if name == "comm_in" else "P- (net production)"
            raise ModelError(
                f"{name} must lie in [0, {limit}]; got {a[idx]:.9g} kWh against "
                f"{cap[idx]:.9g} kWh at {_step_name(idx[:-1], None)}, "
                f"{_member_name(idx[-1], None)}"
            )
        flows[name] = np.clip(a, 0.0, cap)
    p = {}
    for name in PRICE_VARIABLES:
        if name not in prices:
            raise MissingVariableError(f"price {name!r} is missing", variable=name)
        p[name] = _broadcast(name, prices[name], shape)
    grid_in = c_plus - flows["comm_in"]
    grid_out = p_minus - flows["comm_out"]
    grid_cost = p["price_grid_buy"] * grid_in - p["price_grid_sell"] * grid_out
    community_cost = (
        p["price_community_buy"] * flows["comm_in"]
        - p["price_community_sell"] * flows["comm_out"]
    )
    return {
        "grid_in": grid_in,
        "grid_out": grid_out,
        "grid_cost": grid_cost,
        "community_cost": community_cost,
        "cost": grid_cost + community_cost,
    }


# ---------------------------------------------------------------------------------
# xarray wrappers
# ---------------------------------------------------------------------------------
def _template(instance: xr.Dataset) -> xr.DataArray:
    for name in ("consumption", "production"):
        if name not in instance:
            raise MissingVariableError(f"the instance has no {name!r}", variable=name)
        if set(instance[name].dims) != set(DIMS):
            raise DimensionError(
                f"{name} has dims {instance[name].dims}; expected {DIMS}", variable=name
            )
    return instance["consumption"].transpose(*DIMS)


def _labels(instance: xr.Dataset) -> dict[str, np.ndarray]:
    return {d: np.asarray(instance[d].values) for d in DIMS if d in instance.coords}


def stm_input(instance: xr.Dataset, name: str, x: ArrayLike) -> np.ndarray:
    """An input over (scenario, time, member) as a NumPy array of the full shape.

    Accepts a DataArray on any subset of the instance dims (coordinates must match
    the instance's), or a NumPy array shaped (S, T, U) or (T, U).
    """
    tmpl = _template(instance)
    shape = tmpl.shape
    if isinstance(x, xr.DataArray):
        extra = {str(d) for d in x.dims} - set(DIMS)
        if extra:
            raise DimensionError(
                f"{name} has dims {sorted(extra)} that the instance does not have; "
                f"allowed: any subset of {DIMS}",
                variable=name,
            )
        for d in x.dims:
            if d in x.coords and d in tmpl.coords:
                if x.sizes[d] != tmpl.sizes[d] or not np.array_equal(
                    np.asarray(x[d].values), np.asarray(tmpl[d].values)
                ):
                    raise DimensionError(
                        f"{name}'s {d!r} coordinate does not match the instance's",
                        variable=name,
                    )
            elif x.sizes[d] != tmpl.sizes[d]:
                raise DimensionError(
                    f"{name} has {x.sizes[d]} {d!r} entries; the instance has "
                    f"{tmpl.sizes[d]}",
                    variable=name,
                )
        data = x.variable.set_dims(dict(zip(DIMS, shape, strict=True))).transpose(*DIMS)
        return _as_float(name, np.asarray(data.values))
    a = _as_float(name, x)
    if a.ndim == 2:
        a = a[None, :, :]
    if a.ndim != 3:
        raise DimensionError(
            f"{name} given as an array must be shaped (scenario, time, member) {shape} or "
            f"(time, member) {shape[1:]}; got {a.shape}",
            variable=name,
        )
    return _broadcast(name, a, shape)


def _period_matrix(instance: xr.Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One-hot matrix (period, time), period labels and period start times."""
    idx = np.asarray(billing_period_index(instance)).astype(int)
    labels, inverse = np.unique(idx, return_inverse=True)
    n_t = idx.shape[0]
    onehot = np.zeros((labels.size, n_t))
    onehot[inverse, np.arange(n_t)] = 1.0
    first = np.argmax(onehot > 0, axis=1)
    starts = np.asarray(instance[TIME].values)[first]
    return onehot, labels, starts


def bills(instance: xr.Dataset, comm_in: ArrayLike, comm_out: ArrayLike) -> xr.Dataset:
    """THE bill function: every model's result and every key's settlement calls it.

    Bill of member ``i`` in billing period ``k``
    (Mustika (13)-(15), de Villena (7)):
    ``fee_i + sum_{t in k} (b*grid_in - s*grid_out + cb*comm_in - cs*comm_out)``
    with ``grid_in = C+ - comm_in`` and ``grid_out = P- - comm_out``. The baseline
    bill is the same with ``comm_in = comm_out = 0`` (no community). The
    subscription fee is counted once per billing period touched by the instance's
    time axis (periods from :func:`recopt.data.instance.billing_period_index`, in
    the instance's billing timezone).

    Roles (:mod:`recopt.data.roles`): a community-owned plant (role ``plant``) is
    not a member and has no bill: its rows of ``bill``, ``baseline_bill``,
    ``grid_bill``, ``community_bill`` and the per-period bills are 0, and what it
    earns, ``-(fee + sum_t cost)`` with its cost from the same formula, goes to
    ``community_account``. The collective bill is what the community pays as a
    whole: ``sum_{members} B_i - community_account`` (Mustika (16) with the plant
    as the community's asset; equal to the sum over all entries).

    Parameters
    ----------
    instance : xarray.Dataset
        A recopt instance (dims scenario, time, member).
    comm_in, comm_out : xarray.DataArray or numpy.ndarray
        Energy bought from / sold to the community, kWh per step, on (a
        broadcastable subset of) (scenario, time, member), or NumPy arrays shaped
        (S, T, U) or (T, U).

    Returns
    -------
    xarray.Dataset
        ``bill``, ``baseline_bill``, ``grid_bill`` (fee included, Mustika (13)),
        ``community_bill`` (Mustika (14)) on (scenario, member);
        ``bill_by_period``, ``baseline_bill_by_period`` on (scenario, period,
        member), with coordinate ``period_start``; ``collective_bill``,
        ``baseline_collective_bill`` on (scenario) (Mustika (16)); the community
        account ``community_account``, ``baseline_community_account`` (scenario),
        per period ``community_account_by_period`` (scenario, period) and per plant
        ``plant_revenue_by_period`` (scenario, period, member), all EUR;
        ``grid_in``, ``grid_out`` on (scenario, time, member), kWh per step.
    """
    tmpl = _template(instance)
    c_plus, p_minus = meter_flows(
        tmpl.values, stm(instance, "production")
    )
    cin = stm_input(instance, "comm_in", comm_in)
    cout = stm_input(instance, "comm_out", comm_out)
    prices = price_cube(instance)
    comp = bill_components(c_plus, p_minus, cin, cout, prices)
    zeros = np.zeros_like(c_plus)
    base = bill_components(c_plus, p_minus, zeros, zeros, prices)

    if "subscription_fee" in instance:
        fee = _as_float("subscription_fee", instance["subscription_fee"].values)
        fee = np.broadcast_to(fee, (c_plus.shape[-1],))
    else:
        fee = np.zeros(c_plus.shape[-1])
    onehot, period_labels, period_starts = _period_matrix(instance)

    def by_period(cost: np.ndarray, with_fee: bool) -> np.ndarray:
        # (S, K, U) = (K, T) x (S, T, U); einsum, not matmul: threaded BLAS's first call
        # costs ~1 s of CPU on a busy machine (measured at 12 x 35040 by 35040 x 100)
        out = np.einsum("kt,stu->sku", onehot, cost)
        return out + fee if with_fee else out

    bill_p = by_period(comp["cost"], True)
    base_p = by_period(base["cost"], True)
    n_periods = onehot.shape[0]
    grid_bill = comp["grid_cost"].sum(axis=1) + n_periods * fee
    community_bill = comp["community_cost"].sum(axis=1)
    # A community-owned plant (role "plant") has no bill of its own: what it earns
    # (its sales minus its purchases and fees) is the community's account.
    plant = plant_mask(instance)
    revenue_p = np.where(plant, -bill_p, 0.0)
    base_revenue_p = np.where(plant, -base_p, 0.0)
    if plant.any():
        bill_p = np.where(plant, 0.0, bill_p)
        base_p = np.where(plant, 0.0, base_p)
        grid_bill = np.where(plant, 0.0, grid_bill)
        community_bill = np.where(plant, 0.0, community_bill)
    account_p = revenue_p.sum(axis=-1)  # (S, K)
    base_account_p = base_revenue_p.sum(axis=-1)

    eur = {"units": "EUR"}
    kwh = {"units": "kWh"}
    sm = (SCENARIO, MEMBER)
    spm = (SCENARIO, "period", MEMBER)
    stm_dims = DIMS
    coords: dict[str, Any] = {d: tmpl[d] for d in DIMS if d in tmpl.coords}
    coords["period"] = ("period", period_labels)
    coords["period_start"] = ("period", period_starts)
    bill = bill_p.sum(axis=1)
    base_bill = base_p.sum(axis=1)
    account = account_p.sum(axis=1)
    base_account = base_account_p.sum(axis=1)
    sp = (SCENARIO, "period")
    ds = xr.Dataset(
        {
            "bill": (sm, bill, {**eur, "long_name": "bill over the horizon (Mustika (15))"}),
            "baseline_bill": (sm, base_bill, {**eur, "long_name": "bill without community"}),
            "grid_bill": (sm, grid_bill, {**eur, "long_name": "supplier bill incl. fees (13)"}),
            "community_bill": (sm, community_bill, {**eur, "long_name": "community bill (14)"}),
            "bill_by_period": (spm, bill_p, {**eur, "long_name": "bill per billing period"}),
            "baseline_bill_by_period": (
                spm, base_p, {**eur, "long_name": "bill per billing period without community"}
            ),
            "collective_bill": (
                (SCENARIO,), bill.sum(axis=-1) - account,
                {**eur, "long_name": "collective bill (16): members' bills minus the "
                 "community account"}
            ),
            "baseline_collective_bill": (
                (SCENARIO,), base_bill.sum(axis=-1) - base_account,
                {**eur, "long_name": "collective bill without community"},
            ),
            "community_account": (
                (SCENARIO,), account,
                {**eur, "long_name": "community account: revenue of the community-owned "
                 "plants"}),
            "baseline_community_account": (
                (SCENARIO,), base_account,
                {**eur, "long_name": "community account without community sharing"}),
            "community_account_by_period": (
                sp, account_p, {**eur, "long_name": "community account per billing period"}),
            "baseline_community_account_by_period": (
                sp, base_account_p,
                {**eur, "long_name": "community account per billing period without "
                 "sharing"}),
            "plant_revenue_by_period": (
                spm, revenue_p, {**eur, "long_name": "revenue of each community-owned "
                                 "plant per billing period (0 for members)"}),
            "baseline_plant_revenue_by_period": (
                spm, base_revenue_p, {**eur, "long_name": "plant revenue per billing "
                                      "period without sharing"}),
            "grid_in": (stm_dims, comp["grid_in"], {**kwh, "long_name": "energy bought from grid"}),
            "grid_out": (stm_dims, comp["grid_out"], {**kwh, "long_name": "energy sold to grid"}),
        },
        coords=coords,
    )
    return ds


def settle(
    instance: xr.Dataset,
    keys: ArrayLike | None = None,
    allocation: ArrayLike | None = None,
    rounds: Sequence[Round] | None = None,
) -> xr.Dataset:
    """Settle a repartition key on an instance and bill it (Mustika (4)-(16)).

    Exactly one of ``keys``, ``allocation``, ``rounds`` is given.

    Parameters
    ----------
    instance : xarray.Dataset
        A recopt instance (dims scenario, time, member).
    keys : xarray.DataArray or numpy.ndarray, optional
        Key coefficients (dimensionless), DataArray on any broadcastable subset of
        (scenario, time, member), or NumPy (S, T, U) / (T, U).
    allocation : xarray.DataArray or numpy.ndarray, optional
        Allocated energies in kWh per step, same forms as ``keys``.
    rounds : sequence of Round, optional
        Multi-round allocation (see :func:`settle_rounds`); array keys of a round
        may be DataArrays or NumPy arrays as above.

    Returns
    -------
    xarray.Dataset
        ``keys`` (when given), ``allocation``, ``community_intake`` (``comm_in``),
        ``community_sales`` (``comm_out``), ``net_consumption`` (C+),
        ``net_production`` (P-), ``grid_in``, ``grid_out`` on (scenario, time,
        member), kWh per step; ``surplus`` and ``community_production`` (G) on
        (scenario, time), kWh per step; with rounds, ``round_take``,
        ``round_offer`` (round, scenario, time, member) and ``round_available``
        (round, scenario, time); and every variable of :func:`bills`.
    """
    given = [n for n, v in (("keys", keys), ("allocation", allocation), ("rounds", rounds))
             if v is not None]
    if len(given) != 1:
        raise ModelError(
            "give exactly one of keys, allocation or rounds to settle"
            + (f" (got {', '.join(given)})" if given else "")
        )
    tmpl = _template(instance)
    c_plus, p_minus = meter_flows(
        tmpl.values, stm(instance, "production")
    )
    labels = _labels(instance)
    key_arr = None
    if keys is not None:
        key_arr = stm_input(instance, "keys", keys)
        res = settle_arrays(c_plus, p_minus, keys=key_arr, labels=labels)
    elif allocation is not None:
        res = settle_arrays(
            c_plus, p_minus, allocation=stm_input(instance, "allocation", allocation),
            labels=labels,
        )
    else:
        assert rounds is not None  # exactly one of keys, allocation, rounds
        prepared = [
            rnd if not isinstance(rnd, Round) or callable(rnd.keys)
            else Round(rnd.share, stm_input(instance, f"keys of round {r}", rnd.keys),
                       rnd.carry, rnd.name)
            for r, rnd in enumerate(rounds)
        ]
        res = settle_rounds(c_plus, p_minus, prepared, labels=labels)

    b = bills(instance, res["comm_in"], res["comm_out"])
    kwh = {"units": "kWh"}
    stm_dims = DIMS
    st = (SCENARIO, TIME)
    data: dict[str, tuple[Any, ...]] = {}
    if key_arr is not None:
        data["keys"] = (stm_dims, np.array(key_arr), {"units": "1", "long_name": "key (5)"})
    data.update(
        {
            "allocation": (stm_dims, res["alloc"], {**kwh, "long_name": "allocated energy (5)"}),
            "community_intake": (
                stm_dims, res["comm_in"], {**kwh, "long_name": "energy bought from community (7)"}
            ),
            "community_sales": (
                stm_dims, res["comm_out"], {**kwh, "long_name": "energy sold to community (12)"}
            ),
            "net_consumption": (stm_dims, c_plus, {**kwh, "long_name": "meter withdrawal C+"}),
            "net_production": (stm_dims, p_minus, {**kwh, "long_name": "meter injection P-"}),
            "surplus": (st, res["surplus"], {**kwh, "long_name": "collective surplus (10)"}),
            "community_production": (
                st, res["community_production"], {**kwh, "long_name": "community production G (4)"}
            ),
        }
    )
    if rounds is not None:
        rstm = ("round",) + stm_dims
        data["round_keys"] = (rstm, res["round_keys"], {"units": "1"})
        data["round_offer"] = (rstm, res["round_offer"], kwh)
        data["round_take"] = (rstm, res["round_take"], kwh)
        data["round_available"] = (("round",) + st, res["round_available"], kwh)
    ds = xr.Dataset(data, coords={d: tmpl[d] for d in DIMS if d in tmpl.coords})
    if rounds is not None:
        ds = ds.assign_coords(round=np.arange(len(rounds)))
    ds = ds.assign({name: b[name] for name in b.data_vars})
    ds.attrs = {"energy_units": "kWh", "money_units": "EUR",
                "description": "settlement of a repartition key (Mustika eqs (4)-(16))"}
    return ds
