"""Rule-based repartition keys (Mustika KoR1-KoR7, Ospina GS/ES/PR/HEP/CA).

One implementation per key; where two papers describe the same key the differences
are parameters (e.g. ``among="all"`` for Ospina's equal share, ``among="consumers"``
for Mustika's KoR5 step 1). Every key returns a :class:`KeyPlan` -- key coefficients,
allocated energies or allocation rounds -- and every plan is settled by the one
settlement rule, :mod:`recopt.settle` (:func:`settle_plan`, :func:`settle_key`).

All arrays are shaped ``(scenario, time, member)`` (member last; any leading shape
works) and every rule is vectorised over them; the only loops are over allocation
rounds (hybrid: 2) or over members inside a sort (cascade).

Sources: Mustika et al., Applied Energy 2022, §3.2, eqs (36)-(44), Algorithms 3-4;
Ospina Lopez 2026, §4.2, eqs (15)-(18), Algorithms A.2-A.6. Units: energies kWh per
step, keys dimensionless, investments EUR. The card is ``models/keys-rule-based.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from recopt.data.instance import billing_period_index
from recopt.data.roles import member_mask
from recopt.data.schema import DIMS, MEMBER
from recopt.data.view import stm
from recopt.errors import ModelError
from recopt.keys.shapley import shapley_keys
from recopt.settle import (
    KEY_SUM_TOL,
    Round,
    member_sum,
    meter_flows,
    prorata_need,
    settle,
    settle_arrays,
    settle_rounds,
    step_product,
)
from recopt.settle.kernels import round_leftover, round_take

__all__ = [
    "GUZMAN_SHARES",
    "KeyInputs",
    "KeyPlan",
    "KeySpec",
    "KEYS",
    "OSPINA_KEYS",
    "MUSTIKA_KEYS",
    "equal_keys",
    "prorata_keys",
    "check_shares",
    "waterfill",
    "equal_among_needy",
    "make_plan",
    "settle_plan",
    "settle_key",
    "key_spec",
]

#: Ospina Algorithm A.2: the fixed shares the Guzmán Renewable community registered
#: with the Spanish DSO (14 members, in the order of the thesis), sum 1.
GUZMAN_SHARES = np.array(
    [31.0, 15.6, 10.0, 6.0, 5.7, 5.7, 4.5, 4.4, 4.0, 3.2, 3.1, 2.7, 2.7, 1.4]
) / 100.0


# ---------------------------------------------------------------------------------
# inputs and plans
# ---------------------------------------------------------------------------------
@dataclass
class KeyInputs:
    """What a rule may look at: meter values and member data.

    Attributes
    ----------
    net_consumption, net_production : numpy.ndarray
        ``C+`` and ``P-`` (:func:`recopt.settle.meter_flows`), kWh per step, shape
        ``(scenario, time, member)``.
    period : numpy.ndarray or None
        Billing-period index per time step, shape ``(time,)`` (KoR3 is static per
        billing period); None = one period.
    member_data : dict of numpy.ndarray
        Per-member data (``investment`` EUR, ``installed_power`` kW), shape ``(member,)``.
    members : numpy.ndarray or None
        Member labels, for messages.
    member_mask : numpy.ndarray of bool or None
        ``(member,)``: True for members, False for community-owned plants
        (:mod:`recopt.data.roles`); None = every entry is a member. A plant takes
        no key share: its need is set to 0 here (what it consumes itself it buys
        from the grid), equal keys divide among the members only (Ospina (16),
        A.3, A.5: ``G/M``), static keys are renormalised over the members.
    """

    net_consumption: np.ndarray
    net_production: np.ndarray
    period: np.ndarray | None = None
    member_data: dict[str, np.ndarray] = field(default_factory=dict)
    members: np.ndarray | None = None
    #: ``G = sum_i P-_i`` (kWh per step, shape without the member axis) if already
    #: known; :meth:`community_production` computes it otherwise.
    production_total: np.ndarray | None = None
    member_mask: np.ndarray | None = None

    def __post_init__(self):
        if self.member_mask is not None:
            mask = np.asarray(self.member_mask, dtype=bool).reshape(-1)
            if mask.shape != (self.net_consumption.shape[-1],):
                raise ModelError(f"member_mask must hold one flag per member "
                                 f"({self.net_consumption.shape[-1]}); got {mask.shape}")
            self.member_mask = mask
            if not mask.all():  # a plant has no need the community serves
                self.net_consumption = np.where(mask, self.net_consumption, 0.0)

    @property
    def n_members(self) -> int:
        """Entries of the member axis (members and plants)."""
        return int(self.net_consumption.shape[-1])

    @property
    def mask(self) -> np.ndarray:
        """``(member,)`` True for members (False for community-owned plants)."""
        if self.member_mask is None:
            return np.ones(self.n_members, dtype=bool)
        return self.member_mask

    @property
    def has_plants(self) -> bool:
        return self.member_mask is not None and not bool(self.member_mask.all())

    def member_shares(self, shares, what: str = "shares") -> np.ndarray:
        """Fixed shares over the member axis from one share per *member*.

        ``shares`` holds one value per member (plants left out, in member order) or
        one value per entry of the member axis (0 for every plant); sum <= 1.
        Returns the ``(n_members,)`` vector with 0 at the plants.
        """
        s = np.asarray(shares, dtype=float)
        mask = self.mask
        m = int(mask.sum())
        if self.has_plants and s.ndim == 1 and s.shape[0] == m:
            full = np.zeros(self.n_members)
            full[mask] = s
            s = full
        elif self.has_plants and (s.ndim != 1 or s.shape[0] != self.n_members):
            raise ModelError(f"{what} must hold one value per member ({m}, the "
                             f"{self.n_members - m} plant(s) left out); got shape {s.shape}")
        s = check_shares(s, self.n_members, what)
        if np.any(s[~mask] > 0):
            names = self.members[~mask] if self.members is not None else np.flatnonzero(~mask)
            raise ModelError(f"{what} give a share to the community-owned plant(s) "
                             f"{', '.join(map(str, names))}; a plant takes no key share")
        return s

    def equal_shares(self) -> np.ndarray:
        """``1/M`` for each member, 0 for the plants (Ospina (16))."""
        mask = self.mask
        return np.where(mask, 1.0 / mask.sum(), 0.0)

    def community_production(self) -> np.ndarray:
        """``G = sum_i P-_i``, kWh per step (Mustika (4)), computed once."""
        if self.production_total is None:
            self.production_total = self.net_production.sum(axis=-1)
        return self.production_total

    @classmethod
    def from_arrays(cls, consumption, production, **kw) -> KeyInputs:
        """Inputs from gross consumption and production (kWh per step)."""
        c_plus, p_minus = meter_flows(consumption, production)
        return cls(c_plus, p_minus, **kw)

    @classmethod
    def from_instance(cls, instance: xr.Dataset, net=None, production_total=None
                      ) -> KeyInputs:
        """Inputs from a recopt instance (meter values, billing periods, member data).

        ``net``: the meter values ``(C+, P-)`` of the instance if already computed
        (e.g. by :class:`recopt.metrics.community.MetricContext`), and
        ``production_total`` their ``G``.
        """
        if net is None:
            c = stm(instance, "consumption")
            p = stm(instance, "production")
            c_plus, p_minus = meter_flows(c, p)
        else:
            c_plus, p_minus = net
        data = {
            name: np.asarray(instance[name].values, dtype=float)
            for name in ("investment", "installed_power")
            if name in instance and instance[name].dims == (MEMBER,)
        }
        period = np.unique(np.asarray(billing_period_index(instance)), return_inverse=True)[1]
        mask = member_mask(instance)
        return cls(c_plus, p_minus, period=period.reshape(-1), member_data=data,
                   members=np.asarray(instance[MEMBER].values),
                   production_total=production_total,
                   member_mask=None if mask.all() else mask)


@dataclass(frozen=True)
class KeyPlan:
    """What a key hands to the settlement rule: exactly one of the three fields.

    ``keys`` (coefficients, Mustika (5)), ``allocation`` (kWh per step) or
    ``rounds`` (a multi-round allocation, :class:`recopt.settle.Round`).
    """

    keys: np.ndarray | None = None
    allocation: np.ndarray | None = None
    rounds: tuple[Round, ...] | None = None
    #: Energy the key entitles each member to (kWh per step) when it differs from
    #: what the settlement reports as allocation (multi-round keys in closed form).
    entitlement: np.ndarray | None = None

    def __post_init__(self):
        given = sum(x is not None for x in (self.keys, self.allocation, self.rounds))
        if given != 1:
            raise ModelError("a KeyPlan holds exactly one of keys, allocation or rounds")


def settle_plan(inputs: KeyInputs, plan: KeyPlan) -> dict[str, np.ndarray]:
    """Settle a plan on the NumPy core of :mod:`recopt.settle` (Mustika (4)-(12))."""
    c, p = inputs.net_consumption, inputs.net_production
    if plan.rounds is not None:
        return settle_rounds(c, p, plan.rounds)
    if plan.keys is not None:
        return settle_arrays(c, p, keys=plan.keys)
    return settle_arrays(c, p, allocation=plan.allocation)


# ---------------------------------------------------------------------------------
# building blocks (one implementation each)
# ---------------------------------------------------------------------------------
def equal_keys(need: np.ndarray, among: str = "all", mask: np.ndarray | None = None
               ) -> np.ndarray:
    """Equal keys: ``1/|N|`` (Mustika (36), Ospina (16)) or ``1/|{C+ > 0}|``.

    Parameters
    ----------
    need : numpy.ndarray
        Net consumption (or remaining need), kWh per step, member last.
    among : {"all", "consumers"}
        ``"all"``: every member gets ``1/|N|`` (KoR1, ES, Walloon egalitarian);
        ``"consumers"``: only members with ``need > 0`` at the step, ``1/|{need>0}|``
        (Mustika KoR5 step 1, eq. (40)); 0 at a step where nobody needs.
    mask : numpy.ndarray of bool, optional
        ``(member,)`` members (False: a community-owned plant, which gets 0 and is
        not counted in ``|N|``); default every entry.
    """
    need = np.asarray(need, dtype=float)
    if among == "all":  # a read-only view: the same keys at every step
        if mask is not None and not np.all(mask):
            mask = np.asarray(mask, dtype=bool)
            return np.broadcast_to(np.where(mask, 1.0 / mask.sum(), 0.0), need.shape)
        return np.broadcast_to(1.0 / need.shape[-1], need.shape)
    if among == "consumers":
        has = need > 0
        if mask is not None:
            has = has & np.asarray(mask, dtype=bool)
        count = has.sum(axis=-1, keepdims=True)
        out = np.zeros(need.shape)
        np.divide(has, count, out=out, where=count > 0)
        return out
    raise ModelError(f"among must be 'all' or 'consumers'; got {among!r}")


def members_only(keys: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """Keys with the plants' coefficients removed and the rest rescaled per step.

    ``lambda_i * sum_j lambda_j / sum_{j member} lambda_j`` for members, 0 for the
    plants (so the keys still sum to what they summed to); unchanged without plants.
    """
    if mask is None or np.all(mask):
        return keys
    k = np.where(mask, np.asarray(keys, dtype=float), 0.0)
    total = member_sum(np.asarray(keys, dtype=float))
    kept = member_sum(k)
    f = np.ones(kept.shape)
    np.divide(total, kept, out=f, where=kept > 0)
    return step_product(k, f)


def equal_among_needy(need: np.ndarray, available: np.ndarray) -> np.ndarray:
    """Round rule: equal keys among members with remaining need (cascade round)."""
    return equal_keys(need, "consumers")


def prorata_keys(weights: np.ndarray, fallback: str = "zero") -> np.ndarray:
    """Keys pro rata of non-negative weights along the member axis.

    ``lambda_i = w_i / sum_j w_j`` (Mustika (37)-(39), Ospina (17)); where all
    weights are 0: ``fallback="zero"`` gives 0 keys, ``"equal"`` gives ``1/|N|``
    (Ospina A.4's fallback; it changes nothing settled: nobody needs energy then).
    """
    w = np.asarray(weights, dtype=float)
    if np.any(w < 0):
        raise ModelError("pro-rata weights must be >= 0")
    total = member_sum(w)[..., None]
    fill = 1.0 / w.shape[-1] if fallback == "equal" else 0.0
    out = np.full(w.shape, fill)
    np.divide(w, total, out=out, where=total > 0)
    return out


def check_shares(shares, n_members: int, what: str = "shares") -> np.ndarray:
    """Validate fixed shares: one per member, ``>= 0``, summing to at most 1."""
    s = np.asarray(shares, dtype=float)
    if s.ndim != 1 or s.shape[0] != n_members:
        raise ModelError(f"{what} must hold one value per member ({n_members}); got shape "
                         f"{s.shape}")
    if not np.all(np.isfinite(s)) or np.any(s < 0):
        raise ModelError(f"{what} must be finite and >= 0; got {s.tolist()}")
    if s.sum() > 1.0 + KEY_SUM_TOL:
        raise ModelError(f"{what} sum to {s.sum():.9g} > 1 (Mustika eq. (6))")
    return s


def waterfill(need: np.ndarray, available: np.ndarray, weights=None) -> np.ndarray:
    """Weighted water-filling: the limit of repeated (weighted) equal rounds.

    Returns ``alloc_i = min(need_i, w_i * L)`` with the level ``L`` such that
    ``sum_i alloc_i = available`` (or ``alloc = need`` when ``sum need <= available``).
    With equal weights this is the cascade of Ospina Algorithm A.6 and Mustika
    Algorithm 4 (members whose remaining need fits in the equal share are satisfied
    and leave; the rest share the pool equally); with the fixed shares as weights it
    is the Flemish "optimale" redistribution. Exact, vectorised: one sort per step.

    Parameters
    ----------
    need : numpy.ndarray
        ``C+`` (or remaining need), kWh per step, shape ``(..., member)``.
    available : numpy.ndarray
        Energy to share, kWh per step, shape ``(...)``.
    weights : array_like, optional
        Non-negative weights broadcastable to ``need``; default equal. Members with
        weight 0 (or below ``1e-12`` times the largest weight) receive nothing.

    Returns
    -------
    numpy.ndarray
        Allocated (= taken) energy, kWh per step, shape of ``need``.
    """
    n = np.maximum(np.asarray(need, dtype=float), 0.0)
    g = np.asarray(available, dtype=float)
    u = n.shape[-1]
    if weights is None:
        w = None
        n_eff = n
    else:
        w = np.broadcast_to(np.asarray(weights, dtype=float), n.shape)
        if np.any(w < 0):
            raise ModelError("water-filling weights must be >= 0")
        top = w.max(axis=-1, keepdims=True)  # the allocation is scale-invariant in w
        w = np.divide(w, top, out=np.zeros(w.shape), where=top > 0)
        w = np.where(w < 1e-12, 0.0, w)  # weights below 1e-12 of the largest count as 0
        n_eff = np.where(w > 0, n, 0.0)
    g = np.broadcast_to(g, n.shape[:-1])
    total = member_sum(n_eff)
    out = np.where((g >= total)[..., None], n_eff, 0.0)  # plenty: all served; G = 0: none
    scarce = np.flatnonzero(((g > 0) & (g < total)).reshape(-1))  # only these need a level
    if scarce.size == 0:
        return out
    ns_ = n_eff.reshape(-1, u)[scarce]
    gs = g.reshape(-1)[scarce]
    if w is None:  # equal weights: the needs themselves are the levels; sort them
        ns = np.sort(ns_, axis=-1)
        w_from = np.arange(u, 0, -1, dtype=float)  # members from k on
        before = np.cumsum(ns, axis=-1)
        before -= ns  # sum of needs of members below k
        reach = before + ns * w_from >= gs[..., None]  # reached somewhere: G < total
        k = np.argmax(reach, axis=-1)
        nk = np.take_along_axis(before, k[..., None], -1)[..., 0]
        wk = w_from[k]
        level = np.maximum(gs - nk, 0.0) / wk
        flat = out.reshape(-1, u)
        flat[scarce] = np.minimum(ns_, level[..., None])
        return flat.reshape(n.shape)
    ws_ = w.reshape(-1, u)[scarce]
    ps = ws_ > 0
    q = np.zeros(ns_.shape)
    with np.errstate(over="ignore"):
        np.divide(ns_, ws_, out=q, where=ps)
    order = np.argsort(q, axis=-1, kind="stable")
    qs = np.take_along_axis(q, order, -1)
    ns = np.take_along_axis(ns_, order, -1)
    wsort = np.take_along_axis(ws_ * ps, order, -1)
    before = np.cumsum(ns, axis=-1) - ns  # sum of needs of members below k
    w_from = np.cumsum(wsort[..., ::-1], axis=-1)[..., ::-1]  # sum of weights from k on
    reach = before + qs * w_from >= gs[..., None]  # always reached somewhere: G < total
    k = np.argmax(reach, axis=-1)[..., None]
    nk = np.take_along_axis(before, k, -1)[..., 0]
    wk = np.take_along_axis(w_from, k, -1)[..., 0]
    level = np.zeros(gs.shape)
    np.divide(np.maximum(gs - nk, 0.0), wk, out=level, where=wk > 0)
    flat = out.reshape(-1, u)
    flat[scarce] = np.minimum(ns_, ws_ * ps * level[..., None])
    return flat.reshape(n.shape)


def _period_sums(x: np.ndarray, period: np.ndarray | None) -> np.ndarray:
    """Sum over the steps of each billing period, broadcast back to every step."""
    if period is None:
        return np.broadcast_to(x.sum(axis=-2, keepdims=True), x.shape)
    period = np.asarray(period).reshape(-1)
    k = int(period.max()) + 1 if period.size else 0
    onehot = np.zeros((k, period.size))
    onehot[period, np.arange(period.size)] = 1.0
    per = np.einsum("kt,...tu->...ku", onehot, x)
    return per[..., period, :]


# ---------------------------------------------------------------------------------
# the keys
# ---------------------------------------------------------------------------------
def key_equal(inputs: KeyInputs, among: str = "all") -> KeyPlan:
    """KoR1 / ES / Walloon egalitarian fixed: ``lambda = 1/|N|`` (Mustika (36), Ospina (16))."""
    return KeyPlan(keys=equal_keys(inputs.net_consumption, among, inputs.member_mask))


def key_fixed(inputs: KeyInputs, shares=None) -> KeyPlan:
    """GS / specific fixed: ``lambda_i = s_i`` given (Ospina (15), Algorithm A.2).

    ``shares`` is one value per member (sum <= 1), or ``"guzman"`` for the 14
    shares of Ospina A.2, or ``"investment"`` for shares pro rata of the instance's
    ``investment``.
    """
    if shares is None:
        raise ModelError("GS (the fixed key) needs shares, one per member (sum <= 1): "
                         "pass --shares FILE.csv (a 'member' column and a column of "
                         "shares), --shares guzman (Ospina A.2's 14 registered shares) or "
                         "--shares investment on the command line, or "
                         "key_params={'GS': {'shares': [...]}} in Python")
    if isinstance(shares, str):
        if shares == "guzman":
            shares = GUZMAN_SHARES
        elif shares == "investment":
            return key_prorata_investment(inputs)
        else:
            raise ModelError(f"unknown shares {shares!r}; give numbers, 'guzman' or "
                             "'investment'")
    s = inputs.member_shares(shares, "GS shares")
    return KeyPlan(keys=np.broadcast_to(s, inputs.net_consumption.shape))


def key_prorata_consumption(inputs: KeyInputs, fallback: str = "zero",
                            capped: bool = False) -> KeyPlan:
    """KoR2 / PR: ``lambda = C+_i / sum_j C+_j`` per step (Mustika (37), Ospina (17)-(18)).

    ``capped=True`` is Ospina's convention of Algorithm A.4 for the Energy to Shift
    (eq. (24)): the allocation is ``min(lambda G, C+)``, never above the demand, so
    her ETS of PR is 0. The settlement is the same either way (a member takes at
    most its need, Mustika (7)); only the entitlement the ETS looks at changes.
    """
    keys = members_only(prorata_keys(inputs.net_consumption, fallback), inputs.member_mask)
    if not capped:
        return KeyPlan(keys=keys)
    offer = step_product(keys, inputs.community_production())
    return KeyPlan(keys=keys, entitlement=np.minimum(offer, inputs.net_consumption))


def key_prorata_production(inputs: KeyInputs) -> KeyPlan:
    """KoR3: static per billing period, ``sum_t P-_i / sum_{j,t} P-_j`` (Mustika (38))."""
    weights = _period_sums(inputs.net_production, inputs.period)
    if inputs.has_plants:  # a plant's production is shared among the members, not keyed
        weights = np.where(inputs.mask, weights, 0.0)
    return KeyPlan(keys=prorata_keys(weights))


def key_prorata_investment(inputs: KeyInputs, investment=None, pv_cost_per_kw=None,
                           battery_kwh=None, battery_cost_per_kwh=None) -> KeyPlan:
    """KoR4: ``lambda_i = Cinv_i / sum Cinv`` (Mustika (39)).

    ``Cinv`` is ``investment`` if given, else the instance's ``investment``, else
    ``pv_cost_per_kw * installed_power (+ battery_cost_per_kwh * battery_kwh)``.
    """
    u = inputs.n_members
    if investment is None and pv_cost_per_kw is None:
        investment = inputs.member_data.get("investment")
    if investment is None:
        if pv_cost_per_kw is None or "installed_power" not in inputs.member_data:
            raise ModelError("KoR4 (prorata investment) needs the instance's 'investment', "
                             "an investment= vector, or pv_cost_per_kw with "
                             "'installed_power' in the instance")
        investment = float(pv_cost_per_kw) * inputs.member_data["installed_power"]
        if battery_kwh is not None:
            investment = investment + float(battery_cost_per_kwh or 0.0) * np.asarray(
                battery_kwh, dtype=float)
    inv = np.asarray(investment, dtype=float)
    if inputs.has_plants and inv.shape == (int(inputs.mask.sum()),):
        full = np.zeros(u)
        full[inputs.mask] = inv
        inv = full
    elif inputs.has_plants and inv.shape == (u,):
        inv = np.where(inputs.mask, inv, 0.0)  # the plant's investment is the community's
    if inv.shape != (u,) or np.any(inv < 0) or inv.sum() <= 0:
        raise ModelError(f"investment must be {u} values >= 0 with a positive sum; got "
                         f"{inv.tolist()}")
    return KeyPlan(keys=np.broadcast_to(inv / inv.sum(), inputs.net_consumption.shape))


def key_hybrid(inputs: KeyInputs, among: str = "all") -> KeyPlan:
    """KoR5 / HEP: equal round capped at need, remainder pro rata to remaining need.

    Mustika Algorithm 3 (eqs (40)-(41), ``among="consumers"``) and Ospina Algorithm
    A.5 (``among="all"``: ``epsilon = G/M``). Round 2 redistributes what round 1 left
    (carry) pro rata of the remaining need, so its take never exceeds the need.
    Computed in closed form (``take_1 = min(lambda_1 G, C+)``, ``take_2 = r *
    min(1, S / sum r)`` with ``r = C+ - take_1`` and ``S = G - sum take_1``) and
    handed to the settlement as an allocation; equal to the two-round settlement of
    :func:`key_hybrid_rounds` (tested). The entitlement is Ospina's ``alpha``:
    ``take_1 + S r / sum r``.
    """
    c = inputs.net_consumption
    g = inputs.community_production()
    take1 = round_take(equal_keys(c, among, inputs.member_mask), g, c)  # round 1: (5), (7)
    rest = round_leftover(g, member_sum(take1))
    r = np.subtract(c, take1)
    r_sum = member_sum(r)
    f = np.zeros(g.shape)
    np.divide(rest, r_sum, out=f, where=r_sum > 0)
    take = step_product(r, np.minimum(f, 1.0))  # round 2: prorata_fraction(rest, r_sum)
    take += take1
    ent = step_product(r, f, out=r)
    ent += take1
    return KeyPlan(allocation=take, entitlement=ent)


def key_hybrid_rounds(inputs: KeyInputs, among: str = "all") -> KeyPlan:
    """KoR5 / HEP as two :class:`recopt.settle.Round` (Mustika Algorithm 3, literally)."""
    first = equal_keys(inputs.net_consumption, among, inputs.member_mask)
    return KeyPlan(rounds=(Round(1.0, first, True, "equal"),
                           Round(0.0, prorata_need, True, "prorata remaining need")))


def key_cascade(inputs: KeyInputs, weights=None) -> KeyPlan:
    """KoR6 / CA: repeated equal split among unsatisfied members (water-filling).

    Ospina Algorithm A.6 and Mustika Algorithm 4 reach the same allocation
    ``min(C+_i, L)``; computed exactly by :func:`waterfill` (one sort per step).
    ``weights`` (one per member) makes it the weighted variant.
    """
    return KeyPlan(allocation=waterfill(inputs.net_consumption,
                                        inputs.community_production(), weights))


def key_cascade_rounds(inputs: KeyInputs, among: str = "consumers",
                       n_rounds: int | None = None) -> KeyPlan:
    """KoR6 as Mustika Algorithm 4 literally: rounds of equal keys among needy members.

    At most ``|N|`` rounds are needed (each round satisfies at least one member or
    exhausts the pool); equal to :func:`key_cascade` (tested).
    """
    n = n_rounds or int(inputs.mask.sum())
    first = equal_keys(inputs.net_consumption, among, inputs.member_mask)
    rounds = [Round(1.0, first, True, "cascade 1")]
    rounds += [Round(0.0, equal_among_needy, True, f"cascade {r + 2}") for r in range(n - 1)]
    return KeyPlan(rounds=tuple(rounds))


def key_shapley(inputs: KeyInputs, exact_max: int = 12, n_permutations: int = 500,
                seed: int = 0) -> KeyPlan:
    """KoR7: Shapley keys of ``v_t(S) = min(P-_S, C+_S)`` (Mustika (42)-(44))."""
    keys = shapley_keys(inputs.net_consumption, inputs.net_production,
                        exact_max=exact_max, n_permutations=n_permutations, seed=seed)
    return KeyPlan(keys=members_only(keys, inputs.member_mask))


# ---------------------------------------------------------------------------------
# registry of names users type
# ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class KeySpec:
    """A key users can name: its rule, preset parameters and sources."""

    name: str
    rule: Callable[..., KeyPlan]
    params: Mapping[str, Any]
    description: str
    source: str
    kind: str  # "static" or "dynamic"


def _spec(name, rule, description, source, kind, **params) -> KeySpec:
    return KeySpec(name, rule, params, description, source, kind)


KEYS: dict[str, KeySpec] = {
    s.name: s
    for s in [
        _spec("KoR1", key_equal, "identical keys 1/|N|", "Mustika (36)", "static",
              among="all"),
        _spec("KoR2", key_prorata_consumption, "prorata net consumption per step",
              "Mustika (37)", "dynamic"),
        _spec("KoR3", key_prorata_production, "prorata net production per billing period",
              "Mustika (38)", "static"),
        _spec("KoR4", key_prorata_investment, "prorata investment", "Mustika (39)", "static"),
        _spec("KoR5", key_hybrid, "equal among consumers, then prorata remaining need",
              "Mustika (40)-(41), Alg. 3", "dynamic", among="consumers"),
        _spec("KoR6", key_cascade, "cascade (water-filling of equal rounds)",
              "Mustika Alg. 4", "dynamic"),
        _spec("KoR7", key_shapley, "Shapley value of min(P-_S, C+_S), clipped, normalised",
              "Mustika (42)-(44)", "dynamic"),
        _spec("GS", key_fixed, "given fixed shares (--shares: CSV, guzman or investment)",
              "Ospina (15), Alg. A.2", "static"),
        _spec("ES", key_equal, "equal sharing G/M", "Ospina (16), Alg. A.3", "static",
              among="all"),
        _spec("PR", key_prorata_consumption, "consumption prorata", "Ospina (17)-(18), A.4",
              "dynamic", fallback="equal"),
        _spec("HEP", key_hybrid, "hybrid equal (all members) then prorata remaining need",
              "Ospina Alg. A.5", "dynamic", among="all"),
        _spec("CA", key_cascade, "cascade", "Ospina Alg. A.6", "dynamic"),
        _spec("equal", key_equal, "equal keys (among=all|consumers)", "Mustika (36)",
              "static"),
        _spec("fixed", key_fixed, "user-given shares per member", "Ospina (15)", "static"),
    ]
}
OSPINA_KEYS = ("GS", "ES", "PR", "HEP", "CA")
MUSTIKA_KEYS = ("KoR1", "KoR2", "KoR3", "KoR4", "KoR5", "KoR6", "KoR7")


def key_spec(name: str) -> KeySpec:
    """The :class:`KeySpec` of a key name (case-insensitive)."""
    for k, spec in KEYS.items():
        if k.lower() == str(name).lower():
            return spec
    raise ModelError(f"unknown key {name!r}; known keys: {', '.join(KEYS)}")


def make_plan(inputs: KeyInputs, key: str | Callable[..., KeyPlan], **params) -> KeyPlan:
    """The plan of a named key (preset parameters overridden by ``params``)."""
    if callable(key):
        return key(inputs, **params)
    spec = key_spec(key)
    return spec.rule(inputs, **{**spec.params, **params})


def settle_key(instance: xr.Dataset, key: str | Callable[..., KeyPlan] | KeyPlan,
               **params) -> xr.Dataset:
    """Compute a key on an instance and settle it with :func:`recopt.settle.settle`.

    Returns the settlement Dataset (flows on (scenario, time, member) and bills);
    ``attrs["key"]`` names the key.
    """
    if isinstance(key, KeyPlan):
        plan = key
    else:
        plan = make_plan(KeyInputs.from_instance(instance), key, **params)
    if plan.rounds is not None:
        shape = tuple(instance["consumption"].transpose(*DIMS).shape)
        rounds = [r if callable(r.keys) else
                  Round(r.share, np.broadcast_to(np.asarray(r.keys, dtype=float), shape),
                        r.carry, r.name) for r in plan.rounds]
        ds = settle(instance, rounds=rounds)
    elif plan.keys is not None:
        shape = tuple(instance["consumption"].transpose(*DIMS).shape)
        ds = settle(instance, keys=np.broadcast_to(np.asarray(plan.keys, dtype=float), shape))
    else:
        ds = settle(instance, allocation=plan.allocation)
    ds.attrs["key"] = key if isinstance(key, str) else getattr(key, "__name__", "plan")
    return ds


def keys_list(names: str | Sequence[str]) -> list[str]:
    """Split ``"ES,PR,HEP"`` into names, checking each."""
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    return [key_spec(n).name for n in names]
